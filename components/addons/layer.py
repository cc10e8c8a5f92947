"""Builds the cluster add-ons: the registry below, in order, each on the `HelmAddon` pattern.

To add one: write `components/addons/<name>.py` with a `ClusterAddon` (chart pin, namespace,
values from its settings, optional IRSA policy), give it settings in `stacks/addon_settings.py`
and defaults per environment, and list it here after the add-ons it needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import pulumi

from components.addons.base import ClusterAddon, HelmAddon
from components.addons.cert_manager import CertManager
from components.addons.cluster_autoscaler import ClusterAutoscaler
from components.addons.external_dns import ExternalDns
from components.addons.external_secrets import ExternalSecrets
from components.addons.jaeger import QUERY_URL, Jaeger, tracing_collector
from components.addons.load_balancer_controller import LoadBalancerController
from components.addons.log_shipper import LogShipper
from components.addons.mesh import GATEWAY_NAMESPACE, IngressGateway, IstioBase, IstioCni, Istiod
from components.addons.metrics_server import MetricsServer
from components.addons.monitoring import (
    MONITORING_NAMESPACE,
    PROMETHEUS_URL,
    Monitoring,
    NodeExporter,
)
from components.addons.nvidia_device_plugin import NvidiaDevicePlugin
from components.addons.prometheus_adapter import PrometheusAdapter
from components.addons.registry import install_addons
from components.addons.reloader import Reloader
from components.addons.vertical_pod_autoscaler import VerticalPodAutoscaler
from components.context import ClusterContext, StackContext, with_cluster
from components.data.layer import DataTier
from components.data.search_access import index_replicas
from components.data.secrets import RemoteSecret, SecretAccess
from components.foundation.layer import Foundation
from components.shared.conventions import node_group_name
from stacks.addon_settings import AddonSettings, AddonsSettings
from stacks.edge_settings import EdgeSettings
from stacks.instance_types import INSTANCE_TYPES
from stacks.settings import StackSettings

ControllerSettingsT = TypeVar("ControllerSettingsT", bound=AddonSettings)


@dataclass(frozen=True)
class AddonsArgs:
    settings: AddonsSettings
    kubernetes_version: str
    # Namespaces whose ExternalSecrets may read the stack's secrets.
    app_namespaces: Sequence[str]
    # Each class's current node group (its EKS name) -> the hourly price of its first instance
    # type (the autoscaler's expander order).
    group_prices: Mapping[str, float]
    # The EKS names of previous generations kept while their nodes are drained: the autoscaler
    # adds nodes to them only when no current group can take a pod.
    retiring_groups: Sequence[str]
    # The GPU group's taints as (key, value, Kubernetes effect), which the device plugin tolerates.
    gpu_taints: Sequence[tuple[str, str, str]]
    # Whether any service's VPA updates pods (the VPA's updater and admission controller run).
    vpa_updates: bool
    environment: str
    # The edge's domain, zone and certificate contact (cert-manager, external-dns) and
    # whether the load balancer gets Shield Advanced.
    edge: EdgeSettings
    # The search domain's data nodes: with two or more, each trace index keeps a replica.
    search_data_nodes: int

    @classmethod
    def from_settings(cls, settings: StackSettings) -> AddonsArgs:
        return cls(
            settings=settings.addons,
            kubernetes_version=settings.kubernetes_version,
            # The services' namespace (the database bootstrap reads its secret itself).
            app_namespaces=[settings.application.namespace],
            group_prices={
                node_group_name(name, group.generation): INSTANCE_TYPES[
                    group.instance_types[0]
                ].hourly_usd
                for name, group in settings.node_groups.items()
            },
            retiring_groups=[
                node_group_name(name, previous.generation)
                for name, group in settings.node_groups.items()
                if (previous := group.previous_group()) is not None
            ],
            gpu_taints=[
                (t.key, t.value, t.kubernetes_effect()) for t in settings.node_groups.gpu.taints
            ],
            vpa_updates=any(
                s.vertical_scaling.update_mode != "Off" for s in settings.services.values()
            ),
            environment=settings.environment,
            edge=settings.edge,
            search_data_nodes=settings.data.search.instance_count,
        )


@dataclass(frozen=True)
class ClusterAddons:
    installed: dict[str, HelmAddon]
    # The ClusterSecretStore the application's ExternalSecrets read from.
    secret_store: str


@dataclass(frozen=True)
class AddonInputs:
    """What the earlier layers give the add-ons."""

    secret_access: SecretAccess
    # The platform's Secrets Manager secrets (Grafana's admin, the alert receivers' keys).
    platform_secrets: Mapping[str, RemoteSecret]
    # Where Prometheus and Alertmanager keep their data.
    storage_class: str
    # The VPC the load balancer controller puts the ALB in.
    vpc_id: pulumi.Input[str]
    # The search domain the log shipper and Jaeger write to.
    search_endpoint: pulumi.Input[str]
    search_domain_arn: pulumi.Input[str]
    # The search bootstrap, once it has mapped the writers' roles: Jaeger installs after it.
    search_access_applied: pulumi.Input[pulumi.Resource] | None = None

    @classmethod
    def from_layers(
        cls,
        foundation: Foundation,
        data: DataTier,
        search_access_applied: pulumi.Input[pulumi.Resource] | None = None,
    ) -> AddonInputs:
        return cls(
            secret_access=data.secret_access,
            platform_secrets=data.platform_secrets,
            storage_class=foundation.default_storage_class,
            vpc_id=foundation.network.vpc_id,
            search_endpoint=data.search.endpoint,
            search_domain_arn=data.search.arn,
            search_access_applied=search_access_applied,
        )


def addon_registry(
    context: StackContext, args: AddonsArgs, given: AddonInputs
) -> list[ClusterAddon]:
    """Every add-on the platform knows, in installation order (enabled or not)."""
    settings, edge = args.settings, args.edge
    monitored = settings.monitoring.enabled

    operator_urls = (
        {ui: f"https://{host}" for ui, host in edge.operator_hosts().items()}
        if edge.enabled
        else {}
    )

    def for_the_edge(addon: ControllerSettingsT) -> ControllerSettingsT:
        """An edge controller's settings: not installed where the stack has no edge."""
        return addon if edge.enabled else addon.model_copy(update={"enabled": False})

    return [
        ExternalSecrets(
            settings.external_secrets,
            region=context.region,
            access=given.secret_access,
            # The monitoring namespace reads the platform's own secrets only (its ExternalSecrets
            # name them); the application namespaces read the services'.
            consumer_namespaces=[
                *args.app_namespaces,
                *([MONITORING_NAMESPACE] if settings.monitoring.enabled else []),
                # The gateway's: the rate limiter's Redis token, and the operators' sign-in
                # client, which the load balancer controller reads there.
                *([GATEWAY_NAMESPACE] if edge.enabled else []),
            ],
        ),
        # Monitoring next: the add-ons after it create their ServiceMonitors with its CRDs.
        Monitoring(
            settings.monitoring,
            environment=args.environment,
            cluster_name=context.prefix,
            storage_class=given.storage_class,
            secrets=given.platform_secrets,
            store_name=ExternalSecrets.store_name,
            grafana_url=operator_urls.get("grafana"),
            prometheus_url=operator_urls.get("prometheus"),
            traces_url=QUERY_URL if settings.jaeger.enabled else None,
        ),
        NodeExporter(installed_with=monitored),
        # The mesh before the services, whose pods its webhook gives sidecars.
        IstioBase(installed_with=settings.mesh.enabled),
        IstioCni(installed_with=settings.mesh.enabled),
        Istiod(settings.mesh, tracing_collector=tracing_collector(settings)),
        # The edge: the ALB's controller, the gateway behind it, its certificate and records.
        LoadBalancerController(
            for_the_edge(settings.load_balancer_controller),
            cluster_name=context.prefix,
            region=context.region,
            vpc_id=given.vpc_id,
            shield_advanced=edge.shield_advanced,
            monitored=monitored,
        ),
        ExternalDns(
            for_the_edge(settings.external_dns),
            zone_id=edge.hosted_zone.id,
            domain=edge.domain,
            owner_id=context.prefix,
            monitored=monitored,
        ),
        CertManager(
            for_the_edge(settings.cert_manager),
            zone_id=edge.hosted_zone.id,
            domain=edge.domain,
            acme_email=edge.acme_email,
            monitored=monitored,
        ),
        IngressGateway(for_the_edge(settings.ingress_gateway)),
        LogShipper(
            settings.log_shipper,
            region=context.region,
            search_endpoint=given.search_endpoint,
            search_domain_arn=given.search_domain_arn,
            monitored=monitored,
        ),
        Jaeger(
            settings.jaeger,
            region=context.region,
            search_endpoint=given.search_endpoint,
            search_domain_arn=given.search_domain_arn,
            index_replicas=index_replicas(args.search_data_nodes),
            search_access_applied=given.search_access_applied,
        ),
        MetricsServer(settings.metrics_server, monitored=monitored),
        ClusterAutoscaler(
            settings.cluster_autoscaler,
            cluster_name=context.prefix,
            region=context.region,
            kubernetes_version=args.kubernetes_version,
            group_prices=args.group_prices,
            retiring_groups=args.retiring_groups,
            monitored=monitored,
        ),
        NvidiaDevicePlugin(settings.nvidia_device_plugin, gpu_class="gpu", taints=args.gpu_taints),
        VerticalPodAutoscaler(settings.vertical_pod_autoscaler, updates=args.vpa_updates),
        PrometheusAdapter(
            settings.prometheus_adapter,
            default_prometheus_url=PROMETHEUS_URL if settings.monitoring.enabled else None,
        ),
        Reloader(
            settings.reloader, watched_namespaces=args.app_namespaces[:1], monitored=monitored
        ),
    ]


def build_addons(
    context: StackContext, cluster: ClusterContext, args: AddonsArgs, given: AddonInputs
) -> ClusterAddons:
    installed = install_addons(
        context.prefix,
        addon_registry(context, args, given),
        cluster.oidc,
        with_cluster(context, cluster),
        permissions_boundary=context.permissions_boundary,
    )
    return ClusterAddons(installed=installed, secret_store=ExternalSecrets.store_name)
