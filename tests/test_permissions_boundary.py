"""Every IAM role of an EKS stack carries the workload boundary the bootstrap creates, and every
permission the program gives a role lies inside it (the deploy roles may create or change a
role only with the boundary on it: bootstrap/state.py).

A boundary caps a role: an action its own policies allow but the boundary does not is denied
(IAM User Guide, "Permissions boundaries for IAM entities": the effective permissions are the
intersection). So a role of the program whose policy asks for more than the boundary allows
would fail at run time: the checks below find it in the render instead.

The policies of a role are all the render shows: its inline policies (RolePolicy, and a Role's
`inlinePolicies`) and the AWS managed policies attached to it (RolePolicyAttachment, a Role's
`managedPolicyArns`). AWS managed policies are not in the render; their documents come from
moto 5.2.5's copy of them (moto/iam/aws_managed_policies.py).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from moto.iam.aws_managed_policies import aws_managed_policies_data

from bootstrap.state import BOUNDARY_ALLOWS, workload_boundary
from offline.engine import ACCOUNT_ID, StackRun
from tests.conftest import run_with

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
BOUNDARY = f"arn:aws:iam::{ACCOUNT_ID}:policy/financial-planning-workload-boundary"
MANAGED = json.loads(aws_managed_policies_data)

_BACKUP_ONLY_AURORA = (
    "AWS Backup's policy covers every resource type Backup supports; the plan backs up the "
    "Aurora cluster only (components/data/backup.py)"
)
# What the boundary cuts from the AWS managed policies the program attaches, with why nothing
# of the program needs it. Kept exact: a managed policy that gains a service, or a boundary
# that loses one the program uses, changes the difference and fails the test.
CUT_FROM_MANAGED: dict[str, tuple[frozenset[str], str]] = {
    "AWSBackupServiceRolePolicyForBackup": (
        frozenset(
            {
                "backup-gateway:*",
                "cloudformation:*",
                "dsql:*",
                "dynamodb:*",
                "elasticfilesystem:*",
                "fsx:*",
                "guardduty:*",
                "iam:PassRole",
                "redshift:*",
                "redshift-serverless:*",
                "ssm:*",
                "ssm-sap:*",
                "storagegateway:*",
                "timestream:*",
            }
        ),
        _BACKUP_ONLY_AURORA,
    ),
    "AWSBackupServiceRolePolicyForRestores": (
        frozenset(
            {
                "backup-gateway:*",
                "cloudformation:*",
                "ds:*",
                "dsql:*",
                "dynamodb:*",
                "ebs:*",
                "elasticfilesystem:*",
                "fsx:*",
                "iam:GetRole",
                "iam:ListAttachedRolePolicies",
                "iam:PassRole",
                "redshift:*",
                "redshift-serverless:*",
                "storagegateway:*",
                "timestream:*",
            }
        ),
        _BACKUP_ONLY_AURORA,
    ),
}


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def within(action: str, patterns: list[str]) -> bool:
    """Whether every action `action` names is one the patterns allow. IAM matches actions
    case-insensitively, with `*` and `?` wildcards (IAM User Guide, "IAM JSON policy elements:
    Action"). The boundary uses `*` only, so a boundary pattern that matches the role's
    pattern as a string (its `*` taken literally) covers every action the role's pattern
    covers."""
    assert not any("?" in p for p in patterns)
    return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in patterns)


def allowed_actions(document: dict[str, Any], where: str) -> Iterator[str]:
    for statement in _listed(document["Statement"]):
        if statement["Effect"] != "Allow":
            continue
        assert "NotAction" not in statement, f"{where}: NotAction grants all else"
        yield from (str(a) for a in _listed(statement["Action"]))


def managed_name(arn: str) -> str:
    assert arn.startswith("arn:aws:iam::aws:policy/"), arn
    return arn.rsplit("/", 1)[-1]


def role_grants(run: StackRun) -> dict[str, list[tuple[str, str]]]:
    """Per role (its name as the mocks gave it): (where, action) of everything it is given."""
    roles = {r.id: r for r in run.of_type(ROLE)}
    grants: dict[str, list[tuple[str, str]]] = {role_id: [] for role_id in roles}

    def managed(role_id: str, arn: str) -> None:
        name = managed_name(arn)
        for action in allowed_actions(MANAGED[name]["Document"], name):
            grants[role_id].append((f"managed {name}", action))

    for role_id, role in roles.items():
        for arn in role.inputs.get("managedPolicyArns", []):
            managed(role_id, arn)
        for policy in role.inputs.get("inlinePolicies", []):
            document = json.loads(policy["policy"])
            grants[role_id] += [(role.urn, a) for a in allowed_actions(document, role.urn)]
    for policy in run.of_type(ROLE_POLICY):
        role_id = policy.inputs["role"]
        document = json.loads(policy.inputs["policy"])
        grants[role_id] += [(policy.urn, a) for a in allowed_actions(document, policy.urn)]
    for attachment in run.of_type(ATTACHMENT):
        managed(attachment.inputs["role"], attachment.inputs["policyArn"])
    # No customer managed policy exists to escape the accounting above.
    assert run.of_type("aws:iam/policy:Policy") == []
    return grants


def boundary_patterns() -> list[str]:
    (statement,) = workload_boundary()["Statement"]
    assert statement["Effect"] == "Allow" and statement["Resource"] == "*"
    return list(statement["Action"])


def outside(run: StackRun, patterns: list[str]) -> dict[str, set[str]]:
    """Per role, what it is given that the boundary does not allow, beyond the declared cuts."""
    found: dict[str, set[str]] = {}
    for role_id, grants in role_grants(run).items():
        for where, action in grants:
            if within(action, patterns):
                continue
            cut = next(
                (
                    cuts
                    for name, (cuts, _) in CUT_FROM_MANAGED.items()
                    if where == f"managed {name}"
                ),
                frozenset(),
            )
            if not within(action, list(cut)):
                found.setdefault(role_id, set()).add(f"{where}: {action}")
    return found


def test_every_role_carries_the_boundary(stack_run: StackRun) -> None:
    roles = stack_run.of_type(ROLE)
    assert len(roles) >= 15
    missing = [r.name for r in roles if r.inputs.get("permissionsBoundary") != BOUNDARY]
    assert missing == []
    # IAM CreateRole: PermissionsBoundary is the ARN of a managed policy (not a role, not an
    # inline policy), in the role's own account.
    assert re.fullmatch(r"arn:aws:iam::[0-9]{12}:policy/[A-Za-z0-9+=,.@_-]{1,128}", BOUNDARY)


def test_every_permission_of_every_role_lies_inside_the_boundary(stack_run: StackRun) -> None:
    grants = role_grants(stack_run)
    # The runner's, the nodes', the cluster's and the controllers' roles are all accounted for.
    assert sum(len(g) for g in grants.values()) > 100
    assert outside(stack_run, boundary_patterns()) == {}


def test_the_declared_cuts_are_exactly_what_the_boundary_takes_from_managed_policies(
    stack_run: StackRun,
) -> None:
    patterns = boundary_patterns()
    attached = {managed_name(a.inputs["policyArn"]) for a in stack_run.of_type(ATTACHMENT)} | {
        managed_name(arn)
        for r in stack_run.of_type(ROLE)
        for arn in r.inputs.get("managedPolicyArns", [])
    }
    for name in sorted(attached):
        actions = set(allowed_actions(MANAGED[name]["Document"], name))
        taken = {a for a in actions if not within(a, patterns)}
        cuts = CUT_FROM_MANAGED.get(name, (frozenset(), ""))[0]
        # Each declared cut takes something, and together they take all that is taken.
        assert all(within(a, list(cuts)) for a in taken), (name, taken)
        assert all(any(within(a, [cut]) for a in taken) for cut in cuts), (name, cuts)


@pytest.mark.parametrize(
    ("dropped", "role_fragment"),
    [
        ("secretsmanager:*", "eso-operator"),
        ("codeconnections:GetConnectionToken", "runner"),
        ("ec2:*", "runner"),
        ("rds:*", "backup"),
        ("iam:CreateServiceLinkedRole", "cluster"),
    ],
)
def test_a_service_dropped_from_the_boundary_is_found_missing(
    production: StackRun, dropped: str, role_fragment: str
) -> None:
    """Negative control: the roles that use the service would lose it."""
    patterns = [p for p in boundary_patterns() if p != dropped]
    assert patterns != boundary_patterns()
    found = outside(production, patterns)
    assert any(role_fragment in role for role in found), sorted(found)


def test_the_boundary_names_each_service_once_with_a_reason() -> None:
    services = [p.split(":")[0] for p in BOUNDARY_ALLOWS if p.endswith(":*")]
    assert len(services) == len(set(services))
    assert all(reason.strip() for reason in BOUNDARY_ALLOWS.values())
    # Nothing grants identity changes: IAM only for service-linked roles, no STS, no
    # Organizations.
    assert [p for p in BOUNDARY_ALLOWS if p.split(":")[0] in ("iam", "sts", "organizations")] == [
        "iam:CreateServiceLinkedRole"
    ]


def test_the_boundary_follows_the_setting() -> None:
    run = run_with("staging", iamPermissionsBoundary="other-boundary")
    arns = {r.inputs["permissionsBoundary"] for r in run.of_type(ROLE)}
    assert arns == {f"arn:aws:iam::{ACCOUNT_ID}:policy/other-boundary"}
