"""NVIDIA device plugin: advertises `nvidia.com/gpu` on the GPU nodes so GPU pods can schedule.

The AL2023 NVIDIA AMI brings the driver but not the device plugin (EKS User Guide, "NVIDIA
device plugin for Kubernetes"). It runs on the GPU group only, tolerating its taints. It mounts
the kubelet's device-plugin socket directory from the host, which Pod Security `baseline` and
`restricted` forbid: its namespace is `privileged`, and holds nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components.addons.base import ClusterAddon
from components.shared.conventions import WORKLOAD_CLASS_LABEL
from components.shared.helm import HelmChart
from stacks.addon_settings import AddonSettings


@dataclass(frozen=True)
class NvidiaDevicePlugin(ClusterAddon):
    settings: AddonSettings
    # The GPU group's workload class and taints (key, value, effect as Kubernetes spells it).
    gpu_class: str
    taints: Sequence[tuple[str, str, str]]

    name = "nvidia"
    chart = HelmChart(
        chart="nvidia-device-plugin",
        version="0.17.4",
        repository="https://nvidia.github.io/k8s-device-plugin",
    )
    namespace = "nvidia-device-plugin"
    pod_security = "privileged"

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def values(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        gpu_nodes = {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {"key": WORKLOAD_CLASS_LABEL, "operator": "In", "values": [self.gpu_class]}
                    ]
                }
            ]
        }
        return {
            # The chart's default affinity wants Node Feature Discovery labels, which nothing
            # here sets; the GPU group's own label replaces it.
            "affinity": {
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": gpu_nodes}
            },
            "nodeSelector": {WORKLOAD_CLASS_LABEL: self.gpu_class},
            "tolerations": [
                {"key": key, "operator": "Equal", "value": value, "effect": effect}
                for key, value, effect in self.taints
            ],
            "priorityClassName": "system-node-critical",
            "resources": self.settings.resources.as_values(),
            # No feature discovery: the group's label says which nodes have GPUs.
            "gfd": {"enabled": False},
            "nfd": {"enabled": False},
        }
