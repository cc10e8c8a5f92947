"""Vertical Pod Autoscaler: recommends requests for every service, and applies them (by evicting
and re-admitting pods) where a service's VPA may act.

The recommender always runs; the updater and the admission controller run only when some
service's VPA has an update mode other than `Off`. The chart installs the VPA CRDs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.addons.base import AUTOSCALING_NAMESPACE, ClusterAddon, disruption_budget
from components.shared.conventions import (
    CONTROLLER_NODES,
    PLATFORM_PRIORITY_CLASS,
    restricted_container_security_context,
    restricted_pod_security_context,
)
from components.shared.helm import HelmChart
from stacks.addon_settings import ControllerSettings

NOBODY = 65534


@dataclass(frozen=True)
class VerticalPodAutoscaler(ClusterAddon):
    settings: ControllerSettings
    # Whether any service's VPA updates pods (else only recommendations are made).
    updates: bool

    name = "vpa"
    chart = HelmChart(
        chart="vertical-pod-autoscaler",
        version="0.11.0",
        repository="https://kubernetes.github.io/autoscaler",
    )
    namespace = AUTOSCALING_NAMESPACE

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def component(self, enabled: bool) -> dict[str, Any]:
        replicas = self.settings.replicas
        return {
            "enabled": enabled,
            "replicas": replicas,
            "resources": self.settings.resources.as_values(),
            "nodeSelector": CONTROLLER_NODES,
            "priorityClassName": PLATFORM_PRIORITY_CLASS,
            # With a replica to spare, one at a time: the chart's default bound (minAvailable 1,
            # removed by the null) would block every drain of a single replica, so with one
            # there is no budget.
            "podDisruptionBudget": (
                {**disruption_budget(replicas), "minAvailable": None}
                if replicas > 1
                else disruption_budget(replicas)
            ),
        }

    def values(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        return {
            "recommender": self.component(True),
            "updater": self.component(self.updates),
            "admissionController": self.component(self.updates),
            # The chart leaves these unset, which Pod Security `restricted` refuses.
            "podSecurityContext": restricted_pod_security_context(NOBODY),
            "containerSecurityContext": restricted_container_security_context(NOBODY),
        }
