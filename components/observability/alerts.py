"""The seed's alerts as Prometheus rules: error rate, latency, resource exhaustion, security.

Thresholds are the seed's (5xx above 5% of requests, p95 above 500 ms, CPU above 80% and memory
above 90%: of limits for containers, of the machine for nodes). Each rule is unit-tested with
`promtool test rules` on series built from what each scrape really yields
(tests/observability/scrapes.py): it fires just above its threshold and stays silent just below.
Critical alerts page; warnings go to chat (components/addons/monitoring.py). Every selector here
matches a series that the stack's scrape configuration keeps (tested against the render).

A service's 5xx are seen twice: by the service itself (its request histogram) and by its
callers' proxies (Istio's `istio_requests_total`, reported by the caller's sidecar or the
gateway). The second still counts when the service is down: a crash-looping pod exports
nothing, but every call to it comes back 503 to the caller's proxy. When the service answers
(its own proxy counts the requests) but exports no request histogram, its 5xx and latency alerts
are blind: `ServiceMetricsMissing` says so instead of staying silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from components.addons.mesh import GATEWAY_NAMESPACE
from components.shared.observability_contract import (
    AUTHENTICATION_FAILURES,
    CALLERS_SEE_ERRORS,
    HTTP_DURATION,
    NODE_MEMORY_HIGH,
    SERVICE_ERRORS,
    SUSPICIOUS_ACTIVITY,
)

Severity = Literal["critical", "warning"]
Group = Literal["services", "mesh", "edge", "resources", "tracing"]

ERROR_RATIO = 0.05
LATENCY_P95_SECONDS = 0.5
POD_CPU_OF_LIMIT = 0.8
POD_MEMORY_OF_LIMIT = 0.9
NODE_CPU_USED = 0.8
NODE_MEMORY_USED = 0.9
# Jaeger's collector: the share of spans it refuses (memory limiter), and the share of documents
# its bulk indexer fails to write to the search domain.
TRACE_LOSS_RATIO = 0.01
# A spike: at least this many per second over 5 minutes, and three times the hour before.
SPIKE_PER_SECOND = 1
SPIKE_FACTOR = 3

REQUESTS = f"{HTTP_DURATION.name}_count"
BY_SERVICE = "namespace, service"
BY_CONTAINER = "namespace, pod, container"
# The application's containers (cAdvisor also reports each pod's sandbox, "POD", and the pod
# as a whole, container "").
APP_CONTAINERS = 'container!="", container!="POD"'
POD_SUMMARY = "{{ $labels.namespace }}/{{ $labels.pod }} {{ $labels.container }} uses over"

# node-exporter's series, as the chart's own node rules select them (job "node-exporter", which
# the node-exporter release's ServiceMonitor is configured to give; `node` is relabelled from the
# pod's node name there, see components/addons/monitoring.py).
NODE_EXPORTER = 'job="node-exporter"'
# A node's CPU in use: all but idle, I/O wait and stolen time, averaged over its CPUs (what the
# node-exporter mixin calls utilisation).
NODE_CPU_IN_USE = (
    "1 - avg by (node) (sum without (mode) (rate(node_cpu_seconds_total"
    f'{{{NODE_EXPORTER}, mode=~"idle|iowait|steal"}}[5m])))'
)
# A node's memory in use: what the kernel could not hand out without swapping or evicting.
NODE_MEMORY_IN_USE = (
    f"1 - sum by (node) (node_memory_MemAvailable_bytes{{{NODE_EXPORTER}}}) "
    f"/ sum by (node) (node_memory_MemTotal_bytes{{{NODE_EXPORTER}}})"
)

# Istio's standard request counter. "source": the caller's proxy (a sidecar or the gateway)
# reports it, so calls to a dead service count; "destination": the service's own proxy does,
# so the service's pod is up.
MESH_REQUESTS = "istio_requests_total"
# Jaeger v2's OpenSearch bulk indexer: one attempt per document, then an insert or an error
# (jaeger v2.20.0, internal/storage/elasticsearch/esclient/bulk.go).
BULK_INDEX_ERRORS = "jaeger_storage_bulk_index_errors_total"
BULK_INDEX_ATTEMPTS = "jaeger_storage_bulk_index_attempts_total"
BULK_INDEX_INSERTS = "jaeger_storage_bulk_index_inserts_total"
# The ingress gateway's failed fetches of the users' token keys, as Prometheus stores Envoy's
# `http.<listener prefix>;.jwt_authn.jwks_fetch_failed` counter: "envoy_" and the name with
# Istio's `http_conn_manager_prefix` tag taken out (istio 1.30.3 envoy_bootstrap.json
# stats_tags; Envoy admin prometheus_stats.cc `metricName`; counters get no suffix). Each
# failed fetch is a 401 for a request with a valid token (jwt_authn authenticator.cc
# `onJwksError`: JwksFetchFail).
TOKEN_KEY_FETCH_FAILURES = "envoy_http_jwt_authn_jwks_fetch_failed"
GATEWAY_TOKEN_KEY_FETCH_FAILURES = f'{TOKEN_KEY_FETCH_FAILURES}{{namespace="{GATEWAY_NAMESPACE}"}}'


@dataclass(frozen=True)
class Alert:
    group: Group
    name: str
    expr: str
    for_: str
    severity: Severity
    summary: str
    # docs/observability.md's alert table: the expression in words and its threshold.
    in_words: str
    threshold: str

    def rule(self) -> dict[str, Any]:
        rule: dict[str, Any] = {
            "alert": self.name,
            "expr": self.expr,
            "labels": {"severity": self.severity},
            "annotations": {"summary": self.summary},
        }
        if self.for_ != "0m":
            rule["for"] = self.for_
        return rule


def _rate(selector: str, window: str = "5m", by: str = BY_SERVICE, offset: str = "") -> str:
    shifted = f" offset {offset}" if offset else ""
    return f"sum by ({by}) (rate({selector}[{window}]{shifted}))"


def _spike(selector: str) -> str:
    """Above SPIKE_PER_SECOND and SPIKE_FACTOR times the hour before (zero where there was
    no series an hour ago, so that a first-ever burst counts)."""
    now = _rate(selector)
    before = f"({_rate(selector, '1h', offset='5m')} or {now} * 0)"
    return f"{now} > {SPIKE_PER_SECOND} and {now} > {SPIKE_FACTOR} * {before}"


def _lost_share(lost: str, done: str, by: str) -> str:
    """The share of spans lost: lost / (lost + done), where `done` may have no series yet
    (a collector that has never stored a span) and counts as zero."""
    lost_rate = _rate(lost, by=by)
    return f"{lost_rate} / ({lost_rate} + ({_rate(done, by=by)} or {lost_rate} * 0))"


def _sum(selector: str, by: str) -> str:
    return f"sum by ({by}) ({selector})"


def _ratio(numerator: str, denominator: str, on: str) -> str:
    return f"{numerator} / on ({on}) {denominator}"


def _mesh_requests(
    reporter: str, app_namespace: str, codes: str = "", mesh_only: bool = False
) -> str:
    """Requests to each service of the application as one side's proxies count them, per
    second, labelled like the application's own series (`namespace`, `service`: the
    destination's, not the reporting pod's). `mesh_only`: only those that came over the
    mesh's mTLS, leaving out Prometheus's plain-text scrapes of the metrics port (PERMISSIVE,
    components/security/mesh_policies.py), which the service's own proxy counts too."""
    code = f', response_code=~"{codes}"' if codes else ""
    mtls = ', connection_security_policy="mutual_tls"' if mesh_only else ""
    selector = (
        f'{MESH_REQUESTS}{{reporter="{reporter}", '
        f'destination_service_namespace="{app_namespace}"{code}{mtls}}}'
    )
    moved = (
        f'label_replace(label_replace(rate({selector}[5m]), "namespace", "$1", '
        '"destination_service_namespace", "(.+)"), "service", "$1", '
        '"destination_service_name", "(.+)")'
    )
    return f"sum by ({BY_SERVICE}) ({moved})"


