"""Builds the mesh layer: each service's traffic policy, once Istio's CRDs exist.

Istio itself is an add-on (components/addons/mesh.py); its security policies are the security
layer's (components/security/mesh_policies.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from components.context import ClusterContext, StackContext, with_cluster
from components.mesh.traffic import ServiceTraffic, ServiceTrafficArgs
from stacks.catalog import ServiceName, ServiceSettings
from stacks.settings import StackSettings
from stacks.traffic_settings import TrafficSettings


@dataclass(frozen=True)
class MeshArgs:
    app_namespace: str
    services: Mapping[ServiceName, ServiceSettings]
    traffic: TrafficSettings

    @classmethod
    def from_settings(cls, settings: StackSettings) -> MeshArgs:
        return cls(
            app_namespace=settings.application.namespace,
            services=settings.services,
            traffic=settings.addons.mesh.traffic,
        )


def build_mesh(
    context: StackContext,
    cluster: ClusterContext,
    args: MeshArgs,
    mesh_crds: pulumi.Resource | None,
) -> ServiceTraffic | None:
    """Nothing without the mesh."""
    if mesh_crds is None:
        return None
    return ServiceTraffic(
        f"{context.prefix}-service-traffic",
        ServiceTrafficArgs(
            namespace=args.app_namespace, services=args.services, traffic=args.traffic
        ),
        opts=pulumi.ResourceOptions.merge(
            with_cluster(context, cluster), pulumi.ResourceOptions(depends_on=[mesh_crds])
        ),
    )
