"""How each service is called inside the mesh, from its traffic class (stacks/traffic_settings.py).

A DestinationRule per service (load balancing, connection pool limits with a bound on retries
in flight, outlier detection: the circuit breaker) and a VirtualService per service (its
timeout and retries). Where a class retries only idempotent requests, the VirtualService has
two routes: those methods with the class's retries, everything else retried only where the
request never reached the service (or not at all). The edge's routes to the API
(components/edge/routes.py) use the same policies: the gateway is the API's caller there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from components.shared.conventions import service_host
from components.shared.custom_resources import labelled_custom_resource
from stacks.catalog import ServiceName, ServiceSettings
from stacks.traffic_settings import (
    IDEMPOTENT_METHODS,
    NEVER_REACHED,
    TrafficClass,
    TrafficSettings,
)

NETWORKING_API = "networking.istio.io/v1"


def traffic_policy(traffic: TrafficClass) -> dict[str, Any]:
    pool, outliers = traffic.connection_pool, traffic.outlier_detection
    return {
        "loadBalancer": {"simple": traffic.load_balancing},
        "connectionPool": {
            "tcp": {"maxConnections": pool.max_connections},
            "http": {
                "http1MaxPendingRequests": pool.max_pending_requests,
                "maxRequestsPerConnection": pool.max_requests_per_connection,
                # Istio's default is 2^32-1 (cluster_traffic_policy.go
                # getDefaultCircuitBreakerThresholds, 1.30.3).
                "maxRetries": pool.max_retries,
            },
        },
        "outlierDetection": {
            "consecutive5xxErrors": outliers.consecutive_5xx_errors,
            # The caller's own timeouts and failed connections apart from the pod's 5xx
            # responses: a caller that gives up on a slow pod does not eject it (Envoy
            # outlier_detection_impl.cc putResultWithLocalExternalSplit).
            "splitExternalLocalOriginErrors": True,
            "consecutiveLocalOriginFailures": outliers.consecutive_local_origin_failures,
            "interval": outliers.interval,
            "baseEjectionTime": outliers.base_ejection_time,
            "maxEjectionPercent": outliers.max_ejection_percent,
        },
    }


def route_policies(traffic: TrafficClass) -> list[dict[str, Any]]:
    """The class's routes without their destination: each with its method match (if any),
    timeout and retries, in the order they must be tried."""
    retries = traffic.retries
    # No perTryTimeout: the settings refuse one (each try has what is left of the timeout).
    retrying: dict[str, Any] = {"attempts": retries.attempts, "retryOn": retries.envoy_retry_on()}
    # Istio refuses retry settings beside attempts 0 (validation.go `validateHTTPRetry`).
    none = {"attempts": 0}
    if retries.attempts == 0 or retries.methods == "all":
        return [{"timeout": traffic.timeout, "retries": retrying if retries.attempts else none}]
    unsent = (
        {"attempts": retries.unsent_attempts, "retryOn": ",".join(NEVER_REACHED)}
        if retries.unsent_attempts
        else none
    )
    idempotent = "^(" + "|".join(IDEMPOTENT_METHODS) + ")$"
    return [
        {
            "match": [{"method": {"regex": idempotent}}],
            "timeout": traffic.timeout,
            "retries": retrying,
        },
        {"timeout": traffic.timeout, "retries": unsent},
    ]


def routes(host: str, port: int, traffic: TrafficClass) -> list[dict[str, Any]]:
    destination = [{"destination": {"host": host, "port": {"number": port}}}]
    return [{**policy, "route": destination} for policy in route_policies(traffic)]


@dataclass(frozen=True)
class ServiceTrafficArgs:
    namespace: str
    services: Mapping[ServiceName, ServiceSettings]
    traffic: TrafficSettings


class ServiceTraffic(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: ServiceTrafficArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:mesh:ServiceTraffic", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        for service_name, service in args.services.items():
            traffic = args.traffic.class_of(service_name)
            host = service_host(service_name, args.namespace)
            labelled_custom_resource(
                f"{name}-{service_name}-destination",
                api_version=NETWORKING_API,
                kind="DestinationRule",
                name=service_name,
                namespace=args.namespace,
                component="traffic",
                spec={"host": host, "trafficPolicy": traffic_policy(traffic)},
                opts=child,
            )
            labelled_custom_resource(
                f"{name}-{service_name}-routes",
                api_version=NETWORKING_API,
                kind="VirtualService",
                name=service_name,
                namespace=args.namespace,
                component="traffic",
                spec={"hosts": [host], "http": routes(host, service.port, traffic)},
                opts=child,
            )
        self.register_outputs({})
