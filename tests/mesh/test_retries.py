"""Retries that retry, only what is safe, and never a try that may still be running: each
class's rendered routes and DestinationRules, read the way Envoy acts on them
(tests/mesh/envoy_retries.py, envoy_outlier.py), against the seed's policies.

- API and standard ("balanced"): an idempotent request is retried on gateway errors (502, 503,
  504 responses and resets) and where it never reached the service; any other request only
  where it never reached the service;
- banking ("conservative"): an idempotent request once, where it never reached the service or
  the service refused it (502, 503); never any other, never a try that timed out or was reset
  after it went out (a PUT or DELETE would race its own retry);
- ML ("extended timeouts, single retry"): one retry of any request that never reached the
  service, none of one that reached it (an inference that timed out is not run twice).
No route cuts a try short (no per-try timeout): a request that runs out of its route's timeout
is never run again, on any hop. Every caller bounds its retries in flight (Istio's default is
2^32-1) and counts its own timeouts apart from the pod's answers, so a slow pod is not ejected.
The gateway calls the edge services with the same routes.
"""

from __future__ import annotations

from typing import Any

import pytest

from offline.engine import StackRun
from stacks import SettingsError, settings_from_values
from stacks.merge import deep_merge
from tests.lookup import app_objects, objects
from tests.mesh.envoy_outlier import Outcome, ejected, from_destination_rule
from tests.mesh.envoy_retries import (
    FAILURES,
    NEVER_REACHED,
    duration_ms,
    istio_policy,
    retried,
    retry_admitted,
    route_for,
)
from tests.test_settings import BASE

IDEMPOTENT = ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")
OTHERS = ("POST", "PATCH")
# The seed's classes (docs/mesh.md, "Traffic per service class"), as literals.
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
# Gateway errors as Envoy's `gateway-error` reads them: 502, 503 (an upstream proxy's
# overloaded 503 too), 504 responses and any reset of a try that got a connection.
GATEWAY_ERRORS = ("502", "503", "503-overloaded", "504", "reset-after-request")
# What banking may retry of an idempotent request: it never got there, or was refused.
BANKING_RETRIES = (*NEVER_REACHED, "502", "503", "503-overloaded")


def check_routes(name: str, http: list[dict[str, Any]], path: str = "/") -> None:
    kind = CLASSES[name]
    for method in (*IDEMPOTENT, *OTHERS):
        route = route_for(http, method, path)
        policy = istio_policy(route.get("retries"))
        timeout = duration_ms(route["timeout"])
        where = (name, method, path)
        # No try is cut short and retried while it may still run; none ends the route early.
        assert policy.per_try_ms is None, where
        # Without a per-try timeout no try ends that way.
        for failure in (f for f in FAILURES if f != "per-try-timeout"):
            again = retried(policy, failure)
            # Never on the route's timeout, nor on the caller's own circuit breaker.
            if failure in ("route-timeout", "caller-overflow"):
                assert not again, (*where, failure)
            if method in OTHERS:
                assert again == (kind in ("api", "standard", "ml") and failure in NEVER_REACHED), (
                    *where,
                    failure,
                )
            elif kind in ("api", "standard"):
                if failure in (*NEVER_REACHED, *GATEWAY_ERRORS):
                    assert again, (*where, failure)
                if failure == "500":
                    assert not again, (*where, failure)
            elif kind == "banking":
                assert again == (failure in BANKING_RETRIES), (*where, failure)
            elif kind == "ml":
                assert again == (failure in NEVER_REACHED), (*where, failure)
        if kind == "ml":
            assert policy.attempts == 1 and timeout >= 120_000, where
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


def test_no_route_of_the_mesh_or_the_edge_cuts_a_try_short(stack_run: StackRun) -> None:
    """Finding 1 of the review: a 4 s per-try timeout on every hop cut a 4-15 s request three
    times per hop. No VirtualService of the render has a per-try timeout now."""
    for name, service in objects(stack_run, "VirtualService").items():
        for route in service["spec"].get("http", []):
            assert "perTryTimeout" not in route.get("retries", {}), name


