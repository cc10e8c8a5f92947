"""Traffic policy per service class: load balancing, timeouts, retries and circuit breaking.

Each service belongs to exactly one class (`addons.mesh.traffic.serviceClasses`); each class
sets how its services are called inside the mesh (an Istio DestinationRule and VirtualService
per service, components/mesh/traffic.py). Defaults follow the seed: least-request for the API,
round-robin for the rest; the API balanced, banking conservative (short timeouts, no retry of a
request that is not idempotent, fast ejection), ML with extended timeouts and one retry.

The checks follow what Envoy does with the route Istio gives it (Envoy router filter docs,
`x-envoy-retry-on`; source/common/router/retry_state_impl.cc `wouldRetryFromReset`; router.cc
`onPerTryTimeoutCommon`, `FilterUtility::finalTimeout`):
- a try that hits `perTryTimeout` is reset locally after its request was sent: it is retried
  only under `reset`, `5xx` or `gateway-error` (`connect-failure`, `refused-stream` and
  `reset-before-request` never retry it), so a shorter per-try timeout without one of those
  only cuts the route short;
- a per-try timeout at or above the route's timeout is ignored;
- the route's timeout covers every try and the back-off before each retry (25 ms base, the
  n-th retry waiting under (2^n - 1) x 25 ms, at most 250 ms);
- `connect-failure`, `refused-stream` and `reset-before-request` retry only requests that never
  reached the service: the only retries allowed for requests that are not idempotent.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from stacks.catalog import ServiceName
from stacks.rules import IstioDuration, milliseconds
from stacks.settings_base import Settings, invalid

LoadBalancing = Literal["LEAST_REQUEST", "ROUND_ROBIN"]
# What a retry may follow (Envoy's retry_on conditions that Istio passes through: Istio
# pkg/config/validation/validation.go `supportedRetryOnPolicies`).
RetryOn = Literal[
    "connect-failure",
    "refused-stream",
    "reset-before-request",
    "reset",
    "gateway-error",
    "5xx",
    "unavailable",
    "cancelled",
]
# Failures of a request that never reached the service: the connection failed, the upstream
# refused the stream (HTTP/2 REFUSED_STREAM, "safe to retry"), or the stream was reset before
# any byte of the request went out.
NEVER_REACHED: tuple[RetryOn, ...] = ("connect-failure", "refused-stream", "reset-before-request")
# The conditions under which a try that hit its per-try timeout is retried.
RETRIES_TIMED_OUT_TRIES: tuple[RetryOn, ...] = ("reset", "5xx", "gateway-error")
# Envoy's default retry back-off: base interval and cap (router filter docs).
BACKOFF_BASE_MS = 25
BACKOFF_MAX_MS = 250
# Istio's durations (ms, s, m, h) and their length: stacks/rules.py.
Duration = IstioDuration
ClassName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")]
# Methods that may be repeated without a second effect (RFC 9110, 9.2.2).
IDEMPOTENT_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")


def longest_backoff_ms(retries: int) -> int:
    """The most Envoy's default back-off can wait before `retries` retries, together."""
    return sum(min((2**n - 1) * BACKOFF_BASE_MS, BACKOFF_MAX_MS) for n in range(1, retries + 1))


class Retries(Settings):
    attempts: Annotated[int, Field(ge=0, le=5)]
    # Each try's limit; unset: a try may take what is left of the route's timeout.
    per_try_timeout: Duration | None = None
    retry_on: Annotated[list[RetryOn], Field(min_length=1)] = list(NEVER_REACHED)
    # "idempotent": these retries are for GET, HEAD, OPTIONS, PUT and DELETE; "all": for every
    # method (then only on failures of requests that never reached the service).
    methods: Literal["idempotent", "all"] = "idempotent"
    # With "idempotent": retries of the other methods, only where the request never reached
    # the service (connect-failure, refused-stream, reset-before-request); 0: none.
    unsent_attempts: Annotated[int, Field(ge=0, le=5)] = 0

    @model_validator(mode="after")
    def _safe_for_its_methods(self) -> Retries:
        if self.methods == "all":
            reached = [c for c in self.retry_on if c not in NEVER_REACHED]
            if self.attempts and reached:
                raise invalid(
                    "retryOn",
                    self.retry_on,
                    f"{reached} retry requests the service may already have received, and "
                    f"methods 'all' includes those that are not idempotent (allowed: "
                    f"{', '.join(NEVER_REACHED)}, or methods: idempotent)",
                )
            if self.unsent_attempts:
                raise invalid(
                    "unsentAttempts",
                    self.unsent_attempts,
                    "with methods 'all' there are no other methods (allowed: 0)",
                )
        return self


