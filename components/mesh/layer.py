"""Builds the mesh layer: each service's traffic policy, once Istio's CRDs exist.

Istio itself is an add-on (components/addons/mesh.py); its security policies are the security
layer's (components/security/mesh_policies.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi

from components.addons.jaeger import TracingCollector, tracing_collector
from components.context import ClusterContext, StackContext, with_cluster
from components.foundation.network import subnet_layout
from components.mesh.egress import MeshEgress, MeshEgressArgs
from components.mesh.telemetry import MeshTelemetry
from components.mesh.traffic import ServiceTraffic, ServiceTrafficArgs
from stacks.addon_settings import OutboundSettings, TracingSettings
from stacks.catalog import ServiceName, ServiceSettings
from stacks.settings import StackSettings
from stacks.traffic_settings import TrafficSettings


@dataclass(frozen=True)
class MeshArgs:
    app_namespace: str
    services: Mapping[ServiceName, ServiceSettings]
    traffic: TrafficSettings
    outbound: OutboundSettings
    tracing: TracingSettings
    # Where spans go (Jaeger's collector), if anywhere.
    tracing_collector: TracingCollector | None
    # The private subnets (the data tier's) and the region (its AWS API names).
    store_cidrs: Sequence[str]
    region: str

    @classmethod
    def from_settings(cls, settings: StackSettings) -> MeshArgs:
        return cls(
            app_namespace=settings.application.namespace,
            services=settings.services,
            traffic=settings.addons.mesh.traffic,
            outbound=settings.addons.mesh.outbound,
            tracing=settings.addons.mesh.tracing,
            tracing_collector=tracing_collector(settings.addons),
            store_cidrs=subnet_layout(settings.vpc_cidr, len(settings.availability_zones))[0],
            region=settings.region,
        )


@dataclass(frozen=True)
class MeshPolicies:
    traffic: ServiceTraffic
    egress: MeshEgress
    # Where spans have a collector to go to.
    telemetry: MeshTelemetry | None


def build_mesh(
    context: StackContext,
    cluster: ClusterContext,
    args: MeshArgs,
    mesh_crds: pulumi.Resource | None,
    aws_callers: Sequence[str],
    search_endpoint: pulumi.Input[str],
) -> MeshPolicies | None:
    """Nothing without the mesh."""
    if mesh_crds is None:
        return None
    opts = pulumi.ResourceOptions.merge(
        with_cluster(context, cluster), pulumi.ResourceOptions(depends_on=[mesh_crds])
    )
    traffic = ServiceTraffic(
        f"{context.prefix}-service-traffic",
        ServiceTrafficArgs(
            namespace=args.app_namespace, services=args.services, traffic=args.traffic
        ),
        opts=opts,
    )
    egress = MeshEgress(
        f"{context.prefix}-mesh-egress",
        MeshEgressArgs(
            namespace=args.app_namespace,
            services=args.services,
            external_hosts=args.outbound.external_hosts,
            store_cidrs=args.store_cidrs,
            search_endpoint=search_endpoint,
            region=args.region,
            aws_callers=aws_callers,
            tracing_collector=args.tracing_collector,
        ),
        opts=opts,
    )
    telemetry = (
        MeshTelemetry(f"{context.prefix}-mesh-telemetry", args.tracing, opts=opts)
        if args.tracing_collector is not None
        else None
    )
    return MeshPolicies(traffic, egress, telemetry)
