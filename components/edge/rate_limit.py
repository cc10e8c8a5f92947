"""Rate limiting by IP and by user at the gateway: Envoy's global rate limit.

- The gateway checks users' tokens (a RequestAuthentication with their issuer and keys,
  `edge.userTokens`): a bad token is refused; a good one leaves its claims in Envoy's dynamic
  metadata (`envoy.filters.http.jwt_authn` -> `payload`, Istio 1.21 and later), where no
  client header can forge them. The keys come from the service that issues the tokens
  (user-service by default) inside the mesh, at the port and path the settings name (the
  contract: stacks/edge_settings.py `UserTokens`): istiod runs with
  PILOT_JWT_ENABLE_REMOTE_JWKS=hybrid, so for a jwksUri whose host and port are a mesh
  service's the gateway's proxy fetches the keys through that service's cluster, over mTLS
  (Istio 1.30.3 pilot/pkg/security/authn/policy_applier.go; the default, istiod fetching
  them, would need the service to answer plain text from outside the mesh, which its STRICT
  mTLS refuses). The gateway has that cluster because istiod sends gateways every cluster
  (PILOT_FILTER_GATEWAY_CLUSTER_CONFIG false, set explicitly). So the token check depends
  neither on the public edge (a first `up`, an API outage) nor on istiod reaching the
  internet. A failed fetch fails the request with a 401; the gateway's proxy keeps Envoy's
  `jwks_fetch_failed` counter (its proxyStatsMatcher) and TokenKeysUnavailable pages on it.
- Before routing, the gateway asks the rate limit service (envoyproxy/ratelimit, counters in
  the stack's Redis) about two descriptors: `remote_address` (the client, found through the
  one trusted proxy, the ALB) and, for a signed-in request, `user` (the token's subject). Each
  distinct value has its own bucket per minute.
- If the service cannot answer, requests pass (fail open): the web ACL's per-IP limit stays in
  force, and an outage of the limiter does not become an outage of the product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.addons.external_secrets import external_secret
from components.addons.mesh import GATEWAY_SELECTOR
from components.data.secrets import RemoteSecret
from components.shared.conventions import (
    CONTROLLER_NODES,
    PLATFORM_PRIORITY_CLASS,
    digest,
    one_at_a_time_budget,
    restricted_container_security_context,
    restricted_pod_security_context,
    selector_labels,
    service_host,
    standard_labels,
    zone_spread,
)
from components.shared.custom_resources import labelled_custom_resource
from stacks.addon_settings import ControllerSettings
from stacks.edge_settings import RateLimits, UserTokens
from stacks.secrets import REDIS_CREDENTIALS

NAME = "ratelimit"
# The image Istio's own rate limit sample pins (samples/ratelimit, Istio 1.28-1.31).
IMAGE = "docker.io/envoyproxy/ratelimit:30a4ce1a"
GRPC_PORT = 8081
HTTP_PORT = 8080
DOMAIN = "edge"
CONFIG_DIR = "/data/ratelimit/config"
NOBODY = 65534
# Where Istio's jwt_authn filter leaves a valid token's claims.
JWT_METADATA = "envoy.filters.http.jwt_authn"
# The Redis auth token's Secret in the gateway's namespace.
REDIS_SECRET = f"{NAME}-{REDIS_CREDENTIALS}"


def limits_config(limits: RateLimits) -> dict[str, Any]:
    """The service's configuration: a key without a value is one bucket per distinct value."""
    return {
        "domain": DOMAIN,
        "descriptors": [
            {
                "key": "remote_address",
                "rate_limit": {
                    "unit": "minute",
                    "requests_per_unit": limits.requests_per_minute_per_ip,
                },
            },
            {
                "key": "user",
                "rate_limit": {
                    "unit": "minute",
                    "requests_per_unit": limits.requests_per_minute_per_user,
                },
            },
        ],
    }


def limits_yaml(limits: RateLimits) -> str:
    return yaml.safe_dump(limits_config(limits), sort_keys=False)


def route_rate_limits() -> list[dict[str, Any]]:
    """The descriptors each request sends: its client's address, and its user if signed in."""
    return [
        {"actions": [{"remote_address": {}}]},
        {
            "actions": [
                {
                    "metadata": {
                        "descriptor_key": "user",
                        "metadata_key": {
                            "key": JWT_METADATA,
                            "path": [{"key": "payload"}, {"key": "sub"}],
                        },
                        "source": "DYNAMIC",
                        # No token: this descriptor is left out, the request still counted
                        # by its address.
                        "skip_if_absent": True,
                    }
                }
            ]
        },
    ]


