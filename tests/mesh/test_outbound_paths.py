"""Every call a service makes lands on a filter chain (or virtual host) that forwards it.

For each service's Sidecar, the proxy's outbound listeners are built from the render's
ServiceEntries and Services the way istiod builds them, and each destination the service calls
is routed the way Envoy routes it (tests/mesh/envoy_outbound.py holds both, with their
sources). A destination is its address class and what the client sends:
- callees: a cluster IP (EKS gives Services 10.100.0.0/16 or 172.20.0.0/16 unless told
  otherwise: EKS User Guide, "Create a cluster", service IPv4 range), plain HTTP with the Host
  of the URL in the shared configuration;
- the data tier: an address inside the subnets the store's subnet group (or VPC options) names;
  PostgreSQL sends no server name (its TLS starts after an in-protocol SSLRequest: PostgreSQL 16
  documentation, "Protocol Flow", SSL Session Encryption), Redis and OpenSearch send their
  endpoint's name (TLS from the first byte);
- the AWS APIs a service's role lets it call: the names botocore 1.44 (this environment's SDK)
  resolves, with and without the shared configuration's endpoint settings (an SDK that ignores
  them uses the legacy names); STS at its interface endpoint's addresses (private DNS), S3 at
  public addresses (a gateway endpoint keeps S3's public addresses; VPC User Guide, "Gateway
  endpoints for Amazon S3");
- its registered internet hosts, at public addresses, by name.
Production and staging must both land every call on a registered chain (staging's ALLOW_ANY
would hide a miss behind its passthrough). The negative controls put back what issue 21 found:
the search domain as TLS with the private subnets as addresses, and no S3 global names.
"""

from __future__ import annotations

import copy
import ipaddress
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from offline.engine import StackRun
from tests.lookup import app_namespace, helm_release, inline_policies, objects, policy
from tests.mesh.envoy_outbound import (
    BLACKHOLE,
    PASSTHROUGH,
    Chain,
    Connection,
    Listener,
    MeshService,
    Outcome,
    build_listeners,
    choose_chain,
    imported,
    route,
    services_of_entry,
    services_of_kubernetes,
    sni_covers,
)

# EKS's two default service ranges (the cluster sets none): a Service's cluster IP in each.
CLUSTER_IPS = (ipaddress.IPv4Address("10.100.0.10"), ipaddress.IPv4Address("172.20.0.10"))
# Addresses outside the VPC: S3 (reached through the gateway endpoint at its public addresses)
# and the internet hosts.
PUBLIC_ADDRESS = ipaddress.IPv4Address("52.216.8.10")
# The endpoint settings of the shared configuration, which some SDKs ignore.
ENDPOINT_SETTINGS = ("AWS_STS_REGIONAL_ENDPOINTS", "AWS_S3_US_EAST_1_REGIONAL_ENDPOINT")


@dataclass(frozen=True)
class Call:
    service: str
    what: str
    connection: Connection
    # Whether an outcome is the registered destination of this call.
    lands: Callable[[Outcome], bool]


def subnet_cidrs(run: StackRun) -> dict[str, ipaddress.IPv4Network]:
    return {
        s.id: ipaddress.IPv4Network(s.inputs["cidrBlock"])
        for s in run.of_type("aws:ec2/subnet:Subnet")
    }


def addresses_in(run: StackRun, subnet_ids: list[str]) -> list[ipaddress.IPv4Address]:
    """One address in each subnet (an endpoint's network interface may sit in any of them)."""
    cidrs = subnet_cidrs(run)
    return [cidrs[s].network_address + 10 for s in subnet_ids]


def the_one(run: StackRun, type_: str) -> Any:
    [found] = run.of_type(type_)
    return found


def app_config(run: StackRun) -> dict[str, str]:
    data: dict[str, str] = objects(run, "ConfigMap")["financial-planning-config"]["data"]
    return data


def by_entry(name: str) -> Callable[[Outcome], bool]:
    return lambda outcome: outcome.origin == f"ServiceEntry/{name}"


def by_name(server_name: str) -> Callable[[Outcome], bool]:
    return lambda outcome: (
        outcome.origin is not None
        and outcome.origin.startswith("ServiceEntry/")
        and outcome.host is not None
        and sni_covers(outcome.host, server_name)
    )


def by_service(host: str) -> Callable[[Outcome], bool]:
    return lambda outcome: (
        outcome.host == host and outcome.origin == (f"Service/{host.split('.', 1)[0]}")
    )


