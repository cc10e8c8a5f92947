"""Every IAM role of an EKS stack carries the workload boundary the bootstrap creates: the
deploy role may create or change a role only with it (bootstrap/state.py)."""

from __future__ import annotations

import re

from offline.engine import ACCOUNT_ID, StackRun
from tests.conftest import run_with

ROLE = "aws:iam/role:Role"
BOUNDARY = f"arn:aws:iam::{ACCOUNT_ID}:policy/financial-planning-workload-boundary"


def test_every_role_carries_the_boundary(stack_run: StackRun) -> None:
    roles = stack_run.of_type(ROLE)
    assert len(roles) >= 15
    missing = [r.name for r in roles if r.inputs.get("permissionsBoundary") != BOUNDARY]
    assert missing == []
    # IAM CreateRole: PermissionsBoundary is the ARN of a managed policy (not a role, not an
    # inline policy), in the role's own account.
    assert re.fullmatch(r"arn:aws:iam::[0-9]{12}:policy/[A-Za-z0-9+=,.@_-]{1,128}", BOUNDARY)


def test_the_boundary_follows_the_setting() -> None:
    run = run_with("staging", iamPermissionsBoundary="other-boundary")
    arns = {r.inputs["permissionsBoundary"] for r in run.of_type(ROLE)}
    assert arns == {f"arn:aws:iam::{ACCOUNT_ID}:policy/other-boundary"}