class ConnectionPool(Settings):
    max_connections: Annotated[int, Field(ge=1, le=100_000)]
    max_pending_requests: Annotated[int, Field(ge=1, le=100_000)]
    # 0: unlimited (HTTP/1.1 keep-alive reuses a connection for any number of requests).
    max_requests_per_connection: Annotated[int, Field(ge=0, le=100_000)] = 0


class OutlierDetection(Settings):
    # Spelt as Istio spells it (the generated camelCase would read "consecutive5XxErrors").
    consecutive_5xx_errors: Annotated[int, Field(ge=1, le=100, alias="consecutive5xxErrors")]
    interval: Duration
    base_ejection_time: Duration
    max_ejection_percent: Annotated[int, Field(ge=1, le=100)]


class TrafficClass(Settings):
    load_balancing: LoadBalancing
    timeout: Duration
    retries: Retries
    connection_pool: ConnectionPool
    outlier_detection: OutlierDetection

    @model_validator(mode="after")
    def _timeout_covers_the_retries(self) -> TrafficClass:
        retries = self.retries
        if retries.per_try_timeout is None:
            return self
        per_try, timeout = milliseconds(retries.per_try_timeout), milliseconds(self.timeout)
        if not retries.attempts:
            raise invalid(
                "retries.perTryTimeout",
                retries.per_try_timeout,
                "without retries a per-try timeout only shortens the route's timeout (allowed: "
                "unset, or attempts above 0)",
            )
        if per_try >= timeout:
            raise invalid(
                "retries.perTryTimeout",
                retries.per_try_timeout,
                f"Envoy ignores a per-try timeout at or above the route's timeout {self.timeout} "
                "(allowed: shorter, or unset)",
            )
        if not set(retries.retry_on) & set(RETRIES_TIMED_OUT_TRIES):
            raise invalid(
                "retries.perTryTimeout",
                retries.per_try_timeout,
                f"a try that times out is retried only under "
                f"{', '.join(RETRIES_TIMED_OUT_TRIES)}: with retryOn {retries.retry_on} the "
                f"route would end at {retries.per_try_timeout}, not {self.timeout} (allowed: one "
                "of those in retryOn, or no perTryTimeout)",
            )
        tries = retries.attempts + 1
        needed = per_try * tries + longest_backoff_ms(retries.attempts)
        if timeout < needed:
            raise invalid(
                "timeout",
                self.timeout,
                f"{self.timeout} is shorter than perTryTimeout {retries.per_try_timeout} x "
                f"{tries} tries and their back-off (allowed: at least {needed}ms)",
            )
        return self


class TrafficSettings(Settings):
    classes: dict[ClassName, TrafficClass]
    # Every service in exactly one class.
    service_classes: dict[ServiceName, ClassName]

    @model_validator(mode="after")
    def _classes_known(self) -> TrafficSettings:
        for service, class_name in self.service_classes.items():
            if class_name not in self.classes:
                raise invalid(
                    f"serviceClasses.{service}",
                    class_name,
                    f"{class_name!r} is not a class (allowed: {', '.join(sorted(self.classes))})",
                )
        banking = self.service_classes.get("banking-service")
        if banking is not None:
            retries = self.classes[banking].retries
            # A retried payment may be a second payment: conservative banking retries no
            # request that is not idempotent, not even one that never reached it.
            if retries.attempts and retries.methods != "idempotent":
                raise invalid(
                    f"classes.{banking}.retries.methods",
                    retries.methods,
                    "banking-service retries only idempotent requests (allowed: idempotent, "
                    "or attempts 0)",
                )
            if retries.unsent_attempts:
                raise invalid(
                    f"classes.{banking}.retries.unsentAttempts",
                    retries.unsent_attempts,
                    "banking-service retries no request that is not idempotent (allowed: 0)",
                )
        return self

    def class_of(self, service: str) -> TrafficClass:
        return self.classes[self.service_classes[service]]  # type: ignore[index]