@dataclass(frozen=True)
class GatewayRateLimitsArgs:
    namespace: str
    # The API host: the one the limits apply to (the operator UIs are behind sign-in).
    api_host: str
    tokens: UserTokens
    # Where the gateway's proxy fetches the token keys: the issuer's cluster-local URL.
    jwks_uri: str
    limits: RateLimits
    service: ControllerSettings
    # The stack's Redis (TLS, with its auth token from Secrets Manager).
    redis_host: pulumi.Input[str]
    redis_port: int
    redis_secret: RemoteSecret
    secret_store: str


class GatewayRateLimits(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        args: GatewayRateLimitsArgs,
        opts: pulumi.ResourceOptions | None = None,
        *,
        # The gateway (Istio's kinds) and External Secrets (the Redis token's Secret).
        after: list[pulumi.Resource],
    ) -> None:
        super().__init__("financial-planning:edge:GatewayRateLimits", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=after)
        ns = args.namespace
        labelled_custom_resource(
            f"{name}-user-tokens",
            api_version="security.istio.io/v1",
            kind="RequestAuthentication",
            name="user-tokens",
            namespace=ns,
            component="rate-limit",
            spec={
                "selector": {"matchLabels": GATEWAY_SELECTOR},
                "jwtRules": [
                    {
                        "issuer": args.tokens.issuer,
                        "jwksUri": args.jwks_uri,
                        # The services read the token too.
                        "forwardOriginalToken": True,
                    }
                ],
            },
            opts=child,
        )
        redis = external_secret(
            REDIS_SECRET,
            args.redis_secret,
            namespace_name=ns,
            store_name=args.secret_store,
            opts=child,
        )
        config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{NAME}-config", namespace=ns, labels=standard_labels(NAME, "rate-limit")
            ),
            data={"config.yaml": limits_yaml(args.limits)},
            opts=child,
        )
        self._service(name, args, redis, config, child)
        self._envoy_filters(name, args, child)
        self.register_outputs({})

    def _service(
        self,
        name: str,
        args: GatewayRateLimitsArgs,
        redis: pulumi.Resource,
        config: k8s.core.v1.ConfigMap,
        opts: pulumi.ResourceOptions,
    ) -> None:
        ns, settings = args.namespace, args.service
        labels = standard_labels(NAME, "rate-limit")
        config_checksum = digest(limits_yaml(args.limits))
        env = {
            "USE_STATSD": "false",
            "LOG_LEVEL": "warn",
            "LOG_FORMAT": "json",
            "REDIS_SOCKET_TYPE": "tcp",
            "REDIS_URL": pulumi.Output.concat(args.redis_host, f":{args.redis_port}"),
            # ElastiCache takes TLS only, with the auth token.
            "REDIS_TLS": "true",
            "RUNTIME_ROOT": "/data",
            "RUNTIME_SUBDIRECTORY": "ratelimit",
            "RUNTIME_WATCH_ROOT": "false",
            "RUNTIME_IGNOREDOTFILES": "true",
        }
        # Plain dicts, as the manifests read (the SDK's typed dicts would add nothing here).
        deployment: Any = {
            "replicas": settings.replicas,
            "selector": {"matchLabels": selector_labels(NAME)},
            "template": {
                # No sidecar: the gateway calls it in plain gRPC inside its namespace. A
                # change of limits rolls the pods (they read the file once).
                "metadata": {
                    "labels": {**labels, "sidecar.istio.io/inject": "false"},
                    "annotations": {"checksum/config": config_checksum},
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "nodeSelector": CONTROLLER_NODES,
                    "priorityClassName": PLATFORM_PRIORITY_CLASS,
                    # The image's user is root: it runs as nobody here (restricted).
                    "securityContext": restricted_pod_security_context(NOBODY),
                    "topologySpreadConstraints": zone_spread(selector_labels(NAME)),
                    "containers": [
                        {
                            "name": NAME,
                            "image": IMAGE,
                            "command": ["/bin/ratelimit"],
                            "env": [
                                *({"name": k, "value": v} for k, v in env.items()),
                                {
                                    "name": "REDIS_AUTH",
                                    "valueFrom": {
                                        "secretKeyRef": {
                                            "name": REDIS_SECRET,
                                            "key": "auth-token",
                                        }
                                    },
                                },
                            ],
                            "ports": [
                                {"name": "http", "containerPort": HTTP_PORT},
                                {"name": "grpc", "containerPort": GRPC_PORT},
                            ],
                            "readinessProbe": {
                                "httpGet": {"path": "/healthcheck", "port": HTTP_PORT},
                                "periodSeconds": 10,
                            },
                            "livenessProbe": {
                                "httpGet": {"path": "/healthcheck", "port": HTTP_PORT},
                                "periodSeconds": 20,
                                "failureThreshold": 3,
                            },
                            "resources": settings.resources.as_values(),
                            "securityContext": restricted_container_security_context(NOBODY),
                            "volumeMounts": [
                                {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}
                            ],
                        }
                    ],
                    "volumes": [{"name": "config", "configMap": {"name": config.metadata.name}}],
                },
            },
        }
        k8s.apps.v1.Deployment(
            f"{name}-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NAME, namespace=ns, labels=labels),
            spec=deployment,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[redis])),
        )
        k8s.core.v1.Service(
            f"{name}-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NAME, namespace=ns, labels=labels),
            spec=k8s.core.v1.ServiceSpecArgs(
                selector=selector_labels(NAME),
                ports=[
                    k8s.core.v1.ServicePortArgs(name="grpc", port=GRPC_PORT, target_port=GRPC_PORT),
                    k8s.core.v1.ServicePortArgs(name="http", port=HTTP_PORT, target_port=HTTP_PORT),
                ],
            ),
            opts=opts,
        )
        if settings.replicas > 1:
            one_at_a_time_budget(
                f"{name}-service",
                name=NAME,
                namespace=ns,
                labels=labels,
                selector=selector_labels(NAME),
                opts=opts,
            )

    def _envoy_filters(
        self, name: str, args: GatewayRateLimitsArgs, opts: pulumi.ResourceOptions
    ) -> None:
        service = service_host(NAME, args.namespace)
        selector = {"labels": GATEWAY_SELECTOR}
        labelled_custom_resource(
            f"{name}-filter",
            api_version="networking.istio.io/v1alpha3",
            kind="EnvoyFilter",
            name="rate-limit-filter",
            namespace=args.namespace,
            component="rate-limit",
            spec={
                "workloadSelector": selector,
                "configPatches": [
                    {
                        "applyTo": "HTTP_FILTER",
                        "match": {
                            "context": "GATEWAY",
                            "listener": {
                                "filterChain": {
                                    "filter": {
                                        "name": "envoy.filters.network.http_connection_manager",
                                        "subFilter": {"name": "envoy.filters.http.router"},
                                    }
                                }
                            },
                        },
                        "patch": {
                            "operation": "INSERT_BEFORE",
                            "value": {
                                "name": "envoy.filters.http.ratelimit",
                                "typed_config": {
                                    "@type": "type.googleapis.com/envoy.extensions.filters.http"
                                    ".ratelimit.v3.RateLimit",
                                    "domain": DOMAIN,
                                    "failure_mode_deny": False,
                                    "timeout": "0.25s",
                                    "rate_limit_service": {
                                        "grpc_service": {
                                            "envoy_grpc": {
                                                "cluster_name": f"outbound|{GRPC_PORT}||{service}",
                                                "authority": service,
                                            }
                                        },
                                        "transport_api_version": "V3",
                                    },
                                },
                            },
                        },
                    }
                ],
            },
            opts=opts,
        )
        labelled_custom_resource(
            f"{name}-descriptors",
            api_version="networking.istio.io/v1alpha3",
            kind="EnvoyFilter",
            name="rate-limit-descriptors",
            namespace=args.namespace,
            component="rate-limit",
            spec={
                "workloadSelector": selector,
                "configPatches": [
                    {
                        "applyTo": "VIRTUAL_HOST",
                        "match": {
                            "context": "GATEWAY",
                            # The gateway names each virtual host <host>:<port>.
                            "routeConfiguration": {"vhost": {"name": f"{args.api_host}:443"}},
                        },
                        "patch": {
                            "operation": "MERGE",
                            "value": {"rate_limits": route_rate_limits()},
                        },
                    }
                ],
            },
            opts=opts,
        )
