"""Grafana dashboards as code, built with Grafana's own SDK (grafana-foundation-sdk).

Four dashboards after the seed's key metrics: API performance, business metrics,
infrastructure (nodes, pods, autoscaling, traces) and security. Every query uses the metrics
contract or an exporter's series (tested, with the queries parsed), and each of its selectors
matches a series the stack's scrapes keep (tests/observability/test_selectors.py). Grafana's
sidecar loads them from ConfigMaps labelled `grafana_dashboard: "1"`
(components/observability/monitors.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.timeseries import Panel as TimeSeries
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from components.observability.alerts import (
    APP_CONTAINERS,
    BULK_INDEX_ERRORS,
    BULK_INDEX_INSERTS,
    ERROR_RATIO,
    LATENCY_P95_SECONDS,
    NODE_CPU_IN_USE,
    NODE_MEMORY_IN_USE,
    REQUESTS,
)
from components.shared.observability_contract import (
    AUTHENTICATION_FAILURES,
    GOAL_COMPLETIONS,
    HTTP_DURATION,
    SUSPICIOUS_ACTIVITY,
    TRANSACTIONS,
    USER_REGISTRATIONS,
)

TAG = "financial-planning"
REFRESH = "30s"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


def _series(title: str, unit: str, *queries: Query, width: int = 12) -> TimeSeries:
    panel = TimeSeries().title(title).unit(unit).span(width).height(8)
    for ref, query in zip("ABCDEFGH", queries, strict=False):
        panel = panel.with_target(
            Dataquery().expr(query.expr).legend_format(query.legend).ref_id(ref)
        )
    return panel


def _stat(title: str, unit: str, query: Query) -> Stat:
    return (
        Stat()
        .title(title)
        .unit(unit)
        .span(6)
        .height(4)
        .with_target(Dataquery().expr(query.expr).legend_format(query.legend).ref_id("A"))
    )


def _per_service(selector: str, window: str = "5m") -> str:
    return f"sum by (service) (rate({selector}[{window}]))"


def api_performance() -> Dashboard:
    errors = REQUESTS + '{http_response_status_code=~"5.."}'
    return (
        Dashboard("Financial Planning: API performance")
        .uid("fp-api-performance")
        .tags([TAG])
        .refresh(REFRESH)
        .with_row(Row("Traffic"))
        .with_panel(
            _series("Requests per second", "reqps", Query(_per_service(REQUESTS), "{{service}}"))
        )
        .with_panel(
            _series(
                f"5xx share (alert above {ERROR_RATIO:.0%})",
                "percentunit",
                Query(f"{_per_service(errors)} / {_per_service(REQUESTS)}", "{{service}}"),
            )
        )
        .with_row(Row("Latency"))
        .with_panel(
            _series(
                f"p95 latency (alert above {int(LATENCY_P95_SECONDS * 1000)} ms)",
                "s",
                Query(
                    "histogram_quantile(0.95, sum by (service, le) "
                    f"(rate({HTTP_DURATION.name}_bucket[5m])))",
                    "{{service}}",
                ),
                width=24,
            )
        )
    )


def business() -> Dashboard:
    def per_hour(name: str, by: str) -> str:
        return f"sum by ({by}) (increase({name}[1h]))"

    return (
        Dashboard("Financial Planning: business")
        .uid("fp-business")
        .tags([TAG])
        .refresh("1m")
        .with_panel(
            _stat(
                "Registrations, last 24 h",
                "short",
                Query(f"sum(increase({USER_REGISTRATIONS.name}[24h]))", "registrations"),
            )
        )
        .with_panel(
            _stat(
                "Goal completions, last 24 h",
                "short",
                Query(f"sum(increase({GOAL_COMPLETIONS.name}[24h]))", "goals"),
            )
        )
        .with_panel(
            _series(
                "Registrations per hour",
                "short",
                Query(per_hour(USER_REGISTRATIONS.name, "channel"), "{{channel}}"),
            )
        )
        .with_panel(
            _series(
                "Transactions per hour",
                "short",
                Query(per_hour(TRANSACTIONS.name, "type, outcome"), "{{type}} {{outcome}}"),
            )
        )
        .with_panel(
            _series(
                "Goal completions per hour",
                "short",
                Query(per_hour(GOAL_COMPLETIONS.name, "goal_type"), "{{goal_type}}"),
            )
        )
    )


def infrastructure() -> Dashboard:
    pod_memory = (
        f"sum by (namespace, pod) (container_memory_working_set_bytes{{{APP_CONTAINERS}}}) "
        "/ on (namespace, pod) sum by (namespace, pod) "
        '(kube_pod_container_resource_limits{resource="memory"})'
    )
    return (
        Dashboard("Financial Planning: infrastructure")
        .uid("fp-infrastructure")
        .tags([TAG])
        .refresh(REFRESH)
        .with_row(Row("Nodes"))
        .with_panel(_stat("Nodes", "short", Query("count(kube_node_info)", "nodes")))
        .with_panel(_series("Node CPU in use", "percentunit", Query(NODE_CPU_IN_USE, "{{node}}")))
        .with_panel(
            _series("Node memory in use", "percentunit", Query(NODE_MEMORY_IN_USE, "{{node}}"))
        )
        .with_row(Row("Pods and autoscaling"))
        .with_panel(_series("Pod memory of limit", "percentunit", Query(pod_memory, "{{pod}}")))
        .with_panel(
            _series(
                "HPA replicas: current and maximum",
                "short",
                Query(
                    "sum by (horizontalpodautoscaler) "
                    "(kube_horizontalpodautoscaler_status_current_replicas)",
                    "{{horizontalpodautoscaler}}",
                ),
                Query(
                    "sum by (horizontalpodautoscaler) "
                    "(kube_horizontalpodautoscaler_spec_max_replicas)",
                    "{{horizontalpodautoscaler}} max",
                ),
            )
        )
        .with_panel(
            _series(
                "Available replicas",
                "short",
                Query(
                    "sum by (deployment) (kube_deployment_status_replicas_available)",
                    "{{deployment}}",
                ),
                width=24,
            )
        )
        # Jaeger's collector: what reaches it, what its pipeline hands to the storage writer,
        # and what the writer's bulk indexer really stores. The exporter's "sent" counts spans
        # queued on the indexer (its writes report success at once), not spans stored.
        .with_row(Row("Traces"))
        .with_panel(
            _series(
                "Spans per second",
                "short",
                Query("sum(rate(otelcol_receiver_accepted_spans_total[5m]))", "received"),
                Query("sum(rate(otelcol_receiver_refused_spans_total[5m]))", "refused"),
                Query("sum(rate(otelcol_exporter_sent_spans_total[5m]))", "queued for the store"),
            )
        )
        .with_panel(
            _series(
                "Documents written to the search domain per second",
                "short",
                Query(f"sum(rate({BULK_INDEX_INSERTS}[5m]))", "stored"),
                Query(f"sum(rate({BULK_INDEX_ERRORS}[5m]))", "failed"),
            )
        )
    )


def security() -> Dashboard:
    denials = REQUESTS + '{http_response_status_code=~"401|403"}'
    return (
        Dashboard("Financial Planning: security")
        .uid("fp-security")
        .tags([TAG])
        .refresh(REFRESH)
        .with_panel(
            _series(
                "Authentication failures per second",
                "short",
                Query(
                    f"sum by (service, reason) (rate({AUTHENTICATION_FAILURES.name}[5m]))",
                    "{{service}} {{reason}}",
                ),
            )
        )
        .with_panel(
            _series("401 and 403 per second", "reqps", Query(_per_service(denials), "{{service}}"))
        )
        .with_panel(
            _series(
                "Suspicious activity, last hour",
                "short",
                Query(
                    f"sum by (service, kind) (increase({SUSPICIOUS_ACTIVITY.name}[1h]))",
                    "{{service}} {{kind}}",
                ),
                width=24,
            )
        )
    )


DASHBOARDS = (api_performance, business, infrastructure, security)


GRID_WIDTH = 24


def _layout(panels: list[dict[str, Any]]) -> None:
    """Place panels left to right, wrapping at the grid's width; a row starts a new line.
    (The SDK's own placement lets a wide panel run past the right edge.)"""
    x = y = line_height = 0
    for panel in panels:
        grid = panel["gridPos"]
        if panel["type"] == "row" or x + grid["w"] > GRID_WIDTH:
            x, y, line_height = 0, y + line_height, 0
        grid["x"], grid["y"] = x, y
        x += grid["w"]
        line_height = max(line_height, grid["h"])
        if panel["type"] == "row":
            x, y, line_height = 0, y + grid["h"], 0


def dashboard_models() -> dict[str, dict[str, Any]]:
    """uid -> the dashboard's JSON model, as Grafana imports it."""
    models = {}
    for build in DASHBOARDS:
        model = json.loads(json.dumps(build().build(), cls=JSONEncoder))
        _layout(model["panels"])
        models[model["uid"]] = model
    return models


def panel_queries(model: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard's panels."""
    return [
        target["expr"]
        for panel in model.get("panels", [])
        for target in panel.get("targets") or []
        if "expr" in target
    ]
