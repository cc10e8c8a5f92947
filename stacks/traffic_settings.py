"""Traffic policy per service class: load balancing, timeouts, retries and circuit breaking.

Each service belongs to exactly one class (`addons.mesh.traffic.serviceClasses`); each class
sets how its services are called inside the mesh (an Istio DestinationRule and VirtualService
per service, components/mesh/traffic.py) and by the ingress gateway. Defaults follow the seed:
least-request for the API, round-robin for the rest; the API balanced, banking conservative
(short timeout, no retry of a try the service may still be running, none of a request that is
not idempotent, fast ejection), ML with extended timeouts and one retry.

The checks follow what Envoy does with the route and cluster Istio gives it (Istio 1.30.3
pilot/pkg/networking/core/route/retry/retry.go `ConvertPolicy`, cluster_traffic_policy.go
`applyConnectionPool`, `applyOutlierDetection`; Envoy source/common/router/retry_state_impl.cc
`wouldRetryFromReset`, `wouldRetryFromHeaders`, router.cc `onPerTryTimeoutCommon`,
`onResponseTimeout`; tests/mesh/envoy_retries.py and envoy_outlier.py model them):
- a try cut by `perTryTimeout` is reset after its request went out: it is retried only under
  `reset`, `5xx` or `gateway-error`, while the service may still be running the first try (a
  PUT or DELETE then races its own retry; a slow service gets the work again when it is
  slowest); without those conditions the route just ends early; at or above the route's
  timeout it is ignored. No class here has a reason for one, so every value is refused: each
  try has what is left of the route's timeout, and a request that runs out of it is never
  retried;
- `connect-failure`, `refused-stream` and `reset-before-request` retry only requests that never
  reached the service: the only retries allowed for requests that are not idempotent;
- `statusCodes` retries a response by its status (Istio passes numbers in `retryOn` to Envoy as
  retriable status codes): the service answered, so its try has ended;
- Istio's default `maxRetries` (concurrent retries per caller and destination) is 2^32-1, and 0
  in a DestinationRule means that default: every class sets a real bound.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

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
# The conditions under which a try cut by its per-try timeout is retried (and any reset after
# the request went out).
RETRIES_TIMED_OUT_TRIES: tuple[RetryOn, ...] = ("reset", "5xx", "gateway-error")
# Responses banking-service's callers may retry: the service (or its proxy) answered that it
# could not take the request; a 504 is a timeout further on whose work may still be running.
BANKING_STATUS_CODES = (502, 503)
# Istio's durations (ms, s, m, h) and their length: stacks/rules.py.
Duration = IstioDuration
ClassName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")]
StatusCode = Annotated[int, Field(ge=500, le=599)]
# Methods that may be repeated without a second effect (RFC 9110, 9.2.2).
IDEMPOTENT_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")
# The most concurrent retries a class may allow per caller and destination.
MAX_RETRIES_LIMIT = 100_000


class Retries(Settings):
    attempts: Annotated[int, Field(ge=0, le=5)]
    # Refused whatever its value (TrafficClass below): kept as a key so that a stack file that
    # sets one is told why.
    per_try_timeout: Duration | None = None
    retry_on: Annotated[list[RetryOn], Field(min_length=1)] = list(NEVER_REACHED)
    # Responses retried by their status (5xx codes), besides what `retryOn` retries.
    status_codes: list[StatusCode] = []
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
            if self.attempts and self.status_codes:
                raise invalid(
                    "statusCodes",
                    self.status_codes,
                    f"{self.status_codes} retry responses to requests the service received, "
                    "and methods 'all' includes those that are not idempotent (allowed: [], "
                    "or methods: idempotent)",
                )
            if self.unsent_attempts:
                raise invalid(
                    "unsentAttempts",
                    self.unsent_attempts,
                    "with methods 'all' there are no other methods (allowed: 0)",
                )
        return self

    def envoy_retry_on(self) -> str:
        """`retryOn` as Istio reads it: Envoy's conditions, then the status codes."""
        return ",".join([*self.retry_on, *map(str, self.status_codes)])