def role_actions(run: StackRun, namespace: str, service: str) -> list[str] | None:
    """The actions of the service's IRSA role (None: it has none)."""
    subject = f"system:serviceaccount:{namespace}:{service}"
    for role in run.of_type("aws:iam/role:Role"):
        trust = policy(role, "assumeRolePolicy")["Statement"]
        if any(subject in s.get("Condition", {}).get("StringEquals", {}).values() for s in trust):
            actions: list[str] = []
            for document in inline_policies(run, role):
                for statement in policy(document)["Statement"]:
                    found = statement["Action"]
                    actions += [found] if isinstance(found, str) else found
            return actions
    return None


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK resolves names and signs locally: any connection attempt fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the SDK tried the network")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def sdk_hosts(
    monkeypatch: pytest.MonkeyPatch, config: dict[str, str], bucket: str, *, settings: bool
) -> dict[str, list[str]]:
    """The hosts botocore calls for STS (web identity credentials) and S3 (the documents), in a
    pod's environment with or without the shared configuration's endpoint settings."""
    others = ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT", "AWS_ENDPOINT_URL_S3")
    for key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_ENDPOINT_URL", *others, *ENDPOINT_SETTINGS):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    if settings:
        for key in ENDPOINT_SETTINGS:
            monkeypatch.setenv(key, config[key])
    session = boto3.session.Session(
        region_name=config["AWS_REGION"],
        aws_access_key_id="AKIAOFFLINEEXAMPLE",
        aws_secret_access_key="offline",
    )
    s3 = session.client("s3")
    s3_hosts = {
        urlsplit(str(s3.meta.endpoint_url)).hostname,
        *(
            urlsplit(s3.generate_presigned_url(operation, Params=params)).hostname
            for operation, params in (
                ("get_object", {"Bucket": bucket, "Key": "statement.pdf"}),
                ("put_object", {"Bucket": bucket, "Key": "statement.pdf"}),
                ("list_objects_v2", {"Bucket": bucket}),
            )
        ),
    }
    return {
        "sts": [str(urlsplit(str(session.client("sts").meta.endpoint_url)).hostname)],
        "s3": sorted(str(h) for h in s3_hosts),
    }


def aws_calls(
    run: StackRun, service: str, actions: list[str], hosts: dict[str, list[str]]
) -> Iterator[Call]:
    """The AWS APIs a role's actions mean a call to, and where those names lead."""
    region = run.namespace["settings"].region
    endpoints = {e.inputs["serviceName"]: e for e in run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}

    def interface_addresses(api: str, host: str) -> list[ipaddress.IPv4Address]:
        """Private DNS gives the regional name the interface endpoint's addresses."""
        endpoint = endpoints.get(f"com.amazonaws.{region}.{api}")
        if (
            endpoint is not None
            and endpoint.inputs["vpcEndpointType"] == "Interface"
            and endpoint.inputs.get("privateDnsEnabled")
            and host == f"{api}.{region}.amazonaws.com"
        ):
            return addresses_in(run, endpoint.inputs["subnetIds"])
        return [PUBLIC_ADDRESS]

    # IRSA: the SDK exchanges the projected token for credentials at STS.
    apis = {"sts"}
    for action in actions:
        prefix = action.split(":", 1)[0]
        if prefix == "s3":
            apis.add("s3")
        elif prefix in ("rds-db", "es", "kms"):
            # rds-db: the token is signed locally (botocore signers.py generate_db_auth_token,
            # a presigned URL; test_database_tokens_need_no_call); es: the search domain, a
            # data store; kms: S3 asks KMS for the object keys on the caller's behalf (SSE-KMS).
            continue
        else:
            raise AssertionError(f"{service}: how is {action} reached? (model it here)")
    for api in sorted(apis):
        for host in hosts[api]:
            for address in interface_addresses(api, host):
                yield Call(service, f"{api} {host}", Connection(address, 443, host), by_name(host))


