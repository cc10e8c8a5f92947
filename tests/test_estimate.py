"""The deploy-time estimate: the slowest chain of waits through a stack's graph."""

from __future__ import annotations

import pytest

from offline.engine import RecordedResource, StackRun
from offline.estimate import CREATE_MINUTES, OTHER_MINUTES, critical_path, minutes_for
from tests.records import node


def test_a_dependency_on_a_component_waits_for_all_its_resources_and_providers_count() -> None:
    cluster = node("cluster", "aws:eks/cluster:Cluster")
    group = node("group", "p:NodeGroups", custom=False)
    fast = node("fast", "aws:iam/role:Role", parent=group.urn)
    slow = node(
        "slow", "aws:eks/nodeGroup:NodeGroup", parent=group.urn, dependencies=(cluster.urn,)
    )
    provider = node("k8s", "pulumi:providers:kubernetes", dependencies=(group.urn,))
    release = node("app", "kubernetes:helm.sh/v3:Release", provider=f"{provider.urn}::id-1")
    unrelated = node("nat", "aws:ec2/natGateway:NatGateway")

    path = critical_path([cluster, group, fast, slow, provider, release, unrelated])

    # 10 + 4 + 0.1 + 2; the fast role and the unrelated NAT gateway are off the chain.
    assert path.minutes == pytest.approx(16.1)
    assert [r.name for r in path.chain] == ["cluster", "slow", "k8s", "app"]


def test_without_the_component_dependency_the_slowest_single_resource_paces() -> None:
    cluster = node("cluster", "aws:eks/cluster:Cluster")
    domain = node("domain", "aws:opensearch/domain:Domain")
    path = critical_path([cluster, domain])
    assert path.minutes == 20
    assert [r.name for r in path.chain] == ["domain"]


def _waits(later: RecordedResource, earlier: RecordedResource, run: StackRun) -> bool:
    """`later` waits for `earlier`: directly, through a component holding it, or as provider."""
    if later.provider.rsplit("::", 1)[0] == earlier.urn:
        return True
    parents = {r.urn: r.parent for r in run.resources}
    holders = {earlier.urn}
    urn = earlier.urn
    while urn in parents:
        urn = parents[urn]
        holders.add(urn)
    return bool(holders & set(later.dependencies))


def test_each_stacks_chain_is_a_real_chain_of_waits_and_its_total_adds_up(
    stack_run: StackRun,
) -> None:
    path = critical_path(stack_run.resources)
    assert len(path.chain) > 5
    for earlier, later in zip(path.chain, path.chain[1:], strict=False):
        assert _waits(later, earlier, stack_run), (earlier.urn, later.urn)
    assert path.minutes == pytest.approx(sum(minutes_for(r) for r in path.chain))
    # A first `up` waits for the control plane, then for nodes, before any workload.
    types = [r.type for r in path.chain]
    assert types.index("aws:eks/cluster:Cluster") < types.index("aws:eks/nodeGroup:NodeGroup")


def test_every_weighted_type_is_one_the_stacks_create(runs: dict[str, StackRun]) -> None:
    created = {r.type for run in runs.values() for r in run.resources}
    assert set(CREATE_MINUTES) <= created
    assert all(minutes > OTHER_MINUTES for minutes in CREATE_MINUTES.values())