class ConnectionPool(Settings):
    max_connections: Annotated[int, Field(ge=1, le=100_000)]
    max_pending_requests: Annotated[int, Field(ge=1, le=100_000)]
    # 0: unlimited (HTTP/1.1 keep-alive reuses a connection for any number of requests).
    max_requests_per_connection: Annotated[int, Field(ge=0, le=100_000)] = 0
    # Retries in flight at once from one caller's proxy to the service, over all its pods
    # (Envoy's max_retries circuit breaker): past it a failed try is not retried.
    max_retries: int

    @field_validator("max_retries")
    @classmethod
    def _a_real_bound(cls, value: int) -> int:
        if value == 0:
            # cluster_traffic_policy.go `applyConnectionPool` copies only a value above 0 over
            # `getDefaultCircuitBreakerThresholds` (math.MaxUint32).
            raise invalid(
                "maxRetries",
                value,
                "Istio reads 0 as unset and gives Envoy 4294967295 concurrent retries (allowed: "
                f"1 to {MAX_RETRIES_LIMIT})",
            )
        if not 1 <= value <= MAX_RETRIES_LIMIT:
            raise invalid(
                "maxRetries", value, f"{value} is out of range (allowed: 1 to {MAX_RETRIES_LIMIT})"
            )
        return value


class OutlierDetection(Settings):
    """When a caller's proxy takes a pod out of its load balancing. Local-origin failures (the
    caller's connect failures and resets, and its own timeouts) are counted apart from the
    responses the pod sent (Istio's `splitExternalLocalOriginErrors`, always on: otherwise
    Envoy counts a caller's timeout as the pod's 504, and a few slow requests eject a healthy
    pod)."""

    # Spelt as Istio spells it (the generated camelCase would read "consecutive5XxErrors"):
    # 5xx responses in a row from the pod.
    consecutive_5xx_errors: Annotated[int, Field(ge=1, le=100, alias="consecutive5xxErrors")]
    # Local-origin failures in a row (a connection that fails, a pod that is gone): a try that
    # got a connection counts as a success here first, so timeouts of a live pod never add up.
    consecutive_local_origin_failures: Annotated[int, Field(ge=1, le=100)]
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
    def _no_per_try_timeout(self) -> TrafficClass:
        retries = self.retries
        per_try = retries.per_try_timeout
        if per_try is None:
            return self
        field = "retries.perTryTimeout"
        if milliseconds(per_try) >= milliseconds(self.timeout):
            raise invalid(
                field,
                per_try,
                f"Envoy ignores a per-try timeout at or above the route's timeout {self.timeout} "
                "(allowed: unset)",
            )
        if not retries.attempts or not set(retries.retry_on) & set(RETRIES_TIMED_OUT_TRIES):
            raise invalid(
                field,
                per_try,
                f"a try cut at {per_try} is not retried under retryOn {retries.retry_on} (only "
                f"{', '.join(RETRIES_TIMED_OUT_TRIES)} retry it): the route would end at "
                f"{per_try}, not at its timeout {self.timeout} (allowed: unset)",
            )
        raise invalid(
            field,
            per_try,
            f"a try cut at {per_try} is retried while the service may still be running it (a "
            "PUT or DELETE races its own retry, and a slow service gets the work again when it "
            "is slowest) (allowed: unset: each try has what is left of the route's timeout)",
        )


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
            self._conservative(banking, self.classes[banking].retries)
        return self

    @staticmethod
    def _conservative(class_name: str, retries: Retries) -> None:
        """Banking retries only what cannot be a second payment or a racing write: an
        idempotent request that never reached the service, or that it refused (502, 503)."""
        if not retries.attempts:
            return
        key = f"classes.{class_name}.retries"
        if retries.methods != "idempotent":
            raise invalid(
                f"{key}.methods",
                retries.methods,
                "banking-service retries only idempotent requests (allowed: idempotent, "
                "or attempts 0)",
            )
        if retries.unsent_attempts:
            raise invalid(
                f"{key}.unsentAttempts",
                retries.unsent_attempts,
                "banking-service retries no request that is not idempotent (allowed: 0)",
            )
        reached = [c for c in retries.retry_on if c not in NEVER_REACHED]
        if reached:
            raise invalid(
                f"{key}.retryOn",
                retries.retry_on,
                f"{reached} retry a try banking-service may still be running (a reset after "
                f"the request went out, a 504) (allowed: {', '.join(NEVER_REACHED)}; "
                f"statusCodes {', '.join(map(str, BANKING_STATUS_CODES))})",
            )
        unsafe = [c for c in retries.status_codes if c not in BANKING_STATUS_CODES]
        if unsafe:
            raise invalid(
                f"{key}.statusCodes",
                retries.status_codes,
                f"{unsafe} may answer a request banking-service acted on, or is still acting "
                f"on (allowed: {', '.join(map(str, BANKING_STATUS_CODES))})",
            )

    def class_of(self, service: str) -> TrafficClass:
        return self.classes[self.service_classes[service]]  # type: ignore[index]
