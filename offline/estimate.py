"""How long a first `pulumi up` of a stack takes, and which resources pace it.

`pulumi up` creates a resource as soon as everything it waits for exists: its dependencies
(a dependency on a component means all of that component's resources) and its provider. So the
time of a first `up` is set by the longest chain through that graph, each resource weighted by
how long its creation typically takes. The weights below are this team's typical creation times
(minutes, rounded up) as seen in deployments and in AWS's and the providers' documentation
(EKS control planes ~10 minutes, OpenSearch domains 15+, Aurora and ElastiCache instances ~10):
an estimate of which resources pace the update, not a promise of its length.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache

from offline.engine import RecordedResource

# Typical minutes to create one resource of the type, for the slow types.
CREATE_MINUTES: Mapping[str, float] = {
    "aws:eks/cluster:Cluster": 10,
    "aws:eks/nodeGroup:NodeGroup": 4,  # instances launch, join and turn Ready
    "aws:eks/addon:Addon": 2,  # waits until the add-on's pods are running
    "aws:ec2/natGateway:NatGateway": 2,
    "aws:ec2/vpcEndpoint:VpcEndpoint": 2,
    "aws:rds/cluster:Cluster": 5,
    "aws:rds/clusterInstance:ClusterInstance": 10,
    "aws:elasticache/replicationGroup:ReplicationGroup": 12,
    "aws:opensearch/domain:Domain": 20,
    "aws:guardduty/detector:Detector": 1,
    "kubernetes:helm.sh/v3:Release": 2,  # the release waits for its workloads to be ready
    "kubernetes:apps/v1:Deployment": 2,  # Pulumi waits for the rollout to complete
    "kubernetes:batch/v1:Job": 2,  # Pulumi waits for the Job to succeed
}
# Everything else: an API call or two.
OTHER_MINUTES = 0.1


@dataclass(frozen=True)
class CriticalPath:
    minutes: float
    chain: tuple[RecordedResource, ...]


def minutes_for(resource: RecordedResource) -> float:
    if not resource.custom:
        return 0.0
    return CREATE_MINUTES.get(resource.type, OTHER_MINUTES)


def waits(resources: Iterable[RecordedResource]) -> dict[str, set[str]]:
    """For each resource, the custom resources `pulumi up` creates before it."""
    by_urn = {r.urn: r for r in resources}
    children: dict[str, list[str]] = {}
    for resource in by_urn.values():
        children.setdefault(resource.parent, []).append(resource.urn)

    def resources_of(urn: str) -> list[str]:
        """A custom resource itself; a component's custom resources, however deep."""
        if by_urn[urn].custom:
            return [urn]
        return [leaf for child in children.get(urn, []) for leaf in resources_of(child)]

    graph: dict[str, set[str]] = {}
    for resource in by_urn.values():
        waited = {
            leaf for dep in resource.dependencies if dep in by_urn for leaf in resources_of(dep)
        }
        provider = resource.provider.rsplit("::", 1)[0] if resource.provider else ""
        if provider in by_urn:
            waited.add(provider)
        waited.discard(resource.urn)
        graph[resource.urn] = waited
    return graph


def critical_path(resources: Iterable[RecordedResource]) -> CriticalPath:
    """The slowest chain of waits through the stack's graph, and its total minutes."""
    by_urn = {r.urn: r for r in resources}
    graph = waits(by_urn.values())

    @cache
    def finish(urn: str) -> tuple[float, tuple[str, ...]]:
        before: tuple[float, tuple[str, ...]] = (0.0, ())
        for dep in graph[urn]:
            before = max(before, finish(dep))
        return before[0] + minutes_for(by_urn[urn]), (*before[1], urn)

    best: tuple[float, tuple[str, ...]] = (0.0, ())
    for urn, resource in by_urn.items():
        if resource.custom:
            best = max(best, finish(urn))
    return CriticalPath(minutes=best[0], chain=tuple(by_urn[u] for u in best[1]))


def describe(path: CriticalPath) -> str:
    """A few lines for `make synth`: the estimate and the resources that pace it."""
    lines = [f"Estimated first `pulumi up`: ~{path.minutes:.0f} min along this chain:"]
    for resource in path.chain:
        minutes = minutes_for(resource)
        if minutes > OTHER_MINUTES:
            lines.append(f"  {minutes:>4.0f} min  {resource.type}  {resource.name}")
    quick = sum(1 for r in path.chain if minutes_for(r) <= OTHER_MINUTES)
    if quick:
        lines.append(f"  (and {quick} quick resources between them)")
    return "\n".join(lines)
