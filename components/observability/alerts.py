"""The seed's alerts as Prometheus rules: error rate, latency, resource exhaustion, security.

Thresholds are the seed's (5xx above 5% of requests, p95 above 500 ms, CPU above 80% and memory
above 90%, of limits for pods and of allocatable for nodes). Each rule is unit-tested with
`promtool test rules` (tests/observability/): it fires just above its threshold and stays silent
just below. Critical alerts page; warnings go to chat (components/observability/alertmanager.py).
Every metric here is in the metrics contract or comes from a known exporter (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from components.observability.contract import (
    AUTHENTICATION_FAILURES,
    HTTP_DURATION,
    SUSPICIOUS_ACTIVITY,
)

Severity = Literal["critical", "warning"]

ERROR_RATIO = 0.05
LATENCY_P95_SECONDS = 0.5
POD_CPU_OF_LIMIT = 0.8
POD_MEMORY_OF_LIMIT = 0.9
NODE_CPU_OF_ALLOCATABLE = 0.8
NODE_MEMORY_OF_ALLOCATABLE = 0.9
# Jaeger's collector: the share of spans it refuses (memory limiter) or fails to store.
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


@dataclass(frozen=True)
class Alert:
    group: Literal["services", "resources", "tracing"]
    name: str
    expr: str
    for_: str
    severity: Severity
    summary: str
    # The README's alert table: the expression in words and its threshold.
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


ALERTS: tuple[Alert, ...] = (
    Alert(
        "services",
        "ServiceHighErrorRate",
        f"{_rate(REQUESTS + '{http_response_status_code=~' + chr(34) + '5..' + chr(34) + '}')}"
        f" / {_rate(REQUESTS)} > {ERROR_RATIO}",
        "5m",
        "critical",
        "{{ $labels.service }} answers more than 5% of requests with a 5xx",
        "share of a service's requests answered 5xx, over 5 minutes",
        "> 5%",
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
        _ratio(
            _rate('container_cpu_usage_seconds_total{id="/"}', by="node"),
            'sum by (node) (kube_node_status_allocatable{resource="cpu"})',
            "node",
        )
        + f" > {NODE_CPU_OF_ALLOCATABLE}",
        "15m",
        "warning",
        "Node {{ $labels.node }} uses over 80% of its allocatable CPU",
        "a node's CPU use over its allocatable CPU",
        "> 80%",
    ),
    Alert(
        "resources",
        "NodeMemoryHigh",
        _ratio(
            'sum by (node) (container_memory_working_set_bytes{id="/"})',
            'sum by (node) (kube_node_status_allocatable{resource="memory"})',
            "node",
        )
        + f" > {NODE_MEMORY_OF_ALLOCATABLE}",
        "10m",
        "warning",
        "Node {{ $labels.node }} uses over 90% of its allocatable memory",
        "a node's working set over its allocatable memory (evictions follow)",
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
        "tracing",
        "TraceStoreWritesFailing",
        _lost_share(
            "otelcol_exporter_send_failed_spans_total",
            "otelcol_exporter_sent_spans_total",
            "namespace, exporter",
        )
        + f" > {TRACE_LOSS_RATIO}",
        "15m",
        "warning",
        "Jaeger fails to store over 1% of its spans in the search domain",
        "share of spans Jaeger's collector fails to store, over 5 minutes",
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


def rule_groups() -> list[dict[str, Any]]:
    """The PrometheusRule spec's groups (and a promtool rule file's)."""
    return [
        {
            "name": f"financial-planning.{group}",
            "rules": [a.rule() for a in ALERTS if a.group == group],
        }
        for group in ("services", "resources", "tracing")
    ]
