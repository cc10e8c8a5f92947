"""Plain Kubernetes Secrets, for where no secret store delivers them (a cluster without AWS)."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

from components.shared.conventions import standard_labels


def opaque_secret(
    name: str,
    values: Mapping[str, pulumi.Output[str]],
    *,
    namespace_name: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
    secret_type: str = "Opaque",
) -> k8s.core.v1.Secret:
    """A Kubernetes Secret; the SDK keeps its data secret in state, outputs and previews."""
    return k8s.core.v1.Secret(
        f"secret-{name}",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=name, namespace=namespace_name, labels=standard_labels(name, "secrets")
        ),
        type=secret_type,
        # The SDK marks stringData secret as a whole (state, outputs and previews).
        string_data=dict(values),
        opts=opts,
    )