def calls_of(
    run: StackRun, monkeypatch: pytest.MonkeyPatch, *, sdk_settings: bool
) -> Iterator[Call]:
    settings = run.namespace["settings"]
    namespace = app_namespace(run)
    config = app_config(run)
    bucket = config["DOCUMENTS_BUCKET"]
    hosts = sdk_hosts(monkeypatch, config, bucket, settings=sdk_settings)
    database_subnets = the_one(run, "aws:rds/subnetGroup:SubnetGroup").inputs["subnetIds"]
    cache_subnets = the_one(run, "aws:elasticache/subnetGroup:SubnetGroup").inputs["subnetIds"]
    search_subnets = the_one(run, "aws:opensearch/domain:Domain").inputs["vpcOptions"]["subnetIds"]
    search = urlsplit(config["SEARCH_ENDPOINT"])
    for name, service in settings.services.items():
        for callee in service.calls:
            url = urlsplit(config[f"{callee.upper().replace('-', '_')}_URL"])
            for address in CLUSTER_IPS:
                yield Call(
                    name,
                    f"callee {callee}",
                    Connection(address, int(url.port or 80), http_host=url.hostname),
                    by_service(str(url.hostname)),
                )
        if "database" in service.data_stores:
            for host_key in ("DATABASE_HOST", "DATABASE_READ_HOST"):
                for address in addresses_in(run, database_subnets):
                    yield Call(
                        name,
                        f"postgresql {config[host_key]}",
                        Connection(address, int(config["DATABASE_PORT"])),
                        by_entry("data-tier-database"),
                    )
        if "cache" in service.data_stores:
            assert config["REDIS_TLS"] == "true"
            for host_key in ("REDIS_HOST", "REDIS_READER_HOST"):
                for address in addresses_in(run, cache_subnets):
                    yield Call(
                        name,
                        f"redis {config[host_key]}",
                        Connection(address, int(config["REDIS_PORT"]), config[host_key]),
                        by_entry("data-tier-cache"),
                    )
        if "search" in service.data_stores:
            assert search.scheme == "https"
            for address in addresses_in(run, search_subnets):
                yield Call(
                    name,
                    f"opensearch {search.hostname}",
                    Connection(address, int(search.port or 443), search.hostname),
                    by_name(str(search.hostname)),
                )
        actions = role_actions(run, namespace, name)
        if actions is not None:
            yield from aws_calls(run, name, actions, hosts)
        for host in settings.addons.mesh.outbound.external_hosts.get(name, []):
            yield Call(
                name, f"internet {host}", Connection(PUBLIC_ADDRESS, 443, host), by_name(host)
            )


def mesh_services(run: StackRun, entries: list[dict[str, Any]]) -> list[MeshService]:
    found = [s for entry in entries for s in services_of_entry(entry)]
    for index, service in enumerate(objects(run, "Service").values()):
        found.append(services_of_kubernetes(service, f"172.20.1.{index + 1}"))
    return found


def proxy_routes(
    run: StackRun, entries: list[dict[str, Any]], sidecars: dict[str, dict[str, Any]]
) -> Callable[[Call], Outcome]:
    namespace = app_namespace(run)
    mesh = helm_release(run, "istiod").inputs["values"]["meshConfig"]
    registry_only = mesh["outboundTrafficPolicy"]["mode"] == "REGISTRY_ONLY"
    # Auto-allocated addresses only for proxies that capture DNS: these do not.
    metadata = mesh.get("defaultConfig", {}).get("proxyMetadata", {})
    assert metadata.get("ISTIO_META_DNS_CAPTURE") != "true"
    everything = mesh_services(run, entries)
    listeners: dict[str, dict[tuple[str, int], Listener]] = {}
    for name, sidecar in sidecars.items():
        [egress] = sidecar["spec"]["egress"]
        known = [s for s in everything if imported(s, egress["hosts"], namespace)]
        listeners[name] = build_listeners(known)
    return lambda call: route(listeners[call.service], call.connection, registry_only)


def misses(
    run: StackRun,
    monkeypatch: pytest.MonkeyPatch,
    entries: list[dict[str, Any]],
    sidecars: dict[str, dict[str, Any]],
) -> list[str]:
    routes = proxy_routes(run, entries, sidecars)
    found = []
    for sdk_settings in (True, False):
        for call in calls_of(run, monkeypatch, sdk_settings=sdk_settings):
            outcome = routes(call)
            if not call.lands(outcome):
                found.append(
                    f"{call.service} -> {call.what} at {call.connection.address}: {outcome}"
                )
    return sorted(set(found))


def test_every_call_of_every_service_lands_on_its_registered_destination(
    stack_run: StackRun, monkeypatch: pytest.MonkeyPatch, no_network: None
) -> None:
    entries = list(objects(stack_run, "ServiceEntry").values())
    found = misses(stack_run, monkeypatch, entries, objects(stack_run, "Sidecar"))
    assert found == [], "\n".join(found)


def old_search_entry(run: StackRun) -> dict[str, Any]:
    """The search domain as issue 21 found it: TLS, the private subnets as addresses."""
    private = [str(n) for n in subnet_cidrs(run).values() if n.prefixlen == 18]
    return {
        "metadata": {"name": "data-tier-search", "namespace": app_namespace(run)},
        "spec": {
            "hosts": ["opensearch.data-tier.internal"],
            "addresses": private,
            "ports": [{"number": 443, "name": "tls-search", "protocol": "TLS"}],
            "resolution": "NONE",
            "location": "MESH_EXTERNAL",
            "exportTo": ["."],
        },
    }


