"""prometheus-adapter: serves `http_requests_per_second` per pod on the custom metrics API, for
HPAs that scale on request rate, from the request count every service exposes (the metrics
contract's HTTP duration histogram).

Only with a Prometheus to read: without one the custom metrics API fails, and an HPA that uses
it would no longer scale down. By default it reads the monitoring add-on's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.addons.base import AUTOSCALING_NAMESPACE, ClusterAddon, disruption_budget
from components.shared.conventions import CONTROLLER_NODES, PLATFORM_PRIORITY_CLASS
from components.shared.helm import HelmChart
from components.shared.observability_contract import HTTP_DURATION
from stacks.addon_settings import PrometheusAdapterSettings

# The request count every service exposes (the metrics contract), and what the HPAs read.
REQUEST_COUNTER = f"{HTTP_DURATION.name}_count"
REQUEST_RATE_METRIC = "http_requests_per_second"


def request_rate_rule() -> dict[str, Any]:
    """The request count per pod -> `http_requests_per_second` (2m rate)."""
    return {
        "seriesQuery": f'{REQUEST_COUNTER}{{namespace!="",pod!=""}}',
        "resources": {
            "overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
        },
        "name": {"matches": f"^{REQUEST_COUNTER}$", "as": REQUEST_RATE_METRIC},
        "metricsQuery": "sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)",
    }


@dataclass(frozen=True)
class PrometheusAdapter(ClusterAddon):
    settings: PrometheusAdapterSettings
    # The monitoring add-on's Prometheus, used unless the settings name another.
    default_prometheus_url: str | None = None

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
        url = self.settings.prometheus_url or self.default_prometheus_url or ""
        replicas = self.settings.replicas
        return {
            # The chart appends `:port` to the URL; the port is part of the setting instead, and
            # the chart's default port is nulled (through the release's value file: the SDK
            # would drop a null in `values`, components/shared/helm.py).
            "prometheus": {"url": url, "port": None},
            "rules": {"default": False, "custom": [request_rate_rule()]},
            "replicas": replicas,
            # The chart's default has no minAvailable: the budget is the bound given here.
            "podDisruptionBudget": disruption_budget(replicas),
            "resources": self.settings.resources.as_values(),
            "nodeSelector": CONTROLLER_NODES,
            "priorityClassName": PLATFORM_PRIORITY_CLASS,
        }
