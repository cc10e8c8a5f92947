"""kube-prometheus-stack's own node rules find the series this cluster's scrapes keep.

The rules are the pinned chart's (kube-prometheus-stack 88.5.3,
templates/prometheus/rules-1.14/node-exporter.yaml, node-exporter.rules.yaml, node.rules.yaml),
extracted with their template expressions resolved as the release renders them by
tools/extract_chart_rules.py into chart_rules.json beside this file (the data names the chart,
its version and each rule's source file; the chart itself is not kept here). Their selectors
run through the same scrape table as the program's own rules (scrapes.py), and the recording
rules that join pods to nodes are evaluated by promtool on the series those scrapes store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from components.addons.monitoring import CHART_ALERTS_OURS_REPLACE, Monitoring
from components.observability.alerts import ALERTS, rule_groups
from offline.engine import StackRun
from tests.lookup import app_namespace, helm_release
from tests.observability.scrapes import NODE, Scrape, kept_series, scrape, scrapes
from tests.observability.test_alerts import promtool
from tests.observability.test_selectors import matches, selectors

DATA: dict[str, Any] = json.loads((Path(__file__).parent / "chart_rules.json").read_text())
RECORDS = {rule["record"] for rule in DATA["rules"] if "record" in rule}
# The release's rule groups these files belong to (each file's `if` on defaultRules.rules.*, each
# on unless the release turns it off: kube-prometheus-stack 88.5.3 values.yaml sets them true).
GROUPS = {
    "node-exporter.yaml": "nodeExporterAlerting",
    "node-exporter.rules.yaml": "nodeExporterRecording",
    "node.rules.yaml": "node",
}

# Series the chart's node rules read that these nodes never produce: the rules on them stay
# silent here, by the nodes' nature, not by a scrape that loses them.
NOT_PRODUCED = {
    # node_exporter v1.12.1 collector/systemd_linux.go: registerCollector("systemd",
    # defaultDisabled, ...); prometheus-node-exporter 4.56.1 and this release add no
    # --collector.systemd.
    "node_systemd_unit_state": "systemd collector off",
    "node_systemd_service_restart_total": "systemd collector off",
    # collector/mdadm_linux.go reports /proc/mdstat's software RAID arrays, and
    # collector/bonding_linux.go bonded interfaces: EKS nodes (AL2023, EBS and ENA) have none.
    "node_md_disks": "no software RAID",
    "node_md_disks_required": "no software RAID",
    "node_bonding_slaves": "no bonded interface",
    "node_bonding_active": "no bonded interface",
}


def active_rules(run: StackRun) -> list[dict[str, Any]]:
    """The chart's node rules the release creates: their group on, the rule not disabled."""
    values = helm_release(run, "kube-prometheus-stack").inputs["values"]["defaultRules"]
    assert values["create"]
    disabled = values.get("disabled", {})
    return [
        rule
        for rule in DATA["rules"]
        if values.get("rules", {}).get(GROUPS[rule["source"].rsplit("/", 1)[1]], True)
        and not disabled.get(rule.get("alert", ""), False)
    ]


def unmatched(run: StackRun, rows: list[Scrape]) -> dict[str, list[str]]:
    kept = kept_series(rows)
    missing: dict[str, list[str]] = {}
    for rule in active_rules(run):
        for selector in selectors(promql_parser.parse(rule["expr"])):
            name = selector.name or ""
            if name in RECORDS:
                continue
            if not any(matches(selector, series) for series in kept):
                missing.setdefault(name, []).append(rule.get("alert") or rule["record"])
    return missing


def test_the_rules_are_the_pinned_charts() -> None:
    assert (DATA["chart"], DATA["version"]) == (Monitoring.chart.chart, Monitoring.chart.version)
    assert DATA["tag"] == f"{DATA['chart']}-{DATA['version']}"
    assert {rule["source"].rsplit("/", 1)[1] for rule in DATA["rules"]} == set(GROUPS)
    assert all(rule["expr"] and "{{" not in rule["expr"] for rule in DATA["rules"])
    for needed in ("node:node_num_cpu:sum", "node:node_cpu_utilization:ratio_rate5m"):
        assert needed in RECORDS
    assert any(rule.get("alert") == "NodeFilesystemAlmostOutOfSpace" for rule in DATA["rules"])


def test_every_selector_of_the_charts_node_rules_matches_a_kept_series(
    stack_run: StackRun,
) -> None:
    assert len(active_rules(stack_run)) > 40
    assert set(unmatched(stack_run, scrapes(stack_run))) == set(NOT_PRODUCED)


def test_without_the_job_label_the_charts_node_rules_find_nothing(production: StackRun) -> None:
    """Negative control: node-exporter's chart left to name the job itself."""
    values = dict(helm_release(production, "prometheus-node-exporter").inputs["values"])
    monitor = {k: v for k, v in values["prometheus"]["monitor"].items() if k != "jobLabel"}
    values["prometheus"] = {"monitor": monitor}
    missing = unmatched(production, scrapes(production, node_exporter=values))
    for metric in ("node_cpu_seconds_total", "node_filesystem_avail_bytes", "node_load1"):
        assert metric in missing, metric


