"""Micro-segmentation of the application namespace, from the service graph in the catalog.

Everything is denied, in and out, unless allowed here:
- in: each service from its callers (the pods of the services whose `calls` name it), from the
  ingress gateway's namespace if it is an edge service, and from Prometheus's namespace;
- out: DNS, istiod, the services it calls, the data stores it uses (their subnets and ports),
  the AWS APIs through the VPC's interface endpoints (HTTPS inside the VPC), and the internet
  on HTTPS only for services that call an outside API.
The kubelet's probes still reach every pod: traffic from the node a pod runs on is always
allowed, whatever the policies (Kubernetes documentation, "Network Policies").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.addons.jaeger import TracingCollector
from components.addons.mesh import GATEWAY_NAMESPACE, MESH_NAMESPACE
from components.addons.monitoring import MONITORING_NAMESPACE
from components.shared.conventions import STORE_PORTS, selector_labels, standard_labels
from components.shared.observability_contract import METRICS_PORT
from stacks.catalog import ServiceName, ServiceSettings, callers_of

DNS = [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
HTTPS = 443
# Namespaces other layers create (or will): the mesh's, its ingress gateway's, monitoring's.
ISTIOD_PORT = 15012
# Where each sidecar serves its Envoy statistics (`http-envoy-prom`, /stats/prometheus).
ENVOY_STATS_PORT = 15090
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]


def in_namespace(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def ingress_rules(
    name: str, service: ServiceSettings, callers: Sequence[str], gateway: bool = False
) -> list[dict[str, Any]]:
    """`gateway`: the ingress gateway calls it (an edge service, or the token keys' issuer)."""
    port = [{"port": service.port, "protocol": "TCP"}]
    peers = [{"podSelector": {"matchLabels": selector_labels(caller)}} for caller in callers]
    if service.edge or gateway:
        peers.append(in_namespace(GATEWAY_NAMESPACE))
    rules = [{"from": peers, "ports": port}] if peers else []
    # Prometheus scrapes every service on its metrics port, and its sidecar's Envoy statistics.
    rules.append(
        {
            "from": [in_namespace(MONITORING_NAMESPACE)],
            "ports": [
                {"port": METRICS_PORT, "protocol": "TCP"},
                {"port": ENVOY_STATS_PORT, "protocol": "TCP"},
            ],
        }
    )
    return rules


def egress_rules(
    service: ServiceSettings,
    services: Mapping[ServiceName, ServiceSettings],
    store_cidrs: Sequence[str],
    vpc_cidr: str,
    calls_aws: bool,
    tracing_collector: TracingCollector | None = None,
) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [
        {
            "to": [in_namespace(MESH_NAMESPACE)],
            "ports": [{"port": ISTIOD_PORT, "protocol": "TCP"}],
        }
    ]
    if tracing_collector is not None:
        # The sidecar's spans (OTLP) to the collector.
        rules.append(
            {
                "to": [in_namespace(tracing_collector.namespace)],
                "ports": [{"port": tracing_collector.port, "protocol": "TCP"}],
            }
        )
    for callee in service.calls:
        rules.append(
            {
                "to": [{"podSelector": {"matchLabels": selector_labels(callee)}}],
                "ports": [{"port": services[callee].port, "protocol": "TCP"}],
            }
        )
    for store in service.data_stores:
        rules.append(
            {
                "to": [{"ipBlock": {"cidr": cidr}} for cidr in store_cidrs],
                "ports": [{"port": STORE_PORTS[store], "protocol": "TCP"}],
            }
        )
    if calls_aws:
        rules.append(
            {"to": [{"ipBlock": {"cidr": vpc_cidr}}], "ports": [{"port": HTTPS, "protocol": "TCP"}]}
        )
    # S3 through the VPC's gateway endpoint is still S3's public addresses (the route table
    # sends them to the endpoint): a CIDR rule can only say "443 outside the VPC" for it. The
    # mesh narrows both cases to names (components/mesh/egress.py).
    if service.internet_https or service.documents_bucket:
        rules.append(
            {
                "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE_RANGES}}],
                "ports": [{"port": HTTPS, "protocol": "TCP"}],
            }
        )
    return rules


@dataclass(frozen=True)
class AppNetworkPoliciesArgs:
    namespace: pulumi.Input[str]
    services: Mapping[ServiceName, ServiceSettings]
    # The private subnets, where the data stores are.
    store_cidrs: Sequence[str]
    vpc_cidr: str
    # Services with an IRSA role (they call AWS APIs through the VPC endpoints).
    aws_callers: Sequence[str]
    # Earlier URN of a service's ingress policy, which lived in its Microservice component.
    former_ingress_urn: Mapping[str, str]
    # Where the sidecars send spans, if anywhere.
    tracing_collector: TracingCollector | None = None
    # The service the ingress gateway fetches the users' token keys from, if any.
    token_issuer: str | None = None


class AppNetworkPolicies(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: AppNetworkPoliciesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:security:AppNetworkPolicies", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def policy(
            resource_name: str, object_name: str, spec: Any, extra: pulumi.ResourceOptions | None
        ) -> None:
            k8s.networking.v1.NetworkPolicy(
                resource_name,
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=object_name,
                    namespace=args.namespace,
                    labels=standard_labels(object_name, "network-policy"),
                ),
                spec=spec,
                opts=pulumi.ResourceOptions.merge(child, extra),
            )

        policy(
            f"{name}-default-deny",
            "default-deny",
            {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            None,
        )
        policy(
            f"{name}-dns",
            "allow-dns",
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                **in_namespace("kube-system"),
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": DNS,
                    }
                ],
            },
            None,
        )
        for service_name, service in args.services.items():
            callers = callers_of(service_name, args.services)
            selector = {"matchLabels": selector_labels(service_name)}
            former = args.former_ingress_urn.get(service_name)
            policy(
                f"{service_name}-ingress",
                f"{service_name}-ingress",
                {
                    "podSelector": selector,
                    "policyTypes": ["Ingress"],
                    "ingress": ingress_rules(
                        service_name, service, callers, service_name == args.token_issuer
                    ),
                },
                pulumi.ResourceOptions(aliases=[former]) if former else None,
            )
            policy(
                f"{service_name}-egress",
                f"{service_name}-egress",
                {
                    "podSelector": selector,
                    "policyTypes": ["Egress"],
                    "egress": egress_rules(
                        service,
                        args.services,
                        args.store_cidrs,
                        args.vpc_cidr,
                        service_name in args.aws_callers,
                        args.tracing_collector,
                    ),
                },
                None,
            )
        self.register_outputs({})


