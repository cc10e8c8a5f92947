"""A model of whether Envoy retries a failed try of an Istio route, from the upstream sources.

Istio 1.30.3 (`git show 1.30.3:pilot/pkg/networking/core/route/retry/retry.go`, `ConvertPolicy`):
a route without `retries` gets Istio's default policy (2 retries on
`connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`, with no status
codes listed); `attempts: 0` gives no policy at all; otherwise attempts, `retryOn` (numbers
become retriable status codes, and `retriable-status-codes` is added) and `perTryTimeout` pass
through.

Envoy (istio/proxy 1.30.3 pins envoyproxy/envoy 4f1e006e, committed 2026-06-30; that commit is
not stored here: read at the newest stored main of source/common/router/retry_state_impl.cc
`wouldRetryFromReset` (with `upstream_request_started`), `wouldRetryFromHeaders`, and
router.cc `onPerTryTimeoutCommon`, `onResponseTimeout`, `onUpstreamReset`, `maybeRetryReset`;
docs configuration/http/http_filters/router_filter.rst, `x-envoy-retry-on`):
- a connection failure is retried under `connect-failure`; any reset of a try whose request
  never went out under `reset-before-request`; any reset under `reset`, `5xx` or
  `gateway-error`; an HTTP/2 REFUSED_STREAM under `refused-stream` too;
- a reset for `Overflow` (the caller's own circuit breaker: no connection or request slot, or
  pending queue full) is never retried (`wouldRetryFromReset` returns NoRetry first); the
  caller then answers 503 with `x-envoy-overloaded` itself;
- a per-try timeout resets the try locally (`LocalReset`) after its request went out: only
  `reset`, `5xx` and `gateway-error` retry it; the route's timeout (`onResponseTimeout`) ends
  the request and is never retried;
- a response is retried on its status: any 5xx under `5xx`, 502/503/504 under `gateway-error`,
  listed codes under `retriable-status-codes`; a gRPC status in the headers under its name
  (`unavailable`, `cancelled`, ...). An upstream's 503 carrying `x-envoy-overloaded` is retried
  like any other since Envoy 1.15 (envoyproxy/envoy#10847, "router: retry overloaded
  requests"; arch_overview/http/http_routing.rst: "Envoy retries requests when
  x-envoy-overloaded is present", advising a retry budget or the max-retries circuit breaker);
  only `x-envoy-ratelimited` stops a retry;
- a retry is made only while the caller's retries in flight to that cluster stay under its
  `max_retries` circuit breaker (`shouldRetry`: `retries().canCreate()`, else NoOverflow);
- a per-try timeout at or above the route's timeout is ignored; the route's timeout includes
  every try and the back-off before each retry (`FilterUtility::finalTimeout`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

Failure = Literal[
    "connect-failure",
    "refused-stream",
    "reset-before-request",
    "per-try-timeout",
    "route-timeout",
    "reset-after-request",
    "caller-overflow",
    "500",
    "502",
    "503",
    "503-overloaded",
    "504",
    "grpc-unavailable",
]
FAILURES: tuple[Failure, ...] = (
    "connect-failure",
    "refused-stream",
    "reset-before-request",
    "per-try-timeout",
    "route-timeout",
    "reset-after-request",
    "caller-overflow",
    "500",
    "502",
    "503",
    "503-overloaded",
    "504",
    "grpc-unavailable",
)
# Failures of a request the service never received: the connection failed, the stream was
# refused unprocessed (RFC 9113, 8.7: REFUSED_STREAM "indicates that the stream was closed
# prior to any processing having occurred"), or it was reset before the request went out.
NEVER_REACHED: frozenset[Failure] = frozenset(
    {"connect-failure", "refused-stream", "reset-before-request"}
)
# Responses by status: the upstream answered (a 503 with x-envoy-overloaded is an upstream
# proxy's own circuit breaker, still a response to this caller).
RESPONSES: dict[Failure, int] = {
    "500": 500,
    "502": 502,
    "503": 503,
    "503-overloaded": 503,
    "504": 504,
}
# retry.go `defaultRetryOn` and two retries; it sets no retriable status codes, so
# `retriable-status-codes` there retries none.
ISTIO_DEFAULT_RETRY_ON = (
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
)


@dataclass(frozen=True)
class Policy:
    attempts: int
    retry_on: frozenset[str]
    codes: frozenset[int]
    per_try_ms: int | None


def duration_ms(value: str) -> int:
    match = re.fullmatch(r"([0-9]+)(ms|s)", value)
    assert match is not None, value
    return int(match[1]) * (1 if match[2] == "ms" else 1000)


def istio_policy(retries: dict[str, Any] | None) -> Policy:
    """retry.go `ConvertPolicy`."""
    if retries is None:
        return Policy(2, frozenset(ISTIO_DEFAULT_RETRY_ON.split(",")), frozenset(), None)
    if retries.get("attempts", 0) <= 0:
        return Policy(0, frozenset(), frozenset(), None)
    words = [w.strip() for w in retries.get("retryOn", ISTIO_DEFAULT_RETRY_ON).split(",")]
    codes = {int(w) for w in words if w.isdigit()}
    retry_on = {w for w in words if not w.isdigit()}
    if codes:
        retry_on.add("retriable-status-codes")
    per_try = retries.get("perTryTimeout")
    return Policy(
        int(retries["attempts"]),
        frozenset(retry_on),
        frozenset(codes),
        duration_ms(per_try) if per_try else None,
    )


def retried(policy: Policy, failure: Failure) -> bool:
    """Whether Envoy retries a try that failed so (retries left and under max_retries)."""
    if policy.attempts == 0:
        return False
    on = policy.retry_on
    if failure in RESPONSES:
        code = RESPONSES[failure]
        return (
            "5xx" in on
            or ("gateway-error" in on and code in (502, 503, 504))
            or ("retriable-status-codes" in on and code in policy.codes)
        )
    if failure == "grpc-unavailable":
        return "unavailable" in on
    # The route's timeout ends the request; the caller's own overflow is never retried.
    if failure in ("route-timeout", "caller-overflow"):
        return False
    # A reset, in wouldRetryFromReset's order.
    if failure == "connect-failure" and "connect-failure" in on:
        return True
    started = failure in ("per-try-timeout", "reset-after-request", "refused-stream")
    if "reset-before-request" in on and not started:
        return True
    if on & {"reset", "5xx", "gateway-error"}:
        return True
    return failure == "refused-stream" and "refused-stream" in on


def retry_admitted(in_flight: int, max_retries: int) -> bool:
    """shouldRetry: a retry starts only while the caller's retries in flight to the cluster
    are under its max_retries threshold (else NoOverflow: the failure goes back as it is)."""
    return in_flight < max_retries


def route_for(http: list[dict[str, Any]], method: str, path: str = "/") -> dict[str, Any]:
    """The first route whose match takes the request (Istio keeps the order)."""
    for route in http:
        matches = route.get("match") or [{}]
        for match in matches:
            method_ok = "method" not in match or re.fullmatch(match["method"]["regex"], method)
            prefix = match.get("uri", {}).get("prefix", "/")
            if method_ok and path.startswith(prefix):
                return route
    raise AssertionError(f"no route takes {method} {path}")
