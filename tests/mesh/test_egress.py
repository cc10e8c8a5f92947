"""Outbound: registered destinations, each service's share of them, and their agreement with
the network policies."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

import pytest

from offline.engine import StackRun
from stacks import SettingsError, settings_from_values
from stacks.merge import deep_merge
from tests.lookup import app_namespace, app_objects, helm_release, objects
from tests.test_settings import BASE

STORE_PORTS = {"database": 5432, "cache": 6379, "search": 443}


def settings_of(run: StackRun) -> Any:
    return run.namespace["settings"]


def entries(run: StackRun) -> dict[str, dict[str, Any]]:
    return objects(run, "ServiceEntry")


def sidecars(run: StackRun) -> dict[str, dict[str, Any]]:
    return objects(run, "Sidecar")


def test_production_reaches_only_registered_destinations_staging_anywhere(
    production: StackRun, staging: StackRun
) -> None:
    for run, mode in ((production, "REGISTRY_ONLY"), (staging, "ALLOW_ANY")):
        mesh = helm_release(run, "istiod").inputs["values"]["meshConfig"]
        assert mesh["outboundTrafficPolicy"] == {"mode": mode}


def test_the_internet_hosts_are_the_services_that_call_out(stack_run: StackRun) -> None:
    settings = settings_of(stack_run)
    found = entries(stack_run)
    internet = {
        name.removesuffix("-internet"): entry["spec"]
        for name, entry in found.items()
        if name.endswith("-internet")
    }
    assert {
        s: e["hosts"] for s, e in internet.items()
    } == settings.addons.mesh.outbound.external_hosts
    for service, spec in internet.items():
        assert settings.services[service].internet_https, service
        assert spec["ports"] == [{"number": 443, "name": "tls", "protocol": "TLS"}]
        assert spec["location"] == "MESH_EXTERNAL" and spec["exportTo"] == ["."]
    hosts = {h for e in internet.values() for h in e["hosts"]}
    expected_plaid = {"production": "production.plaid.com", "staging": "sandbox.plaid.com"}
    assert expected_plaid[stack_run.stack] in hosts and "api.openai.com" in hosts


def test_the_search_domain_is_registered_by_its_endpoint_name_only(stack_run: StackRun) -> None:
    """A TLS entry with CIDR addresses would match only its own host as the server name, and
    its prefixes would capture every other 443 destination inside them (tests/mesh/
    envoy_outbound.py): the domain is registered by the name its clients send, and nothing
    else on 443 carries addresses."""
    found = entries(stack_run)
    spec = found["data-tier-search"]["spec"]
    endpoint = urlsplit(
        app_objects(stack_run, "ConfigMap")["financial-planning-config"]["data"]["SEARCH_ENDPOINT"]
    )
    assert spec["hosts"] == [endpoint.hostname] and "addresses" not in spec
    assert spec["ports"] == [{"number": 443, "name": "tls-search", "protocol": "TLS"}]
    on_443 = [
        e["spec"] for e in found.values() if any(p["number"] == 443 for p in e["spec"]["ports"])
    ]
    assert all("addresses" not in e for e in on_443), on_443


def test_the_tcp_stores_are_registered_by_the_ranges_their_network_policies_open(
    stack_run: StackRun,
) -> None:
    found = entries(stack_run)
    policies = objects(stack_run, "NetworkPolicy")
    for store, port in STORE_PORTS.items():
        spec = found[f"data-tier-{store}"]["spec"]
        assert [p["number"] for p in spec["ports"]] == [port]
        assert spec["resolution"] == "NONE"
        if store == "search":
            continue
        assert [p["protocol"] for p in spec["ports"]] == ["TCP"]
        ranges = {ipaddress.ip_network(a) for a in spec["addresses"]}
        # Every service that uses the store is let out to exactly these ranges on its port.
        for name, service in settings_of(stack_run).services.items():
            if store not in service.data_stores:
                continue
            egress = policies[f"{name}-egress"]["spec"]["egress"]
            opened = [
                {ipaddress.ip_network(t["ipBlock"]["cidr"]) for t in r["to"] if "ipBlock" in t}
                for r in egress
                if r["ports"] == [{"port": port, "protocol": "TCP"}]
            ]
            assert ranges in opened, (name, store)


def test_each_sidecar_sees_its_callees_stores_and_hosts_only(stack_run: StackRun) -> None:
    settings = settings_of(stack_run)
    namespace = app_namespace(stack_run)
    found = sidecars(stack_run)
    assert set(found) == set(settings.services)
    registered = {h for e in entries(stack_run).values() for h in e["spec"]["hosts"]}
    services = {f"{s}.{namespace}.svc.cluster.local" for s in settings.services}
    for name, sidecar in found.items():
        service = settings.services[name]
        assert sidecar["spec"]["workloadSelector"] == {"labels": {"app.kubernetes.io/name": name}}
        [egress] = sidecar["spec"]["egress"]
        hosts = egress["hosts"]
        assert hosts[-1] == "istio-system/*"
        # Beside the mesh's own namespace, the one outside host is Jaeger's collector.
        assert hosts[-2] == "tracing/jaeger.tracing.svc.cluster.local"
        visible = [h.split("/", 1) for h in hosts[:-2]]
        assert all(ns == namespace for ns, _ in visible), hosts
        names = {h for _, h in visible}
        # Everything it sees is a service of the catalog or a registered destination.
        assert names <= services | registered, names - services - registered
        # Its callees, exactly.
        assert {h for h in names if h in services} == {
            f"{c}.{namespace}.svc.cluster.local" for c in service.calls
        }
        # An internet host only for a service its network policy lets out.
        internet = {h for h in names if not h.endswith((".internal", "amazonaws.com"))} - services
        assert not internet or service.internet_https, (name, internet)
        stores = {h.split(".", 1)[0] for h in names if h.endswith(".data-tier.internal")}
        stores |= {"opensearch" for h in names if h.endswith(".es.amazonaws.com")}
        assert stores == {
            {"database": "postgresql", "cache": "redis", "search": "opensearch"}[s]
            for s in service.data_stores
        }


def test_only_services_with_a_role_see_the_aws_apis(stack_run: StackRun) -> None:
    region = settings_of(stack_run).region
    roles = {
        o["metadata"]["name"]
        for o in objects(stack_run, "ServiceAccount").values()
        if "eks.amazonaws.com/role-arn" in o["metadata"].get("annotations", {})
    }
    for name, sidecar in sidecars(stack_run).items():
        hosts = sidecar["spec"]["egress"][0]["hosts"]
        sees_sts = any(h.endswith(f"/sts.{region}.amazonaws.com") for h in hosts)
        assert sees_sts == (name in roles), name
    # The documents' S3 is reached at S3's own addresses: its network policy lets it out on
    # 443, and the mesh narrows that to S3's names.
    document = objects(stack_run, "NetworkPolicy")["document-service-egress"]["spec"]["egress"]
    assert any(
        r["to"][0].get("ipBlock", {}).get("cidr") == "0.0.0.0/0"
        and r["ports"] == [{"port": 443, "protocol": "TCP"}]
        for r in document
    )


@pytest.mark.parametrize(
    ("outbound", "expected"),
    [
        (
            {"externalHosts": {"user-service": ["api.example.com"]}},
            "addons.mesh.outbound.externalHosts.user-service: user-service has no "
            "internetHttps: its network policy lets it reach no internet host (allowed: [] or "
            "services.user-service.internetHttps: true)",
        ),
        (
            {"externalHosts": {"ml-service": []}},
            "addons.mesh.outbound.externalHosts.ml-service: ml-service calls the internet, but "
            "with registryOnly it would reach none of it: list its hosts",
        ),
        (
            {"externalHosts": {"ml-service": ["https://api.openai.com"]}},
            "addons.mesh.outbound.externalHosts.ml-service[0]: 'https://api.openai.com' is invalid",
        ),
        (
            {"externalHosts": {"payments": ["api.example.com"]}},
            "addons.mesh.outbound.externalHosts: unknown key 'payments'",
        ),
    ],
)
def test_bad_outbound_settings_fail_with_one_line(outbound: dict[str, Any], expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from_values(
            "production", deep_merge(BASE, {"addons": {"mesh": {"outbound": outbound}}})
        )
    message = str(caught.value)
    assert message.startswith(expected) and "\n" not in message, message
