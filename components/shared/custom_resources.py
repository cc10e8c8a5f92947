"""A custom resource with the platform's standard labels, in one place (namespace None: a
cluster-scoped kind)."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.shared.conventions import standard_labels


def labelled_custom_resource(
    resource_name: str,
    *,
    api_version: str,
    kind: str,
    name: str,
    namespace: pulumi.Input[str] | None,
    component: str,
    spec: Any,
    opts: pulumi.ResourceOptions,
) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version=api_version,
        kind=kind,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=name, namespace=namespace, labels=standard_labels(name, component)
        ),
        spec=spec,
        opts=opts,
    )
