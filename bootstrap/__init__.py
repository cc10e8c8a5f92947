"""One-time, per-account set-up that the Pulumi program's stacks rely on (see state.py)."""
