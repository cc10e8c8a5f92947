"""Cluster add-ons: Helm-installed cluster software, one module per add-on, one shared pattern."""
