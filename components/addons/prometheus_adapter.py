"""prometheus-adapter: serves `http_requests_per_second` per pod on the custom metrics API, for
HPAs that scale on request rate, from the services' own `http_requests_total` counter.

Off by default: without Prometheus in the cluster the custom metrics API fails, and an HPA that
uses it would no longer scale down. The observability layer turns it on with Prometheus.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.addons.base import AUTOSCALING_NAMESPACE, ClusterAddon, disruption_budget
from components.shared.conventions import CONTROLLER_NODES, PLATFORM_PRIORITY_CLASS
from components.shared.helm import HelmChart
from stacks.addon_settings import PrometheusAdapterSettings

# The counter every service exposes (the metrics contract), and what the HPAs read from it.
REQUEST_COUNTER = "http_requests_total"
REQUEST_RATE_METRIC = "http_requests_per_second"


def request_rate_rule() -> dict[str, Any]:
    """`http_requests_total{namespace,pod}` -> per-pod `http_requests_per_second` (2m rate)."""
    return {
        "seriesQuery": f'{REQUEST_COUNTER}{{namespace!="",pod!=""}}',
        "resources": {
            "overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
        },
        "name": {"matches": "^(.*)_total$", "as": "${1}_per_second"},
        "metricsQuery": "sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)",
    }


@dataclass(frozen=True)
class PrometheusAdapter(ClusterAddon):
    settings: PrometheusAdapterSettings

    name = "adapter"
    chart = HelmChart(
        chart="prometheus-adapter",
        version="5.3.0",
        repository="https://prometheus-community.github.io/helm-charts",
    )
    namespace = AUTOSCALING_NAMESPACE

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def values(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        url = self.settings.prometheus_url or ""
        replicas = self.settings.replicas
        return {
            # The chart appends `:port` to the URL; the port is part of the setting instead.
            "prometheus": {"url": url, "port": None},
            "rules": {"default": False, "custom": [request_rate_rule()]},
            "replicas": replicas,
            "podDisruptionBudget": {**disruption_budget(replicas), "minAvailable": None},
            "resources": self.settings.resources.as_values(),
            "nodeSelector": CONTROLLER_NODES,
            "priorityClassName": PLATFORM_PRIORITY_CLASS,
        }
