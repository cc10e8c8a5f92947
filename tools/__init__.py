"""Scripts run by hand (never in CI): tools/chart_facts.py and its helpers."""
