"""The service mesh: Istio in sidecar mode, one pinned version for its three charts.

- `base` installs the CRDs (its templates, `base.enableCRDTemplates`, on by default);
- `cni` is the node agent that sets up each pod's traffic redirection, so that sidecar init
  containers need neither NET_ADMIN nor root and the application namespace can stay
  restricted. The agent itself mounts the node's CNI directories and runs as root with
  network capabilities: it has a privileged namespace of its own, `istio-cni`;
- `istiod`, told that the CNI agent is in use, in the restricted `istio-system`.

The application namespace carries `istio-injection=enabled`: its pods get an `istio-proxy`
sidecar (user 1337, all capabilities dropped, read-only root, RuntimeDefault seccomp) and an
`istio-validation` init container, both within the restricted profile.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import pulumi

from components.addons.base import ClusterAddon, CompanionAddon
from components.addons.jaeger import TracingCollector
from components.shared.conventions import CONTROLLER_NODES, PLATFORM_PRIORITY_CLASS, zone_spread
from components.shared.helm import HelmChart
from stacks.addon_settings import ISTIO_CNI_RESOURCES, IngressGatewaySettings, MeshSettings

ISTIO_VERSION = "1.30.3"
ISTIO_CHARTS = "https://istio-release.storage.googleapis.com/charts"
MESH_NAMESPACE = "istio-system"
CNI_NAMESPACE = "istio-cni"
GATEWAY_NAMESPACE = "istio-ingress"
# The gateway's release, Service, service account (the chart's `gateway.serviceAccountName`:
# the release name) and pod label `istio: ingressgateway` (the chart's label is the release
# name without its `istio-` prefix).
GATEWAY_RELEASE = "istio-ingressgateway"
GATEWAY_SELECTOR = {"istio": "ingressgateway"}
# The gateway's ports: HTTPS from the ALB, and the readiness endpoint its health check reads.
GATEWAY_HTTPS_PORT = 443
GATEWAY_STATUS_PORT = 15021
# Envoy statistics the gateway's proxy keeps beside Istio's default set (which has none of
# jwt_authn's: istio 1.30.3 pkg/bootstrap/config.go, the required inclusion prefixes, suffixes
# and regex; tools/packaging/common/envoy_bootstrap.json `stats_matcher`): the token keys'
# failed fetches (Envoy jwt_authn stats.h `jwks_fetch_failed`, counted by authenticator.cc
# `onJwksError`), which the TokenKeysUnavailable alert reads.
GATEWAY_EXTRA_STATS_SUFFIXES = ("jwt_authn.jwks_fetch_failed",)
RESTRICTED_SECCOMP = {"type": "RuntimeDefault"}


def gateway_proxy_config() -> dict[str, Any]:
    """The gateway pods' proxy config (the injector merges the pod annotation into it)."""
    return {
        # The ALB is the one proxy in front: the client's address is the last one it appends
        # to X-Forwarded-For (rate limits and logs see the client, not the ALB).
        "gatewayTopology": {"numTrustedProxies": 1},
        # Added to Istio's default statistics (pkg/bootstrap/config.go getStatsOptions: the
        # proxy config's inclusions, then the required ones).
        "proxyStatsMatcher": {"inclusionSuffixes": list(GATEWAY_EXTRA_STATS_SUFFIXES)},
    }


def istio_chart(chart: str) -> HelmChart:
    return HelmChart(chart=chart, version=ISTIO_VERSION, repository=ISTIO_CHARTS)


# The name the mesh's Telemetry resource gives its tracing provider.
TRACING_PROVIDER = "otel-tracing"


def tracing_provider(collector: TracingCollector | None) -> dict[str, Any]:
    """meshConfig's extension provider for spans over OTLP/gRPC, where there is a collector."""
    if collector is None:
        return {}
    return {
        "extensionProviders": [
            {
                "name": TRACING_PROVIDER,
                "opentelemetry": {"service": collector.host, "port": collector.port},
            }
        ]
    }


