"""The seed's alerts: valid rules (promtool check), each firing just above its threshold and
silent just below (promtool test, alerts_test.yaml), and only metrics of the contract or of a
known exporter."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from components.observability.alerts import ALERTS, ERROR_RATIO, TRACE_LOSS_RATIO, rule_groups
from components.observability.contract import EXPORTER_METRICS, contract_series
from offline.engine import PROJECT_DIR

PROMTOOL = Path(
    os.environ.get("PROMTOOL", PROJECT_DIR / ".tools" / "prometheus" / "usr" / "bin" / "promtool")
)
UNIT_TESTS = Path(__file__).parent / "alerts_test.yaml"


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL.exists(), f"{PROMTOOL} missing: run `make checkers`"
    return subprocess.run(
        [str(PROMTOOL), *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def write_rules(directory: Path, groups: list[dict[str, Any]]) -> Path:
    shutil.copy(UNIT_TESTS, directory / UNIT_TESTS.name)
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def test_the_rules_are_valid(tmp_path: Path) -> None:
    rules = write_rules(tmp_path, rule_groups())
    result = promtool("check", "rules", str(rules), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_every_alert_fires_above_and_not_below_its_threshold(tmp_path: Path) -> None:
    write_rules(tmp_path, rule_groups())
    result = promtool("test", "rules", UNIT_TESTS.name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    tested = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    names = {case["alertname"] for test in tested for case in test["alert_rule_test"]}
    assert names == {a.name for a in ALERTS}


@pytest.mark.parametrize(
    ("threshold", "moved_to", "alert"),
    [
        (ERROR_RATIO, 0.06, "ServiceHighErrorRate"),
        (TRACE_LOSS_RATIO, 0.03, "TraceStoreWritesFailing"),
    ],
)
def test_the_unit_tests_catch_a_moved_threshold(
    tmp_path: Path, threshold: float, moved_to: float, alert: str
) -> None:
    """Negative control: an alert whose threshold moves up fails its test."""
    moved = yaml.safe_load(yaml.safe_dump(rule_groups()))
    for group in moved:
        for rule in group["rules"]:
            rule["expr"] = rule["expr"].replace(f"> {threshold}", f"> {moved_to}")
    write_rules(tmp_path, moved)
    result = promtool("test", "rules", UNIT_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0
    assert alert in result.stdout + result.stderr


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


def test_the_readme_alert_table_is_the_rules() -> None:
    readme = (PROJECT_DIR / "README.md").read_text()
    for alert in ALERTS:
        row = f"| `{alert.name}` | {alert.in_words} | {alert.threshold} | {alert.for_} | "
        assert row + f"{alert.severity} |" in readme, alert.name
