"""The environments and their defaults: one module per environment, found here and nowhere else.

Each module in this package defines `DEFAULTS`, in the stack files' own camelCase shape, and may
set `TARGET`: "eks" (the default; settings model `stacks.settings.StackSettings`) or
"kubeconfig" (an existing cluster and no AWS; `stacks.local_settings.LocalStackSettings`). A
stack file (`Pulumi.<stack>.yaml`) states only what differs from its environment's defaults, and
the loader deep-merges it over them. The tests, `make synth-all`, `make bench`, the URN snapshot
and the manifest checks all iterate `ENVIRONMENTS`, so adding an environment is one module here
plus one stack file of the same name.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Literal, cast

Target = Literal["eks", "kubeconfig"]


def _discover() -> tuple[dict[str, dict[str, Any]], dict[str, Target]]:
    defaults: dict[str, dict[str, Any]] = {}
    targets: dict[str, Target] = {}
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        found = importlib.import_module(f"{__name__}.{module.name}")
        defaults[module.name] = found.DEFAULTS
        target = getattr(found, "TARGET", "eks")
        if target not in ("eks", "kubeconfig"):
            raise ValueError(f"stacks.environments.{module.name}.TARGET: {target!r} is unknown")
        targets[module.name] = cast(Target, target)
    return defaults, targets


DEFAULTS, TARGETS = _discover()
ENVIRONMENTS: tuple[str, ...] = tuple(DEFAULTS)
# Environments on Amazon EKS, and those deployed onto an existing cluster without AWS.
EKS_ENVIRONMENTS: tuple[str, ...] = tuple(e for e in ENVIRONMENTS if TARGETS[e] == "eks")
LOCAL_ENVIRONMENTS: tuple[str, ...] = tuple(e for e in ENVIRONMENTS if TARGETS[e] == "kubeconfig")