@dataclass(frozen=True)
class IstioBase(CompanionAddon):
    name = "istio-base"
    chart = istio_chart("base")
    release = "istio-base"
    namespace = MESH_NAMESPACE

    def values(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        return {"defaultRevision": "default"}


@dataclass(frozen=True)
class IstioCni(CompanionAddon):
    name = "istio-cni"
    chart = istio_chart("cni")
    release = "istio-cni"
    namespace = CNI_NAMESPACE
    pod_security = "privileged"

    def values(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        return {
            # Chained after the VPC CNI, in its directories (the chart's defaults are EKS's).
            "chained": True,
            "excludeNamespaces": ["kube-system", CNI_NAMESPACE],
            # Counted on every node by the node groups' capacity (stacks/capacity.py).
            "resources": ISTIO_CNI_RESOURCES.as_values(),
        }


@dataclass(frozen=True)
class Istiod(ClusterAddon):
    settings: MeshSettings
    # Where the proxies send spans (Jaeger's collector), if anywhere.
    tracing_collector: TracingCollector | None = None

    name = "istiod"
    chart = istio_chart("istiod")
    release = "istiod"
    namespace = MESH_NAMESPACE
    # Sidecars injected before the CNI agent runs would lack their traffic redirection.
    after = ("istio-base", "istio-cni")

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def values(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        settings = self.settings
        return {
            # A fixed replica count: with autoscaling off and two or more replicas the chart
            # adds its PodDisruptionBudget.
            "autoscaleEnabled": False,
            "replicaCount": settings.replicas,
            "resources": settings.resources.as_values(),
            "nodeSelector": CONTROLLER_NODES,
            "seccompProfile": RESTRICTED_SECCOMP,
            "cni": {"enabled": True},
            "env": {
                # The gateway's proxy fetches the users' token keys from their service itself,
                # through the mesh (components/edge/rate_limit.py).
                "PILOT_JWT_ENABLE_REMOTE_JWKS": "hybrid",
                # Every cluster to the gateway (the default, pilot/pkg/features/experimental.go,
                # 1.30.3), stated because the fetch depends on it: filtered, the gateway would
                # get only the clusters its routes name, not the keys' service's, while istiod
                # (model.LookupCluster reads the service registry) still hands it the fetch.
                "PILOT_FILTER_GATEWAY_CLUSTER_CONFIG": "false",
            },
            "global": {
                # The chart reads the priority class here only (istio-discovery
                # templates/deployment.yaml, 1.30.3: `.Values.global.priorityClassName`).
                "priorityClassName": PLATFORM_PRIORITY_CLASS,
                # Only with a replica to spare: at one replica the chart renders no budget
                # whatever this says (templates/poddisruptionbudget.yaml, 1.30.3).
                **(
                    {"defaultPodDisruptionBudget": {"enabled": True}}
                    if settings.replicas > 1
                    else {}
                ),
                # The sidecars' own seccomp profile (restricted requires one), and their
                # resources, as the node groups' capacity counts them (without the chart's
                # 2-CPU limit: its null reaches Helm through the release's value file,
                # components/shared/helm.py, and the injection template drops null entries,
                # omitNil).
                "proxy": {
                    "seccompProfile": RESTRICTED_SECCOMP,
                    "resources": settings.sidecar.as_values(chart_limits_cpu=True),
                },
            },
            "meshConfig": {
                "accessLogFile": "/dev/stdout" if settings.access_logs else "",
                "accessLogEncoding": "JSON",
                # Registered destinations only (components/mesh/egress.py), or anywhere.
                "outboundTrafficPolicy": {
                    "mode": "REGISTRY_ONLY" if settings.outbound.registry_only else "ALLOW_ANY"
                },
                # The tracing provider the mesh's Telemetry names (components/mesh/telemetry.py).
                **tracing_provider(self.tracing_collector),
            },
        }


@dataclass(frozen=True)
class IngressGateway(ClusterAddon):
    """Istio's ingress gateway: Envoy behind the ALB, the mesh's door for the edge's hosts.

    The ALB sends to its pods directly (target type ip) over HTTPS on 443; the pods bind that
    port unprivileged (`net.ipv4.ip_unprivileged_port_start=0`, a sysctl the Pod Security
    Standards count as safe). The namespace leaves injection to the pod, which asks for the
    gateway's proxy by its `sidecar.istio.io/inject` label.
    """

    settings: IngressGatewaySettings

    name = "ingress-gateway"
    chart = istio_chart("gateway")
    release = GATEWAY_RELEASE
    namespace = GATEWAY_NAMESPACE
    istio_injection = None
    # The ALB's targets are these pods (target type ip): the load balancer controller gives
    # pods of a namespace so labelled a readiness gate that holds them unready until the
    # target group reports them healthy, so rollouts and drains keep a healthy target
    # (aws-load-balancer-controller v3.5.0 docs/deploy/pod_readiness_gate.md; its webhook
    # `mpod.elbv2.k8s.aws` selects namespaces by this label). Gates are added when a pod is
    # created and a TargetGroupBinding exists: the pods of a stack's first `up` (before the
    # Ingress) have none until their first rollout.
    namespace_labels: ClassVar[Mapping[str, str]] = {
        "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"
    }
    after = ("istiod",)

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def values(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        settings = self.settings
        return {
            # Reached through the ALB only: no load balancer of its own.
            "service": {
                "type": "ClusterIP",
                "ports": [
                    {"name": "status-port", "port": GATEWAY_STATUS_PORT, "protocol": "TCP"},
                    {
                        "name": "https",
                        "port": GATEWAY_HTTPS_PORT,
                        "targetPort": GATEWAY_HTTPS_PORT,
                        "protocol": "TCP",
                    },
                ],
            },
            "autoscaling": {"enabled": False},
            "replicaCount": settings.replicas,
            # Rendered only with more than one replica.
            "podDisruptionBudget": {"maxUnavailable": 1},
            # Without the chart's default 2-CPU limit (values.yaml at 1.30.3): nulled, through
            # the release's value file (components/shared/helm.py).
            "resources": settings.resources.as_values(chart_limits_cpu=True),
            "nodeSelector": CONTROLLER_NODES,
            "priorityClassName": PLATFORM_PRIORITY_CLASS,
            # The chart's default pod context is only the sysctl, which a given context
            # replaces: both, with the seccomp profile restricted requires.
            "securityContext": {
                "runAsNonRoot": True,
                "seccompProfile": RESTRICTED_SECCOMP,
                "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}],
            },
            "topologySpreadConstraints": zone_spread(GATEWAY_SELECTOR),
            "podAnnotations": {"proxy.istio.io/config": json.dumps(gateway_proxy_config())},
        }
