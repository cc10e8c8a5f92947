"""What Prometheus scrapes and evaluates for the application, and what Grafana shows: a
ServiceMonitor per service (its `/metrics` on the service port), the seed's alert rules as a
PrometheusRule, and the dashboards as ConfigMaps Grafana's sidecar loads."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.addons.external_secrets import ExternalSecrets
from components.addons.jaeger import JAEGER_SELECTOR, TRACING_NAMESPACE
from components.addons.jaeger import METRICS_PORT_NAME as JAEGER_METRICS_PORT
from components.addons.mesh import GATEWAY_NAMESPACE, GATEWAY_SELECTOR, MESH_NAMESPACE
from components.addons.monitoring import DASHBOARD_LABEL
from components.observability.alerts import rule_groups
from components.observability.dashboards import dashboard_models
from components.shared.conventions import selector_labels, standard_labels
from components.shared.custom_resources import labelled_custom_resource
from components.shared.observability_contract import METRICS_SERVICE_PORT
from stacks.catalog import ServiceName, ServiceSettings

MONITORING_API = "monitoring.coreos.com/v1"
METRICS_PATH = "/metrics"
SCRAPE_INTERVAL = "30s"
ALERT_RULES = "financial-planning-alerts"
EXTERNAL_SECRETS_NAMESPACE = ExternalSecrets.namespace


def pod_monitor(
    resource_name: str,
    name: str,
    *,
    namespace: str,
    watched_namespace: pulumi.Input[str],
    labels: Mapping[str, str],
    port: str,
    path: str,
    opts: pulumi.ResourceOptions,
) -> None:
    """Prometheus scrapes `port` at `path` of the pods with `labels` in `watched_namespace`."""
    labelled_custom_resource(
        resource_name,
        api_version=MONITORING_API,
        kind="PodMonitor",
        name=name,
        namespace=namespace,
        component="monitoring",
        spec={
            "namespaceSelector": {"matchNames": [watched_namespace]},
            "selector": {"matchLabels": dict(labels)},
            "podMetricsEndpoints": [{"port": port, "path": path, "interval": SCRAPE_INTERVAL}],
        },
        opts=opts,
    )


def service_monitor(
    resource_name: str,
    name: str,
    *,
    namespace: str,
    watched_namespace: str,
    labels: Mapping[str, str],
    port: str,
    opts: pulumi.ResourceOptions,
) -> None:
    """Prometheus scrapes `port` of the Services with `labels` in `watched_namespace`."""
    labelled_custom_resource(
        resource_name,
        api_version=MONITORING_API,
        kind="ServiceMonitor",
        name=name,
        namespace=namespace,
        component="monitoring",
        spec={
            "namespaceSelector": {"matchNames": [watched_namespace]},
            "selector": {"matchLabels": dict(labels)},
            "endpoints": [{"port": port, "interval": SCRAPE_INTERVAL}],
        },
        opts=opts,
    )


@dataclass(frozen=True)
class ApplicationMonitoringArgs:
    app_namespace: str
    # Where the PrometheusRule lives (Prometheus reads rules from every namespace).
    rules_namespace: str
    services: Mapping[ServiceName, ServiceSettings]
    # The mesh runs: scrape the sidecars' Envoy statistics and istiod.
    mesh: bool = False
    # The edge runs: scrape the ingress gateway's Envoy statistics too.
    edge: bool = False
    # Jaeger runs: scrape its collector's own metrics (spans received, refused, exported).
    tracing: bool = False


class ApplicationMonitoring(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        args: ApplicationMonitoringArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("financial-planning:observability:ApplicationMonitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        for service_name in args.services:
            labelled_custom_resource(
                f"{name}-{service_name}",
                api_version=MONITORING_API,
                kind="ServiceMonitor",
                name=service_name,
                namespace=args.app_namespace,
                component="monitoring",
                spec={
                    "selector": {"matchLabels": selector_labels(service_name)},
                    "endpoints": [
                        {
                            "port": METRICS_SERVICE_PORT,
                            "path": METRICS_PATH,
                            "interval": SCRAPE_INTERVAL,
                        }
                    ],
                },
                opts=child,
            )
        labelled_custom_resource(
            f"{name}-alerts",
            api_version=MONITORING_API,
            kind="PrometheusRule",
            name=ALERT_RULES,
            namespace=args.rules_namespace,
            component="monitoring",
            spec={
                "groups": rule_groups(
                    args.app_namespace, mesh=args.mesh, tracing=args.tracing, edge=args.edge
                )
            },
            opts=child,
        )
        # External Secrets' controller (its chart's own monitor would be skipped on the first
        # install: the operator comes before monitoring, whose Secrets it makes).
        pod_monitor(
            f"{name}-external-secrets",
            "external-secrets",
            namespace=args.rules_namespace,
            watched_namespace=EXTERNAL_SECRETS_NAMESPACE,
            labels={
                "app.kubernetes.io/name": "external-secrets",
                "app.kubernetes.io/instance": "external-secrets",
            },
            port="metrics",
            path=METRICS_PATH,
            opts=child,
        )
        if args.mesh:
            self._mesh_monitors(name, args, child)
        if args.tracing:
            # On the Service's port: the chart names none of the pod's ports.
            service_monitor(
                f"{name}-jaeger",
                "jaeger",
                namespace=args.rules_namespace,
                watched_namespace=TRACING_NAMESPACE,
                labels=JAEGER_SELECTOR,
                port=JAEGER_METRICS_PORT,
                opts=child,
            )
        for uid, model in dashboard_models().items():
            k8s.core.v1.ConfigMap(
                f"{name}-{uid}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"dashboard-{uid}",
                    namespace=args.rules_namespace,
                    labels={
                        **standard_labels(uid, "dashboard"),
                        DASHBOARD_LABEL[0]: DASHBOARD_LABEL[1],
                    },
                ),
                data={f"{uid}.json": json.dumps(model, sort_keys=True)},
                opts=child,
            )
        self.register_outputs({})

    @staticmethod
    def _mesh_monitors(
        name: str, args: ApplicationMonitoringArgs, opts: pulumi.ResourceOptions
    ) -> None:
        # Every injected pod carries the tlsMode label and serves Envoy's statistics.
        pod_monitor(
            f"{name}-sidecars",
            "istio-sidecars",
            namespace=args.rules_namespace,
            watched_namespace=args.app_namespace,
            labels={"security.istio.io/tlsMode": "istio"},
            port="http-envoy-prom",
            path="/stats/prometheus",
            opts=opts,
        )
        if args.edge:
            # The gateway's proxy serves the same statistics (requests per host, 429s of the
            # rate limits, upstream errors).
            pod_monitor(
                f"{name}-ingress-gateway",
                "istio-ingress-gateway",
                namespace=args.rules_namespace,
                watched_namespace=GATEWAY_NAMESPACE,
                labels=GATEWAY_SELECTOR,
                port="http-envoy-prom",
                path="/stats/prometheus",
                opts=opts,
            )
        service_monitor(
            f"{name}-istiod",
            "istiod",
            namespace=args.rules_namespace,
            watched_namespace=MESH_NAMESPACE,
            labels={"app": "istiod"},
            port="http-monitoring",
            opts=opts,
        )
