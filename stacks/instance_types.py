"""Capacity of the EC2 instance types node groups may use.

The cluster autoscaler models a node group as if every node were its first instance type, so the
settings validation needs each type's size to check the order of a group's types and that every
workload fits the type the autoscaler models. Only the families this platform uses are listed;
adding one is a deliberate change.
"""

from typing import NamedTuple


class InstanceCapacity(NamedTuple):
    vcpu: int
    memory_gib: float
    gpus: int = 0
    # On-demand Linux list price in us-east-1, USD per hour. Only its order matters: the
    # cluster autoscaler's priority expander tries the cheapest group that fits first.
    hourly_usd: float = 0.0
    # Pods the kubelet admits: the AL2023 bootstrap (nodeadm) sets maxPods to
    # ENIs x (IPv4 addresses per ENI - 1) + 2 (awslabs/amazon-eks-ami v20260724,
    # nodeadm/internal/kubelet/eni_max_pods.go, from instance-info.jsonl's ENI figures).
    max_pods: int = 110
    # What the cluster autoscaler's `k8s.amazonaws.com/accelerator` label names for the type's
    # GPU (the values of its AWS provider's availableGPUTypes, aws_cloud_provider.go).
    accelerator: str | None = None


# maxPods by size for the m, c and r families (instance-info.jsonl: large 3 ENIs x 10 IPv4,
# xlarge and 2xlarge 4 x 15, 4xlarge and 8xlarge 8 x 30).
_MAX_PODS = {"large": 29, "xlarge": 58, "2xlarge": 58, "4xlarge": 234, "8xlarge": 234}


def _family(
    prefix: str,
    memory_per_vcpu: float,
    usd_per_vcpu: float,
    sizes: tuple[str, ...] = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge"),
) -> dict[str, InstanceCapacity]:
    vcpus = {"large": 2, "xlarge": 4, "2xlarge": 8, "4xlarge": 16, "8xlarge": 32}
    return {
        f"{prefix}.{size}": InstanceCapacity(
            vcpus[size],
            vcpus[size] * memory_per_vcpu,
            hourly_usd=round(vcpus[size] * usd_per_vcpu, 4),
            max_pods=_MAX_PODS[size],
        )
        for size in sizes
    }


INSTANCE_TYPES: dict[str, InstanceCapacity] = {
    **_family("m5", 4, 0.048),
    **_family("m6i", 4, 0.048),
    **_family("m7i", 4, 0.0504),
    # C5 has no 8xlarge (its next size is 9xlarge).
    **_family("c5", 2, 0.0425, sizes=("large", "xlarge", "2xlarge", "4xlarge")),
    **_family("c6i", 2, 0.0425),
    **_family("c7i", 2, 0.04463),
    **_family("r5", 8, 0.063),
    **_family("r6i", 8, 0.063),
    **_family("r7i", 8, 0.06615),
    # GPU types: g4dn NVIDIA T4, g5 NVIDIA A10G, p3 NVIDIA V100 (EC2 accelerated computing
    # instances). p3.2xlarge is not in nodeadm's cached list: 58 is its figure in the AL2 AMI's
    # eni-max-pods.txt (the same formula, 4 ENIs x 15 IPv4).
    "g4dn.xlarge": InstanceCapacity(4, 16, 1, 0.526, 29, "nvidia-tesla-t4"),
    "g4dn.2xlarge": InstanceCapacity(8, 32, 1, 0.752, 29, "nvidia-tesla-t4"),
    "g5.xlarge": InstanceCapacity(4, 16, 1, 1.006, 58, "nvidia-a10g"),
    "g5.2xlarge": InstanceCapacity(8, 32, 1, 1.212, 58, "nvidia-a10g"),
    "p3.2xlarge": InstanceCapacity(8, 61, 1, 3.06, 58, "nvidia-tesla-v100"),
}
