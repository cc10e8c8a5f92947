"""Builds the observability layer: what Prometheus scrapes and alerts on for the application.

The monitoring stack itself is an add-on (components/addons/monitoring.py); this layer adds the
application's ServiceMonitors and the seed's alert rules once its CRDs exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from components.addons.monitoring import MONITORING_NAMESPACE
from components.context import ClusterContext, StackContext, with_cluster
from components.observability.monitors import ApplicationMonitoring, ApplicationMonitoringArgs
from stacks.catalog import ServiceName, ServiceSettings
from stacks.settings import StackSettings


@dataclass(frozen=True)
class ObservabilityArgs:
    enabled: bool
    app_namespace: str
    services: Mapping[ServiceName, ServiceSettings]
    mesh: bool
    edge: bool
    # Jaeger runs: scrape its collector's metrics.
    tracing: bool

    @classmethod
    def from_settings(cls, settings: StackSettings) -> ObservabilityArgs:
        return cls(
            enabled=settings.addons.monitoring.enabled,
            app_namespace=settings.application.namespace,
            services=settings.services,
            mesh=settings.addons.mesh.enabled,
            edge=settings.edge.enabled and settings.addons.mesh.enabled,
            tracing=settings.addons.jaeger.enabled,
        )


def build_observability(
    context: StackContext,
    cluster: ClusterContext,
    args: ObservabilityArgs,
    monitoring: pulumi.Resource | None,
) -> ApplicationMonitoring | None:
    if not args.enabled or monitoring is None:
        return None
    return ApplicationMonitoring(
        f"{context.prefix}-app-monitoring",
        ApplicationMonitoringArgs(
            app_namespace=args.app_namespace,
            rules_namespace=MONITORING_NAMESPACE,
            services=args.services,
            mesh=args.mesh,
            edge=args.edge,
            tracing=args.tracing,
        ),
        opts=pulumi.ResourceOptions.merge(
            with_cluster(context, cluster), pulumi.ResourceOptions(depends_on=[monitoring])
        ),
    )
