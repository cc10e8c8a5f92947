"""Settings of the cluster add-ons: one entry per add-on, each with per-environment defaults."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, field_validator, model_validator

from stacks.catalog import (
    ComputeResources,
    CpuQuantity,
    MemoryQuantity,
    ServiceName,
    check_limits_cover_requests,
)
from stacks.edge_settings import DnsName
from stacks.rules import url_port
from stacks.settings_base import Settings, invalid
from stacks.traffic_settings import TrafficSettings


class AddonLimits(Settings):
    # No CPU limit by default: a throttled controller falls behind; memory is what must be capped.
    cpu: CpuQuantity | None = None
    memory: MemoryQuantity


class AddonResources(Settings):
    requests: ComputeResources
    limits: AddonLimits

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> AddonResources:
        check_limits_cover_requests(self.requests, self.limits.cpu, self.limits.memory)
        return self

    def as_values(self, *, chart_limits_cpu: bool = False) -> dict[str, dict[str, str | None]]:
        """The `resources` block of a chart's values. `chart_limits_cpu`: the chart's defaults
        carry a CPU limit, which Helm merges into ours unless the value is null (a null value
        deletes a chart default); without a CPU limit of ours, it is nulled (the null travels in
        the release's value file: components/shared/helm.py)."""
        limits: dict[str, str | None] = {"memory": self.limits.memory}
        if self.limits.cpu is not None:
            limits["cpu"] = self.limits.cpu
        elif chart_limits_cpu:
            limits["cpu"] = None
        return {
            "requests": {"cpu": self.requests.cpu, "memory": self.requests.memory},
            "limits": limits,
        }


class AddonSettings(Settings):
    """A node agent (DaemonSet): on or off, and what each pod requests."""

    enabled: bool = True
    resources: AddonResources


class ControllerSettings(AddonSettings):
    """A controller (Deployment): with more than one replica it elects a leader and gets a
    PodDisruptionBudget."""

    replicas: Annotated[int, Field(ge=1, le=5)]


# A Go duration as the autoscaler's flags take it: 30s, 10m, 1h.
Duration = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,3}(s|m|h)$")]


class ClusterAutoscalerSettings(ControllerSettings):
    # The image's minor must be the cluster's (checked against kubernetesVersion); by default
    # the program picks the release for the cluster's minor.
    image_tag: Annotated[str, Field(pattern=r"^v1\.[0-9]{2}\.[0-9]{1,2}$")] | None = None
    # How long a node must be unneeded, and how long after a scale-up, before it is removed.
    scale_down_unneeded_time: Duration
    scale_down_delay_after_add: Duration
    # A node whose pods request less than this share of it is a candidate for removal.
    scale_down_utilization_threshold: Annotated[float, Field(ge=0.1, le=0.9)]


