"""Upstream Helm charts, pinned, installed as `helm.v3.Release` (visible to tests and previews)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s


@dataclass(frozen=True)
class HelmChart:
    chart: str
    # An exact version: a chart upgrade is a reviewed change, never a side effect of `up`.
    version: str
    repository: str


def helm_release(
    name: str,
    chart: HelmChart,
    *,
    namespace: pulumi.Input[str],
    values: Mapping[str, Any],
    opts: pulumi.ResourceOptions,
) -> k8s.helm.v3.Release:
    return k8s.helm.v3.Release(
        name,
        name=name,
        chart=chart.chart,
        version=chart.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository),
        namespace=namespace,
        values=dict(values),
        # A failed install or upgrade rolls back instead of leaving a half-applied release.
        atomic=True,
        cleanup_on_fail=True,
        max_history=10,
        timeout=600,
        opts=opts,
    )
