"""Retries that retry, and only what is safe: each class's rendered routes, read the way Envoy
acts on them (tests/mesh/envoy_retries.py), against the seed's policies.

- API and standard ("balanced"): an idempotent request is retried on gateway errors, a
  timed-out try included, and every try gets its whole per-try timeout; any other request
  only where it never reached the service;
- banking ("conservative"): an idempotent request once, on those failures; never any other;
- ML ("extended timeouts, single retry"): one retry of any request that never reached the
  service, none of one that reached it (an inference that timed out is not run twice), and
  no per-try timeout shorter than the route's.
The gateway calls the edge services with the same routes.
"""

from __future__ import annotations

from typing import Any

import pytest

from offline.engine import StackRun
from stacks import SettingsError, settings_from_values
from stacks.merge import deep_merge
from tests.lookup import app_objects, objects
from tests.mesh.envoy_retries import (
    FAILURES,
    NEVER_REACHED,
    duration_ms,
    every_try_gets_its_time,
    istio_policy,
    retried,
    route_for,
)
from tests.test_settings import BASE

IDEMPOTENT = ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")
OTHERS = ("POST", "PATCH")
# The seed's classes (README, "Traffic Policies"), as literals.
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


def check_routes(name: str, http: list[dict[str, Any]], path: str = "/") -> None:
    kind = CLASSES[name]
    for method in (*IDEMPOTENT, *OTHERS):
        route = route_for(http, method, path)
        policy = istio_policy(route.get("retries"))
        timeout = duration_ms(route["timeout"])
        where = (name, method, path)
        # Envoy ignores a per-try timeout at or above the route's.
        assert policy.per_try_ms is None or policy.per_try_ms < timeout, where
        assert every_try_gets_its_time(timeout, policy), where
        # A try cut short must be a try retried: otherwise the route ends at the per-try
        # timeout, not at its timeout.
        if policy.per_try_ms is not None:
            assert retried(policy, "per-try-timeout"), where
        for failure in FAILURES:
            again = retried(policy, failure)
            if method in OTHERS and failure not in NEVER_REACHED:
                assert not again, (*where, failure)
            if kind == "banking" and method in OTHERS:
                assert not again, (*where, failure)
            gateway_errors = ("connect-failure", "refused-stream", "per-try-timeout", "503")
            if kind != "ml" and method in IDEMPOTENT and failure in gateway_errors:
                assert again, (*where, failure)
            if kind in ("api", "standard") and method in OTHERS and failure in NEVER_REACHED:
                assert again, (*where, failure)
            if kind == "ml":
                assert again == (failure in NEVER_REACHED), (*where, failure)
        if kind == "ml":
            assert policy.attempts == 1 and policy.per_try_ms is None and timeout >= 120_000
        if kind == "banking":
            assert timeout <= 5_000 and policy.attempts <= 1, where


def test_each_class_retries_what_the_seed_says_inside_the_mesh(stack_run: StackRun) -> None:
    routes = app_objects(stack_run, "VirtualService")
    assert set(routes) == set(CLASSES)
    for name, service in routes.items():
        check_routes(name, service["spec"]["http"])


def test_the_gateway_calls_the_edge_services_with_their_class_routes(
    stack_run: StackRun,
) -> None:
    api = objects(stack_run, "VirtualService")["edge-api"]["spec"]["http"]
    for path, name in (("/graphql", "graphql-gateway"), ("/graphql/query", "graphql-gateway")):
        check_routes(name, api, path)
        assert route_for(api, "POST", path)["route"][0]["destination"]["host"].startswith(name)
    for path in ("/", "/v1/plans"):
        check_routes("financial-planning-api", api, path)
        destination = route_for(api, "GET", path)["route"][0]["destination"]["host"]
        assert destination.startswith("financial-planning-api.")


def test_negative_control_the_old_routes_never_retry_a_timed_out_try() -> None:
    """The routes issue 21 found: API `connect-failure,refused-stream,unavailable` with a 5 s
    per-try timeout in 15 s; ML 60 s per try in 120 s, with the default retryOn."""
    old_api = istio_policy(
        {
            "attempts": 2,
            "perTryTimeout": "5s",
            "retryOn": "connect-failure,refused-stream,unavailable",
        }
    )
    old_ml = istio_policy(
        {"attempts": 1, "perTryTimeout": "60s", "retryOn": "connect-failure,refused-stream"}
    )
    for policy in (old_api, old_ml):
        assert not retried(policy, "per-try-timeout")
    # 3 x 5 s and their back-off do not fit in 15 s either.
    assert not every_try_gets_its_time(15_000, old_api)


def error_of(traffic: dict[str, Any]) -> str:
    with pytest.raises(SettingsError) as caught:
        settings_from_values(
            "production", deep_merge(BASE, {"addons": {"mesh": {"traffic": traffic}}})
        )
    message = str(caught.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize(
    ("classes", "expected"),
    [
        # The API class as issue 21 found it: a timed-out try is never retried.
        (
            {"api": {"retries": {"retryOn": ["connect-failure", "refused-stream", "unavailable"]}}},
            "addons.mesh.traffic.classes.api.retries.perTryTimeout: a try that times out is "
            "retried only under reset, 5xx, gateway-error",
        ),
        (
            {"standard": {"timeout": "27s"}},
            "addons.mesh.traffic.classes.standard.timeout: 27s is shorter than perTryTimeout 9s "
            "x 3 tries and their back-off (allowed: at least 27100ms)",
        ),
        (
            {"banking": {"retries": {"perTryTimeout": "5s"}}},
            "addons.mesh.traffic.classes.banking.retries.perTryTimeout: Envoy ignores a per-try "
            "timeout at or above the route's timeout 5s",
        ),
        (
            {"ml": {"retries": {"retryOn": ["gateway-error"]}}},
            "addons.mesh.traffic.classes.ml.retries.retryOn: ['gateway-error'] retry requests "
            "the service may already have received",
        ),
        (
            {"banking": {"retries": {"unsentAttempts": 1}}},
            "addons.mesh.traffic.classes.banking.retries.unsentAttempts: banking-service "
            "retries no request that is not idempotent",
        ),
        (
            {"ml": {"retries": {"unsentAttempts": 1}}},
            "addons.mesh.traffic.classes.ml.retries.unsentAttempts: with methods 'all' there "
            "are no other methods",
        ),
        (
            {"ml": {"retries": {"attempts": 0, "perTryTimeout": "30s"}}},
            "addons.mesh.traffic.classes.ml.retries.perTryTimeout: without retries a per-try "
            "timeout only shortens",
        ),
    ],
)
def test_retry_settings_that_envoy_would_not_honour_are_refused(
    classes: dict[str, Any], expected: str
) -> None:
    found = error_of({"classes": classes})
    assert found.startswith(expected), found