class PrometheusAdapterSettings(ControllerSettings):
    # Only with a Prometheus to read from: without it the custom metrics API fails and an HPA
    # that uses it stops scaling down.
    enabled: bool = False
    # None: the monitoring add-on's Prometheus.
    prometheus_url: (
        Annotated[
            str,
            Field(pattern=r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?(/.*)?$"),
            AfterValidator(url_port),
        ]
        | None
    ) = None


class MonitoringSettings(ControllerSettings):
    """kube-prometheus-stack: Prometheus (`replicas`, `resources`), Alertmanager, Grafana,
    kube-state-metrics; node-exporter beside it in a namespace of its own."""

    retention_days: Annotated[int, Field(ge=1, le=365)]
    # Each Prometheus replica's volume (on the encrypted gp3 class).
    storage_gib: Annotated[int, Field(ge=10, le=16384)]
    # Two or more form an Alertmanager cluster (deduplicated notifications, no single point).
    alertmanager_replicas: Annotated[int, Field(ge=1, le=5)]


class OutboundSettings(Settings):
    """Where the services' sidecars may send traffic outside the mesh."""

    # Only to registered destinations (the mesh's services, the data tier, the AWS APIs and
    # the hosts below); anything else is refused at the sidecar (REGISTRY_ONLY).
    registry_only: bool
    # The internet hosts each service calls over HTTPS (a service with internetHttps).
    external_hosts: dict[ServiceName, list[DnsName]] = {}


class TracingSettings(Settings):
    """Spans from every sidecar and the gateway (Istio's Telemetry API), and from the services
    (their OpenTelemetry SDK follows the sidecar's decision), sent to Jaeger's collector where
    Jaeger runs (`addons.jaeger`)."""

    # The share of requests traced, 0 to 100 in steps of 0.01 (Telemetry's
    # randomSamplingPercentage).
    sampling_percent: Annotated[float, Field(ge=0, le=100)]

    @field_validator("sampling_percent")
    @classmethod
    def _hundredths(cls, percent: float) -> float:
        if abs(percent * 100 - round(percent * 100)) > 1e-9:
            raise invalid(
                "samplingPercent", percent, f"{percent} is finer than Istio's steps of 0.01"
            )
        return percent


class MeshSettings(ControllerSettings):
    """Istio (sidecar mode, with its CNI node agent): `replicas` and `resources` are istiod's.
    Two or more replicas get a PodDisruptionBudget."""

    # Every sidecar logs each request as JSON on its stdout.
    access_logs: bool = True
    # How the services are called inside the mesh, per class of service.
    traffic: TrafficSettings
    outbound: OutboundSettings
    tracing: TracingSettings
    # What each service pod's sidecar requests (and its memory limit): counted in the node
    # groups' capacity, beside the service's own requests.
    sidecar: AddonResources = AddonResources.model_validate(
        {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
    )


# What the node agents the platform's charts run on every node request (one place: the charts'
# values and the node groups' capacity both read these). Istio's CNI agent where the mesh runs;
# node-exporter where monitoring runs.
ISTIO_CNI_RESOURCES = AddonResources.model_validate(
    {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
)
NODE_EXPORTER_RESOURCES = AddonResources.model_validate(
    {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}}
)


class CertManagerSettings(ControllerSettings):
    """cert-manager: `replicas` and `resources` apply to each of its controller, webhook and
    CA injector."""


class IngressGatewaySettings(ControllerSettings):
    """The Istio ingress gateway behind the load balancer: a fixed number of replicas (two or
    more get a PodDisruptionBudget), spread over the zones."""


class LogShipperSettings(AddonSettings):
    """Fluent Bit on every node: the containers' logs into the search domain's logs-* indices,
    each index deleted after `retentionDays` (an ISM policy)."""

    retention_days: Annotated[int, Field(ge=1, le=3650)]


class JaegerSettings(ControllerSettings):
    """Jaeger: its collector takes the spans (OTLP) and stores them in the search domain's
    jaeger-* indices, each deleted after `retentionDays` (an ISM policy); its query service is
    the operators' trace UI. Two or more replicas get a PodDisruptionBudget."""

    retention_days: Annotated[int, Field(ge=1, le=90)]


# What a request passes through, or what the edge needs to keep serving: production runs each
# twice or more (the seed's highly available production; StackSettings checks it). The
# gateway and its rate limiter serve every request; istiod configures every sidecar and
# injects new pods; the load balancer controller's webhook admits every pod of a namespace
# with readiness gates and registers their targets; cert-manager's webhook admits its
# resources and renews the gateway's certificate. external-dns is not among them: it has no
# leader election, so it runs one replica only (kubernetes-sigs/external-dns v0.22.0
# charts/external-dns/values.yaml: replicaCount "must be 0 or 1 to avoid duplicate or
# conflicting DNS record updates"; the pinned chart 1.21.1 has no replica count at all), and
# the records it wrote stay in Route 53 while it restarts.
REQUEST_PATH_ADDONS = (
    "ingressGateway",
    "rateLimiter",
    "mesh",
    "loadBalancerController",
    "certManager",
)

# The add-ons the edge is made of: the stack's edge needs every one of them.
EDGE_ADDONS = (
    "loadBalancerController",
    "certManager",
    "externalDns",
    "ingressGateway",
    "rateLimiter",
)


class AddonsSettings(Settings):
    external_secrets: ControllerSettings
    metrics_server: ControllerSettings
    cluster_autoscaler: ClusterAutoscalerSettings
    nvidia_device_plugin: AddonSettings
    # Recommender always; updater and admission controller when a service's VPA updates pods.
    vertical_pod_autoscaler: ControllerSettings
    prometheus_adapter: PrometheusAdapterSettings
    # Prometheus, Alertmanager, Grafana and the exporters (the seed's monitoring).
    monitoring: MonitoringSettings
    # The service mesh (Istio): sidecars in the application namespace.
    mesh: MeshSettings
    # Rolls the services when a Secret or ConfigMap they read changes (rotation).
    reloader: ControllerSettings
    # The edge: the AWS Load Balancer Controller makes the ALB, cert-manager the gateway's
    # certificate, external-dns the hosts' records; the ingress gateway takes the ALB's traffic.
    load_balancer_controller: ControllerSettings
    cert_manager: CertManagerSettings
    external_dns: ControllerSettings
    ingress_gateway: IngressGatewaySettings
    # Envoy's rate limit service, which the gateway asks before each request (per IP, per user).
    rate_limiter: ControllerSettings
    # The containers' logs, shipped to the search domain.
    log_shipper: LogShipperSettings
    # The traces, collected and stored in the search domain.
    jaeger: JaegerSettings

    def controllers(self) -> list[tuple[AddonSettings, int]]:
        """Each add-on's settings and how many pods it runs with them: `replicas` of each of its
        Deployments (the VPA's recommender, updater and admission controller; cert-manager's
        controller, webhook and CA injector; External Secrets' controller and webhook, and its
        one cert controller). Node agents (DaemonSets) run no controller pods: 0."""
        pods = []
        for name in type(self).model_fields:
            addon = getattr(self, name)
            if not isinstance(addon, ControllerSettings):
                pods.append((addon, 0))
            elif name in ("vertical_pod_autoscaler", "cert_manager"):
                pods.append((addon, 3 * addon.replicas))
            elif name == "external_secrets":
                pods.append((addon, 2 * addon.replicas + 1))
            else:
                pods.append((addon, addon.replicas))
        return pods

    @model_validator(mode="after")
    def _required_addons(self) -> AddonsSettings:
        if not self.external_secrets.enabled:
            raise invalid(
                "externalSecrets.enabled",
                False,
                "External Secrets delivers every secret the services read (allowed: true)",
            )
        adapter = self.prometheus_adapter
        if adapter.enabled and adapter.prometheus_url is None and not self.monitoring.enabled:
            raise invalid(
                "prometheusAdapter.enabled",
                True,
                "the adapter reads from Prometheus: enable monitoring, or give prometheusUrl",
            )
        if self.external_dns.replicas != 1:
            raise invalid(
                "externalDns.replicas",
                self.external_dns.replicas,
                "external-dns has no leader election: two would race on the same records "
                "(allowed: 1)",
            )
        return self
