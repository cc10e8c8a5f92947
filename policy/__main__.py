"""The policy pack that `pulumi preview --policy-pack policy` (or `pulumi up`) runs.

The CLI starts it with `python -m pulumi.policy <engine> .` in this directory, which runs this
file as a script: this directory, not the project's, is on `sys.path`. The project directory is
added so that the policies import as `policy.policies`, the same module the tests import.
Constructing `PolicyPack` serves the pack to the engine and never returns.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi
from pulumi_policy import PolicyPack

from policy.policies import ENFORCEMENT_LEVEL, PACK_NAME, build_policies

PolicyPack(
    name=PACK_NAME,
    enforcement_level=ENFORCEMENT_LEVEL,
    # The CLI passes the stack in PULUMI_STACK; pulumi-policy configures the runtime from it
    # before each validation, so `pulumi.get_stack` answers the stack being deployed.
    policies=build_policies(pulumi.get_stack),
)
