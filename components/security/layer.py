"""Builds the security layer over what the layers before it created."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi

from components.addons.cert_manager import CERT_MANAGER_NAMESPACE
from components.addons.cert_manager import METRICS_PORT as CERT_MANAGER_METRICS
from components.addons.cert_manager import WEBHOOK_PORT as CERT_MANAGER_WEBHOOK_PORT
from components.addons.external_dns import METRICS_PORT as EXTERNAL_DNS_METRICS
from components.addons.jaeger import METRICS_PORT as JAEGER_METRICS
from components.addons.jaeger import (
    OTLP_GRPC_PORT,
    QUERY_PORT,
    TRACING_NAMESPACE,
    TracingCollector,
    tracing_collector,
)
from components.addons.layer import ClusterAddons
from components.addons.load_balancer_controller import EDGE_NAMESPACE
from components.addons.load_balancer_controller import WEBHOOK_PORT as LB_WEBHOOK_PORT
from components.addons.log_shipper import LOGGING_NAMESPACE
from components.addons.log_shipper import METRICS_PORT as LOG_SHIPPER_METRICS
from components.addons.mesh import (
    GATEWAY_HTTPS_PORT,
    GATEWAY_NAMESPACE,
    GATEWAY_RELEASE,
    MESH_NAMESPACE,
    IstioBase,
)
from components.addons.monitoring import MONITORING_NAMESPACE
from components.context import ClusterContext, StackContext, with_cluster
from components.data.layer import DataTier
from components.data.search_access import SEARCH_BOOTSTRAP_NAMESPACE
from components.edge.rate_limit import GRPC_PORT as RATE_LIMIT_GRPC
from components.foundation.layer import Foundation
from components.foundation.network import control_plane_layout, subnet_layout
from components.security.audit import AuditArgs, AuditTrail, RuntimeAgentArgs
from components.security.mesh_policies import MeshPolicies, MeshPoliciesArgs, TokenKeys, principal
from components.security.network_policies import (
    AppNetworkPolicies,
    AppNetworkPoliciesArgs,
    PlatformNamespacePolicy,
    PlatformNetworkPolicies,
)
from components.security.rbac import Personas, PersonasArgs
from components.shared.conventions import DATABASE_BOOTSTRAP_NAMESPACE
from components.workloads.layer import Workloads
from stacks.catalog import ServiceName, ServiceSettings
from stacks.secrets import FINDINGS_PAGER_KEY
from stacks.settings import SecuritySettings, StackSettings

# The EKS Pod Identity agent on every node (its link-local address, EKS User Guide).
POD_IDENTITY_AGENT = "169.254.170.23/32"
# What the API server must reach in each platform namespace: webhooks and aggregated APIs,
# admitted from the control plane's own subnets (components/foundation/network.py). External
# Secrets' webhook 10250; metrics-server 10250; the VPA admission controller 8000;
# prometheus-adapter 6443. The GPU device plugin and Reloader take none.
PLATFORM_INGRESS: dict[str, list[int]] = {
    "external-secrets-system": [10250],
    "autoscaling-system": [10250, 8000, 6443],
    "nvidia-device-plugin": [],
    "reloader": [],
    # The Prometheus operator's admission webhook.
    MONITORING_NAMESPACE: [10250],
    # Host-network pods, which NetworkPolicy does not reach: nothing to admit.
    "node-exporter": [],
    # istiod's injection webhook.
    MESH_NAMESPACE: [15017],
    "istio-cni": [],
    # The gateway serves no webhook.
    GATEWAY_NAMESPACE: [],
    # The load balancer controller's webhook (9443); external-dns takes nothing.
    EDGE_NAMESPACE: [LB_WEBHOOK_PORT],
    CERT_MANAGER_NAMESPACE: [CERT_MANAGER_WEBHOOK_PORT],
    # Fluent Bit takes nothing in but Prometheus (below).
    LOGGING_NAMESPACE: [],
    # Jaeger takes spans and UI requests from pods only (below).
    TRACING_NAMESPACE: [],
}
# What every pod may reach: istiod's xDS (15012), which each sidecar and gateway calls.
EVERY_POD_INGRESS: dict[str, list[int]] = {MESH_NAMESPACE: [15012]}
# What only the ALB reaches, from its subnets (the public ones): the gateway's HTTPS, where
# its health check goes too (components/edge/routes.py). Pod addresses are VPC addresses: any
# pod admitted here could skip the web ACL, the rate limits and the operators' sign-in.
LOAD_BALANCER_INGRESS: dict[str, list[int]] = {GATEWAY_NAMESPACE: [GATEWAY_HTTPS_PORT]}
# Pods of other namespaces a platform namespace admits: within monitoring, Grafana reads
# Prometheus, Prometheus alerts Alertmanager, Alertmanager replicas gossip; prometheus-adapter
# queries Prometheus.
# Prometheus scrapes External Secrets (8080), the cluster autoscaler (8085) and Reloader (9090).
PLATFORM_PEERS: dict[str, list[tuple[str, int | None]]] = {
    MONITORING_NAMESPACE: [
        (MONITORING_NAMESPACE, None),
        ("autoscaling-system", 9090),
        # The ingress gateway serves the operator UIs: Grafana (3000) and Prometheus.
        (GATEWAY_NAMESPACE, 3000),
        (GATEWAY_NAMESPACE, 9090),
    ],
    "external-secrets-system": [(MONITORING_NAMESPACE, 8080)],
    "autoscaling-system": [(MONITORING_NAMESPACE, 8085)],
    "reloader": [(MONITORING_NAMESPACE, 9090)],
    MESH_NAMESPACE: [(MONITORING_NAMESPACE, 15014)],
    # The gateway: Prometheus scrapes its Envoy statistics; the gateway asks the rate limit
    # service beside it.
    GATEWAY_NAMESPACE: [(MONITORING_NAMESPACE, 15090), (GATEWAY_NAMESPACE, RATE_LIMIT_GRPC)],
    # The load balancer controller's metrics (8080) and external-dns's (7979).
    EDGE_NAMESPACE: [(MONITORING_NAMESPACE, 8080), (MONITORING_NAMESPACE, EXTERNAL_DNS_METRICS)],
    CERT_MANAGER_NAMESPACE: [(MONITORING_NAMESPACE, CERT_MANAGER_METRICS)],
    LOGGING_NAMESPACE: [(MONITORING_NAMESPACE, LOG_SHIPPER_METRICS)],
    # Jaeger: the gateway's proxies send spans and serve its UI; Grafana reads traces from it
    # and Prometheus scrapes the collector's metrics.
    TRACING_NAMESPACE: [
        (GATEWAY_NAMESPACE, OTLP_GRPC_PORT),
        (GATEWAY_NAMESPACE, QUERY_PORT),
        (MONITORING_NAMESPACE, QUERY_PORT),
        (MONITORING_NAMESPACE, JAEGER_METRICS),
    ],
}
# The ports of a platform namespace that the application's pods may reach: the services and
# their sidecars send spans to Jaeger's collector.
APPLICATION_PEERS: dict[str, list[int]] = {TRACING_NAMESPACE: [OTLP_GRPC_PORT]}


@dataclass(frozen=True)
class SecurityArgs:
    vpc_cidr: str
    # The stack's availability zones, one subnet of each kind in each (the subnet layout).
    zones: int
    # The cluster's Kubernetes minor (GuardDuty's agent add-on runs EKS's default for it).
    kubernetes_version: str
    app_namespace: str
    services: Mapping[ServiceName, ServiceSettings]
    developers_may_edit: bool
    settings: SecuritySettings
    # Where GuardDuty is on: the PagerDuty integration key its findings page through.
    findings_pager_key: pulumi.Output[str] | None = None
    # Where the services and their sidecars send spans (Jaeger's collector), if anywhere.
    tracing_collector: TracingCollector | None = None
    # The control plane's subnets move (an existing stack's first `up` after they were split
    # from the private ones): webhooks admit the private subnets too.
    webhooks_from_private_subnets: bool = False
    # Where the edge checks users' tokens: the service that serves their keys, and the path.
    token_keys_service: ServiceName | None = None
    token_keys_path: str | None = None

    @classmethod
    def from_settings(
        cls, settings: StackSettings, secrets: Mapping[str, pulumi.Output[str]]
    ) -> SecurityArgs:
        return cls(
            vpc_cidr=settings.vpc_cidr,
            zones=len(settings.availability_zones),
            kubernetes_version=settings.kubernetes_version,
            app_namespace=settings.application.namespace,
            services=settings.services,
            developers_may_edit=settings.access.developers_may_edit,
            settings=settings.security,
            findings_pager_key=secrets.get(FINDINGS_PAGER_KEY),
            tracing_collector=tracing_collector(settings.addons),
            webhooks_from_private_subnets=settings.webhooks_from_private_subnets,
            token_keys_service=(
                settings.edge.user_tokens.jwks_service if settings.edge.enabled else None
            ),
            token_keys_path=settings.edge.user_tokens.jwks_path if settings.edge.enabled else None,
        )


@dataclass(frozen=True)
class Guarded:
    """What the security layer guards: the application namespace, its services' AWS roles,
    and the platform namespaces the add-ons created."""

    app_namespace: pulumi.Input[str]
    aws_callers: Sequence[str]
    platform_namespaces: Sequence[str]
    # The mesh's CRDs (Istio's base chart), when the mesh runs: its policies need them.
    mesh_crds: pulumi.Resource | None = None
    # The VPC and private subnets (GuardDuty's agent endpoint goes there).
    vpc_id: pulumi.Input[str] | None = None
    private_subnet_ids: Sequence[pulumi.Input[str]] = ()

    @classmethod
    def from_layers(
        cls, foundation: Foundation, data: DataTier, addons: ClusterAddons, workloads: Workloads
    ) -> Guarded:
        return cls(
            app_namespace=workloads.application.namespace_name,
            aws_callers=list(data.service_roles),
            platform_namespaces=sorted({a.namespace_name for a in addons.installed.values()}),
            mesh_crds=addons.installed.get(IstioBase.name),
            vpc_id=foundation.private_network.vpc_id,
            private_subnet_ids=foundation.private_network.subnet_ids,
        )


@dataclass(frozen=True)
class Security:
    network: AppNetworkPolicies
    personas: Personas
    audit: AuditTrail
    mesh: MeshPolicies | None


def api_server_cidrs(vpc_cidr: str, zones: int, moving: bool) -> list[str]:
    """Where the API server's calls to webhooks come from: EKS's network interfaces in the
    cluster's subnets (the control plane's own). While an existing cluster's interfaces move
    there from the private subnets, the private subnets as well: EKS does not document that
    the old interfaces are gone when the update of the cluster's subnets reports success."""
    cidrs = control_plane_layout(vpc_cidr, zones)
    if moving:
        cidrs += subnet_layout(vpc_cidr, zones)[0]
    return cidrs


