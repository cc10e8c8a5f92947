"""How a chart value set to null reaches Helm (components/shared/helm.py).

A null deletes a chart default (how the program drops the gateway's and the sidecars' 2-CPU
limits and prometheus-adapter's port). The Python SDK strips null map values from `values`
before they reach the provider (pulumi/pulumi-kubernetes PR #4306: "the other Pulumi SDKs
strip null map values before they reach the engine ... #12178 Python", issue #3811), so the
program sends each null in a YAML value file instead, which the provider merges under `values`
(provider/pkg/provider/helm_release.go, decodeRelease, v4.30.0 and the newest source stored:
`values = helm.MergeMaps(values, valuesMap)` per file, then
`release.Values = helm.MergeMaps(values, release.Values)`).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from components.shared.helm import merge_maps, release_values, split_nulls
from offline.engine import StackRun
from tests.lookup import HELM_RELEASE
from tools.chart_facts import value_files


def nulls_in(value: Any, path: str = "") -> list[str]:
    """Every path that holds a null."""
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in nulls_in(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in nulls_in(v, f"{path}[{i}]")]
    return []


def test_nulls_are_split_from_the_values() -> None:
    values = {
        "resources": {"limits": {"cpu": None, "memory": "1Gi"}},
        "prometheus": {"port": None},
        "ports": [{"name": "a"}],
    }
    kept, nulls = split_nulls(values)
    assert kept == {"resources": {"limits": {"memory": "1Gi"}}, "ports": [{"name": "a"}]}
    assert nulls == {"resources": {"limits": {"cpu": None}}, "prometheus": {"port": None}}
    # Merged as the provider merges them, they give back what the program meant.
    assert release_values(kept, [yaml.safe_dump(nulls)]) == values


def test_a_null_inside_a_list_is_refused() -> None:
    """Helm replaces a list whole: a null inside one cannot travel apart from it."""
    with pytest.raises(ValueError, match=r"chart value a\.b: a null inside a list"):
        split_nulls({"a": {"b": [{"c": None}]}})


def test_values_win_over_the_value_files_key_by_key() -> None:
    """decodeRelease: the files merged in order, `values` over them; maps merge by key, and a
    value of `values` (a null included) replaces the file's."""
    files = [yaml.safe_dump({"a": {"b": 1, "c": 1}}), yaml.safe_dump({"a": {"c": None}, "d": 1})]
    assert release_values({"a": {"e": 2}, "d": 2}, files) == {
        "a": {"b": 1, "c": None, "e": 2},
        "d": 2,
    }
    assert merge_maps({"a": {"b": 1}}, {"a": None}) == {"a": None}


@pytest.mark.parametrize("stack", ["production", "staging", "development"])
def test_no_release_sends_a_null_in_its_values(runs: dict[str, StackRun], stack: str) -> None:
    """Each null is in the release's value file, where the SDK leaves it alone, and none in
    `values`, where it would be dropped."""
    for release in runs[stack].of_type(HELM_RELEASE):
        inputs = release.inputs
        assert nulls_in(inputs.get("values") or {}) == [], release.name
        files = value_files(inputs, release.name)
        for text in files:
            assert nulls_in(yaml.safe_load(text)), f"{release.name}: a value file without a null"


@pytest.mark.parametrize("stack", ["production", "staging"])
def test_the_chart_defaults_the_program_deletes_reach_helm(
    runs: dict[str, StackRun], stack: str
) -> None:
    """The gateway's and the injected sidecars' CPU limits (gateway and istio-discovery
    1.30.3 values.yaml: 2000m) and prometheus-adapter's port (5.3.0 values.yaml: 443, appended
    to the URL by the chart) arrive at Helm as nulls."""
    found = {
        release.inputs["chart"]: nulls_in(
            release_values(
                release.inputs.get("values") or {}, value_files(release.inputs, release.name)
            )
        )
        for release in runs[stack].of_type(HELM_RELEASE)
    }
    assert {chart: paths for chart, paths in found.items() if paths} == {
        "gateway": ["resources.limits.cpu"],
        "istiod": ["global.proxy.resources.limits.cpu"],
        "prometheus-adapter": ["prometheus.port"],
    }


def test_the_null_check_catches_a_null_in_values() -> None:
    assert nulls_in({"a": {"b": None}, "c": [1, None]}) == ["a.b", "c[1]"]