@dataclass(frozen=True)
class PlatformNamespacePolicy:
    """A platform namespace: nothing comes in but the listed TCP ports, each from whom it is
    for; its egress stays open unless listed."""

    namespace: str
    # What the API server calls (webhooks, aggregated APIs): from the control plane's subnets
    # only. Pod addresses are VPC addresses (VPC CNI), so "from the VPC" would admit every pod.
    ports_from_control_plane: Sequence[int]
    # Restrict egress as well: (CIDR, port) pairs it may reach, besides DNS.
    egress: Sequence[tuple[str, int]] | None = None
    # Pods of these namespaces may come in: (namespace, TCP port), None for any port.
    from_namespaces: Sequence[tuple[str, int | None]] = ()
    # What every pod of the cluster may reach (istiod's xDS, which each sidecar calls).
    ports_from_every_pod: Sequence[int] = ()
    # What the load balancer reaches: from its subnets (the public ones) only.
    ports_from_load_balancer: Sequence[int] = ()


def tcp_ports(ports: Sequence[int]) -> list[dict[str, Any]]:
    return [{"port": p, "protocol": "TCP"} for p in ports]


class PlatformNetworkPolicies(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        namespaces: Sequence[PlatformNamespacePolicy],
        control_plane_cidrs: Sequence[str],
        load_balancer_cidrs: Sequence[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("financial-planning:security:PlatformNetworkPolicies", name, None, opts)
        for entry in namespaces:
            types = ["Ingress"] if entry.egress is None else ["Ingress", "Egress"]
            spec: Any = {"podSelector": {}, "policyTypes": types, "ingress": []}
            for cidrs, ports in (
                (control_plane_cidrs, entry.ports_from_control_plane),
                (load_balancer_cidrs, entry.ports_from_load_balancer),
            ):
                if ports:
                    spec["ingress"].append(
                        {
                            "from": [{"ipBlock": {"cidr": c}} for c in cidrs],
                            "ports": tcp_ports(ports),
                        }
                    )
            if entry.ports_from_every_pod:
                spec["ingress"].append(
                    {
                        "from": [{"namespaceSelector": {}}],
                        "ports": tcp_ports(entry.ports_from_every_pod),
                    }
                )
            for peer, port in entry.from_namespaces:
                rule: dict[str, Any] = {"from": [in_namespace(peer)]}
                if port is not None:
                    rule["ports"] = tcp_ports([port])
                spec["ingress"].append(rule)
            if entry.egress is not None:
                spec["egress"] = [
                    {"to": [in_namespace("kube-system")], "ports": DNS},
                    *(
                        {"to": [{"ipBlock": {"cidr": cidr}}], "ports": tcp_ports([port])}
                        for cidr, port in entry.egress
                    ),
                ]
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{entry.namespace}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name="platform-default",
                    namespace=entry.namespace,
                    labels=standard_labels("platform-default", "network-policy"),
                ),
                spec=spec,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({})