def former_ingress_urns(context: StackContext, services: Sequence[str]) -> dict[str, str]:
    """Where each service's ingress policy lived before this layer: its Microservice."""
    chain = (
        "financial-planning:workloads:Application$financial-planning:workloads:Microservice"
        "$kubernetes:networking.k8s.io/v1:NetworkPolicy"
    )
    return {
        service: f"urn:pulumi:{context.stack}::{context.project}::{chain}::{service}-ingress"
        for service in services
    }


def build_security(
    context: StackContext, cluster: ClusterContext, args: SecurityArgs, guarded: Guarded
) -> Security:
    prefix, in_cluster = context.prefix, with_cluster(context, cluster)
    private_cidrs, public_cidrs = subnet_layout(args.vpc_cidr, args.zones)
    network = AppNetworkPolicies(
        f"{prefix}-app-network",
        AppNetworkPoliciesArgs(
            namespace=guarded.app_namespace,
            services=args.services,
            store_cidrs=private_cidrs,
            vpc_cidr=args.vpc_cidr,
            aws_callers=guarded.aws_callers,
            former_ingress_urn=former_ingress_urns(context, list(args.services)),
            tracing_collector=args.tracing_collector,
            token_issuer=args.token_keys_service,
        ),
        opts=in_cluster,
    )
    platform = [
        PlatformNamespacePolicy(
            namespace,
            PLATFORM_INGRESS.get(namespace, []),
            from_namespaces=[
                *PLATFORM_PEERS.get(namespace, ()),
                *((args.app_namespace, port) for port in APPLICATION_PEERS.get(namespace, ())),
            ],
            ports_from_every_pod=EVERY_POD_INGRESS.get(namespace, []),
            ports_from_load_balancer=LOAD_BALANCER_INGRESS.get(namespace, []),
        )
        for namespace in guarded.platform_namespaces
    ]
    # The database bootstrap: nothing in; out only to DNS, the node's Pod Identity agent (its
    # role's credentials), Secrets Manager (its interface endpoint, in the private subnets) and
    # PostgreSQL. HTTPS goes to the private subnets, not the whole VPC: the EKS API server's
    # network interfaces (the control plane's subnets) stay out of reach.
    platform.append(
        PlatformNamespacePolicy(
            DATABASE_BOOTSTRAP_NAMESPACE,
            [],
            egress=[
                (POD_IDENTITY_AGENT, 80),
                *((cidr, 443) for cidr in private_cidrs),
                *((cidr, 5432) for cidr in private_cidrs),
            ],
        )
    )
    # The search bootstrap: nothing in; out only to DNS, the node's Pod Identity agent and the
    # search domain (HTTPS to the private subnets, where its data nodes live).
    platform.append(
        PlatformNamespacePolicy(
            SEARCH_BOOTSTRAP_NAMESPACE,
            [],
            egress=[(POD_IDENTITY_AGENT, 80), *((cidr, 443) for cidr in private_cidrs)],
        )
    )
    PlatformNetworkPolicies(
        f"{prefix}-platform-network",
        platform,
        api_server_cidrs(args.vpc_cidr, args.zones, args.webhooks_from_private_subnets),
        public_cidrs,
        opts=in_cluster,
    )
    personas = Personas(
        f"{prefix}-personas",
        PersonasArgs(
            app_namespaces=[guarded.app_namespace], developers_may_edit=args.developers_may_edit
        ),
        opts=in_cluster,
    )
    audit = AuditTrail(
        f"{prefix}-audit",
        AuditArgs(
            name_prefix=prefix,
            region=context.region,
            account_id=context.account_id,
            guard_duty=args.settings.guard_duty,
            cloud_trail=args.settings.cloud_trail,
            trail_retention_days=args.settings.trail_retention_days,
            protect=context.protect,
            findings_pager_key=args.findings_pager_key,
            runtime_agent=(
                RuntimeAgentArgs(
                    cluster_name=cluster.name,
                    kubernetes_version=args.kubernetes_version,
                    vpc_id=guarded.vpc_id,
                    vpc_cidr=args.vpc_cidr,
                    subnet_ids=guarded.private_subnet_ids,
                    depends_on=cluster.ready,
                )
                if guarded.vpc_id is not None
                else None
            ),
        ),
        opts=context.with_aws,
    )
    mesh = None
    if guarded.mesh_crds is not None:
        mesh = MeshPolicies(
            f"{prefix}-mesh-policies",
            MeshPoliciesArgs(
                app_namespace=args.app_namespace,
                mesh_namespace=MESH_NAMESPACE,
                gateway_namespace=GATEWAY_NAMESPACE,
                services=args.services,
                token_keys=(
                    TokenKeys(
                        args.token_keys_service,
                        args.token_keys_path,
                        principal(GATEWAY_NAMESPACE, GATEWAY_RELEASE),
                    )
                    if args.token_keys_service is not None and args.token_keys_path is not None
                    else None
                ),
            ),
            opts=pulumi.ResourceOptions.merge(
                in_cluster, pulumi.ResourceOptions(depends_on=[guarded.mesh_crds])
            ),
        )
    return Security(network, personas, audit, mesh)