def application_alerts(app_namespace: str) -> tuple[Alert, ...]:
    """Every alert; the mesh's read the application's namespace (the proxies' view of it)."""
    return (
        Alert(
            "services",
            SERVICE_ERRORS,
            f"{_rate(REQUESTS + '{http_response_status_code=~' + chr(34) + '5..' + chr(34) + '}')}"
            f" / {_rate(REQUESTS)} > {ERROR_RATIO}",
            "5m",
            "critical",
            "{{ $labels.service }} answers more than 5% of requests with a 5xx",
            "share of a service's requests answered 5xx, as the service counts them, over "
            "5 minutes",
            "> 5%",
        ),
        Alert(
            "mesh",
            CALLERS_SEE_ERRORS,
            f"{_mesh_requests('source', app_namespace, '5..')} "
            f"/ {_mesh_requests('source', app_namespace)} > {ERROR_RATIO}",
            "5m",
            "critical",
            "Callers get a 5xx from {{ $labels.service }} for more than 5% of their requests",
            "share of the calls to a service that come back 5xx to its callers' proxies (the "
            "gateway's included), over 5 minutes: a service that is down counts too",
            "> 5%",
        ),
        Alert(
            "mesh",
            "ServiceMetricsMissing",
            f"{_mesh_requests('destination', app_namespace, mesh_only=True)} > 0 "
            f"unless on ({BY_SERVICE}) "
            f"{_rate(REQUESTS)}",
            "15m",
            "warning",
            "{{ $labels.service }} answers requests but exports no request metrics: its "
            "error-rate and latency alerts cannot see it",
            "a service's proxy counts requests it answered over the mesh, while the service's "
            "own request histogram has no series",
            "any",
        ),
        Alert(
            "services",
            "ServiceHighLatency",
            f"histogram_quantile(0.95, sum by ({BY_SERVICE}, le) "
            f"(rate({HTTP_DURATION.name}_bucket[5m]))) > {LATENCY_P95_SECONDS}",
            "10m",
            "warning",
            "{{ $labels.service }} p95 latency is above 500 ms",
            "95th percentile of a service's request duration, over 5 minutes",
            "> 500 ms",
        ),
        Alert(
            "resources",
            "PodCpuNearLimit",
            _ratio(
                _rate(f"container_cpu_usage_seconds_total{{{APP_CONTAINERS}}}", by=BY_CONTAINER),
                _sum('kube_pod_container_resource_limits{resource="cpu"}', BY_CONTAINER),
                BY_CONTAINER,
            )
            + f" > {POD_CPU_OF_LIMIT}",
            "15m",
            "warning",
            f"{POD_SUMMARY} 80% of its CPU limit",
            "a container's CPU use over its CPU limit (throttling follows)",
            "> 80%",
        ),
        Alert(
            "resources",
            "PodMemoryNearLimit",
            _ratio(
                _sum(f"container_memory_working_set_bytes{{{APP_CONTAINERS}}}", BY_CONTAINER),
                _sum('kube_pod_container_resource_limits{resource="memory"}', BY_CONTAINER),
                BY_CONTAINER,
            )
            + f" > {POD_MEMORY_OF_LIMIT}",
            "10m",
            "warning",
            f"{POD_SUMMARY} 90% of its memory limit",
            "a container's working set over its memory limit (the OOM killer follows)",
            "> 90%",
        ),
        Alert(
            "resources",
            "NodeCpuHigh",
            f"{NODE_CPU_IN_USE} > {NODE_CPU_USED}",
            "15m",
            "warning",
            "Node {{ $labels.node }} uses over 80% of its CPU",
            "a node's CPU time not idle, waiting on I/O or stolen, averaged over its CPUs "
            "(node-exporter)",
            "> 80%",
        ),
        Alert(
            "resources",
            NODE_MEMORY_HIGH,
            f"{NODE_MEMORY_IN_USE} > {NODE_MEMORY_USED}",
            "10m",
            "warning",
            "Node {{ $labels.node }} uses over 90% of its memory",
            "a node's memory not available to new work, of its total (node-exporter; "
            "evictions follow)",
            "> 90%",
        ),
        Alert(
            "services",
            "AuthenticationFailureSpike",
            _spike(AUTHENTICATION_FAILURES.name),
            "5m",
            "critical",
            "{{ $labels.service }}: authentication failures spike (credential stuffing?)",
            "a service's failed sign-ins per second, against the hour before",
            "> 1/s and > 3x the hour before",
        ),
        Alert(
            "services",
            "AuthorizationDenialSpike",
            _spike(REQUESTS + '{http_response_status_code=~"401|403"}'),
            "5m",
            "warning",
            "{{ $labels.service }}: 401/403 responses spike",
            "a service's 401 and 403 answers per second, against the hour before",
            "> 1/s and > 3x the hour before",
        ),
        Alert(
            "services",
            "SuspiciousActivity",
            f"sum by ({BY_SERVICE}, kind) (increase({SUSPICIOUS_ACTIVITY.name}[10m])) > 0",
            "0m",
            "warning",
            "{{ $labels.service }} flagged suspicious activity ({{ $labels.kind }})",
            "requests a service flagged as suspicious, over 10 minutes",
            "any",
        ),
        Alert(
            "edge",
            "TokenKeysUnavailable",
            f"{_rate(GATEWAY_TOKEN_KEY_FETCH_FAILURES, by='namespace, pod')} > 0",
            "5m",
            "critical",
            "Gateway {{ $labels.pod }} cannot fetch the users' token keys: requests with a "
            "token get 401",
            "a gateway pod's failed fetches of the users' token keys (edge.userTokens) over 5 "
            "minutes, each one a 401 for a signed-in request",
            "any",
        ),
        Alert(
            "tracing",
            "TraceStoreWritesFailing",
            f"{_rate(BULK_INDEX_ERRORS, by='namespace, name')} "
            f"/ {_rate(BULK_INDEX_ATTEMPTS, by='namespace, name')} > {TRACE_LOSS_RATIO}",
            "15m",
            "warning",
            "Jaeger's writes to the search domain fail for over 1% of its documents",
            "share of the span and service documents that Jaeger's bulk indexer fails to "
            "write to the search domain, over 5 minutes",
            "> 1%",
        ),
        Alert(
            "tracing",
            "TracesRefused",
            _lost_share(
                "otelcol_receiver_refused_spans_total",
                "otelcol_receiver_accepted_spans_total",
                "namespace, receiver",
            )
            + f" > {TRACE_LOSS_RATIO}",
            "15m",
            "warning",
            "Jaeger refuses over 1% of the spans sent to it (memory limit)",
            "share of spans sent to Jaeger's collector that it refuses, over 5 minutes",
            "> 1%",
        ),
    )


# The alerts as docs/observability.md lists them (the mesh's with the production namespace; only the
# namespace differs per stack).
ALERTS = application_alerts("financial-planning")


def rule_groups(
    app_namespace: str, *, mesh: bool, tracing: bool, edge: bool = False
) -> list[dict[str, Any]]:
    """The PrometheusRule spec's groups (and a promtool rule file's): the mesh's alerts only
    where the proxies are scraped, the edge's only where the gateway is, the traces' only
    where Jaeger runs (elsewhere their series cannot exist)."""
    groups: list[Group] = ["services", "resources"]
    if mesh:
        groups.insert(1, "mesh")
        if edge:
            groups.insert(2, "edge")
    if tracing:
        groups.append("tracing")
    alerts = application_alerts(app_namespace)
    return [
        {
            "name": f"financial-planning.{group}",
            "rules": [a.rule() for a in alerts if a.group == group],
        }
        for group in groups
    ]
