"""What the services' sidecars may reach outside the mesh, and each service's share of it.

ServiceEntries register the destinations the services really call outside the mesh:
- PostgreSQL and Redis by their subnets and ports (the same ranges the network policies open):
  the endpoints' addresses move on a failover, the subnets do not. Both are TCP entries: a
  destination-prefix match, whatever server name (if any) the client sends;
- OpenSearch by its domain endpoint's name, over TLS, and no addresses: for a TLS port with
  CIDR addresses istiod would match the chain on the entry's own host as the server name
  (pilot/pkg/networking/core/tls.go), which no client sends, and those prefixes on the shared
  0.0.0.0_443 listener would win over every name-matched chain for any address inside them
  (the STS endpoint's, say): Envoy matches the destination prefix before the server name and
  never falls back (tests/mesh/envoy_outbound.py models both);
- the AWS APIs the services call (STS for their IRSA credentials; S3 for the documents), by
  name, reached through the VPC's endpoints; in us-east-1 also S3's legacy global names, which
  SDKs use there unless told otherwise (the shared configuration tells them: belt and braces);
- each service's internet hosts (OpenAI, Plaid, the mail and SMS providers), by name, over TLS.
With `registryOnly` (production) the sidecars refuse anything else (`outboundTrafficPolicy`
REGISTRY_ONLY, set on istiod). A `Sidecar` per service then narrows what it sees to its
callees, its data stores, its own hosts and the AWS APIs if it has a role: the mesh's mirror of
its network policy, by name where that policy can only say "443 anywhere".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components.addons.jaeger import TracingCollector
from components.addons.mesh import MESH_NAMESPACE
from components.mesh.traffic import NETWORKING_API
from components.shared.conventions import STORE_PORTS, selector_labels, service_host
from components.shared.custom_resources import labelled_custom_resource
from stacks.catalog import DataStore, ServiceName, ServiceSettings

# Names for the TCP stores' ranges: ServiceEntry hosts are names, even where the addresses
# decide (resolution NONE). The search domain is registered by its own endpoint name instead.
STORE_HOSTS: dict[DataStore, str] = {
    "database": "postgresql.data-tier.internal",
    "cache": "redis.data-tier.internal",
}
# S3's global names, which SDKs still use in us-east-1 by default (botocore 1.44:
# `s3_us_east_1_regional_endpoint` is "legacy" unless AWS_S3_US_EAST_1_REGIONAL_ENDPOINT says
# "regional"); they reach the same regional service (and the VPC's gateway endpoint).
S3_LEGACY_GLOBAL_REGION = "us-east-1"


def aws_api_hosts(region: str) -> list[str]:
    """STS (web identity credentials) and S3, path and virtual-host style."""
    hosts = [
        f"sts.{region}.amazonaws.com",
        f"s3.{region}.amazonaws.com",
        f"*.s3.{region}.amazonaws.com",
    ]
    if region == S3_LEGACY_GLOBAL_REGION:
        hosts += ["s3.amazonaws.com", "*.s3.amazonaws.com"]
    return hosts


def tls_port() -> dict[str, Any]:
    return {"number": 443, "name": "tls", "protocol": "TLS"}


@dataclass(frozen=True)
class MeshEgressArgs:
    namespace: str
    services: Mapping[ServiceName, ServiceSettings]
    # The services' internet hosts (the stack's settings).
    external_hosts: Mapping[ServiceName, Sequence[str]]
    # The private subnets, where the data stores are.
    store_cidrs: Sequence[str]
    # The search domain's endpoint (its name, which clients send as their TLS server name).
    search_endpoint: pulumi.Input[str]
    region: str
    # Services with an IAM role (they call STS, and S3 if they keep documents).
    aws_callers: Sequence[str]
    # Where every proxy sends its spans, if anywhere.
    tracing_collector: TracingCollector | None = None


class MeshEgress(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: MeshEgressArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:mesh:MeshEgress", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        used = sorted({store for s in args.services.values() for store in s.data_stores})
        for store in used:
            if store == "search":
                # By name only (see the module's docstring): no addresses, the server name
                # decides.
                self._entry(
                    f"{name}-{store}",
                    f"data-tier-{store}",
                    {
                        "hosts": [args.search_endpoint],
                        "ports": [
                            {"number": STORE_PORTS[store], "name": "tls-search", "protocol": "TLS"}
                        ],
                        "resolution": "NONE",
                    },
                    args.namespace,
                    child,
                )
                continue
            self._entry(
                f"{name}-{store}",
                f"data-tier-{store}",
                {
                    "hosts": [STORE_HOSTS[store]],
                    "addresses": list(args.store_cidrs),
                    "ports": [
                        {"number": STORE_PORTS[store], "name": f"tcp-{store}", "protocol": "TCP"}
                    ],
                    "resolution": "NONE",
                },
                args.namespace,
                child,
            )
        if args.aws_callers:
            # A wildcard host is matched by the TLS server name, so nothing is resolved.
            self._entry(
                f"{name}-aws-apis",
                "aws-apis",
                {"hosts": aws_api_hosts(args.region), "ports": [tls_port()], "resolution": "NONE"},
                args.namespace,
                child,
            )
        for caller, hosts in sorted(args.external_hosts.items()):
            self._entry(
                f"{name}-{caller}-internet",
                f"{caller}-internet",
                {"hosts": list(hosts), "ports": [tls_port()], "resolution": "DNS"},
                args.namespace,
                child,
            )
        for service_name, service in args.services.items():
            labelled_custom_resource(
                f"{name}-{service_name}-sidecar",
                api_version=NETWORKING_API,
                kind="Sidecar",
                name=service_name,
                namespace=args.namespace,
                component="egress",
                spec={
                    "workloadSelector": {"labels": selector_labels(service_name)},
                    "egress": [{"hosts": self.visible_hosts(service_name, service, args)}],
                },
                opts=child,
            )
        self.register_outputs({})

    @staticmethod
    def visible_hosts(
        name: ServiceName, service: ServiceSettings, args: MeshEgressArgs
    ) -> list[pulumi.Input[str]]:
        """What the service's sidecar knows of: `namespace/host` as a Sidecar names them."""
        here = f"{args.namespace}/"
        hosts: list[pulumi.Input[str]] = [
            f"{here}{service_host(callee, args.namespace)}" for callee in service.calls
        ]
        for store in service.data_stores:
            if store == "search":
                hosts.append(pulumi.Output.concat(here, args.search_endpoint))
            else:
                hosts.append(f"{here}{STORE_HOSTS[store]}")
        if name in args.aws_callers:
            hosts += [f"{here}{host}" for host in aws_api_hosts(args.region)]
        hosts += [f"{here}{host}" for host in args.external_hosts.get(name, [])]
        collector = args.tracing_collector
        if collector is not None:
            hosts.append(f"{collector.namespace}/{collector.host}")
        # istiod (configuration and certificates).
        return [*hosts, f"{MESH_NAMESPACE}/*"]

    def _entry(
        self,
        resource_name: str,
        name: str,
        spec: dict[str, Any],
        namespace: str,
        opts: pulumi.ResourceOptions,
    ) -> None:
        labelled_custom_resource(
            resource_name,
            api_version=NETWORKING_API,
            kind="ServiceEntry",
            name=name,
            namespace=namespace,
            component="egress",
            # Outside the mesh; visible in this namespace only.
            spec={**spec, "location": "MESH_EXTERNAL", "exportTo": ["."]},
            opts=opts,
        )
