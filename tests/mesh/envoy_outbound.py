"""A model of where a sidecar's Envoy sends an outbound connection, built from a render.

Nothing here routes a packet, so the model encodes the upstream behaviour it relies on, each
rule with its source (Istio 1.30.3, `git show 1.30.3:<path>` in istio/istio; Envoy's API docs
and source as Istio 1.30's proxy builds them):

Which services a proxy knows (its Sidecar):
- a ServiceEntry becomes one service per host, and per address when it has `addresses` (a /32
  becomes a plain IP); with none its address is 0.0.0.0, as auto-allocated addresses are used
  only by proxies that capture DNS (pilot/pkg/serviceregistry/serviceentry/conversion.go
  `convertServices`; pilot/pkg/model/service.go `GetAddressForProxy`, `nodeUsesAutoallocatedIPs`);
- a Sidecar egress host `ns/h` imports a service of namespace `ns` whose host equals `h`, or,
  where either is a wildcard, is a subset of it (pilot/pkg/model/sidecar.go
  `hostClassification.Matches`; pkg/config/host/name.go `SubsetOf`); `exportTo: ["."]` keeps an
  entry to its own namespace.

The listeners istiod builds from them (pilot/pkg/networking/core/listener.go
`buildSidecarOutboundListener`, tls.go `buildSidecarOutboundTLSFilterChainOpts`,
`buildSidecarOutboundTCPFilterChainOpts`):
- an HTTP port binds 0.0.0.0:port and routes by Host (RDS), to the services the proxy knows;
- a TCP or TLS port of a service with an IP address binds that IP:port; with a CIDR it binds
  0.0.0.0:port with the CIDR as the chain's destination prefix; with no address, 0.0.0.0:port;
- a TLS (or HTTPS) port's chain matches the service's host as the server name when the address
  is a CIDR or the wildcard (tls.go: "Use the hostname as the SNI value if and only: 1) if the
  destination is a CIDR; ... 3) ... wildcard destination VIP with the listener bound to the
  wildcard"); a TCP port's chain matches no server name;
- chains of several services on one listener are merged, the first of identical matches kept
  (listener.go `mergeTCPFilterChains`, `conflictsWith`);
- a chain that matches everything becomes the listener's default chain; without one the
  default chain forwards to BlackHoleCluster under REGISTRY_ONLY, PassthroughCluster under
  ALLOW_ANY (listener.go `buildListenerFromEntry`; listener_builder.go
  `buildOutboundCatchAllNetworkFiltersOnly`).

How Envoy picks (envoy api/envoy/config/listener/v3/listener_components.proto,
`FilterChainMatch`; source/common/listener_manager/filter_chain_manager_impl.cc `findFilterChain`,
`findFilterChainForDestinationIP`, `findFilterChainForServerName`, read at the stored
envoyproxy/envoy 0840030e; Istio 1.30.3's proxy, istio/proxy 81864a1c, builds Envoy 4f1e006e,
which the store does not hold):
- the virtual outbound listener hands the connection to the listener of its original
  destination, the exact IP:port first, then 0.0.0.0:port (`use_original_dst`;
  connection_handler_impl.cc `findActiveListenerByAddress`: "If there is exact address match,
  return the corresponding listener. Otherwise ... the wild card match, i.e.,
  0.0.0.0:[address_port]"); none: its own default, the same black hole or passthrough;
- inside a listener: destination port, then destination IP (the longest matching prefix of
  any chain; a chain without prefixes is the least specific), then server name (exact, then
  the longest wildcard `*.suffix`, then chains without server names), each step pruning to the
  most specific; a step that leaves nothing does not fall back to a less specific chain: the
  connection goes to the default filter chain.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

WILDCARD = "0.0.0.0"
BLACKHOLE = "BlackHoleCluster"
PASSTHROUGH = "PassthroughCluster"
# Istio's protocol names that are TLS (pkg/config/protocol/instance.go `IsTLS`) and HTTP-routed
# ones (`IsHTTP`).
TLS_PROTOCOLS = {"TLS", "HTTPS"}
HTTP_PROTOCOLS = {"HTTP", "HTTP2", "GRPC", "GRPC-WEB", "HTTP_PROXY"}


@dataclass(frozen=True)
class MeshService:
    """A service as istiod holds it: one host, at most one address."""

    host: str
    namespace: str
    # An IP, a CIDR, or 0.0.0.0 (none).
    address: str
    # (port, Istio protocol name)
    ports: tuple[tuple[int, str], ...]
    # Who made it: "ServiceEntry/<name>" or "Service/<name>".
    origin: str
    # exportTo as written ("." the own namespace, "*" or none: everywhere).
    export_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class Chain:
    host: str
    origin: str
    prefixes: tuple[ipaddress.IPv4Network, ...]
    server_names: tuple[str, ...]

    def matches_everything(self) -> bool:
        return not self.prefixes and not self.server_names


@dataclass
class Listener:
    address: str
    port: int
    chains: list[Chain] = field(default_factory=list)
    # Hosts routed by this HTTP listener (its route configuration's virtual hosts).
    http_hosts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Connection:
    address: ipaddress.IPv4Address
    port: int
    # The TLS server name the client sends; None: no TLS ClientHello (or no SNI in it).
    server_name: str | None = None
    # The Host (:authority) of a plain HTTP request; None: not HTTP.
    http_host: str | None = None


@dataclass(frozen=True)
class Outcome:
    """Where Envoy sends it: a chain or virtual host of a known service, or a catch-all."""

    cluster: str
    host: str | None = None
    origin: str | None = None

    def __str__(self) -> str:
        return self.cluster if self.host is None else f"{self.origin} ({self.host})"


def services_of_entry(entry: Mapping[str, Any]) -> list[MeshService]:
    """conversion.go `convertServices`: one service per host (and per address)."""
    spec, meta = entry["spec"], entry["metadata"]
    ports = tuple((int(p["number"]), str(p["protocol"]).upper()) for p in spec["ports"])
    addresses: list[str] = []
    for address in spec.get("addresses", []):
        network = ipaddress.ip_network(address, strict=False)
        addresses.append(
            str(network.network_address) if network.prefixlen == network.max_prefixlen else address
        )
    return [
        MeshService(
            host=host,
            namespace=meta["namespace"],
            address=address,
            ports=ports,
            origin=f"ServiceEntry/{meta['name']}",
            export_to=tuple(spec.get("exportTo", ())),
        )
        for host in spec["hosts"]
        for address in (addresses or [WILDCARD])
    ]


def port_protocol(port: Mapping[str, Any]) -> str:
    """A Kubernetes Service port's protocol as Istio reads it: `appProtocol`, else the name's
    prefix (pkg/config/kube/conversion.go `ConvertProtocol`); the model refuses the rest."""
    declared = port.get("appProtocol") or str(port.get("name", "")).split("-", 1)[0]
    protocol = str(declared).upper()
    if protocol not in TLS_PROTOCOLS | HTTP_PROTOCOLS | {"TCP"}:
        raise NotImplementedError(f"protocol sniffing ({port}) is not modelled")
    return protocol


def services_of_kubernetes(service: Mapping[str, Any], cluster_ip: str) -> MeshService:
    meta = service["metadata"]
    return MeshService(
        host=f"{meta['name']}.{meta['namespace']}.svc.cluster.local",
        namespace=meta["namespace"],
        address=cluster_ip,
        ports=tuple((int(p["port"]), port_protocol(p)) for p in service["spec"]["ports"]),
        origin=f"Service/{meta['name']}",
    )


def _is_wildcard(host: str) -> bool:
    return host.startswith("*")


def _subset_of(host: str, of: str) -> bool:
    """pkg/config/host/name.go `SubsetOf`."""
    if _is_wildcard(host):
        return _is_wildcard(of) and len(host) >= len(of) and host[1:].endswith(of[1:])
    if _is_wildcard(of):
        return host.endswith(of[1:])
    return host == of


def imported(service: MeshService, sidecar_hosts: Iterable[str], proxy_namespace: str) -> bool:
    """Whether a proxy with these Sidecar egress hosts knows the service (sidecar.go)."""
    if service.export_to == (".",) and service.namespace != proxy_namespace:
        return False
    for entry in sidecar_hosts:
        namespace, host = entry.split("/", 1)
        if namespace not in (service.namespace, "*"):
            continue
        if host == "*" or host == service.host:
            return True
        if (_is_wildcard(host) or _is_wildcard(service.host)) and _subset_of(service.host, host):
            return True
    return False


def build_listeners(services: Sequence[MeshService]) -> dict[tuple[str, int], Listener]:
    """The outbound listeners istiod gives a proxy that knows these services."""
    listeners: dict[tuple[str, int], Listener] = {}
    for service in services:
        cidr = "/" in service.address
        for port, protocol in service.ports:
            if protocol in HTTP_PROTOCOLS:
                listener = listeners.setdefault((WILDCARD, port), Listener(WILDCARD, port))
                listener.http_hosts.setdefault(service.host, service.origin)
                continue
            bind = WILDCARD if cidr else service.address
            listener = listeners.setdefault((bind, port), Listener(bind, port))
            prefixes = (ipaddress.IPv4Network(service.address),) if cidr else ()
            by_name = protocol in TLS_PROTOCOLS and (cidr or service.address == WILDCARD)
            chain = Chain(
                host=service.host,
                origin=service.origin,
                prefixes=prefixes,
                server_names=(service.host,) if by_name else (),
            )
            # mergeTCPFilterChains: an identical match is dropped (the first one stays).
            if not any(
                (c.prefixes, c.server_names) == (chain.prefixes, chain.server_names)
                for c in listener.chains
            ):
                listener.chains.append(chain)
    for listener in listeners.values():
        if listener.http_hosts and listener.chains:
            raise NotImplementedError(
                f"{listener.address}:{listener.port} mixes HTTP and TCP (protocol sniffing)"
            )
    return listeners


def _name_specificity(server_names: tuple[str, ...], sni: str | None) -> int | None:
    """How specifically a chain's server names match: the exact name ranks above any
    wildcard, a longer wildcard above a shorter one, no server names lowest; None: no match.
    Envoy tries `www.example.com`, then `*.example.com`, then `*.com`."""
    if not server_names:
        return 0
    if sni is None:
        return None
    if sni in server_names:
        return 10_000
    labels = sni.split(".")
    for drop in range(1, len(labels)):
        if "*." + ".".join(labels[drop:]) in server_names:
            return 10_000 - drop
    return None


def _prefix_specificity(
    prefixes: tuple[ipaddress.IPv4Network, ...], address: ipaddress.IPv4Address
) -> int | None:
    if not prefixes:
        return 0
    lengths = [p.prefixlen for p in prefixes if address in p]
    return max(lengths) if lengths else None


def choose_chain(listener: Listener, connection: Connection) -> Chain | None:
    """The filter chain Envoy selects (None: the listener's default chain)."""
    candidates: list[tuple[int, Chain]] = []
    for chain in listener.chains:
        found = _prefix_specificity(chain.prefixes, connection.address)
        if found is not None:
            candidates.append((found, chain))
    if not candidates:
        return None
    best = max(rank for rank, _ in candidates)
    # The most specific destination prefix only: no falling back from here on.
    remaining = [chain for rank, chain in candidates if rank == best]
    named: list[tuple[int, Chain]] = []
    for chain in remaining:
        found = _name_specificity(chain.server_names, connection.server_name)
        if found is not None:
            named.append((found, chain))
    if not named:
        return None
    best = max(rank for rank, _ in named)
    chosen = [chain for rank, chain in named if rank == best]
    if len(chosen) > 1:
        raise AssertionError(f"Envoy would refuse the listener: {chosen} match alike")
    return chosen[0]


def route(
    listeners: Mapping[tuple[str, int], Listener], connection: Connection, registry_only: bool
) -> Outcome:
    """Where the proxy sends the connection."""
    catch_all = Outcome(BLACKHOLE if registry_only else PASSTHROUGH)
    listener = listeners.get((str(connection.address), connection.port)) or listeners.get(
        (WILDCARD, connection.port)
    )
    if listener is None:
        return catch_all
    if listener.http_hosts:
        host = connection.http_host
        if host is None or host.split(":")[0] not in listener.http_hosts:
            # Istio's catch-all virtual host: block_all (502) or allow_any.
            return catch_all
        name = host.split(":")[0]
        return Outcome(f"outbound|{connection.port}||{name}", name, listener.http_hosts[name])
    default = next((c for c in listener.chains if c.matches_everything()), None)
    chain = choose_chain(
        Listener(listener.address, listener.port, [c for c in listener.chains if c is not default]),
        connection,
    )
    chain = chain or default
    if chain is None:
        return catch_all
    return Outcome(f"outbound|{connection.port}||{chain.host}", chain.host, chain.origin)


def sni_covers(host: str, server_name: str) -> bool:
    """Whether a registered host (exact or `*.suffix`) names this server name."""
    if _is_wildcard(host):
        return server_name.endswith(host[1:])
    return host == server_name
