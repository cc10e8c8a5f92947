"""The mesh's own security: mTLS STRICT everywhere, and each service reachable only by its callers.

- a mesh-wide PeerAuthentication (in istio-system) makes every sidecar refuse plain text;
  each service's own PeerAuthentication leaves only its metrics port PERMISSIVE, because
  Prometheus scrapes from outside the mesh (its NetworkPolicy admits nothing else there);
- the application namespace denies every request by default (an AuthorizationPolicy without
  rules), and each service allows its callers from the service graph (`calls` in the catalog,
  read backwards) by their service-account identities, the ingress gateway's namespace if it is
  an edge service, and anyone on its metrics port.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from components.shared.conventions import selector_labels
from components.shared.custom_resources import labelled_custom_resource
from components.shared.observability_contract import METRICS_PORT
from stacks.catalog import ServiceName, ServiceSettings, callers_of

SECURITY_API = "security.istio.io/v1"
DENY_ALL = "deny-all"


def principal(namespace: str, service_account: str) -> str:
    """The SPIFFE identity Istio gives a workload's service account."""
    return f"cluster.local/ns/{namespace}/sa/{service_account}"


@dataclass(frozen=True)
class TokenKeys:
    """The users' token keys, which the ingress gateway's proxy fetches from their issuer."""

    service: ServiceName
    path: str
    # The gateway's identity (its service account's SPIFFE name).
    gateway_principal: str


def allow_rules(
    name: str,
    service: ServiceSettings,
    services: Mapping[ServiceName, ServiceSettings],
    namespace: str,
    gateway_namespace: str,
    token_keys: TokenKeys | None = None,
) -> list[dict[str, Any]]:
    port = [{"operation": {"ports": [str(service.port)]}}]
    rules: list[dict[str, Any]] = []
    if token_keys is not None and token_keys.service == name:
        # The gateway reads the keys, and nothing else of the issuer.
        rules.append(
            {
                "from": [{"source": {"principals": [token_keys.gateway_principal]}}],
                "to": [
                    {
                        "operation": {
                            "methods": ["GET"],
                            "paths": [token_keys.path],
                            "ports": [str(service.port)],
                        }
                    }
                ],
            }
        )
    callers = callers_of(name, services)
    if callers:
        rules.append(
            {
                "from": [{"source": {"principals": [principal(namespace, c) for c in callers]}}],
                "to": port,
            }
        )
    if service.edge:
        rules.append({"from": [{"source": {"namespaces": [gateway_namespace]}}], "to": port})
    # Plain text from Prometheus carries no identity: the port alone (NetworkPolicy narrows it).
    rules.append({"to": [{"operation": {"ports": [str(METRICS_PORT)]}}]})
    return rules


@dataclass(frozen=True)
class MeshPoliciesArgs:
    app_namespace: str
    mesh_namespace: str
    gateway_namespace: str
    services: Mapping[ServiceName, ServiceSettings]
    # Where the gateway checks users' tokens: the keys it fetches from their issuer.
    token_keys: TokenKeys | None = None


class MeshPolicies(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: MeshPoliciesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:security:MeshPolicies", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # In the mesh's root namespace it applies to every workload of the mesh.
        labelled_custom_resource(
            f"{name}-strict",
            api_version=SECURITY_API,
            kind="PeerAuthentication",
            name="default",
            namespace=args.mesh_namespace,
            component="mesh-security",
            spec={"mtls": {"mode": "STRICT"}},
            opts=child,
        )
        labelled_custom_resource(
            f"{name}-{DENY_ALL}",
            api_version=SECURITY_API,
            kind="AuthorizationPolicy",
            name=DENY_ALL,
            namespace=args.app_namespace,
            component="mesh-security",
            spec={},
            opts=child,
        )
        for service_name, service in args.services.items():
            selector = {"matchLabels": selector_labels(service_name)}
            labelled_custom_resource(
                f"{name}-{service_name}-mtls",
                api_version=SECURITY_API,
                kind="PeerAuthentication",
                name=service_name,
                namespace=args.app_namespace,
                component="mesh-security",
                spec={
                    "selector": selector,
                    "mtls": {"mode": "STRICT"},
                    "portLevelMtls": {str(METRICS_PORT): {"mode": "PERMISSIVE"}},
                },
                opts=child,
            )
            labelled_custom_resource(
                f"{name}-{service_name}-allow",
                api_version=SECURITY_API,
                kind="AuthorizationPolicy",
                name=service_name,
                namespace=args.app_namespace,
                component="mesh-security",
                spec={
                    "selector": selector,
                    "action": "ALLOW",
                    "rules": allow_rules(
                        service_name,
                        service,
                        args.services,
                        args.app_namespace,
                        args.gateway_namespace,
                        args.token_keys,
                    ),
                },
                opts=child,
            )
        self.register_outputs({})
