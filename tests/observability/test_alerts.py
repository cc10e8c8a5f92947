"""The seed's alerts: valid rules (promtool check), each firing just above its threshold and
silent just below (promtool test), on series that carry exactly the labels the real scrape gives
them (tests/observability/scrapes.py: the render's monitors, the pinned charts' relabelings);
and a negative control: a series the chart drops makes an alert's test fail."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from components.observability.alerts import (
    ALERTS,
    ERROR_RATIO,
    TRACE_LOSS_RATIO,
    application_alerts,
    rule_groups,
)
from components.shared.observability_contract import EXPORTER_METRICS, contract_series
from offline.engine import PROJECT_DIR, StackRun
from tests.lookup import app_namespace, helm_release
from tests.observability.scrapes import NODE, Scrape, scrape, scrapes

PROMTOOL = Path(
    os.environ.get("PROMTOOL", PROJECT_DIR / ".tools" / "prometheus" / "usr" / "bin" / "promtool")
)
OTHER_NODE, OTHER_NODE_IP = "ip-10-0-2-20.ec2.internal", "10.0.2.20"


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL.exists(), f"{PROMTOOL} missing: run `make checkers`"
    return subprocess.run(
        [str(PROMTOOL), *args], cwd=cwd, capture_output=True, text=True, check=False
    )


@dataclass(frozen=True)
class Case:
    """One promtool test: input series (each a stored series of a scrape) and expectations."""

    series: list[tuple[str, str]]
    expect: list[dict[str, Any]]
    interval: str = "1m"
    note: str = ""

    def as_promtool(self) -> dict[str, Any]:
        return {
            "interval": self.interval,
            "input_series": [{"series": s, "values": v} for s, v in self.series],
            "alert_rule_test": self.expect,
        }


def fires(alert: str, at: str, *labels: dict[str, str]) -> dict[str, Any]:
    """promtool's expectation: `alert` at `at` with these label sets (none: silent), each with
    the summary the rule renders for it."""
    summaries = {a.name: a.summary for a in ALERTS}
    expected = []
    for found in labels:
        entry: dict[str, Any] = {"exp_labels": found}
        if alert in summaries:
            summary = summaries[alert]
            for key, value in found.items():
                summary = summary.replace(f"{{{{ $labels.{key} }}}}", value)
            entry["exp_annotations"] = {"summary": summary}
        expected.append(entry)
    return {"eval_time": at, "alertname": alert, "exp_alerts": expected}


@dataclass
class Suite:
    rows: list[Scrape]
    namespace: str
    cases: list[Case] = field(default_factory=list)

    def row(self, name: str) -> Scrape:
        return scrape(self.rows, name)


def cases(run: StackRun, rows: list[Scrape] | None = None) -> list[Case]:
    """Every alert's cases, on what the stack's scrapes yield."""
    suite = Suite(rows if rows is not None else scrapes(run), app_namespace(run))
    ns = suite.namespace

    def app(service: str) -> Scrape:
        return suite.row(f"application/{service}")

    def requests(service: str, code: str) -> str:
        return app(service).series(
            "http_server_request_duration_seconds_count", http_response_status_code=code
        )

    # 5xx as the service counts it: 5.5% fires (after 5m), 4.5% does not. Per minute: of 100.
    suite.cases.append(
        Case(
            [
                (requests("banking-service", "500"), "0+5.5x30"),
                (requests("banking-service", "200"), "0+94.5x30"),
                (requests("user-service", "503"), "0+4.5x30"),
                (requests("user-service", "200"), "0+95.5x30"),
            ],
            [
                fires(
                    "ServiceHighErrorRate",
                    "20m",
                    {"severity": "critical", "namespace": ns, "service": "banking-service"},
                ),
                # Pending, not firing, before its 5 minutes are up.
                fires("ServiceHighErrorRate", "4m"),
            ],
        )
    )

    # p95: 94% within 500 ms puts it at about 583 ms (fires); 96% at about 497 ms (silent).
    def buckets(service: str, within: int) -> list[tuple[str, str]]:
        return [
            (
                app(service).series("http_server_request_duration_seconds_bucket", le=le),
                f"0+{count}x30",
            )
            for le, count in (("0.25", 0), ("0.5", within), ("1", 100), ("+Inf", 100))
        ]

    suite.cases.append(
        Case(
            buckets("financial-planning-api", 94) + buckets("graphql-gateway", 96),
            [
                fires(
                    "ServiceHighLatency",
                    "20m",
                    {"severity": "warning", "namespace": ns, "service": "financial-planning-api"},
                )
            ],
        )
    )

    # Containers against their limits: cAdvisor through the kubelet, limits from
    # kube-state-metrics, each for two pods.
    kubelet, state = suite.row("kubelet-cadvisor"), suite.row("kube-state-metrics")

    def pod_of(service: str) -> str:
        return app(service).target.pod

    def container_series(metric: str, service: str) -> str:
        return kubelet.series(metric, namespace=ns, pod=pod_of(service), container=service)

    def limit(service: str, resource: str) -> str:
        return state.series(
            "kube_pod_container_resource_limits",
            namespace=ns,
            pod=pod_of(service),
            container=service,
            resource=resource,
            unit="core" if resource == "cpu" else "byte",
        )

    # 85% of a 1-core limit fires (after 15m); 75% does not.
    suite.cases.append(
        Case(
            [
                (
                    container_series("container_cpu_usage_seconds_total", "simulation-service"),
                    "0+51x40",
                ),
                (limit("simulation-service", "cpu"), "1+0x40"),
                (container_series("container_cpu_usage_seconds_total", "user-service"), "0+45x40"),
                (limit("user-service", "cpu"), "1+0x40"),
            ],
            [
                fires(
                    "PodCpuNearLimit",
                    "25m",
                    {
                        "severity": "warning",
                        "namespace": ns,
                        "pod": pod_of("simulation-service"),
                        "container": "simulation-service",
                    },
                )
            ],
        )
    )
    # Working set at 95% of a 1 GiB limit fires; at 85% it does not.
    suite.cases.append(
        Case(
            [
                (
                    container_series("container_memory_working_set_bytes", "document-service"),
                    "1020054733+0x30",
                ),
                (limit("document-service", "memory"), "1073741824+0x30"),
                (
                    container_series("container_memory_working_set_bytes", "user-service"),
                    "912680550+0x30",
                ),
                (limit("user-service", "memory"), "1073741824+0x30"),
            ],
            [
                fires(
                    "PodMemoryNearLimit",
                    "15m",
                    {
                        "severity": "warning",
                        "namespace": ns,
                        "pod": pod_of("document-service"),
                        "container": "document-service",
                    },
                )
            ],
        )
    )

    suite.cases.append(node_case(suite.row("node-exporter")))

    # Authentication failures. user-service: 0.2/s for an hour, then 2/s: a spike (fires).
    # graphql-gateway: a steady 2/s for two hours: none. notification-service: 0.9/s out of
    # nothing: below 1/s (silent). banking-service: 1.2/s out of nothing, a first-ever burst
    # with no series an hour before (fires).
    def failures(service: str) -> str:
        return app(service).series("financial_planning_authentication_failures_total")

    suite.cases.append(
        Case(
            [
                (failures("user-service"), "0+12x60 720+120x20"),
                (failures("graphql-gateway"), "0+120x80"),
                (failures("notification-service"), "0+0x60 0+54x20"),
                (failures("banking-service"), "_x60 0+72x20"),
            ],
            [
                fires(
                    "AuthenticationFailureSpike",
                    "75m",
                    *(
                        {"severity": "critical", "namespace": ns, "service": service}
                        for service in ("banking-service", "user-service")
                    ),
                )
            ],
        )
    )
    # 401/403 answers: 1.2/s after an hour of 0.1/s fires; 0.9/s does not.
    suite.cases.append(
        Case(
            [
                (requests("graphql-gateway", "403"), "0+6x60 360+72x20"),
                (requests("financial-planning-api", "401"), "0+6x60 360+54x20"),
            ],
            [
                fires(
                    "AuthorizationDenialSpike",
                    "75m",
                    {"severity": "warning", "namespace": ns, "service": "graphql-gateway"},
                )
            ],
        )
    )
    # One flagged request fires at once; none, nothing.
    suite.cases.append(
        Case(
            [
                (
                    app("banking-service").series(
                        "financial_planning_suspicious_activity_total", kind="velocity"
                    ),
                    "0x20 1x10",
                ),
                (
                    app("user-service").series(
                        "financial_planning_suspicious_activity_total", kind="velocity"
                    ),
                    "0x30",
                ),
            ],
            [
                fires(
                    "SuspiciousActivity",
                    "22m",
                    {
                        "severity": "warning",
                        "namespace": ns,
                        "service": "banking-service",
                        "kind": "velocity",
                    },
                ),
                fires("SuspiciousActivity", "45m"),
            ],
        )
    )
    suite.cases += mesh_cases(suite)
    suite.cases += edge_cases(suite.row("ingress-gateway"))
    suite.cases += trace_cases(suite.row("jaeger"))
    return suite.cases


def node_case(exporter: Scrape) -> Case:
    """Two nodes of two CPUs: 85% in use fires (after 15m), 75% does not; 95% of memory in use
    fires, 85% does not. Per minute and CPU, idle + iowait + steal: 9 s (85% busy), 15 s."""
    busy = exporter
    calm = exporter.on(node=OTHER_NODE, pod_ip=OTHER_NODE_IP, pod="prometheus-node-exporter-9kq2m")
    series = []
    for row, idle in ((busy, 6), (calm, 12)):
        for cpu in ("0", "1"):
            for mode, per_minute in (
                ("idle", idle),
                ("iowait", 2),
                ("steal", 1),
                ("user", 60 - idle - 3),
            ):
                series.append(
                    (row.series("node_cpu_seconds_total", cpu=cpu, mode=mode), f"0+{per_minute}x40")
                )
    for row, available in ((busy, 400000000), (calm, 1200000000)):
        series.append((row.series("node_memory_MemAvailable_bytes"), f"{available}+0x40"))
        series.append((row.series("node_memory_MemTotal_bytes"), "8000000000+0x40"))
    return Case(
        series,
        [
            fires("NodeCpuHigh", "25m", {"severity": "warning", "node": NODE}),
            fires("NodeMemoryHigh", "25m", {"severity": "warning", "node": NODE}),
        ],
    )


def one_failing_service(namespace: str) -> dict[str, str]:
    """The labels both 5xx alerts carry for one failing service (mesh_cases)."""
    return {"severity": "critical", "namespace": namespace, "service": "banking-service"}


def mesh_cases(suite: Suite) -> list[Case]:
    ns = suite.namespace

    def proxy(row: str, reporter: str, service: str, code: str, policy: str = "mutual_tls") -> str:
        # connection_security_policy: "mutual_tls" over the mesh, "none" in plain text
        # (istio/proxy 1.30.3 istio_stats.cc).
        return suite.row(row).series(
            "istio_requests_total",
            reporter=reporter,
            destination_service_name=service,
            destination_service_namespace=ns,
            response_code=code,
            connection_security_policy=policy,
        )

    return [
        # banking-service is down: it exports nothing at all (no series of its own), but its
        # callers' proxies (graphql-gateway's sidecar, the ingress gateway) get 503s for 6% of
        # their calls: it pages. user-service: 4% (silent).
        Case(
            [
                (proxy("sidecar/graphql-gateway", "source", "banking-service", "503"), "0+4x30"),
                (proxy("sidecar/graphql-gateway", "source", "banking-service", "200"), "0+60x30"),
                (proxy("ingress-gateway", "source", "banking-service", "503"), "0+2x30"),
                (proxy("ingress-gateway", "source", "banking-service", "200"), "0+34x30"),
                (proxy("sidecar/graphql-gateway", "source", "user-service", "503"), "0+4x30"),
                (proxy("sidecar/graphql-gateway", "source", "user-service", "200"), "0+96x30"),
            ],
            [
                fires(
                    "ServiceErrorsSeenByCallers",
                    "20m",
                    {"severity": "critical", "namespace": ns, "service": "banking-service"},
                ),
                fires("ServiceHighErrorRate", "20m"),
            ],
        ),
        # banking-service is up and failing: it counts 6% 5xx itself and its callers see the
        # same. Both alerts fire, with the same namespace and service labels (which
        # Alertmanager's inhibition of the callers' one by the service's own compares:
        # test_one_failing_service_pages_once).
        Case(
            [
                (
                    suite.row("application/banking-service").series(
                        "http_server_request_duration_seconds_count",
                        http_response_status_code=code,
                    ),
                    f"0+{count}x30",
                )
                for code, count in (("503", 6), ("200", 94))
            ]
            + [
                (proxy("sidecar/graphql-gateway", "source", "banking-service", "503"), "0+6x30"),
                (proxy("sidecar/graphql-gateway", "source", "banking-service", "200"), "0+94x30"),
            ],
            [
                fires(alert, "20m", one_failing_service(ns))
                for alert in ("ServiceHighErrorRate", "ServiceErrorsSeenByCallers")
            ],
        ),
        # document-service answers (its own proxy counts the requests) but exports no request
        # histogram: its metrics are missing. notification-service exports them: silent.
        # user-service has had no traffic yet (no histogram series either): its proxy counts
        # only Prometheus's plain-text scrapes of its metrics port: silent.
        Case(
            [
                (
                    proxy("sidecar/document-service", "destination", "document-service", "200"),
                    "0+60x30",
                ),
                (
                    proxy("sidecar/user-service", "destination", "user-service", "200", "none"),
                    "0+2x30",
                ),
                (
                    proxy(
                        "sidecar/notification-service", "destination", "notification-service", "200"
                    ),
                    "0+60x30",
                ),
                (
                    suite.row("application/notification-service").series(
                        "http_server_request_duration_seconds_count",
                        http_response_status_code="200",
                    ),
                    "0+60x30",
                ),
            ],
            [
                fires(
                    "ServiceMetricsMissing",
                    "20m",
                    {"severity": "warning", "namespace": ns, "service": "document-service"},
                ),
            ],
        ),
    ]


def edge_cases(gateway: Scrape) -> list[Case]:
    """One gateway pod fails to fetch the token keys for 30 minutes (each failed fetch a 401
    for a signed-in request): it pages after 5 minutes. The other fetched them once and has
    failed nothing since: silent. A single failed fetch (the keys' service restarting) does not
    last five minutes: silent."""
    failing, healthy, blip = (
        gateway,
        gateway.on(pod="istio-ingressgateway-7d9f8b6c5-m8w2p", pod_ip="10.0.2.32"),
        gateway.on(pod="istio-ingressgateway-7d9f8b6c5-q4n7z", pod_ip="10.0.2.33"),
    )

    def fetches(row: Scrape) -> str:
        return row.series("envoy_http_jwt_authn_jwks_fetch_failed")

    return [
        Case(
            [
                (fetches(failing), "0x10 0+6x30"),
                (fetches(healthy), "0x40"),
                (fetches(blip), "0x10 1x30"),
            ],
            [
                fires(
                    "TokenKeysUnavailable",
                    "30m",
                    {
                        "severity": "critical",
                        "namespace": "istio-ingress",
                        "pod": failing.target.pod,
                    },
                ),
                fires("TokenKeysUnavailable", "13m"),
            ],
        )
    ]


def trace_cases(jaeger: Scrape) -> list[Case]:
    def bulk(counter: str) -> str:
        return jaeger.series(f"jaeger_storage_bulk_index_{counter}_total")

    labels = {
        "severity": "warning",
        "namespace": "tracing",
        "name": jaeger.sample("jaeger_storage_bulk_index_errors_total").labels["name"],
    }

    def received(kind: str) -> str:
        return jaeger.series(f"otelcol_receiver_{kind}_spans_total", transport="grpc")

    return [
        # The bulk indexer: 2 of 100 documents fail (fires after 15m); 0.5 of 100 do not.
        Case(
            [
                (bulk("errors"), "0+2x40"),
                (bulk("inserts"), "0+98x40"),
                (bulk("attempts"), "0+100x40"),
            ],
            [
                fires("TraceStoreWritesFailing", "30m", labels),
                fires("TraceStoreWritesFailing", "14m"),
            ],
        ),
        Case(
            [
                (bulk("errors"), "0+0.5x40"),
                (bulk("inserts"), "0+99.5x40"),
                (bulk("attempts"), "0+100x40"),
            ],
            [fires("TraceStoreWritesFailing", "30m")],
        ),
        # Every write refused from the start (a missing index permission): no document was
        # ever stored, so there is no inserts series at all; it still fires.
        Case(
            [(bulk("errors"), "0+50x40"), (bulk("attempts"), "0+50x40")],
            [fires("TraceStoreWritesFailing", "30m", labels)],
        ),
        # The collector refusing spans (its memory limiter): 2% fires (after 15m); 0.5% not.
        Case(
            [(received("refused"), "0+2x40"), (received("accepted"), "0+98x40")],
            [
                fires(
                    "TracesRefused",
                    "30m",
                    {"severity": "warning", "namespace": "tracing", "receiver": "otlp"},
                )
            ],
        ),
        Case(
            [(received("refused"), "0+0.5x40"), (received("accepted"), "0+99.5x40")],
            [fires("TracesRefused", "30m")],
        ),
    ]


def run_promtool(
    directory: Path, groups: list[dict[str, Any]], tests: list[Case]
) -> subprocess.CompletedProcess[str]:
    (directory / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    (directory / "tests.yaml").write_text(
        yaml.safe_dump(
            {
                "rule_files": ["rules.yaml"],
                "evaluation_interval": "1m",
                "tests": [case.as_promtool() for case in tests],
            },
            sort_keys=False,
        )
    )
    return promtool("test", "rules", "tests.yaml", cwd=directory)


def groups_of(run: StackRun) -> list[dict[str, Any]]:
    return rule_groups(app_namespace(run), mesh=True, tracing=True, edge=True)


def test_the_rules_are_valid(production: StackRun, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups_of(production)}, sort_keys=False))
    result = promtool("check", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


@pytest.mark.parametrize("stack", ["production", "staging"])
def test_every_alert_fires_above_and_not_below_its_threshold(
    runs: dict[str, StackRun], stack: str, tmp_path: Path
) -> None:
    run = runs[stack]
    tested = cases(run)
    result = run_promtool(tmp_path, groups_of(run), tested)
    assert result.returncode == 0, result.stdout + result.stderr
    names = {e["alertname"] for case in tested for e in case.expect if e["exp_alerts"]}
    assert names == {a.name for a in ALERTS}


@pytest.mark.parametrize(
    ("threshold", "moved_to", "alert"),
    [
        (ERROR_RATIO, 0.06, "ServiceHighErrorRate"),
        (TRACE_LOSS_RATIO, 0.03, "TraceStoreWritesFailing"),
    ],
)
def test_the_unit_tests_catch_a_moved_threshold(
    production: StackRun, tmp_path: Path, threshold: float, moved_to: float, alert: str
) -> None:
    """Negative control: an alert whose threshold moves up fails its test."""
    moved = yaml.safe_load(yaml.safe_dump(groups_of(production)))
    for group in moved:
        for rule in group["rules"]:
            if rule["alert"] == alert:
                rule["expr"] = rule["expr"].replace(f"> {threshold}", f"> {moved_to}")
    # The cases that expect this alert: a promtool test judges only the alerts it names, so no
    # other case can see the move, and each costs promtool an evaluation of every rule.
    own = [case for case in cases(production) if any(e["alertname"] == alert for e in case.expect)]
    assert own
    result = run_promtool(tmp_path, moved, own)
    assert result.returncode != 0
    assert alert in result.stdout + result.stderr


# The node CPU alert as it was: cAdvisor's root cgroup (id "/") against allocatable CPU.
ROOT_CGROUP_NODE_CPU = (
    'sum by (node) (rate(container_cpu_usage_seconds_total{id="/"}[5m])) / on (node) '
    'sum by (node) (kube_node_status_allocatable{resource="cpu"}) > 0.8'
)


def root_cgroup_case(rows: list[Scrape]) -> Case | None:
    """A node at 85% of its 2 allocatable cores, as cAdvisor's root cgroup reports it, through
    the kubelet scrape; None when the scrape keeps no root cgroup series."""
    kubelet = scrape(rows, "kubelet-cadvisor")
    stored = kubelet.store(kubelet.sample("container_cpu_usage_seconds_total", id="/"))
    series = []
    if stored is not None:
        series.append((kubelet.series("container_cpu_usage_seconds_total", id="/"), "0+102x40"))
    # kube-state-metrics docs/metrics/cluster/node-metrics.md: allocatable by node, resource.
    series.append(
        (
            f'kube_node_status_allocatable{{job="kube-state-metrics",node="{NODE}",'
            'resource="cpu",unit="core"}',
            "2+0x40",
        )
    )
    return Case(series, [fires("NodeCpuRootCgroup", "25m", {"node": NODE})])


def test_a_series_the_chart_drops_fails_the_alerts_test(
    production: StackRun, tmp_path: Path
) -> None:
    """Negative control: the former node CPU alert, on what the kubelet scrape really keeps
    (kube-prometheus-stack drops the root cgroup), cannot fire and its test fails; with the
    chart's drop rule taken out of the values, the same test passes. The failure is the drop's."""
    groups = [
        {
            "name": "old",
            "rules": [{"alert": "NodeCpuRootCgroup", "expr": ROOT_CGROUP_NODE_CPU, "for": "15m"}],
        }
    ]
    kept = root_cgroup_case(scrapes(production))
    assert kept is not None and len(kept.series) == 1
    failed = run_promtool(tmp_path, groups, [kept])
    assert failed.returncode != 0 and "NodeCpuRootCgroup" in failed.stdout + failed.stderr

    values = helm_release(production, "kube-prometheus-stack").inputs["values"]
    undropped = {**values, "kubelet": {"serviceMonitor": {"cAdvisorMetricRelabelings": []}}}
    unfiltered = root_cgroup_case(scrapes(production, kps=undropped))
    assert unfiltered is not None and len(unfiltered.series) == 2
    passed = run_promtool(tmp_path, groups, [unfiltered])
    assert passed.returncode == 0, passed.stdout + passed.stderr


def test_without_the_job_label_setting_the_node_alerts_tests_fail(
    production: StackRun, tmp_path: Path
) -> None:
    """Negative control: node-exporter's chart left to name the job itself
    ("prometheus-node-exporter") gives series the node alerts (and the chart's node rules)
    never select."""
    values = dict(helm_release(production, "prometheus-node-exporter").inputs["values"])
    monitor = {k: v for k, v in values["prometheus"]["monitor"].items() if k != "jobLabel"}
    values["prometheus"] = {"monitor": monitor}
    row = scrape(scrapes(production, node_exporter=values), "node-exporter")
    assert 'job="prometheus-node-exporter"' in row.series("node_memory_MemTotal_bytes")
    result = run_promtool(tmp_path, groups_of(production), [node_case(row)])
    assert result.returncode != 0 and "NodeCpuHigh" in result.stdout + result.stderr


def metric_names(node: Any) -> set[str]:
    if isinstance(node, promql_parser.VectorSelector):
        return {node.name} if node.name else set()
    if isinstance(node, promql_parser.MatrixSelector):
        return metric_names(node.vector_selector)
    found: set[str] = set()
    for attribute in ("lhs", "rhs", "expr", "param"):
        child = getattr(node, attribute, None)
        if child is not None:
            found |= metric_names(child)
    for argument in getattr(node, "args", None) or []:
        found |= metric_names(argument)
    return found


def test_every_metric_a_rule_reads_is_in_the_contract_or_from_an_exporter() -> None:
    used = set().union(*(metric_names(promql_parser.parse(a.expr)) for a in ALERTS))
    assert "financial_planning_authentication_failures_total" in used
    assert used - contract_series() - EXPORTER_METRICS == set()


def test_the_contract_check_sees_an_unknown_metric() -> None:
    expr = "sum(rate(http_requests_total[5m])) / sum(rate(made_up_metric[5m])) > 1"
    assert metric_names(promql_parser.parse(expr)) == {"http_requests_total", "made_up_metric"}


@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: a.name)
def test_critical_alerts_wait_and_page_warnings_go_to_chat(alert: Any) -> None:
    # A pager rotation: nothing pages on a single evaluation.
    if alert.severity == "critical":
        assert alert.for_ in ("5m", "10m"), alert.name
    assert alert.summary and alert.in_words and alert.threshold


def test_the_mesh_and_trace_alerts_exist_only_where_their_series_can() -> None:
    names = {
        (mesh, tracing, edge): {
            r["alert"]
            for g in rule_groups("ns", mesh=mesh, tracing=tracing, edge=edge)
            for r in g["rules"]
        }
        for mesh in (True, False)
        for tracing in (True, False)
        for edge in (True, False)
    }
    assert names[True, True, True] == {a.name for a in ALERTS}
    assert "ServiceErrorsSeenByCallers" not in names[False, True, True]
    assert "TraceStoreWritesFailing" not in names[True, False, True]
    # The gateway's alert only where the gateway's proxy is scraped.
    assert "TokenKeysUnavailable" not in names[True, True, False]
    assert "TokenKeysUnavailable" not in names[False, True, True]
    # The mesh's alerts read the stack's application namespace.
    [callers] = [a for a in application_alerts("shop") if a.name == "ServiceErrorsSeenByCallers"]
    assert 'destination_service_namespace="shop"' in callers.expr


def test_the_documented_alert_table_is_the_rules() -> None:
    readme = (PROJECT_DIR / "docs" / "observability.md").read_text()
    for alert in ALERTS:
        row = f"| `{alert.name}` | {alert.in_words} | {alert.threshold} | {alert.for_} | "
        assert row + f"{alert.severity} |" in readme, alert.name
