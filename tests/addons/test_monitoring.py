"""Monitoring: kube-prometheus-stack and node-exporter as add-ons, per environment; Grafana's and
Alertmanager's secrets from Secrets Manager; the Alertmanager configuration checked by amtool;
the application's ServiceMonitors and alert rules consistent with its Services."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.observability.alerts import rule_groups
from offline.engine import PROJECT_DIR, StackRun, secret_placeholder
from tests.conftest import SEED_PORTS
from tests.lookup import app_namespace, helm_release, objects, waits_for

AMTOOL = Path(
    os.environ.get("AMTOOL", PROJECT_DIR / ".tools" / "prometheus" / "usr" / "bin" / "amtool")
)
EXPECTED = {
    # Prometheus replicas, retention, volume; Alertmanager replicas.
    "production": (2, "30d", "100Gi", 2),
    "staging": (1, "7d", "30Gi", 1),
}


def stack_values(run: StackRun) -> dict[str, Any]:
    values: dict[str, Any] = helm_release(run, "kube-prometheus-stack").inputs["values"]
    return values


def test_prometheus_and_alertmanager_are_sized_per_environment(stack_run: StackRun) -> None:
    release = helm_release(stack_run, "kube-prometheus-stack")
    assert (release.inputs["version"], release.inputs["namespace"]) == ("88.5.3", "monitoring")
    values = stack_values(stack_run)
    prometheus = values["prometheus"]["prometheusSpec"]
    claim = prometheus["storageSpec"]["volumeClaimTemplate"]["spec"]
    alertmanager = values["alertmanager"]["alertmanagerSpec"]
    assert (
        prometheus["replicas"],
        prometheus["retention"],
        claim["resources"]["requests"]["storage"],
        alertmanager["replicas"],
    ) == EXPECTED[stack_run.stack]
    # The encrypted gp3 class; rules and monitors from every namespace.
    assert claim["storageClassName"] == "gp3"
    assert prometheus["ruleSelectorNilUsesHelmValues"] is False
    assert prometheus["serviceMonitorSelectorNilUsesHelmValues"] is False
    assert prometheus["externalLabels"]["environment"] == stack_run.stack


def test_eks_managed_control_plane_is_not_scraped_and_node_exporter_runs_apart(
    stack_run: StackRun,
) -> None:
    values = stack_values(stack_run)
    for component in ("kubeEtcd", "kubeControllerManager", "kubeScheduler", "kubeProxy"):
        assert values[component] == {"enabled": False}, component
    # The chart's own node-exporter is off, but its node dashboards are made (Linux only).
    assert values["nodeExporter"] == {
        "enabled": False,
        "forceDeployDashboards": True,
        "operatingSystems": {"aix": {"enabled": False}, "darwin": {"enabled": False}},
    }
    node_exporter = helm_release(stack_run, "prometheus-node-exporter")
    assert (node_exporter.inputs["version"], node_exporter.inputs["namespace"]) == (
        "4.56.1",
        "node-exporter",
    )
    # Nothing else shares the privileged namespace.
    charts = [r.inputs["chart"] for r in stack_run.of_type("kubernetes:helm.sh/v3:Release")]
    in_namespace = [
        r
        for r in stack_run.of_type("kubernetes:helm.sh/v3:Release")
        if r.inputs["namespace"] == "node-exporter"
    ]
    assert len(in_namespace) == 1 and "prometheus-node-exporter" in charts


def test_grafana_and_alertmanager_secrets_come_from_secrets_manager_first(
    stack_run: StackRun,
) -> None:
    values = stack_values(stack_run)
    assert values["grafana"]["admin"] == {
        "existingSecret": "grafana-admin",
        "userKey": "admin-user",
        "passwordKey": "admin-password",
    }
    assert values["alertmanager"]["alertmanagerSpec"]["secrets"] == ["alert-receivers"]
    externals = {
        o["metadata"]["name"]: o
        for o in objects(stack_run, "ExternalSecret").values()
        if o["metadata"]["namespace"] == "monitoring"
    }
    assert set(externals) == {"grafana-admin", "alert-receivers"}
    prefix = f"financial-planning/{stack_run.stack}"
    assert {
        (d["secretKey"], d["remoteRef"]["key"]) for d in externals["grafana-admin"]["spec"]["data"]
    } == {
        ("admin-user", f"{prefix}/grafana-admin"),
        ("admin-password", f"{prefix}/grafana-admin"),
    }
    # The chart installs after its Secrets exist (Grafana's pod reads one at start).
    release = helm_release(stack_run, "kube-prometheus-stack")
    secrets = [
        r.urn
        for r in stack_run.of_type("kubernetes:external-secrets.io/v1:ExternalSecret")
        if r.inputs["metadata"]["namespace"] == "monitoring"
    ]
    assert len(secrets) == 2 and set(secrets) <= set(release.dependencies)
    # No receiver key in the values: Alertmanager reads them from the mounted Secret's files.
    text = json.dumps(values)
    for key in ("alertPagerdutyRoutingKey", "alertSlackWebhookUrl"):
        assert secret_placeholder(f"financial-planning:{key}") not in text
    assert "routing_key_file" in text and "api_url_file" in text


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert AMTOOL.exists(), f"{AMTOOL} missing: run `make checkers`"
    return subprocess.run([str(AMTOOL), *args], capture_output=True, text=True, check=False)


# The heartbeat's webhook reads its URL from a file: `url_file`, a field of Alertmanager 0.26 and
# later (alertmanager v0.34.0 notify/webhook/config.go: `URLFile string yaml:"url_file"`), which
# kube-prometheus-stack 88.5.3 runs (values.yaml alertmanager.alertmanagerSpec.image.tag
# v0.34.0). The amtool here is Debian's 0.25, which predates the field: it checks a copy whose
# heartbeat URL is inline; everything else is checked as rendered.
AMTOOL_0_25_HEARTBEAT = {"url": "https://heartbeat.invalid/ping", "send_resolved": False}


def for_amtool_0_25(config: dict[str, Any]) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(config))
    [heartbeat] = [r for r in copy["receivers"] if r["name"] == "heartbeat"]
    [webhook] = heartbeat["webhook_configs"]
    assert set(webhook) == {"url_file", "send_resolved"}
    heartbeat["webhook_configs"] = [AMTOOL_0_25_HEARTBEAT]
    return copy


@pytest.fixture
def alertmanager_file(production: StackRun, tmp_path: Path) -> Path:
    path = tmp_path / "alertmanager.yaml"
    config = stack_values(production)["alertmanager"]["config"]
    path.write_text(yaml.safe_dump(for_amtool_0_25(config)))
    return path


def test_amtool_accepts_the_alertmanager_config(alertmanager_file: Path) -> None:
    result = amtool("check-config", str(alertmanager_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["severity=critical", "alertname=ServiceHighErrorRate"], "pager,chat"),
        (["severity=warning", "alertname=ServiceHighLatency"], "chat"),
        (["severity=info", "alertname=KubeQuotaAlmostFull"], "null"),
        # The dead man's switch: the always-firing Watchdog pings the heartbeat, nothing else.
        (["severity=none", "alertname=Watchdog"], "heartbeat"),
        (["severity=none", "alertname=InfoInhibitor"], "null"),
    ],
)
def test_critical_pages_warnings_go_to_chat(
    alertmanager_file: Path, labels: list[str], receivers: str
) -> None:
    result = amtool("config", "routes", "test", f"--config.file={alertmanager_file}", *labels)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == receivers


def test_the_watchdog_pings_the_heartbeat_every_minute_from_the_secrets_file(
    production: StackRun,
) -> None:
    config = stack_values(production)["alertmanager"]["config"]
    [route] = [r for r in config["route"]["routes"] if r["receiver"] == "heartbeat"]
    assert route["matchers"] == ['alertname="Watchdog"'] and "continue" not in route
    assert route["repeat_interval"] == route["group_interval"] == "1m"
    [heartbeat] = [r for r in config["receivers"] if r["name"] == "heartbeat"]
    [webhook] = heartbeat["webhook_configs"]
    # The URL (it holds the heartbeat's key) from the mounted alert-receivers Secret.
    assert webhook["url_file"] == "/etc/alertmanager/secrets/alert-receivers/heartbeat-url"
    keys = {
        d["secretKey"]
        for o in objects(production, "ExternalSecret").values()
        if o["metadata"]["name"] == "alert-receivers"
        for d in o["spec"]["data"]
    }
    assert "heartbeat-url" in keys
    # No URL in the values: only the file's path.
    assert secret_placeholder("financial-planning:alertHeartbeatUrl") not in json.dumps(config)


def test_amtool_refuses_a_broken_config(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump({"route": {"receiver": "nobody"}, "receivers": []}))
    assert amtool("check-config", str(path)).returncode != 0


def test_every_service_is_scraped_on_its_own_service_port(stack_run: StackRun) -> None:
    namespace = app_namespace(stack_run)
    monitors = {
        name: m
        for name, m in objects(stack_run, "ServiceMonitor").items()
        if m["metadata"]["namespace"] == namespace
    }
    services = objects(stack_run, "Service")
    assert set(monitors) == set(SEED_PORTS)
    for name, monitor in monitors.items():
        service = services[name]
        labels = service["metadata"]["labels"]
        # The monitor selects this Service and scrapes a port the Service has, by name.
        assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
        [endpoint] = monitor["spec"]["endpoints"]
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
        assert endpoint["path"] == "/metrics"
    [rules] = objects(stack_run, "PrometheusRule").values()
    assert rules["metadata"]["namespace"] == "monitoring"
    # The mesh's, the gateway's and the traces' alerts too: all three run here.
    assert rules["spec"]["groups"] == rule_groups(namespace, mesh=True, tracing=True, edge=True)


def test_the_services_start_without_waiting_for_monitoring(stack_run: StackRun) -> None:
    monitoring = helm_release(stack_run, "kube-prometheus-stack").urn
    secrets_operator = helm_release(stack_run, "external-secrets").urn
    for deployment in stack_run.of_type("kubernetes:apps/v1:Deployment"):
        before = waits_for(stack_run, deployment.urn)
        # Their Secrets' operator first; monitoring (and what it scrapes) beside them.
        assert secrets_operator in before, deployment.name
        assert monitoring not in before, deployment.name


def test_the_platform_add_ons_are_scraped_after_the_monitoring_crds_exist(
    stack_run: StackRun,
) -> None:
    assert helm_release(stack_run, "metrics-server").inputs["values"]["serviceMonitor"] == {
        "enabled": True
    }
    autoscaler = helm_release(stack_run, "cluster-autoscaler").inputs["values"]["serviceMonitor"]
    assert autoscaler["enabled"] and autoscaler["namespace"] == "autoscaling-system"
    reloader = helm_release(stack_run, "reloader").inputs["values"]["reloader"]["podMonitor"]
    assert reloader == {"enabled": True}
    # Those charts create their monitors unconditionally: each installs after the chart that
    # brings the CRDs.
    monitoring = helm_release(stack_run, "kube-prometheus-stack").urn
    for chart in ("metrics-server", "cluster-autoscaler", "reloader"):
        assert monitoring in helm_release(stack_run, chart).dependencies, chart
    assert monitoring not in helm_release(stack_run, "external-secrets").dependencies
    # External Secrets comes before monitoring (it makes monitoring's Secrets): a PodMonitor
    # of the observability layer scrapes it.
    pod_monitor = objects(stack_run, "PodMonitor")["external-secrets"]
    assert pod_monitor["spec"]["namespaceSelector"] == {"matchNames": ["external-secrets-system"]}
    assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"


def test_without_monitoring_no_chart_asks_for_its_crds() -> None:
    from tests.conftest import run_with

    run = run_with(
        "staging",
        addons={"monitoring": {"enabled": False}, "prometheusAdapter": {"enabled": False}},
        # Without Prometheus nothing serves the API's request rate.
        services={"financial-planning-api": {"autoscaling": {"requestsPerSecond": None}}},
        # Grafana and Prometheus are monitoring's: the edge serves no operator UI then.
        edge={"operatorUis": []},
    )
    assert helm_release(run, "metrics-server").inputs["values"]["serviceMonitor"] == {
        "enabled": False
    }
    assert not helm_release(run, "reloader").inputs["values"]["reloader"]["podMonitor"]["enabled"]
    # The edge's charts make their monitors only with the CRDs there.
    for chart in ("aws-load-balancer-controller", "external-dns"):
        assert not helm_release(run, chart).inputs["values"]["serviceMonitor"]["enabled"], chart
    cert_manager = helm_release(run, "cert-manager").inputs["values"]
    assert not cert_manager["prometheus"]["servicemonitor"]["enabled"]
    kinds = {r.type for r in run.resources}
    assert not any("monitoring.coreos.com" in kind for kind in kinds)


def inhibited(
    rules: list[dict[str, Any]], target: dict[str, str], firing: list[dict[str, str]]
) -> bool:
    """Alertmanager v0.34.0's inhibitor (inhibit/inhibit.go, Inhibitor.Mutes and
    InhibitRule.hasEqual): `target` is muted when a rule's target matchers match it and a firing
    alert matching the rule's source matchers, but not its target matchers, has the same value
    (absent counts as empty) for every label in `equal`. The rules here use `name="value"`
    matchers only (checked)."""

    def matches(matchers: list[str], labels: dict[str, str]) -> bool:
        pairs = []
        for matcher in matchers:
            name, _, value = matcher.partition("=")
            assert value.startswith('"') and value.endswith('"') and "~" not in name, matcher
            pairs.append((name, value.strip('"')))
        return all(labels.get(name, "") == value for name, value in pairs)

    return any(
        matches(rule["target_matchers"], target)
        and any(
            matches(rule["source_matchers"], source)
            and not matches(rule["target_matchers"], source)
            and all(source.get(k, "") == target.get(k, "") for k in rule["equal"])
            for source in firing
        )
        for rule in rules
    )


def test_one_failing_service_pages_once(production: StackRun) -> None:
    """Both 5xx alerts fire for one failing service, with the labels promtool evaluates them to
    (tests/observability/test_alerts.py, mesh_cases); the callers' view is then silenced. When
    the service cannot count (down: only its callers' alert fires), it still pages."""
    from tests.observability.test_alerts import one_failing_service

    rules = stack_values(production)["alertmanager"]["config"]["inhibit_rules"]
    labels = one_failing_service(app_namespace(production))
    own = {**labels, "alertname": "ServiceHighErrorRate"}
    callers = {**labels, "alertname": "ServiceErrorsSeenByCallers"}
    assert inhibited(rules, callers, [own, callers])
    assert not inhibited(rules, own, [own, callers])
    assert not inhibited(rules, callers, [callers])
    # Another service's failure silences nothing here.
    other = {**own, "service": "user-service"}
    assert not inhibited(rules, callers, [other, callers])
    # The warning under a critical of the same alert and service is still silenced.
    warning = {**own, "severity": "warning"}
    assert inhibited(rules, warning, [own])
