"""The observability contract: what every service exposes on `/metrics` (port 9464), what the
platform reads, and the alert names other parts of the platform refer to.

Shared because four layers agree on it: the workloads expose the port, the observability layer
scrapes it and writes the rules, the monitoring and adapter add-ons read the names, and the
security layer opens the port to Prometheus.

The seed's key metrics (API rate, latency and errors; registrations, transactions and goal
completions; authentication failures and suspicious activity) as Prometheus names and labels.
The services expose these; the alert rules and dashboards use exactly these names or those of
a known exporter (`EXPORTER_METRICS`), which the tests check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MetricType = Literal["counter", "histogram", "gauge"]


@dataclass(frozen=True)
class Metric:
    name: str
    type: MetricType
    labels: tuple[str, ...]
    help: str

    def series(self) -> frozenset[str]:
        """The series names Prometheus stores for it (a histogram's three)."""
        if self.type == "histogram":
            return frozenset(f"{self.name}_{part}" for part in ("bucket", "sum", "count"))
        return frozenset({self.name})


# OpenTelemetry's HTTP server conventions, as Prometheus names them. Route is the template
# (/goals/{id}), never the raw path, so that series stay bounded.
HTTP_DURATION = Metric(
    "http_server_request_duration_seconds",
    "histogram",
    ("http_request_method", "http_route", "http_response_status_code"),
    "Duration of HTTP requests the service answered, by route and status",
)
USER_REGISTRATIONS = Metric(
    "financial_planning_user_registrations_total",
    "counter",
    ("channel",),
    "Completed user registrations (user-service)",
)
TRANSACTIONS = Metric(
    "financial_planning_transactions_total",
    "counter",
    ("type", "outcome"),
    "Bank transactions processed (banking-service), by type and outcome",
)
GOAL_COMPLETIONS = Metric(
    "financial_planning_goal_completions_total",
    "counter",
    ("goal_type",),
    "Financial goals reaching their target (financial-planning-api)",
)
AUTHENTICATION_FAILURES = Metric(
    "financial_planning_authentication_failures_total",
    "counter",
    ("reason",),
    "Failed sign-ins and rejected tokens (user-service, graphql-gateway)",
)
SUSPICIOUS_ACTIVITY = Metric(
    "financial_planning_suspicious_activity_total",
    "counter",
    ("kind",),
    "Requests flagged by the services' fraud and abuse checks",
)

# Where every service serves `/metrics`: a port of its own (the OpenTelemetry Prometheus
# exporter's default), so that the mesh can keep mTLS STRICT on the service port while
# Prometheus, outside the mesh, scrapes in plain text.
METRICS_PORT = 9464
METRICS_PORT_NAME = "metrics"
# The Service's name for that port, which each ServiceMonitor names (Istio reads the protocol
# from the "http-" prefix).
METRICS_SERVICE_PORT = f"http-{METRICS_PORT_NAME}"

# Alert names the monitoring add-on's Alertmanager configuration and chart values refer to
# (its inhibit rule, the chart rule ours replaces); components/observability/alerts.py defines
# the alerts themselves.
SERVICE_ERRORS = "ServiceHighErrorRate"
CALLERS_SEE_ERRORS = "ServiceErrorsSeenByCallers"
NODE_MEMORY_HIGH = "NodeMemoryHigh"

CONTRACT: tuple[Metric, ...] = (
    HTTP_DURATION,
    USER_REGISTRATIONS,
    TRANSACTIONS,
    GOAL_COMPLETIONS,
    AUTHENTICATION_FAILURES,
    SUSPICIOUS_ACTIVITY,
)
# Labels every scraped series carries from its ServiceMonitor (the Prometheus operator's
# target labels), besides the metric's own.
TARGET_LABELS = ("namespace", "service", "pod", "job", "instance", "container", "endpoint")

# Series of the exporters that the rules and dashboards use: cAdvisor (through the kubelet),
# kube-state-metrics and node-exporter; Istio's proxies; and Jaeger's collector's own telemetry
# (the OpenTelemetry collector's names, as Jaeger's monitoring mixin reads them, and its storage
# writer's). Which labels each carries once scraped: tests/observability/scrapes.py.
EXPORTER_METRICS = frozenset(
    {
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
        "kube_pod_container_resource_limits",
        "kube_horizontalpodautoscaler_status_current_replicas",
        "kube_horizontalpodautoscaler_spec_max_replicas",
        "kube_deployment_status_replicas_available",
        "kube_node_info",
        "node_cpu_seconds_total",
        "node_memory_MemAvailable_bytes",
        "node_memory_MemTotal_bytes",
        "istio_requests_total",
        "otelcol_exporter_sent_spans_total",
        "otelcol_receiver_refused_spans_total",
        "otelcol_receiver_accepted_spans_total",
        "jaeger_storage_bulk_index_attempts_total",
        "jaeger_storage_bulk_index_inserts_total",
        "jaeger_storage_bulk_index_errors_total",
        # The ingress gateway's failed fetches of the users' token keys (Envoy's jwt_authn
        # statistic, kept by the gateway's proxyStatsMatcher, components/addons/mesh.py).
        "envoy_http_jwt_authn_jwks_fetch_failed",
    }
)


def contract_series() -> frozenset[str]:
    return frozenset().union(*(m.series() for m in CONTRACT))
