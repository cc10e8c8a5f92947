"""One-line changes touch exactly what they must: each is rendered against the stack as it is,
and the resources whose inputs change (or that appear or go) are stated here."""

from __future__ import annotations

from typing import Any

import pytest

from offline.engine import StackRun
from tests.conftest import run_with
from tests.lookup import app_namespace


def changes(before: StackRun, after: StackRun) -> set[str]:
    """`type::name` of every resource created, deleted, or with other inputs."""
    old = {r.urn: r for r in before.resources}
    new = {r.urn: r for r in after.resources}

    def label(urn: str) -> str:
        parts = urn.split("::")
        return f"{parts[2].split('$')[-1]}::{parts[3]}"

    changed = {label(u) for u in old.keys() ^ new.keys()}
    changed |= {label(u) for u in old.keys() & new.keys() if old[u].inputs != new[u].inputs}
    return changed


CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    (
        "image tag",
        {"services": {"banking-service": {"imageTag": "1.5.1"}}},
        {"kubernetes:apps/v1:Deployment::banking-service"},
    ),
    (
        "node group size",
        # Both generations of general: the one kept while drained takes the current one's sizes
        # (stacks/settings.py, NodeGroupSettings.previous_group).
        {"nodeGroups": {"general": {"maxSize": 7}}},
        {
            "aws:eks/nodeGroup:NodeGroup::financial-planning-staging-general",
            "aws:eks/nodeGroup:NodeGroup::financial-planning-staging-general-g2",
        },
    ),
    (
        "instance class",
        {"data": {"database": {"instanceClass": "db.r6g.large"}}},
        {"aws:rds/clusterInstance:ClusterInstance::financial-planning-staging-database-1"},
    ),
    (
        # The ConfigMap alone; Reloader then rolls the Deployments that read it.
        "log level",
        {"application": {"logLevel": "info"}},
        {"kubernetes:core/v1:ConfigMap::financial-planning-staging-app-config"},
    ),
    (
        "replicas",
        {"services": {"ml-service": {"replicas": 0}}},
        {"kubernetes:apps/v1:Deployment::ml-service"},
    ),
    (
        "retention",
        {"flowLogRetentionDays": 60},
        {"aws:cloudwatch/logGroup:LogGroup::financial-planning-staging-flow-logs"},
    ),
    (
        # A stack-wide tag reaches every resource through the provider's default tags, and the
        # launch templates' tag specifications: a new template version rolls every node group's
        # nodes (docs/cluster.md, "Node groups").
        "one tag",
        {"tags": {"owner": "platform"}},
        {
            "pulumi:providers:aws::aws",
            *(
                f"aws:ec2/launchTemplate:LaunchTemplate::financial-planning-staging-{group}"
                # Each generation's template, the two kept previous generations' too.
                for group in ("general", "compute", "memory", "gpu", "general-g2", "compute-g2")
            ),
        },
    ),
]


@pytest.mark.parametrize(("case", "change", "expected"), CASES, ids=[c for c, _, _ in CASES])
def test_a_one_line_change_touches_only_its_resources(
    staging: StackRun, case: str, change: dict[str, Any], expected: set[str]
) -> None:
    assert changes(staging, run_with("staging", **change)) == expected


def test_removing_one_admin_touches_only_that_admins_access() -> None:
    admins = [f"arn:aws:iam::123456789012:role/admin-{n}" for n in ("a", "b", "c")]
    access = {"platformAdmins": admins, "deployer": "arn:aws:iam::123456789012:role/deployer"}
    before = run_with("staging", access=access)
    after = run_with("staging", access={**access, "platformAdmins": admins[1:]})
    assert changes(before, after) == {
        "aws:eks/accessEntry:AccessEntry::financial-planning-staging-access-role-admin-a",
        "aws:eks/accessPolicyAssociation:AccessPolicyAssociation::"
        "financial-planning-staging-access-role-admin-a",
    }


def test_deployments_roll_when_their_configuration_changes(staging: StackRun) -> None:
    for deployment in staging.of_type("kubernetes:apps/v1:Deployment"):
        if deployment.inputs["metadata"]["namespace"] != app_namespace(staging):
            continue  # platform workloads roll by their own config checksums
        annotations = deployment.inputs["metadata"]["annotations"]
        assert annotations["reloader.stakater.com/auto"] == "true"