def test_negative_control_the_old_search_entry_blackholes_search_and_sts(
    production: StackRun, monkeypatch: pytest.MonkeyPatch, no_network: None
) -> None:
    namespace = app_namespace(production)
    entries = [
        old_search_entry(production) if e["metadata"]["name"] == "data-tier-search" else e
        for e in objects(production, "ServiceEntry").values()
    ]
    # A copy: the render's objects are shared by every test of the session.
    sidecars = copy.deepcopy(objects(production, "Sidecar"))
    for sidecar in sidecars.values():
        [egress] = sidecar["spec"]["egress"]
        if any(".es.amazonaws.com" in h for h in egress["hosts"]):
            egress["hosts"] = [
                f"{namespace}/opensearch.data-tier.internal" if ".es.amazonaws.com" in h else h
                for h in egress["hosts"]
            ]
    found = misses(production, monkeypatch, entries, sidecars)
    lost = {line.split(" at ")[0] for line in found}
    # The two services that use the search domain lose it and, through the same chain on
    # 0.0.0.0_443, STS (no credentials: no database token, no S3); the others keep theirs.
    assert all(line.endswith(BLACKHOLE) for line in found), found
    assert lost == {
        f"{service} -> {what}"
        for service in ("financial-planning-api", "document-service")
        for what in (
            f"opensearch {urlsplit(app_config(production)['SEARCH_ENDPOINT']).hostname}",
            "sts sts.us-east-1.amazonaws.com",
        )
    }, lost


def test_negative_control_without_s3_global_names_legacy_sdks_lose_the_documents(
    production: StackRun, monkeypatch: pytest.MonkeyPatch, no_network: None
) -> None:
    global_names = {"s3.amazonaws.com", "*.s3.amazonaws.com"}
    entries = []
    for entry in objects(production, "ServiceEntry").values():
        if entry["metadata"]["name"] == "aws-apis":
            spec = entry["spec"]
            assert global_names <= set(spec["hosts"])
            hosts = [h for h in spec["hosts"] if h not in global_names]
            entry = {**entry, "spec": {**spec, "hosts": hosts}}
        entries.append(entry)
    found = misses(production, monkeypatch, entries, objects(production, "Sidecar"))
    # Only the documents' S3 calls of an SDK that ignores the shared configuration.
    assert found and all(line.startswith("document-service -> s3 ") for line in found), found
    assert all(line.split(" at ")[0].endswith("s3.amazonaws.com") for line in found), found


def test_database_tokens_need_no_call(no_network: None) -> None:
    """IAM database authentication: botocore signs the token locally (a presigned URL)."""
    rds = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="AKIAOFFLINEEXAMPLE", aws_secret_access_key="x"
    ).client("rds")
    token = rds.generate_db_auth_token("db.example.internal", 5432, "user_service")
    assert token.startswith("db.example.internal:5432/?Action=connect")


def test_the_model_prunes_by_prefix_then_name_without_falling_back() -> None:
    """Envoy's own example (listener_components.proto, FilterChainMatch): for SNI
    www.example.com the order is www.example.com, *.example.com, *.com, no server names; and
    a more specific destination prefix wins before any name is looked at."""
    wide = ipaddress.IPv4Network("10.0.0.0/8")
    narrow = ipaddress.IPv4Network("10.0.0.0/18")
    chains = [
        Chain("any", "ServiceEntry/any", (), ()),
        Chain("*.com", "ServiceEntry/com", (), ("*.com",)),
        Chain("*.example.com", "ServiceEntry/example", (), ("*.example.com",)),
        Chain("www.example.com", "ServiceEntry/www", (), ("www.example.com",)),
    ]
    listener = Listener("0.0.0.0", 443, list(chains))
    public = ipaddress.IPv4Address("52.216.8.10")
    for sni, expected in (
        ("www.example.com", "www.example.com"),
        ("api.example.com", "*.example.com"),
        ("example.org.com", "*.com"),
        ("example.org", "any"),
    ):
        chosen = choose_chain(listener, Connection(public, 443, sni))
        assert chosen is not None and chosen.host == expected, (sni, chosen)
    # A prefix chain captures its range first; its name decides, with no fallback.
    listener.chains.append(Chain("inside", "ServiceEntry/inside", (narrow,), ("inside.internal",)))
    listener.chains.append(Chain("wide", "ServiceEntry/wide", (wide,), ()))
    inside = ipaddress.IPv4Address("10.0.1.1")
    assert choose_chain(listener, Connection(inside, 443, "www.example.com")) is None
    chosen = choose_chain(listener, Connection(inside, 443, "inside.internal"))
    assert chosen is not None and chosen.host == "inside"
    chosen = choose_chain(listener, Connection(ipaddress.IPv4Address("10.9.0.1"), 443, "x.org"))
    assert chosen is not None and chosen.host == "wide"
    # And a listener without a chain for the connection ends in its default.
    assert route({}, Connection(inside, 443, "x"), registry_only=True).cluster == BLACKHOLE
    assert route({}, Connection(inside, 443, "x"), registry_only=False).cluster == PASSTHROUGH
