"""Traffic policy per service class: each service in exactly one class, each rule and route
aimed at an existing Service and port, the seed's policies per class, and bad classes refused."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from offline.engine import StackRun
from stacks import StackSettings
from stacks.environments import DEFAULTS
from stacks.loader import format_errors
from stacks.merge import deep_merge
from tests.conftest import SEED_PORTS, run_with
from tests.lookup import app_namespace, objects
from tests.test_settings import BASE, error_of

# The seed's classes, as literals.
CLASSES = {
    "financial-planning-api": "api",
    "graphql-gateway": "api",
    "banking-service": "banking",
    "ml-service": "ml",
    "simulation-service": "standard",
    "user-service": "standard",
    "notification-service": "standard",
    "document-service": "standard",
}


def in_app(run: StackRun, kind: str) -> dict[str, dict[str, Any]]:
    namespace = app_namespace(run)
    return {n: o for n, o in objects(run, kind).items() if o["metadata"]["namespace"] == namespace}


def test_every_rule_and_route_targets_an_existing_service_and_port(stack_run: StackRun) -> None:
    namespace = app_namespace(stack_run)
    services = in_app(stack_run, "Service")
    rules, routes = in_app(stack_run, "DestinationRule"), in_app(stack_run, "VirtualService")
    assert set(rules) == set(routes) == set(SEED_PORTS) == set(services)
    for name, rule in rules.items():
        host = f"{name}.{namespace}.svc.cluster.local"
        assert rule["spec"]["host"] == host
        assert routes[name]["spec"]["hosts"] == [host]
        ports = {p["port"] for p in services[name]["spec"]["ports"]}
        for route in routes[name]["spec"]["http"]:
            [destination] = route["route"]
            assert destination["destination"]["host"] == host
            assert destination["destination"]["port"]["number"] in ports


def test_the_seeds_policies_per_class(stack_run: StackRun) -> None:
    rules, routes = in_app(stack_run, "DestinationRule"), in_app(stack_run, "VirtualService")
    balancing = {n: r["spec"]["trafficPolicy"]["loadBalancer"]["simple"] for n, r in rules.items()}
    assert balancing == {
        n: "LEAST_REQUEST" if c == "api" else "ROUND_ROBIN" for n, c in CLASSES.items()
    }
    for name, rule in rules.items():
        policy = rule["spec"]["trafficPolicy"]
        # Circuit breaking on every service.
        assert policy["connectionPool"]["tcp"]["maxConnections"] > 0, name
        assert policy["outlierDetection"]["consecutive5xxErrors"] >= 1, name
    banking = routes["banking-service"]["spec"]["http"]
    # Banking: short timeout; retries only for idempotent methods, none for the rest.
    assert [r["timeout"] for r in banking] == ["5s", "5s"]
    assert banking[0]["match"] == [{"method": {"regex": "^(GET|HEAD|OPTIONS|PUT|DELETE)$"}}]
    assert banking[0]["retries"]["attempts"] == 1
    assert banking[1] == {**banking[1], "retries": {"attempts": 0}} and "match" not in banking[1]
    assert (
        rules["banking-service"]["spec"]["trafficPolicy"]["outlierDetection"][
            "consecutive5xxErrors"
        ]
        == 2
    )
    [ml] = routes["ml-service"]["spec"]["http"][:1]
    assert ml["timeout"] == "120s" and ml["retries"]["attempts"] == 1


def test_every_service_is_in_exactly_one_class() -> None:
    classes = DEFAULTS["production"]["addons"]["mesh"]["traffic"]["serviceClasses"]
    assert classes == CLASSES
    # A stack file can only move a service to another class (its mapping merges over the
    # defaults); an environment's defaults that left one out are refused.
    merged = copy.deepcopy(
        deep_merge(DEFAULTS["production"], {**BASE, "environment": "production"})
    )
    del merged["addons"]["mesh"]["traffic"]["serviceClasses"]["ml-service"]
    with pytest.raises(ValidationError) as raised:
        StackSettings.model_validate(merged)
    [line] = format_errors(raised.value)
    assert line.startswith("addons.mesh.traffic.serviceClasses: ['ml-service'] have no"), line


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"serviceClasses": {"reporting-service": "standard"}},
            "addons.mesh.traffic.serviceClasses: unknown key 'reporting-service'",
        ),
        (
            {"serviceClasses": {"ml-service": "gpu"}},
            "addons.mesh.traffic.serviceClasses.ml-service: 'gpu' is not a class",
        ),
        (
            {"classes": {"api": {"retries": {"perTryTimeout": "4s"}}}},
            "addons.mesh.traffic.classes.api.retries.perTryTimeout: a try cut at 4s is retried",
        ),
        (
            {
                "classes": {
                    "banking": {
                        "retries": {
                            "methods": "all",
                            "retryOn": ["connect-failure"],
                            "statusCodes": [],
                        }
                    }
                }
            },
            "addons.mesh.traffic.classes.banking.retries.methods: banking-service retries only",
        ),
        (
            {"classes": {"api": {"loadBalancing": "RANDOMISH"}}},
            "addons.mesh.traffic.classes.api.loadBalancing: 'RANDOMISH' is invalid",
        ),
    ],
)
def test_bad_traffic_settings_fail_with_one_line(values: dict[str, Any], message: str) -> None:
    found = error_of(addons={"mesh": {"traffic": values}})
    assert found.startswith(message), found
    assert "\n" not in found


def test_without_the_mesh_no_traffic_objects() -> None:
    run = run_with("staging", addons={"mesh": {"enabled": False}}, edge={"enabled": False})
    assert not objects(run, "DestinationRule") and not objects(run, "VirtualService")