def test_a_user_request_through_the_edge_has_the_api_s_budget(stack_run: StackRun) -> None:
    """ML's two minutes are for calls outside a user's request (docs/mesh.md, traffic classes): the
    gateway ends a user's request at the API's timeout, and a route timeout is never retried,
    so nothing downstream runs it again."""
    api = objects(stack_run, "VirtualService")["edge-api"]["spec"]["http"]
    ml = app_objects(stack_run, "VirtualService")["ml-service"]["spec"]["http"]
    edge_timeout = duration_ms(route_for(api, "POST", "/")["timeout"])
    assert edge_timeout == 15_000 < duration_ms(ml[0]["timeout"]) == 120_000


@pytest.mark.parametrize(
    ("retries", "failure"),
    [
        # The API as the review found it: a 4-15 s idempotent request cut at 4 s and run again.
        (
            {
                "attempts": 2,
                "perTryTimeout": "4s",
                "retryOn": "gateway-error,connect-failure,refused-stream,unavailable",
            },
            "per-try-timeout",
        ),
        # Banking as the review found it: a PUT retried after 2 s while the first may still run.
        (
            {
                "attempts": 1,
                "perTryTimeout": "2s",
                "retryOn": "gateway-error,connect-failure,refused-stream,reset-before-request",
            },
            "per-try-timeout",
        ),
    ],
)
def test_negative_control_a_retried_per_try_timeout_fails_the_check(
    retries: dict[str, Any], failure: str
) -> None:
    policy = istio_policy(retries)
    assert retried(policy, failure)  # type: ignore[arg-type]
    name = "banking-service" if "reset-before-request" in retries["retryOn"] else "user-service"
    http = [{"timeout": "15s" if name == "user-service" else "5s", "retries": retries}]
    with pytest.raises(AssertionError):
        check_routes(name, http)


def test_the_model_tells_an_upstream_503_from_the_callers_own_overflow() -> None:
    """Finding 5: an upstream's 503 (with or without x-envoy-overloaded) is a response, which
    gateway-error retries; the caller's own circuit breaker resets the stream with Overflow,
    which nothing retries; and no retry starts past the caller's max_retries."""
    policy = istio_policy({"attempts": 2, "retryOn": "gateway-error"})
    assert retried(policy, "503") and retried(policy, "503-overloaded")
    assert not retried(policy, "caller-overflow")
    everything = istio_policy({"attempts": 2, "retryOn": "5xx,reset,gateway-error"})
    assert not retried(everything, "caller-overflow")
    assert retry_admitted(in_flight=9, max_retries=10)
    assert not retry_admitted(in_flight=10, max_retries=10)


def test_every_caller_bounds_its_retries_in_flight(stack_run: StackRun) -> None:
    """Istio's default max_retries is math.MaxUint32 (cluster_traffic_policy.go
    getDefaultCircuitBreakerThresholds, 1.30.3), and `applyConnectionPool` copies
    `connectionPool.http.maxRetries` only when above 0: each rule sets a real bound, below its
    connection limit (retries are requests too)."""
    for name, rule in app_objects(stack_run, "DestinationRule").items():
        pool = rule["spec"]["trafficPolicy"]["connectionPool"]
        bound = pool["http"]["maxRetries"]
        assert isinstance(bound, int) and 0 < bound < pool["tcp"]["maxConnections"], name
        # With the bound reached, a failed try goes back to the caller as it is.
        assert not retry_admitted(in_flight=bound, max_retries=bound)


def test_a_caller_that_gives_up_on_a_slow_pod_does_not_eject_it(stack_run: StackRun) -> None:
    """Finding 1: Envoy reports a caller's timeout as LocalOriginTimeout (router.cc
    onPerTryTimeoutCommon, onResponseTimeout) which, unless local-origin errors are split,
    counts as the pod's 504. With the split, only the pod's own 5xx answers and failed
    connections in a row eject it."""
    for name, rule in app_objects(stack_run, "DestinationRule").items():
        outlier = rule["spec"]["trafficPolicy"]["outlierDetection"]
        detector = from_destination_rule(outlier)
        assert detector.split, name
        # Slow pod: every caller's try times out, a hundred in a row. Still in.
        assert ejected(outlier, ["timeout"] * 100) == [], name
        assert ejected(outlier, ["timeout", "reset"] * 50) == [], name
        # A pod that answers 5xx, or that is gone (connections fail), is taken out.
        answers = outlier["consecutive5xxErrors"]
        assert ejected(outlier, ["5xx"] * answers) == ["consecutive_5xx"], name
        fives: list[Outcome] = ["5xx"] * (answers - 1)
        interrupted: list[Outcome] = [*fives, "ok", "5xx"]
        assert ejected(outlier, interrupted) == [], name
        gone = outlier["consecutiveLocalOriginFailures"]
        assert ejected(outlier, ["connect-failure"] * gone) == [
            "consecutive_local_origin_failure"
        ], name
        # The caller's own overflow says nothing about the pod (envoyproxy/envoy#25487).
        assert ejected(outlier, ["caller-overflow"] * 100) == [], name


