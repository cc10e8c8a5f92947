"""Builds the edge: the web ACL and the ALB's certificate in AWS, then the Ingresses, the
gateway's certificate and the routes in the cluster (components/edge/routes.py).

Its controllers are add-ons (the AWS Load Balancer Controller, cert-manager, external-dns and
the Istio ingress gateway, components/addons/); this layer is what they act on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi

from components.addons.base import HelmAddon
from components.addons.cert_manager import CertManager, issuer_name
from components.addons.external_secrets import ExternalSecrets
from components.addons.jaeger import JAEGER_COLLECTOR, QUERY_PORT
from components.addons.layer import ClusterAddons
from components.addons.load_balancer_controller import LoadBalancerController
from components.addons.mesh import GATEWAY_NAMESPACE, IngressGateway, IstioBase
from components.addons.monitoring import (
    GRAFANA_PORT,
    GRAFANA_SERVICE,
    MONITORING_NAMESPACE,
    PROMETHEUS_PORT,
    PROMETHEUS_SERVICE,
)
from components.context import ClusterContext, StackContext, with_cluster
from components.data.layer import DataTier
from components.data.secrets import RemoteSecret
from components.edge.certificate import PublicCertificate, PublicCertificateArgs
from components.edge.firewall import EdgeFirewall, EdgeFirewallArgs
from components.edge.rate_limit import GatewayRateLimits, GatewayRateLimitsArgs
from components.edge.routes import Backend, EdgeRoutes, EdgeRoutesArgs
from components.foundation.network import subnet_layout
from components.shared.conventions import service_host
from stacks.addon_settings import ControllerSettings
from stacks.catalog import ServiceName, ServiceSettings
from stacks.edge_settings import EdgeSettings, UserTokens
from stacks.secrets import OPERATOR_SSO, REDIS_CREDENTIALS
from stacks.settings import StackSettings
from stacks.traffic_settings import TrafficSettings

# The API host's paths: GraphQL on the gateway service, everything else on the REST API.
API_PATHS: dict[str, ServiceName] = {"/graphql": "graphql-gateway", "/": "financial-planning-api"}
# The operator UIs' Services (kube-prometheus-stack's, see addons/monitoring.py; Jaeger's
# one Service serves its UI beside the collector).
OPERATOR_BACKENDS: dict[str, Backend] = {
    "grafana": Backend(service_host(GRAFANA_SERVICE, MONITORING_NAMESPACE), GRAFANA_PORT),
    "prometheus": Backend(service_host(PROMETHEUS_SERVICE, MONITORING_NAMESPACE), PROMETHEUS_PORT),
    "jaeger": Backend(JAEGER_COLLECTOR.host, QUERY_PORT),
}


@dataclass(frozen=True)
class EdgeArgs:
    settings: EdgeSettings
    app_namespace: str
    services: Mapping[ServiceName, ServiceSettings]
    traffic: TrafficSettings
    protect: bool
    rate_limiter: ControllerSettings
    # The load balancer's subnets (the public ones): the gateway admits no one else.
    load_balancer_cidrs: Sequence[str] = ()

    @classmethod
    def from_settings(cls, settings: StackSettings) -> EdgeArgs:
        _, public = subnet_layout(settings.vpc_cidr, len(settings.availability_zones))
        return cls(
            settings=settings.edge,
            app_namespace=settings.application.namespace,
            services=settings.services,
            traffic=settings.addons.mesh.traffic,
            protect=settings.protect,
            rate_limiter=settings.addons.rate_limiter,
            load_balancer_cidrs=public,
        )


@dataclass(frozen=True)
class EdgeInputs:
    """What the earlier layers give the edge."""

    installed: Mapping[str, HelmAddon]
    platform_secrets: Mapping[str, RemoteSecret]
    # The services' secrets (the Redis token the rate limiter shares) and the Redis endpoint.
    remote_secrets: Mapping[str, RemoteSecret]
    redis_host: pulumi.Input[str]
    redis_port: int

    @classmethod
    def from_layers(cls, data: DataTier, addons: ClusterAddons) -> EdgeInputs:
        return cls(
            installed=addons.installed,
            platform_secrets=data.platform_secrets,
            remote_secrets=data.remote_secrets,
            redis_host=data.cache.primary_address,
            redis_port=data.cache.port,
        )


@dataclass(frozen=True)
class Edge:
    firewall: EdgeFirewall
    certificate: PublicCertificate
    routes: EdgeRoutes
    rate_limits: GatewayRateLimits
    api_host: str
    operator_hosts: list[str]


def jwks_uri(args: EdgeArgs, tokens: UserTokens) -> str:
    """The token keys at their service's cluster-local name and port (edge.userTokens). Plain
    HTTP in the URL: the sidecars carry it in mTLS."""
    service = tokens.jwks_service
    port = tokens.keys_port(args.services[service].port)
    return f"http://{service_host(service, args.app_namespace)}:{port}{tokens.jwks_path}"


def build_edge(
    context: StackContext, cluster: ClusterContext, args: EdgeArgs, given: EdgeInputs
) -> Edge:
    settings, prefix = args.settings, context.prefix
    installed, platform_secrets = given.installed, given.platform_secrets
    access, login = settings.operator_access, settings.operator_login
    operator_hosts = settings.operator_hosts()
    firewall = EdgeFirewall(
        f"{prefix}-edge-firewall",
        EdgeFirewallArgs(
            name=f"{prefix}-edge",
            settings=settings.waf,
            allow_listed_hosts=operator_hosts if login is None else {},
            allowed_cidrs=(access.allowed_cidrs or []) if access is not None else [],
            account_id=context.account_id,
            region=context.region,
            protect=args.protect,
        ),
        opts=context.with_aws,
    )
    certificate = PublicCertificate(
        f"{prefix}-edge-certificate",
        PublicCertificateArgs(domain=settings.domain, zone_id=settings.hosted_zone.id),
        opts=context.with_aws,
    )
    in_cluster = with_cluster(context, cluster)
    gateway_ready = [installed[name] for name in (IngressGateway.name, CertManager.name)]
    routes = EdgeRoutes(
        f"{prefix}-edge-routes",
        EdgeRoutesArgs(
            namespace=GATEWAY_NAMESPACE,
            group=prefix,
            api_host=settings.api_hostname,
            api_paths={
                path: Backend(
                    service_host(service, args.app_namespace),
                    args.services[service].port,
                    args.traffic.class_of(service),
                )
                for path, service in API_PATHS.items()
            },
            operator_hosts={host: OPERATOR_BACKENDS[ui] for ui, host in operator_hosts.items()},
            operator_login=login,
            operator_login_secret=platform_secrets[OPERATOR_SSO] if login else None,
            secret_store=ExternalSecrets.store_name,
            issuer=issuer_name(settings.acme_server),
            certificate_arn=certificate.arn,
            web_acl_arn=firewall.web_acl_arn,
            shield_advanced=settings.shield_advanced,
            hsts_max_age_seconds=settings.hsts_max_age_seconds,
            deletion_protection=args.protect,
            load_balancer_cidrs=args.load_balancer_cidrs,
            operator_allowed_cidrs=(access.allowed_cidrs or []) if access is not None else [],
        ),
        opts=in_cluster,
        after=gateway_ready,
        ingress_after=[installed[LoadBalancerController.name]],
        secrets_after=[installed[ExternalSecrets.name]],
    )
    rate_limits = GatewayRateLimits(
        f"{prefix}-gateway-rate-limits",
        GatewayRateLimitsArgs(
            namespace=GATEWAY_NAMESPACE,
            api_host=settings.api_hostname,
            tokens=settings.user_tokens,
            jwks_uri=jwks_uri(args, settings.user_tokens),
            limits=settings.rate_limits,
            service=args.rate_limiter,
            redis_host=given.redis_host,
            redis_port=given.redis_port,
            redis_secret=given.remote_secrets[REDIS_CREDENTIALS],
            secret_store=ExternalSecrets.store_name,
        ),
        opts=in_cluster,
        # Its namespace (the gateway add-on's), Istio's kinds and External Secrets: not the
        # gateway's release, so the limiter starts beside it.
        after=[
            installed[IngressGateway.name].namespace,
            installed[IstioBase.name],
            installed[ExternalSecrets.name],
        ],
    )
    return Edge(
        firewall,
        certificate,
        routes,
        rate_limits,
        settings.api_hostname,
        list(settings.operator_hosts().values()),
    )
