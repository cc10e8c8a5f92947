"""metrics-server: the resource metrics API that CPU and memory HPAs (and `kubectl top`) read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.addons.base import AUTOSCALING_NAMESPACE, SelfMonitoredAddon, disruption_budget
from components.shared.conventions import CONTROLLER_NODES, zone_spread
from components.shared.helm import HelmChart
from stacks.addon_settings import ControllerSettings


@dataclass(frozen=True)
class MetricsServer(SelfMonitoredAddon):
    settings: ControllerSettings

    name = "metrics-server"
    chart = HelmChart(
        chart="metrics-server",
        version="3.13.0",
        repository="https://kubernetes-sigs.github.io/metrics-server/",
    )
    namespace = AUTOSCALING_NAMESPACE

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def values(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        replicas = self.settings.replicas
        return {
            # Its own ServiceMonitor (https on the secure port; /metrics readable without a
            # token, as the chart's `metrics.enabled` sets).
            "metrics": {"enabled": self.monitored},
            "serviceMonitor": {"enabled": self.monitored},
            "replicas": replicas,
            "podDisruptionBudget": disruption_budget(replicas),
            "resources": self.settings.resources.as_values(),
            # The chart's default; the API that every HPA depends on outranks workloads.
            "priorityClassName": "system-cluster-critical",
            "nodeSelector": CONTROLLER_NODES,
            # Replicas in different zones, so one zone's loss keeps the metrics API up.
            "topologySpreadConstraints": zone_spread({"app.kubernetes.io/name": "metrics-server"}),
        }
