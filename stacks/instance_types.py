"""Capacity of the EC2 instance types node groups may use.

The cluster autoscaler models a node group as if every node were its first instance type, so the
settings validation needs each type's size to check the order of a group's types (and, later, that
every workload fits the type the autoscaler models). Only the families this platform uses are
listed; adding one is a deliberate change.
"""

from typing import NamedTuple


class InstanceCapacity(NamedTuple):
    vcpu: int
    memory_gib: float
    gpus: int = 0
    # On-demand Linux list price in us-east-1, USD per hour. Only its order matters: the
    # cluster autoscaler's priority expander tries the cheapest group that fits first.
    hourly_usd: float = 0.0


def _family(
    prefix: str, memory_per_vcpu: float, usd_per_vcpu: float, largest: str = "8xlarge"
) -> dict[str, InstanceCapacity]:
    sizes = {"large": 2, "xlarge": 4, "2xlarge": 8, "4xlarge": 16, "8xlarge": 32}
    sizes = dict(list(sizes.items())[: list(sizes).index(largest) + 1])
    return {
        f"{prefix}.{size}": InstanceCapacity(
            vcpu, vcpu * memory_per_vcpu, hourly_usd=round(vcpu * usd_per_vcpu, 4)
        )
        for size, vcpu in sizes.items()
    }


INSTANCE_TYPES: dict[str, InstanceCapacity] = {
    **_family("m5", 4, 0.048),
    **_family("m6i", 4, 0.048),
    **_family("m7i", 4, 0.0504),
    # c5 has no 8xlarge (its next size is 9xlarge: Karpenter's EC2 price table, which lists
    # every type the Pricing API offers in us-east-1).
    **_family("c5", 2, 0.0425, largest="4xlarge"),
    **_family("c6i", 2, 0.0425),
    **_family("c7i", 2, 0.04463),
    **_family("r5", 8, 0.063),
    **_family("r6i", 8, 0.063),
    **_family("r7i", 8, 0.06615),
    "g4dn.xlarge": InstanceCapacity(4, 16, 1, 0.526),
    "g4dn.2xlarge": InstanceCapacity(8, 32, 1, 0.752),
    "g5.xlarge": InstanceCapacity(4, 16, 1, 1.006),
    "g5.2xlarge": InstanceCapacity(8, 32, 1, 1.212),
    "p3.2xlarge": InstanceCapacity(8, 61, 1, 3.06),
}
