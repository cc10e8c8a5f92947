"""Cluster autoscaler: adds nodes for pending pods and removes idle ones, in all four groups.

It finds the groups by the discovery tags EKS puts on every managed node group's Auto Scaling
group; only the `node-template/*` tags (labels, taints, GPUs of a node it has not seen yet) are
ours (see foundation/node_group.py). Its IAM role reads anything but may change only the Auto
Scaling groups tagged as this cluster's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components.addons.base import AUTOSCALING_NAMESPACE, SelfMonitoredAddon
from components.shared.conventions import (
    CONTROLLER_NODES,
    restricted_container_security_context,
    restricted_pod_security_context,
)
from components.shared.helm import HelmChart
from components.shared.iam import policy_document
from stacks.addon_settings import ClusterAutoscalerSettings
from stacks.version_support import AUTOSCALER_RELEASES

# The chart's image runs as nobody.
NOBODY = 65534

READ_ACTIONS = [
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeScalingActivities",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:GetInstanceTypesFromInstanceRequirements",
    "eks:DescribeNodegroup",
]
WRITE_ACTIONS = [
    "autoscaling:SetDesiredCapacity",
    "autoscaling:TerminateInstanceInAutoScalingGroup",
    "autoscaling:UpdateAutoScalingGroup",
]


def autoscaler_policy(cluster_name: str) -> str:
    """Describe anything (these actions take no resource); change only this cluster's groups.

    EKS tags each managed node group's Auto Scaling group with
    `k8s.io/cluster-autoscaler/<cluster>: owned` and `k8s.io/cluster-autoscaler/enabled: true`
    (EKS User Guide, "Managed node groups"; the condition is the one the EKS guide's autoscaler
    policy used).
    """
    return policy_document(
        [
            {"Sid": "Discover", "Effect": "Allow", "Action": READ_ACTIONS, "Resource": "*"},
            {
                "Sid": "ScaleThisClustersGroupsOnly",
                "Effect": "Allow",
                "Action": WRITE_ACTIONS,
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned",
                        "aws:ResourceTag/k8s.io/cluster-autoscaler/enabled": "true",
                    }
                },
            },
        ]
    )


@dataclass(frozen=True)
class ClusterAutoscaler(SelfMonitoredAddon):
    settings: ClusterAutoscalerSettings
    cluster_name: str
    region: str
    kubernetes_version: str
    # Node group name -> the hourly price of its first instance type: the priority expander
    # prefers the cheapest group that fits a pending pod.
    group_prices: Mapping[str, float]
    # Previous generations' groups, being drained: tried only after every current group.
    retiring_groups: Sequence[str] = ()

    name = "autoscaler"
    namespace = AUTOSCALING_NAMESPACE
    service_account = "cluster-autoscaler"

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    @property
    def chart(self) -> HelmChart:  # type: ignore[override]
        """The chart of the cluster's minor: its ClusterRole is the one that image needs
        (stacks/version_support.py)."""
        return HelmChart(
            chart="cluster-autoscaler",
            version=AUTOSCALER_RELEASES[self.kubernetes_version].chart,
            repository="https://kubernetes.github.io/autoscaler",
        )

    @property
    def image_tag(self) -> str:
        return self.settings.image_tag or AUTOSCALER_RELEASES[self.kubernetes_version].image

    def irsa_policy(self) -> str:
        return autoscaler_policy(self.cluster_name)

    def expander_priorities(self) -> dict[int, list[str]]:
        """Cheapest current group first, then the groups being drained, then anything.

        The expander matches Auto Scaling group names, which EKS makes `eks-<node group>-<id>`,
        and picks among the groups matching its highest priority (kubernetes/autoscaler
        cluster-autoscaler-1.35.2, expander/priority/priority.go). A retiring generation-1 group
        `general` is matched by `^eks-general-` like its successor `general-g2`, but only at the
        low priority: the successor, matched higher, wins. A catch-all keeps any other group
        usable.
        """
        ranked = sorted(self.group_prices, key=lambda group: (self.group_prices[group], group))
        priorities = {
            10 * (len(ranked) - i) + 10: [f"^eks-{group}-"] for i, group in enumerate(ranked)
        }
        if self.retiring_groups:
            priorities[5] = [f"^eks-{group}-" for group in sorted(self.retiring_groups)]
        priorities[1] = [".*"]
        return priorities

    def values(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        settings = self.settings
        return {
            # Its own ServiceMonitor beside it; the chart applies `selector` as its labels.
            "serviceMonitor": {
                "enabled": self.monitored,
                "namespace": self.namespace,
                "selector": {"app.kubernetes.io/part-of": "financial-planning"},
                "interval": "30s",
            },
            "cloudProvider": "aws",
            "awsRegion": self.region,
            "autoDiscovery": {"clusterName": self.cluster_name},
            "image": {"tag": self.image_tag},
            "replicaCount": settings.replicas,
            "podDisruptionBudget": {"maxUnavailable": 1},
            "rbac": {"serviceAccount": self.irsa_service_account(role_arn)},
            "extraArgs": {
                "balance-similar-node-groups": True,
                "expander": "priority,least-waste",
                "scale-down-unneeded-time": settings.scale_down_unneeded_time,
                "scale-down-delay-after-add": settings.scale_down_delay_after_add,
                "scale-down-utilization-threshold": settings.scale_down_utilization_threshold,
                # kube-system pods are protected by their PodDisruptionBudgets, and the
                # services' only local storage is an emptyDir /tmp: neither should pin a node.
                "skip-nodes-with-system-pods": False,
                "skip-nodes-with-local-storage": False,
            },
            "expanderPriorities": {str(k): v for k, v in self.expander_priorities().items()},
            "resources": settings.resources.as_values(),
            "priorityClassName": "system-cluster-critical",
            "nodeSelector": CONTROLLER_NODES,
            "securityContext": restricted_pod_security_context(NOBODY),
            "containerSecurityContext": restricted_container_security_context(NOBODY),
        }
