"""The dashboards: built with Grafana's SDK, provisioned through the sidecar, and every panel's
query parses and reads only the metrics contract or an exporter's series."""

from __future__ import annotations

import json

import promql_parser

from components.observability.dashboards import dashboard_models, panel_queries
from components.shared.observability_contract import EXPORTER_METRICS, contract_series
from offline.engine import StackRun
from tests.lookup import helm_release, objects
from tests.observability.test_alerts import metric_names

UIDS = {"fp-api-performance", "fp-business", "fp-infrastructure", "fp-security"}


def test_four_dashboards_with_queries_in_every_data_panel() -> None:
    models = dashboard_models()
    assert set(models) == UIDS
    for uid, model in models.items():
        panels = [p for p in model["panels"] if p["type"] != "row"]
        assert panels, uid
        for panel in panels:
            assert panel["targets"], (uid, panel["title"])
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, (uid, panel["title"])
        # No two panels overlap.
        cells = [
            (p["gridPos"]["x"] + dx, p["gridPos"]["y"] + dy)
            for p in model["panels"]
            for dx in range(p["gridPos"]["w"])
            for dy in range(p["gridPos"]["h"])
        ]
        assert len(cells) == len(set(cells)), uid


def test_every_panel_query_parses_and_uses_the_contract() -> None:
    allowed = contract_series() | EXPORTER_METRICS
    used: set[str] = set()
    for uid, model in dashboard_models().items():
        for expr in panel_queries(model):
            names = metric_names(promql_parser.parse(expr))
            assert names, (uid, expr)
            assert names <= allowed, (uid, names - allowed)
            used |= names
    # The seed's key metrics all appear somewhere.
    for name in (
        "financial_planning_user_registrations_total",
        "financial_planning_transactions_total",
        "financial_planning_goal_completions_total",
        "financial_planning_authentication_failures_total",
        "financial_planning_suspicious_activity_total",
        "http_server_request_duration_seconds_bucket",
    ):
        assert name in used, name


def test_a_bad_query_is_caught() -> None:
    try:
        promql_parser.parse("sum(rate(http_server_request_duration_seconds_count[5m])")
    except ValueError:
        return
    raise AssertionError("an unbalanced query parsed")


def test_grafana_loads_each_dashboard_from_a_labelled_config_map(stack_run: StackRun) -> None:
    sidecar = helm_release(stack_run, "kube-prometheus-stack").inputs["values"]["grafana"][
        "sidecar"
    ]["dashboards"]
    maps = {
        name: m
        for name, m in objects(stack_run, "ConfigMap").items()
        if m["metadata"]["namespace"] == "monitoring"
    }
    dashboards = {n: m for n, m in maps.items() if n.startswith("dashboard-")}
    assert {n.removeprefix("dashboard-") for n in dashboards} == UIDS
    models = dashboard_models()
    for name, config_map in dashboards.items():
        uid = name.removeprefix("dashboard-")
        assert config_map["metadata"]["labels"][sidecar["label"]] == sidecar["labelValue"]
        [(key, text)] = config_map["data"].items()
        assert key == f"{uid}.json" and json.loads(text) == models[uid]
