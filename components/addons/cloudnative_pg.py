"""CloudNativePG: the PostgreSQL operator of the development stack's in-cluster database.

The chart installs the operator and its CRDs (`crds.create`, on by default); the database itself
is a `Cluster` custom resource of the data tier (components/data/in_cluster.py). The operator
calls no AWS API, so it has no IRSA role. Operator 1.30.0 ships with chart 0.29.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.addons.base import ClusterAddon
from components.shared.conventions import (
    restricted_container_security_context,
    restricted_pod_security_context,
)
from components.shared.helm import HelmChart

# The user the operator image runs as (the chart's own default).
OPERATOR_USER = 10001


@dataclass(frozen=True)
class CloudNativePG(ClusterAddon):
    replicas: int = 1

    name = "cloudnative-pg"
    chart = HelmChart(
        chart="cloudnative-pg",
        version="0.29.0",
        repository="https://cloudnative-pg.github.io/charts",
    )
    namespace = "cnpg-system"

    @property
    def enabled(self) -> bool:
        return True

    def values(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        return {
            "replicaCount": self.replicas,
            # The Cluster kind the data tier creates comes with the chart.
            "crds": {"create": True},
            "podSecurityContext": restricted_pod_security_context(OPERATOR_USER),
            "containerSecurityContext": restricted_container_security_context(OPERATOR_USER),
            "resources": {
                "requests": {"cpu": "50m", "memory": "128Mi"},
                "limits": {"memory": "512Mi"},
            },
        }
