"""Jaeger v2: the traces' collector, store and UI, on the search domain.

One Deployment of Jaeger's v2 binary (an OpenTelemetry collector build): it takes spans over
OTLP from every sidecar, the gateway and the services, batches them into the domain's daily
jaeger-span-* / jaeger-service-* indices, and serves the query UI (the operators' `jaeger.`
host) from the same indices. Each request to the domain is signed (SigV4, the collector's
`sigv4auth` extension) with the add-on's IRSA role; fine-grained access control lets that role
use the jaeger-* indices only (the `trace-store` role the search bootstrap maps, see
components/data/search_access.py), and an ISM policy deletes each index after the stack's
retention: Jaeger's own index cleaner cannot sign its requests.

On a first `up` Jaeger's role has no FGAC mapping until the search bootstrap applies it, and
Jaeger exits while the domain refuses its index templates; Kubernetes then restarts it after
10 s, 20 s, ... up to 5 minutes, which can outlast the release's 600 s atomic wait (Helm would
uninstall it). So the release installs only once the bootstrap Job has completed (Pulumi waits
for a Job to complete): Jaeger's first start finds its role mapped.

Why the image is newer than the chart's: Jaeger 2.19.0 (chart 4.11.1's) signs requests with a
body as if empty, so AWS refuses every bulk write and template (jaegertracing/jaeger#8760);
2.20.0 is the first release with the fix (#8768).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components.addons.base import ClusterAddon
from components.data.search_access import search_http_policy
from components.shared.conventions import (
    CONTROLLER_NODES,
    digest,
    one_at_a_time_budget,
    restricted_container_security_context,
    restricted_pod_security_context,
    service_host,
    standard_labels,
    zone_spread,
)
from components.shared.helm import HelmChart
from stacks.addon_settings import AddonsSettings, JaegerSettings

TRACING_NAMESPACE = "tracing"
# The release, and (by `fullnameOverride`) its Deployment, Service and service account.
JAEGER_RELEASE = "jaeger"
JAEGER_IMAGE_TAG = "2.20.0"
# The image's user and group.
JAEGER_USER = 10001
# The Service's ports (the chart's): spans in over OTLP/gRPC, the UI, the collector's metrics.
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
QUERY_PORT = 16686
HEALTH_PORT = 13133
METRICS_PORT = 8888
METRICS_PORT_NAME = "internal-metrics"
# The chart's selector labels on the pods and the Service.
JAEGER_SELECTOR = {"app.kubernetes.io/name": "jaeger", "app.kubernetes.io/instance": JAEGER_RELEASE}
# The storage backend's name inside Jaeger's configuration.
STORAGE = "search-domain"
# The pod label that carries a digest of Jaeger's configuration: the chart mounts it from a
# ConfigMap without a checksum, so a changed configuration rolls the pods through this label.
CONFIG_DIGEST_LABEL = "financial-planning/config-digest"


@dataclass(frozen=True)
class TracingCollector:
    """Where spans go: an OTLP/gRPC Service in the cluster."""

    namespace: str
    service: str
    port: int

    @property
    def host(self) -> str:
        return service_host(self.service, self.namespace)


JAEGER_COLLECTOR = TracingCollector(TRACING_NAMESPACE, JAEGER_RELEASE, OTLP_GRPC_PORT)
# The same Service serves the query API and UI (Grafana's trace source, the operators' host).
QUERY_URL = f"http://{JAEGER_COLLECTOR.host}:{QUERY_PORT}"


def sdk_environment(collector: TracingCollector | None, sampling_percent: float) -> dict[str, str]:
    """What the services' OpenTelemetry SDKs read (their environment variables): with a
    collector, OTLP over gRPC to it, W3C trace context (what the sidecars propagate), the
    sidecar's decision followed where there is one (parent-based) and the stack's rate for
    traces a service starts itself; without one, no exporter (the SDKs' default would try
    localhost)."""
    if collector is None:
        return {"OTEL_TRACES_EXPORTER": "none"}
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{collector.host}:{collector.port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_PROPAGATORS": "tracecontext,baggage",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": f"{sampling_percent / 100:g}",
    }


def tracing_collector(addons: AddonsSettings) -> TracingCollector | None:
    """Where the stack's spans go: Jaeger's collector, where Jaeger runs."""
    return JAEGER_COLLECTOR if addons.jaeger.enabled else None


def listen(port: int) -> dict[str, str]:
    # The collector's components listen on localhost unless told otherwise.
    return {"endpoint": f"0.0.0.0:{port}"}


def jaeger_config(
    search_endpoint: str, region: str, retention_days: int, index_replicas: int
) -> dict[str, Any]:
    """Jaeger v2's configuration (an OpenTelemetry collector's): OTLP in, memory-limited
    batches out to the search domain, the query UI on the same storage."""
    index = {"shards": 1, "replicas": index_replicas}
    return {
        "service": {
            "extensions": ["sigv4auth", "jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    # The limiter first: under pressure it refuses spans (the senders retry or
                    # drop) rather than the pod being OOM-killed.
                    "processors": ["memory_limiter", "batch"],
                    "exporters": ["jaeger_storage_exporter"],
                }
            },
            "telemetry": {
                "resource": {"service.name": "jaeger"},
                "metrics": {
                    "level": "normal",
                    "readers": [
                        {
                            "pull": {
                                "exporter": {
                                    "prometheus": {"host": "0.0.0.0", "port": METRICS_PORT}
                                }
                            }
                        }
                    ],
                },
                "logs": {"level": "info"},
            },
        },
        "extensions": {
            # The AWS SDK's default credentials: the IRSA role's web identity.
            "sigv4auth": {"region": region, "service": "es"},
            "healthcheckv2": {"use_v2": True, "http": listen(HEALTH_PORT)},
            "jaeger_storage": {
                "backends": {
                    STORAGE: {
                        "opensearch": {
                            "server_urls": [f"https://{search_endpoint}"],
                            "auth": {"authenticator": "sigv4auth"},
                            # The span and service index templates, made at start.
                            "create_mappings": True,
                            # The UI searches no further back than the indices are kept.
                            "max_span_age": f"{retention_days * 24}h",
                            "indices": {"spans": index, "services": index},
                        }
                    }
                }
            },
            "jaeger_query": {"storage": {"traces": STORAGE}},
        },
        "receivers": {
            "otlp": {"protocols": {"grpc": listen(OTLP_GRPC_PORT), "http": listen(OTLP_HTTP_PORT)}}
        },
        "processors": {
            "memory_limiter": {
                "check_interval": "1s",
                "limit_percentage": 80,
                "spike_limit_percentage": 20,
            },
            "batch": {},
        },
        "exporters": {"jaeger_storage_exporter": {"trace_storage": STORAGE}},
    }


def config_digest(config: dict[str, Any]) -> str:
    return digest(json.dumps(config, sort_keys=True), 16)


@dataclass(frozen=True)
class Jaeger(ClusterAddon):
    settings: JaegerSettings
    region: str
    search_endpoint: pulumi.Input[str]
    search_domain_arn: pulumi.Input[str]
    # Each index's replica shards (1 where the domain has a second data node to hold them).
    index_replicas: int
    # The search bootstrap that maps Jaeger's role (made with the workloads, after this).
    search_access_applied: pulumi.Input[pulumi.Resource] | None = None

    name = "jaeger"
    # Chart 4.x is Jaeger v2's: one Deployment, no bundled storage, no maintenance jobs on.
    chart = HelmChart(
        chart="jaeger", version="4.11.1", repository="https://jaegertracing.github.io/helm-charts"
    )
    release = JAEGER_RELEASE
    namespace = TRACING_NAMESPACE
    service_account = JAEGER_RELEASE

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def irsa_policy(self) -> pulumi.Output[str]:
        return search_http_policy(self.search_domain_arn)

    def config(self) -> pulumi.Output[dict[str, Any]]:
        return pulumi.Output.from_input(self.search_endpoint).apply(
            lambda endpoint: jaeger_config(
                endpoint, self.region, self.settings.retention_days, self.index_replicas
            )
        )

    def values(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        replicas = self.settings.replicas
        config = self.config()
        return {
            "fullnameOverride": JAEGER_RELEASE,
            "userconfig": config,
            "jaeger": {
                "replicas": replicas,
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
                },
                "image": {"tag": JAEGER_IMAGE_TAG},
                "resources": self.settings.resources.as_values(),
                # The chart always creates the account (named after the release).
                "serviceAccount": {
                    "annotations": self.irsa_service_account(role_arn)["annotations"]
                },
                "podLabels": {CONFIG_DIGEST_LABEL: config.apply(config_digest)},
                "podSecurityContext": restricted_pod_security_context(JAEGER_USER),
                "securityContext": restricted_container_security_context(JAEGER_USER),
                # The image declares /tmp a volume; with a read-only root it needs one.
                "extraVolumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
                "extraVolumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                "nodeSelector": CONTROLLER_NODES,
                "topologySpreadConstraints": zone_spread(JAEGER_SELECTOR),
            },
        }

    def release_waits_for(self) -> Sequence[pulumi.Input[pulumi.Resource]]:
        return [self.search_access_applied] if self.search_access_applied is not None else []

    def install_objects(self, name: str, opts: pulumi.ResourceOptions) -> None:
        # The chart has no PodDisruptionBudget: with a replica to spare, a drain keeps one.
        if self.settings.replicas > 1:
            one_at_a_time_budget(
                f"{name}-disruption-budget",
                name=JAEGER_RELEASE,
                namespace=TRACING_NAMESPACE,
                labels=standard_labels(JAEGER_RELEASE, "tracing"),
                selector=JAEGER_SELECTOR,
                opts=opts,
            )
