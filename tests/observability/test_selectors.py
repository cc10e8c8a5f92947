"""Every PromQL selector the stack deploys (its alert rules, its dashboards' panels, the
custom-metrics adapter's series query) matches some series that the stack's scrape
configuration keeps: the render's ServiceMonitors and PodMonitors and the charts' monitors as
configured, with their relabelings and metric relabelings applied (tests/observability/
scrapes.py). A selector that matches nothing is an alert that can never fire or a panel that
stays empty."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import promql_parser
import pytest

from offline.engine import StackRun
from tests.lookup import helm_release, objects
from tests.observability.scrapes import ANY, kept_series, scrapes


def selectors(node: Any) -> Iterator[promql_parser.VectorSelector]:
    if isinstance(node, promql_parser.VectorSelector):
        yield node
        return
    if isinstance(node, promql_parser.MatrixSelector):
        yield node.vector_selector
        return
    for attribute in ("lhs", "rhs", "expr", "param"):
        child = getattr(node, attribute, None)
        if child is not None:
            yield from selectors(child)
    for argument in getattr(node, "args", None) or []:
        yield from selectors(argument)


def _fits(value: str, op: Any, wanted: str) -> bool:
    """Whether a label's value satisfies one matcher; ANY (a value the exporter fills per
    request or workload) satisfies any matcher a real value could."""
    if value == ANY:
        return not (op == promql_parser.MatchOp.Equal and wanted == "")
    if op == promql_parser.MatchOp.Equal:
        return value == wanted
    if op == promql_parser.MatchOp.NotEqual:
        return value != wanted
    matched = re.fullmatch(wanted, value) is not None
    return matched if op == promql_parser.MatchOp.Re else not matched


def matches(selector: promql_parser.VectorSelector, series: dict[str, str]) -> bool:
    if selector.name and series["__name__"] != selector.name:
        return False
    return all(_fits(series.get(m.name, ""), m.op, m.value) for m in selector.matchers.matchers)


def deployed_queries(run: StackRun) -> dict[str, str]:
    """Where each query comes from -> the query, as the render deploys it."""
    queries: dict[str, str] = {}
    for rules in objects(run, "PrometheusRule").values():
        for group in rules["spec"]["groups"]:
            for rule in group["rules"]:
                queries[f"rule {rule['alert']}"] = rule["expr"]
    for name, config_map in objects(run, "ConfigMap").items():
        if not name.startswith("dashboard-"):
            continue
        [text] = config_map["data"].values()
        for panel in json.loads(text)["panels"]:
            for target in panel.get("targets") or []:
                queries[f"{name} {panel['title']} {target['refId']}"] = target["expr"]
    adapter = helm_release(run, "prometheus-adapter").inputs["values"]
    for i, rule in enumerate(adapter["rules"]["custom"]):
        queries[f"adapter rule {i}"] = rule["seriesQuery"]
    return queries


def unmatched(run: StackRun, rows: Any = None) -> dict[str, list[str]]:
    kept = kept_series(rows if rows is not None else scrapes(run))
    missing: dict[str, list[str]] = {}
    for where, query in deployed_queries(run).items():
        for selector in selectors(promql_parser.parse(query)):
            if not any(matches(selector, series) for series in kept):
                missing.setdefault(where, []).append(str(selector))
    return missing


def test_every_selector_matches_a_kept_series(stack_run: StackRun) -> None:
    queries = deployed_queries(stack_run)
    # Rules, the four dashboards and the adapter's rule are all read.
    assert any(w.startswith("rule ") for w in queries)
    assert any(w.startswith("dashboard-fp-infrastructure") for w in queries)
    assert "adapter rule 0" in queries
    assert unmatched(stack_run) == {}


@pytest.mark.parametrize(
    "query",
    [
        # cAdvisor's root cgroup: kube-prometheus-stack drops it (helm-charts#2279).
        'sum by (node) (rate(container_cpu_usage_seconds_total{id="/"}[5m]))',
        # node-exporter under the job its chart would name by itself.
        'node_memory_MemTotal_bytes{job="prometheus-node-exporter"}',
        # The collector exporter's per-span failures under a name nobody exports.
        "otelcol_exporter_send_failed_spans_total_made_up",
    ],
)
def test_a_selector_of_a_series_the_scrape_does_not_keep_is_caught(
    production: StackRun, query: str
) -> None:
    """Negative control: selectors of series that do not exist after the scrape match
    nothing."""
    kept = kept_series(scrapes(production))
    [selector] = selectors(promql_parser.parse(query))
    assert not any(matches(selector, series) for series in kept)


def test_the_matcher_reads_each_operator() -> None:
    [selector] = selectors(promql_parser.parse('m{a="1", b!="", c=~"5..", d!~"x|y", e=""}'))
    assert matches(selector, {"__name__": "m", "a": "1", "b": "2", "c": "503", "d": "z"})
    assert not matches(selector, {"__name__": "m", "a": "1", "b": "", "c": "503", "d": "z"})
    assert not matches(selector, {"__name__": "m", "a": "1", "b": "2", "c": "200", "d": "z"})
    assert not matches(selector, {"__name__": "m", "a": "1", "b": "2", "c": "503", "d": "x"})
    assert not matches(selector, {"__name__": "m", "a": "1", "b": "2", "c": "503", "e": "v"})


def test_without_the_gateway_s_stats_matcher_the_token_keys_alert_sees_nothing(
    production: StackRun,
) -> None:
    """Negative control: Istio's default statistics keep none of jwt_authn's (istio 1.30.3
    pkg/bootstrap/config.go); with the gateway's proxy config left at its topology alone, the
    alert's selector matches no kept series."""
    values = dict(helm_release(production, "gateway").inputs["values"])
    config = json.loads(values["podAnnotations"]["proxy.istio.io/config"])
    assert config.pop("proxyStatsMatcher")
    values["podAnnotations"] = {"proxy.istio.io/config": json.dumps(config)}
    missing = unmatched(production, scrapes(production, gateway=values))
    assert missing == {
        "rule TokenKeysUnavailable": [
            'envoy_http_jwt_authn_jwks_fetch_failed{namespace="istio-ingress"}'
        ]
    }