def test_negative_control_without_the_split_slow_requests_eject_a_healthy_pod() -> None:
    """The rule as the review found it: five caller timeouts in a row eject the pod."""
    found = {
        "consecutive5xxErrors": 5,
        "interval": "30s",
        "baseEjectionTime": "30s",
        "maxEjectionPercent": 50,
    }
    assert ejected(found, ["timeout"] * 5) == ["consecutive_5xx"]


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
        # The API class as the review found it: a timed-out try retried while it may still run.
        (
            {"api": {"retries": {"perTryTimeout": "4s"}}},
            "addons.mesh.traffic.classes.api.retries.perTryTimeout: a try cut at 4s is retried "
            "while the service may still be running it",
        ),
        # The API class as issue 21 found it: a timed-out try never retried, the route cut.
        (
            {
                "api": {
                    "retries": {
                        "perTryTimeout": "5s",
                        "retryOn": ["connect-failure", "refused-stream", "unavailable"],
                    }
                }
            },
            "addons.mesh.traffic.classes.api.retries.perTryTimeout: a try cut at 5s is not "
            "retried under retryOn",
        ),
        (
            {"banking": {"retries": {"perTryTimeout": "5s"}}},
            "addons.mesh.traffic.classes.banking.retries.perTryTimeout: Envoy ignores a per-try "
            "timeout at or above the route's timeout 5s",
        ),
        (
            {"ml": {"retries": {"attempts": 0, "perTryTimeout": "30s"}}},
            "addons.mesh.traffic.classes.ml.retries.perTryTimeout: a try cut at 30s is not retried",
        ),
        # Banking as the review found it: gateway-error retries a reset PUT and a 504.
        (
            {"banking": {"retries": {"retryOn": ["gateway-error", "connect-failure"]}}},
            "addons.mesh.traffic.classes.banking.retries.retryOn: ['gateway-error'] retry a try "
            "banking-service may still be running",
        ),
        (
            {"banking": {"retries": {"statusCodes": [502, 504]}}},
            "addons.mesh.traffic.classes.banking.retries.statusCodes: [504] may answer a request "
            "banking-service acted on",
        ),
        (
            {"banking": {"retries": {"unsentAttempts": 1}}},
            "addons.mesh.traffic.classes.banking.retries.unsentAttempts: banking-service "
            "retries no request that is not idempotent",
        ),
        (
            {"ml": {"retries": {"retryOn": ["gateway-error"]}}},
            "addons.mesh.traffic.classes.ml.retries.retryOn: ['gateway-error'] retry requests "
            "the service may already have received",
        ),
        (
            {"ml": {"retries": {"statusCodes": [503]}}},
            "addons.mesh.traffic.classes.ml.retries.statusCodes: [503] retry responses to "
            "requests the service received",
        ),
        (
            {"ml": {"retries": {"unsentAttempts": 1}}},
            "addons.mesh.traffic.classes.ml.retries.unsentAttempts: with methods 'all' there "
            "are no other methods",
        ),
        (
            {"standard": {"connectionPool": {"maxRetries": 0}}},
            "addons.mesh.traffic.classes.standard.connectionPool.maxRetries: Istio reads 0 as "
            "unset and gives Envoy 4294967295 concurrent retries",
        ),
        (
            {"api": {"outlierDetection": {"consecutiveLocalOriginFailures": 0}}},
            "addons.mesh.traffic.classes.api.outlierDetection.consecutiveLocalOriginFailures:",
        ),
    ],
)
def test_retry_settings_that_envoy_would_not_honour_are_refused(
    classes: dict[str, Any], expected: str
) -> None:
    found = error_of({"classes": classes})
    assert found.startswith(expected), found