def node_rules_test(rows: list[Scrape], tmp_path: Path) -> Any:
    """promtool evaluates the chart's node.rules group on one node of two CPUs, each half busy
    (user), half idle, as the node-exporter scrape stores them, and node-exporter's own pod as
    kube-state-metrics describes it (its namespace, pod and node: kube_pod_info, honorLabels)."""
    exporter = scrape(rows, "node-exporter")
    state = scrape(rows, "kube-state-metrics")
    series = [
        (exporter.series("node_cpu_seconds_total", cpu=cpu, mode=mode), f"0+{per_minute}x20")
        for cpu in ("0", "1")
        for mode, per_minute in (("idle", 30), ("user", 30), ("iowait", 0), ("steal", 0))
    ]
    series.append(
        (
            state.series(
                "kube_pod_info", namespace=exporter.target.namespace, pod=exporter.target.pod
            ),
            "1+0x20",
        )
    )
    group = {
        "name": "node.rules",
        "rules": [
            {"record": rule["record"], "expr": rule["expr"]}
            for rule in DATA["rules"]
            if rule["source"].endswith("/node.rules.yaml")
        ],
    }
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [group]}, sort_keys=False))
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "promql_expr_test": [
                    {
                        "expr": "node:node_num_cpu:sum",
                        "eval_time": "10m",
                        "exp_samples": [
                            {"labels": f'node:node_num_cpu:sum{{node="{NODE}"}}', "value": 2}
                        ],
                    },
                    {
                        "expr": "node:node_cpu_utilization:ratio_rate5m",
                        "eval_time": "10m",
                        "exp_samples": [
                            {
                                "labels": (
                                    f'node:node_cpu_utilization:ratio_rate5m{{node="{NODE}"}}'
                                ),
                                "value": 0.5,
                            }
                        ],
                    },
                ],
            }
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    return promtool("test", "rules", "tests.yaml", cwd=tmp_path)


def test_the_charts_node_recording_rules_join_node_exporter_to_its_node(
    production: StackRun, tmp_path: Path
) -> None:
    result = node_rules_test(scrapes(production), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_node_recording_rules_test_fails_without_the_job_label(
    production: StackRun, tmp_path: Path
) -> None:
    values = dict(helm_release(production, "prometheus-node-exporter").inputs["values"])
    monitor = {k: v for k, v in values["prometheus"]["monitor"].items() if k != "jobLabel"}
    values["prometheus"] = {"monitor": monitor}
    result = node_rules_test(scrapes(production, node_exporter=values), tmp_path)
    assert result.returncode != 0
    assert "node:node_num_cpu:sum" in result.stdout + result.stderr


@pytest.mark.parametrize(("chart_alert", "ours"), sorted(CHART_ALERTS_OURS_REPLACE.items()))
def test_a_chart_alert_that_notifies_as_ours_does_is_disabled(
    production: StackRun, tmp_path: Path, chart_alert: str, ours: str
) -> None:
    """The chart's alert and ours fire on the same node at 95% of its memory in use, both at a
    severity that notifies (warning): the release disables the chart's, so one incident
    notifies once."""
    [rule] = [r for r in DATA["rules"] if r.get("alert") == chart_alert]
    assert rule["severity"] in ("warning", "critical")
    exporter = scrape(scrapes(production), "node-exporter")
    series = [
        (exporter.series("node_memory_MemAvailable_bytes"), "400000000+0x40"),
        (exporter.series("node_memory_MemTotal_bytes"), "8000000000+0x40"),
    ]
    ours_groups = rule_groups(app_namespace(production), mesh=False, tracing=False)
    chart_group = {
        "name": "chart",
        "rules": [
            {
                "alert": chart_alert,
                "expr": rule["expr"],
                "for": rule["for"],
                "labels": {"severity": rule["severity"]},
            }
        ],
    }
    (tmp_path / "rules.yaml").write_text(
        yaml.safe_dump({"groups": [*ours_groups, chart_group]}, sort_keys=False)
    )
    [alert] = [a for a in ALERTS if a.name == ours]
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "alert_rule_test": [
                    {
                        "eval_time": "30m",
                        "alertname": ours,
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": alert.severity, "node": NODE},
                                "exp_annotations": {
                                    "summary": alert.summary.replace("{{ $labels.node }}", NODE)
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "30m",
                        "alertname": chart_alert,
                        "exp_alerts": [
                            {"exp_labels": {**exporter_labels(exporter), "severity": "warning"}}
                        ],
                    },
                ],
            }
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    disabled = helm_release(production, "kube-prometheus-stack").inputs["values"]["defaultRules"]
    assert disabled["disabled"] == {chart_alert: True}
    assert chart_alert not in {r.get("alert") for r in active_rules(production)}


def exporter_labels(exporter: Scrape) -> dict[str, str]:
    """The labels node-exporter's memory series carry (the chart's alert keeps them all)."""
    stored = exporter.store(exporter.sample("node_memory_MemTotal_bytes"))
    assert stored is not None
    return {k: v for k, v in stored.items() if k != "__name__"}


def test_the_charts_cpu_alert_notifies_nobody() -> None:
    """NodeCPUHighUsage (above 90%) is severity info, which Alertmanager routes to no receiver
    (tests/addons/test_monitoring.py, test_critical_pages_warnings_go_to_chat): only NodeCpuHigh,
    at the seed's 80%, notifies."""
    [rule] = [r for r in DATA["rules"] if r.get("alert") == "NodeCPUHighUsage"]
    assert rule["severity"] == "info"
