"""Upstream Helm charts, pinned, installed as `helm.v3.Release` (visible to tests and previews).

A chart value set to null deletes the chart's default (Helm's coalescing), which is how the
program drops a chart's CPU limit. Such nulls travel to Helm in a YAML file of the release
(`valueYamlFiles`), never in `values`: the Python SDK strips null map values before they reach
the provider (pulumi/pulumi-kubernetes PR #4293 "What this does NOT fix", PR #4306, issue
#3811; pulumi/pulumi#12178), while a YAML asset is opaque to it. The provider merges the files
first and `values` over them (provider/pkg/provider/helm_release.go, decodeRelease:
`values = helm.MergeMaps(values, valuesMap)` per file, then
`release.Values = helm.MergeMaps(values, release.Values)`; unchanged from v4.30.0, where nulls
in the files stopped being stripped (#2997), to the newest source stored here), so a null in
the file survives wherever `values` does not set the same key, which the split below ensures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml


@dataclass(frozen=True)
class HelmChart:
    chart: str
    # An exact version: a chart upgrade is a reviewed change, never a side effect of `up`.
    version: str
    repository: str


def split_nulls(
    values: Mapping[str, Any], path: tuple[str, ...] = ()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(`values` without its null entries, the null entries alone), each a tree of mappings. A
    mapping that only held nulls is left out of the first. A null inside a list is refused:
    Helm replaces lists whole, so it could not travel apart from its list."""
    kept: dict[str, Any] = {}
    nulls: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            nulls[key] = None
        elif isinstance(value, Mapping) and value:
            inner_kept, inner_nulls = split_nulls(value, (*path, key))
            if inner_kept:
                kept[key] = inner_kept
            if inner_nulls:
                nulls[key] = inner_nulls
        else:
            if isinstance(value, list) and _holds_null(value):
                where = ".".join((*path, key))
                raise ValueError(f"chart value {where}: a null inside a list cannot reach Helm")
            kept[key] = value
    return kept, nulls


def _holds_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, Mapping):
        return any(_holds_null(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_null(item) for item in value)
    return False


def merge_maps(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's mergeMaps (pkg/cli/values/options.go), as pulumi-kubernetes vendors it
    (provider/pkg/helm/upstream.go, MergeMaps): mappings merge key by key, anything else in
    `override` replaces what `base` has, a null included."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = merge_maps(current, value)
        else:
            merged[key] = value
    return merged


def release_values(values: Mapping[str, Any], value_yaml_files: Sequence[str]) -> dict[str, Any]:
    """The values the provider hands Helm: the YAML files merged in order, `values` over them
    (helm_release.go decodeRelease)."""
    merged: dict[str, Any] = {}
    for text in value_yaml_files:
        merged = merge_maps(merged, yaml.safe_load(text) or {})
    return merge_maps(merged, values)


def helm_release(
    name: str,
    chart: HelmChart,
    *,
    namespace: pulumi.Input[str],
    values: Mapping[str, Any],
    opts: pulumi.ResourceOptions,
) -> k8s.helm.v3.Release:
    plain, nulls = split_nulls(values)
    return k8s.helm.v3.Release(
        name,
        name=name,
        chart=chart.chart,
        version=chart.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository),
        namespace=namespace,
        values=plain,
        # The chart defaults the program deletes (see the module's docstring).
        value_yaml_files=[pulumi.StringAsset(yaml.safe_dump(nulls, sort_keys=True))]
        if nulls
        else None,
        # A failed install or upgrade rolls back instead of leaving a half-applied release.
        atomic=True,
        cleanup_on_fail=True,
        max_history=10,
        timeout=600,
        opts=opts,
    )
