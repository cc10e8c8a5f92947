"""The environments and their defaults: one module per environment, found here and nowhere else.

Each module in this package defines `DEFAULTS`, in the stack files' own camelCase shape. A stack
file (`Pulumi.<stack>.yaml`) states only what differs from its environment's defaults, and the
loader deep-merges it over them. The tests, `make synth-all`, `make bench`, the URN snapshot and
the manifest checks all iterate `ENVIRONMENTS`, so adding an environment is one module here plus
one stack file of the same name.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any


def _discover() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        defaults = importlib.import_module(f"{__name__}.{module.name}").DEFAULTS
        found[module.name] = defaults
    return found


DEFAULTS: dict[str, dict[str, Any]] = _discover()
ENVIRONMENTS: tuple[str, ...] = tuple(DEFAULTS)
