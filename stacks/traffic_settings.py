"""Traffic policy per service class: load balancing, timeouts, retries and circuit breaking.

Each service belongs to exactly one class (`addons.mesh.traffic.serviceClasses`); each class
sets how its services are called inside the mesh (an Istio DestinationRule and VirtualService
per service, components/security/traffic.py). Defaults follow the seed: least-request for the
API, round-robin for the rest; the API balanced, banking conservative (short timeouts, no retry
of a request that is not idempotent, fast ejection), ML with extended timeouts and one retry.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from stacks.catalog import ServiceName
from stacks.settings_base import Settings, invalid

LoadBalancing = Literal["LEAST_REQUEST", "ROUND_ROBIN"]
# What a retry may follow (Envoy's retry_on conditions that Istio passes through).
RetryOn = Literal[
    "connect-failure", "refused-stream", "unavailable", "cancelled", "gateway-error", "5xx"
]
Duration = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,5}(ms|s)$")]
ClassName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")]
# Methods that may be repeated without a second effect (RFC 9110, 9.2.2).
IDEMPOTENT_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")


def milliseconds(duration: str) -> int:
    match = re.fullmatch(r"([0-9]+)(ms|s)", duration)
    if match is None:
        raise ValueError(f"{duration!r} is not a duration")
    value, unit = int(match.group(1)), match.group(2)
    return value if unit == "ms" else value * 1000


class Retries(Settings):
    attempts: Annotated[int, Field(ge=0, le=5)]
    per_try_timeout: Duration
    retry_on: Annotated[list[RetryOn], Field(min_length=1)] = ["connect-failure", "refused-stream"]
    # "idempotent": only GET, HEAD, OPTIONS, PUT and DELETE are retried.
    methods: Literal["idempotent", "all"] = "idempotent"


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
        # The first try and each retry, each up to perTryTimeout, within the route's timeout.
        needed = milliseconds(retries.per_try_timeout) * (retries.attempts + 1)
        if retries.attempts and milliseconds(self.timeout) < needed:
            raise invalid(
                "timeout",
                self.timeout,
                f"{self.timeout} is shorter than perTryTimeout {retries.per_try_timeout} x "
                f"{retries.attempts + 1} tries (allowed: at least {needed}ms)",
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
            if retries.attempts and retries.methods != "idempotent":
                # A retried payment is a second payment.
                raise invalid(
                    f"classes.{banking}.retries.methods",
                    retries.methods,
                    "banking-service retries only idempotent requests (allowed: idempotent, "
                    "or attempts 0)",
                )
        return self

    def class_of(self, service: str) -> TrafficClass:
        return self.classes[self.service_classes[service]]  # type: ignore[index]
