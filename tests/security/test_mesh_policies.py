"""The mesh's policies: STRICT mTLS everywhere but each service's metrics port, deny by
default, and each service allowing exactly its callers (by service-account identity, from the
catalog's graph), the gateway for edge services, and Prometheus on the metrics port."""

from __future__ import annotations

from typing import Any

from offline.engine import StackRun
from stacks.catalog import callers_of
from stacks.environments import DEFAULTS
from tests.conftest import SEED_PORTS, run_with
from tests.lookup import app_namespace, objects

# Who calls whom, as literals (the seed's service graph): the policies must follow it.
CALLERS = {
    "financial-planning-api": ["graphql-gateway"],
    "user-service": ["financial-planning-api", "graphql-gateway"],
    "banking-service": ["financial-planning-api", "graphql-gateway"],
    "simulation-service": ["financial-planning-api", "graphql-gateway"],
    "ml-service": ["financial-planning-api", "simulation-service"],
    "notification-service": ["banking-service", "financial-planning-api", "user-service"],
    "document-service": ["financial-planning-api", "graphql-gateway"],
    "graphql-gateway": [],
}
EDGE = {"financial-planning-api", "graphql-gateway"}


def in_app(run: StackRun, kind: str) -> dict[str, dict[str, Any]]:
    namespace = app_namespace(run)
    return {n: o for n, o in objects(run, kind).items() if o["metadata"]["namespace"] == namespace}


def test_the_catalog_graph_is_the_seeds() -> None:
    from stacks import settings_from_values
    from tests.test_settings import BASE

    services = settings_from_values("production", BASE).services
    assert {name: callers_of(name, services) for name in SEED_PORTS} == CALLERS


def test_mtls_is_strict_but_on_each_metrics_port(stack_run: StackRun) -> None:
    peer = objects(stack_run, "PeerAuthentication")
    assert peer["default"]["metadata"]["namespace"] == "istio-system"
    assert peer["default"]["spec"] == {"mtls": {"mode": "STRICT"}}
    per_service = in_app(stack_run, "PeerAuthentication")
    assert set(per_service) == set(SEED_PORTS)
    for name, policy in per_service.items():
        assert policy["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": name}}
        assert policy["spec"]["mtls"] == {"mode": "STRICT"}
        assert policy["spec"]["portLevelMtls"] == {"9464": {"mode": "PERMISSIVE"}}


def test_deny_by_default_and_each_service_allows_its_callers_only(stack_run: StackRun) -> None:
    namespace = app_namespace(stack_run)
    policies = in_app(stack_run, "AuthorizationPolicy")
    assert policies.pop("deny-all")["spec"] == {}
    assert set(policies) == set(SEED_PORTS)
    accounts = set(in_app(stack_run, "ServiceAccount"))
    gateway_principal = "cluster.local/ns/istio-ingress/sa/istio-ingressgateway"
    for name, policy in policies.items():
        spec = policy["spec"]
        assert spec["action"] == "ALLOW"
        port = [{"operation": {"ports": [str(SEED_PORTS[name])]}}]
        # user-service: the gateway's proxy may GET the token keys, and nothing else there.
        keys = [
            r
            for r in spec["rules"]
            if r.get("from", [{}])[0].get("source", {}).get("principals") == [gateway_principal]
        ]
        assert (len(keys) == 1) == (name == "user-service"), name
        for rule in keys:
            assert rule["to"] == [
                {
                    "operation": {
                        "methods": ["GET"],
                        "paths": ["/.well-known/jwks.json"],
                        "ports": [str(SEED_PORTS[name])],
                    }
                }
            ]
            spec = {**spec, "rules": [r for r in spec["rules"] if r is not rule]}
        principals = [
            p
            for rule in spec["rules"]
            for source in rule.get("from", [])
            for p in source["source"].get("principals", [])
        ]
        expected = [f"cluster.local/ns/{namespace}/sa/{c}" for c in CALLERS[name]]
        assert principals == expected, name
        # Every principal is a service account the stack creates.
        assert {p.rsplit("/", 1)[1] for p in principals} <= accounts
        gateway = [
            r
            for r in spec["rules"]
            if r.get("from") == [{"source": {"namespaces": ["istio-ingress"]}}]
        ]
        assert (len(gateway) == 1) == (name in EDGE), name
        for rule in spec["rules"]:
            if "from" in rule:
                assert rule["to"] == port, name
        # Plain text on the metrics port only, from anyone NetworkPolicy lets through.
        no_source = [r for r in spec["rules"] if "from" not in r]
        assert no_source == [{"to": [{"operation": {"ports": ["9464"]}}]}], name


def test_prometheus_scrapes_the_metrics_port_which_its_network_policy_admits(
    stack_run: StackRun,
) -> None:
    monitors = in_app(stack_run, "ServiceMonitor")
    services = in_app(stack_run, "Service")
    for name, monitor in monitors.items():
        [endpoint] = monitor["spec"]["endpoints"]
        ports = {p["name"]: p["port"] for p in services[name]["spec"]["ports"]}
        assert ports[endpoint["port"]] == 9464, name


def test_without_the_mesh_no_policy_of_it() -> None:
    run = run_with("staging", addons={"mesh": {"enabled": False}}, edge={"enabled": False})
    kinds = {r.type for r in run.resources}
    assert not any("istio.io" in kind for kind in kinds)
    assert DEFAULTS["staging"]["addons"]["mesh"]["replicas"] == 1
