"""What each scrape really yields: the series Prometheus stores, label for label.

The alert tests (promtool) and the selector test take every series from here. A stored series
is what Prometheus makes of one exposed sample:

1. service discovery describes the target (the `__meta_kubernetes_*` labels of a Service's
   endpoint or of a Pod's port);
2. the Prometheus operator's relabelings for the ServiceMonitor or PodMonitor, then the
   monitor's own `relabelings`, give the target labels (job, namespace, service, pod,
   container, endpoint, node, instance...);
3. the exporter's own labels are merged with them (`honorLabels` decides who wins);
4. the monitor's `metricRelabelings` keep or drop the result.

Steps 2 and 4 run the monitors as the render configures them: the program's own ServiceMonitors
and PodMonitors from the render, and the charts' (kubelet, kube-state-metrics, node-exporter)
as their templates build them from the release's values. What is not in the render (what an
exporter exposes, what a chart's template does) is in `SCRAPES`: one row per scrape, each
citing the upstream file it comes from, at the version the program pins.

Sources (read at the pinned versions):
- prometheus-operator v0.93.0, pkg/prometheus/promcfg.go: generateServiceMonitorConfig and
  generatePodMonitorConfig (the relabelings below). kube-prometheus-stack 88.5.3 runs the
  operator v0.93.1; v0.93.0 is the closest tag this machine holds, and a patch release does not
  change the generated relabelings.
- The charts' monitors below (kubelet, kube-state-metrics, node-exporter) were checked against
  `helm template` renders of kube-prometheus-stack 88.5.3 (with kube-state-metrics 8.4.0 and
  prometheus-node-exporter 4.56.1) under the program's values: job labels, ports, honorLabels,
  the eight cAdvisor metric relabelings, the node-exporter Service's `jobLabel` label.
- Prometheus's scrape semantics: `instance` defaults to `__address__`, labels starting with
  `__` are dropped after relabeling, `honor_labels` keeps the scraped value on a clash
  (otherwise the scraped one is renamed `exported_<name>`), an empty value is no label.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from components.addons.jaeger import JAEGER_SELECTOR
from components.addons.mesh import GATEWAY_NAMESPACE, GATEWAY_SELECTOR
from components.shared.observability_contract import CONTRACT, METRICS_PORT
from offline.engine import StackRun
from tests.lookup import HELM_RELEASE, app_namespace, helm_release, objects, pod_spec

# A label whose value the exporter fills from the request or the workload: any value matches a
# selector on it, and a test names the value it needs.
ANY = "*"

NODE = "ip-10-0-1-10.ec2.internal"
POD_CGROUP = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7c1e.slice"
NODE_IP = "10.0.1.10"


# --- Prometheus's relabeling -------------------------------------------------------------


def _template(replacement: str) -> str:
    """Prometheus's `$1` / `${1}` as Python's `\\g<1>`."""
    escaped = replacement.replace("\\", "\\\\")
    return re.sub(r"\$\{?(\d+)\}?", r"\\g<\1>", escaped)


def relabel(
    labels: Mapping[str, str], configs: Sequence[Mapping[str, Any]]
) -> dict[str, str] | None:
    """Prometheus's relabeling (the actions the monitors here use: replace, keep, drop), in
    the operator's camelCase or Prometheus's snake_case. None: the target or sample is dropped."""
    out = dict(labels)
    for config in configs:
        action = str(config.get("action", "replace")).lower()
        sources = config.get("sourceLabels", config.get("source_labels", []))
        separator = config.get("separator", ";")
        pattern = re.compile(f"^(?:{config.get('regex', '(.*)')})$")
        value = separator.join(out.get(source, "") for source in sources)
        if action == "keep":
            if not pattern.match(value):
                return None
        elif action == "drop":
            if pattern.match(value):
                return None
        elif action == "replace":
            matched = pattern.match(value)
            if matched is None:
                continue
            target = config.get("targetLabel", config.get("target_label"))
            result = matched.expand(_template(str(config.get("replacement", "$1"))))
            if result:
                out[target] = result
            else:
                out.pop(target, None)
        else:
            raise ValueError(f"relabel action {action!r} is not modelled here")
    return out


# --- What service discovery gives, and what the operator makes of it ---------------------


@dataclass(frozen=True)
class Discovered:
    """One target as Kubernetes service discovery describes it (role endpoints for a
    ServiceMonitor, role pod for a PodMonitor)."""

    namespace: str
    pod: str
    container: str
    port_name: str
    port: int
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    node: str = NODE
    pod_ip: str = "10.0.2.31"
    # A ServiceMonitor's Service: its name, labels and the endpoint port's name.
    service: str | None = None
    service_labels: Mapping[str, str] = field(default_factory=dict)
    service_port_name: str | None = None
    # The kubelet's endpoints point at Nodes, not Pods.
    target_kind: str = "Pod"

    def meta(self) -> dict[str, str]:
        def sanitize(name: str) -> str:
            return re.sub(r"[^a-zA-Z0-9_]", "_", name)

        meta = {
            "__address__": f"{self.pod_ip}:{self.port}",
            "__meta_kubernetes_namespace": self.namespace,
            "__meta_kubernetes_pod_phase": "Running",
            "__meta_kubernetes_pod_container_port_name": self.port_name,
            "__meta_kubernetes_pod_container_port_number": str(self.port),
            **{f"__meta_kubernetes_pod_label_{sanitize(k)}": v for k, v in self.pod_labels.items()},
        }
        if self.target_kind == "Pod":
            meta |= {
                "__meta_kubernetes_pod_name": self.pod,
                "__meta_kubernetes_pod_container_name": self.container,
                "__meta_kubernetes_pod_node_name": self.node,
            }
        if self.service is not None:
            meta |= {
                "__meta_kubernetes_service_name": self.service,
                "__meta_kubernetes_endpoint_port_name": self.service_port_name or "",
                "__meta_kubernetes_endpoint_address_target_kind": self.target_kind,
                "__meta_kubernetes_endpoint_address_target_name": (
                    self.pod if self.target_kind == "Pod" else self.node
                ),
                **{
                    f"__meta_kubernetes_service_label_{sanitize(k)}": v
                    for k, v in self.service_labels.items()
                },
            }
        return meta


def _operator_relabelings(
    kind: str, namespace: str, name: str, spec: Mapping[str, Any], endpoint: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The relabelings prometheus-operator v0.93.0 generates for one endpoint of a monitor
    (pkg/prometheus/promcfg.go), in its order, ending with the endpoint's own `relabelings`."""
    port = endpoint.get("port", "")
    configs: list[dict[str, Any]] = []
    if kind == "ServiceMonitor":
        if port:
            configs.append(
                {
                    "action": "keep",
                    "source_labels": ["__meta_kubernetes_endpoint_port_name"],
                    "regex": port,
                }
            )
        kind_and_name = [
            "__meta_kubernetes_endpoint_address_target_kind",
            "__meta_kubernetes_endpoint_address_target_name",
        ]
        configs += [
            {"source_labels": kind_and_name, "regex": "Node;(.*)", "target_label": "node"},
            {"source_labels": kind_and_name, "regex": "Pod;(.*)", "target_label": "pod"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {
                "source_labels": ["__meta_kubernetes_pod_container_name"],
                "target_label": "container",
            },
            {
                "action": "drop",
                "source_labels": ["__meta_kubernetes_pod_phase"],
                "regex": "(Failed|Succeeded)",
            },
            {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job"},
        ]
        job_label = spec.get("jobLabel")
        if job_label:
            configs.append(
                {
                    "source_labels": [
                        "__meta_kubernetes_service_label_"
                        + re.sub(r"[^a-zA-Z0-9_]", "_", job_label)
                    ],
                    "target_label": "job",
                    "regex": "(.+)",
                }
            )
    else:
        if port:
            configs.append(
                {
                    "action": "keep",
                    "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                    "regex": port,
                }
            )
        configs += [
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {
                "source_labels": ["__meta_kubernetes_pod_container_name"],
                "target_label": "container",
            },
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {"target_label": "job", "replacement": f"{namespace}/{name}"},
        ]
        job_label = spec.get("jobLabel")
        if job_label:
            configs.append(
                {
                    "source_labels": [
                        "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", job_label)
                    ],
                    "target_label": "job",
                    "regex": "(.+)",
                }
            )
    if port:
        configs.append({"target_label": "endpoint", "replacement": port})
    return configs + list(endpoint.get("relabelings", []))


@dataclass(frozen=True)
class Monitor:
    """A ServiceMonitor or PodMonitor as it is applied: the render's, or a chart's as its
    template makes it from the release's values."""

    kind: str
    namespace: str
    name: str
    spec: Mapping[str, Any]

    def endpoints(self) -> list[Mapping[str, Any]]:
        key = "endpoints" if self.kind == "ServiceMonitor" else "podMetricsEndpoints"
        return list(self.spec[key])

    def selects(self, target: Discovered) -> bool:
        """Whether the monitor's namespace and label selectors pick the target (its Service's
        labels for a ServiceMonitor, its Pod's for a PodMonitor); the operator's default
        namespace is the monitor's own."""
        namespaces = self.spec.get("namespaceSelector", {})
        if not namespaces.get("any", False) and target.namespace not in namespaces.get(
            "matchNames", [self.namespace]
        ):
            return False
        wanted = self.spec.get("selector", {}).get("matchLabels", {})
        labels = target.service_labels if self.kind == "ServiceMonitor" else target.pod_labels
        return all(labels.get(k) == v for k, v in wanted.items())

    def target_labels(
        self, endpoint: Mapping[str, Any], target: Discovered
    ) -> dict[str, str] | None:
        """The target's labels after relabeling; None when this endpoint does not scrape it."""
        if not self.selects(target):
            return None
        start = {
            "job": f"{self.kind.lower()}/{self.namespace}/{self.name}",
            "__metrics_path__": endpoint.get("path", "/metrics"),
            **target.meta(),
        }
        labels = relabel(
            start,
            _operator_relabelings(self.kind, self.namespace, self.name, self.spec, endpoint),
        )
        if labels is None:
            return None
        labels.setdefault("instance", labels["__address__"])
        return {k: v for k, v in labels.items() if not k.startswith("__")}


# --- What each exporter exposes ------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One series as the exporter exposes it: its name and its own labels (empty values are no
    label; ANY: the exporter fills it per request or workload)."""

    metric: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Scrape:
    """One row of the table: one monitor endpoint scraping one target, what the target exposes,
    and where those facts come from."""

    name: str
    monitor: Monitor
    endpoint: Mapping[str, Any]
    target: Discovered
    exposes: tuple[Sample, ...]
    source: str

    def store(self, sample: Sample) -> dict[str, str] | None:
        """The series Prometheus stores for `sample`, or None where the target is not scraped
        or a metric relabeling drops it."""
        target = self.monitor.target_labels(self.endpoint, self.target)
        if target is None:
            return None
        own = {k: v for k, v in sample.labels.items() if v != ""}
        merged = dict(own)
        for key, value in target.items():
            if key in own and not self.endpoint.get("honorLabels", False):
                merged[f"exported_{key}"] = own[key]
                merged[key] = value
            elif key not in own:
                merged[key] = value
        merged["__name__"] = sample.metric
        return relabel(merged, list(self.endpoint.get("metricRelabelings", [])))

    def stored(self) -> Iterator[dict[str, str]]:
        for sample in self.exposes:
            series = self.store(sample)
            if series is not None:
                yield series

    def on(self, **target: Any) -> Scrape:
        """The same scrape of another target of its kind (another node, another pod)."""
        return replace(self, target=replace(self.target, **target))

    def series(self, metric: str, **labels: str) -> str:
        """The stored series of this scrape's `metric` with the given own labels, as promtool
        reads a series (an ANY label left unset gets a value of its own); AssertionError when the
        scrape does not keep it."""
        stored = self.store(self.sample(metric, **labels))
        assert stored is not None, f"{self.name} does not keep {metric} {labels}"
        return promtool_series(stored)

    def sample(self, metric: str, **labels: str) -> Sample:
        """This scrape's sample of `metric`, with the given own labels set (a test's values)."""
        fitting = [
            exposed
            for exposed in self.exposes
            if exposed.metric == metric
            and all(exposed.labels.get(k, "") in (v, ANY) for k, v in labels.items())
        ]
        if not fitting:
            raise KeyError(f"{self.name} exposes no {metric} with {labels}")
        # The sample that names the most of them exactly (the root cgroup for id "/").
        best = max(fitting, key=lambda e: sum(e.labels.get(k) == v for k, v in labels.items()))
        return replace(best, labels={**best.labels, **labels})


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's merge of a release's values over a chart's defaults (maps merge, the rest
    replaces)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


# kube-prometheus-stack 88.5.3 values.yaml, `kubelet.serviceMonitor` (the parts its kubelet
# ServiceMonitor's cAdvisor endpoint reads: templates/exporters/kubelet/servicemonitor.yaml).
KUBELET_DEFAULTS: dict[str, Any] = {
    "honorLabels": True,
    "cAdvisor": True,
    "cAdvisorMetricRelabelings": [
        {
            "sourceLabels": ["__name__"],
            "action": "drop",
            "regex": "container_cpu_(cfs_throttled_seconds_total|load_average_10s|"
            "system_seconds_total|user_seconds_total)",
        },
        {
            "sourceLabels": ["__name__"],
            "action": "drop",
            "regex": "container_fs_(io_current|io_time_seconds_total|"
            "io_time_weighted_seconds_total|reads_merged_total|sector_reads_total|"
            "sector_writes_total|writes_merged_total)",
        },
        {
            "sourceLabels": ["__name__"],
            "action": "drop",
            "regex": "container_memory_(mapped_file|swap)",
        },
        {
            "sourceLabels": ["__name__"],
            "action": "drop",
            "regex": "container_(file_descriptors|tasks_state|threads_max)",
        },
        {
            "sourceLabels": ["__name__", "scope"],
            "action": "drop",
            "regex": "container_memory_failures_total;hierarchy",
        },
        {
            "sourceLabels": ["__name__", "interface"],
            "action": "drop",
            "regex": "container_network_.*;(cali|cilium|cni|lxc|nodelocaldns|tunl).*",
        },
        {"sourceLabels": ["__name__"], "action": "drop", "regex": "container_spec.*"},
        # The root cgroup (id "/") and every other cgroup without a pod: helm-charts#2279.
        {"sourceLabels": ["id", "pod"], "action": "drop", "regex": ".+;"},
    ],
    "cAdvisorRelabelings": [
        {"action": "replace", "sourceLabels": ["__metrics_path__"], "targetLabel": "metrics_path"}
    ],
}


def kubelet_monitor(values: Mapping[str, Any]) -> tuple[Monitor, dict[str, Any]]:
    """kube-prometheus-stack's kubelet ServiceMonitor, its cAdvisor endpoint, from the
    release's `kubelet` values over the chart's defaults."""
    settings = _merge(KUBELET_DEFAULTS, values.get("kubelet", {}).get("serviceMonitor", {}))
    endpoint = {
        "port": "https-metrics",
        "path": "/metrics/cadvisor",
        "honorLabels": settings["honorLabels"],
        "metricRelabelings": settings["cAdvisorMetricRelabelings"],
        "relabelings": settings["cAdvisorRelabelings"],
    }
    spec = {
        "jobLabel": "k8s-app",
        "namespaceSelector": {"matchNames": ["kube-system"]},
        "selector": {"matchLabels": {"app.kubernetes.io/name": "kubelet", "k8s-app": "kubelet"}},
        "endpoints": [endpoint],
    }
    return Monitor("ServiceMonitor", "monitoring", "monitoring-kubelet", spec), endpoint


def kube_state_metrics_monitor(values: Mapping[str, Any]) -> tuple[Monitor, dict[str, Any]]:
    """kube-state-metrics 8.4.0's ServiceMonitor (templates/servicemonitor.yaml) with
    kube-prometheus-stack's values for it (`kube-state-metrics.prometheus.monitor`)."""
    chart_values = _merge(
        {"prometheus": {"monitor": {"jobLabel": "", "http": {"honorLabels": True}}}},
        values.get("kube-state-metrics", {}),
    )
    monitor = chart_values["prometheus"]["monitor"]
    endpoint = {"port": "http", "honorLabels": bool(monitor["http"].get("honorLabels"))}
    spec = {
        "jobLabel": monitor.get("jobLabel") or "app.kubernetes.io/name",
        "endpoints": [endpoint],
    }
    return (
        Monitor("ServiceMonitor", "monitoring", "kube-prometheus-stack-kube-state-metrics", spec),
        endpoint,
    )


def node_exporter_monitor(
    values: Mapping[str, Any],
) -> tuple[Monitor, dict[str, Any], dict[str, str]]:
    """prometheus-node-exporter 4.56.1's ServiceMonitor (templates/servicemonitor.yaml) from the
    release's values over the chart's (values.yaml: `prometheus.monitor.jobLabel` "",
    `service.portName` "metrics", `service.labels` {}), and the Service's labels
    (templates/service.yaml: the chart's labels, then `service.labels`)."""
    monitor = values.get("prometheus", {}).get("monitor", {})
    endpoint = {
        "port": values.get("service", {}).get("portName", "metrics"),
        "relabelings": list(monitor.get("relabelings", [])),
        "metricRelabelings": list(monitor.get("metricRelabelings", [])),
    }
    spec = {
        "jobLabel": monitor.get("jobLabel") or "app.kubernetes.io/name",
        "endpoints": [endpoint],
    }
    service_labels = {
        "app.kubernetes.io/name": "prometheus-node-exporter",
        "app.kubernetes.io/instance": "prometheus-node-exporter",
        "app.kubernetes.io/component": "metrics",
        **values.get("service", {}).get("labels", {}),
    }
    return (
        Monitor("ServiceMonitor", "node-exporter", "prometheus-node-exporter", spec),
        endpoint,
        service_labels,
    )


def _pod_name(workload: str) -> str:
    return f"{workload}-7d9f8b6c5-x2k4q"


def _app_targets(run: StackRun) -> Iterator[tuple[str, str, dict[str, str], str]]:
    """Each application Deployment: its service name, pod name, pod labels and container."""
    namespace = app_namespace(run)
    for name, deployment in objects(run, "Deployment").items():
        if deployment["metadata"]["namespace"] != namespace:
            continue
        spec = pod_spec(deployment)
        labels = dict(deployment["spec"]["template"]["metadata"]["labels"])
        [container] = [c for c in spec["containers"] if c["name"] == name]
        yield name, _pod_name(name), labels, container["name"]


def _rendered_monitor(run: StackRun, kind: str, name: str, namespace: str) -> Monitor:
    [found] = [
        o
        for o in objects(run, kind).values()
        if o["metadata"]["name"] == name and o["metadata"]["namespace"] == namespace
    ]
    return Monitor(kind, namespace, name, found["spec"])


# The application's contract metrics, as the services expose them (their own labels; the
# request histogram's status codes are filled per request).
def _contract_samples() -> tuple[Sample, ...]:
    samples = []
    for metric in CONTRACT:
        own = dict.fromkeys(metric.labels, ANY)
        for series in sorted(metric.series()):
            extra = {"le": ANY} if series.endswith("_bucket") else {}
            samples.append(Sample(series, {**own, **extra}))
    return tuple(samples)


# istio/proxy 1.30.3 source/extensions/filters/http/istio_stats/istio_stats.cc: the standard
# request counter and its labels (reporter "source" at the caller's proxy, "destination" at the
# callee's); the gateway reports as a caller.
ISTIO_REQUEST_LABELS = (
    "source_workload",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_canonical_service",
    "source_canonical_revision",
    "source_cluster",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_cluster",
    "request_protocol",
    "response_code",
    "grpc_response_status",
    "response_flags",
    "connection_security_policy",
)


def _istio_requests(reporter: str) -> Sample:
    return Sample(
        "istio_requests_total", {"reporter": reporter, **dict.fromkeys(ISTIO_REQUEST_LABELS, ANY)}
    )


# What every Istio proxy's Envoy keeps of its statistics (istio 1.30.3): the bootstrap's
# stats_matcher (tools/packaging/common/envoy_bootstrap.json: prefixes "reporter=", "component",
# "istio", then the proxy config's and the required ones) with pkg/bootstrap/config.go's
# required inclusions (prefixes, the rbac suffixes, the route regex). A proxy config's
# proxyStatsMatcher (or the sidecar.istio.io/statsInclusion* annotations, which the program
# does not use) adds to them.
ISTIO_KEPT_PREFIXES = (
    "reporter=",
    "cluster_manager",
    "listener_manager",
    "server",
    "cluster.xds-grpc",
    "wasm",
    "component",
    "istio",
)
ISTIO_KEPT_SUFFIXES = ("rbac.allowed", "rbac.denied", "shadow_allowed", "shadow_denied")
ISTIO_KEPT_REGEXPS = (r"vhost\..*\.route\..*",)
# envoy_bootstrap.json stats_tags: the HTTP connection manager's prefix as a tag (its
# [:digit:] written out for Python's re). The first group leaves the name, the second is the
# tag's value (Envoy's TagSpecifier).
HTTP_CONN_MANAGER_PREFIX_TAG = (
    "http_conn_manager_prefix",
    r"^http\.(((?:[_.0-9\w]*|[_\[\]aAbBcCdDeEfF0-9\w\:]*));\.)",
)
# Envoy's jwt_authn filter counters (source/extensions/filters/http/jwt_authn/stats.h), under
# `<the HTTP connection manager's stats prefix>jwt_authn.` (filter_config.h generateStats).
JWT_AUTHN_COUNTERS = (
    "allowed",
    "cors_preflight_bypassed",
    "denied",
    "jwks_fetch_success",
    "jwks_fetch_failed",
    "jwt_cache_hit",
    "jwt_cache_miss",
)


def envoy_keeps(stat: str, proxy_config: Mapping[str, Any]) -> bool:
    """Envoy's stats matcher with an inclusion list, as Istio builds it for this proxy."""
    matcher = proxy_config.get("proxyStatsMatcher", {})
    prefixes = (*ISTIO_KEPT_PREFIXES, *matcher.get("inclusionPrefixes", []))
    suffixes = (*ISTIO_KEPT_SUFFIXES, *matcher.get("inclusionSuffixes", []))
    regexps = (*ISTIO_KEPT_REGEXPS, *matcher.get("inclusionRegexps", []))
    return (
        stat.startswith(prefixes)
        or stat.endswith(suffixes)
        or any(re.fullmatch(r, stat) for r in regexps)
    )


def envoy_prometheus_sample(stat: str) -> Sample:
    """How Envoy's /stats/prometheus shows a counter: Istio's tag taken out of the name as a
    label, then "envoy_" and the name with every other character an underscore (Envoy
    source/server/admin/prometheus_stats.cc `metricName`, `sanitizeName`; no suffix on
    counters)."""
    tag, regex = HTTP_CONN_MANAGER_PREFIX_TAG
    labels = {}
    found = re.match(regex, stat)
    if found is not None:
        labels[tag] = found.group(2)
        stat = stat[: found.start(1)] + stat[found.end(1) :]
    return Sample("envoy_" + re.sub(r"[^a-zA-Z0-9_]", "_", stat), labels)


def gateway_http_stats_prefix(run: StackRun) -> str:
    """The stats prefix of the gateway's HTTPS connection manager (istio 1.30.3
    pilot/pkg/networking/core/gateway.go: the Gateway server's `name`, else
    `outbound_<listener>` with Istio's ";" delimiter, the listener `0.0.0.0_<port>`)."""
    [gateway] = objects(run, "Gateway").values()
    [server] = [s for s in gateway["spec"]["servers"] if s["port"]["protocol"] == "HTTPS"]
    if server.get("name"):
        return str(server["name"])
    return f"outbound_0.0.0.0_{server['port']['number']};"


def _gateway_envoy_samples(run: StackRun, values: Mapping[str, Any] | None) -> list[Sample]:
    """The gateway's own Envoy statistics that its proxy config keeps (its jwt_authn filter's:
    the gateway checks the users' tokens, components/edge/rate_limit.py)."""
    if values is None or not objects(run, "RequestAuthentication"):
        return []
    annotation = values.get("podAnnotations", {}).get("proxy.istio.io/config", "{}")
    proxy_config = json.loads(annotation)
    prefix = gateway_http_stats_prefix(run)
    return [
        envoy_prometheus_sample(stat)
        for counter in JWT_AUTHN_COUNTERS
        if envoy_keeps(stat := f"http.{prefix}.jwt_authn.{counter}", proxy_config)
    ]


def promtool_series(stored: Mapping[str, str]) -> str:
    labels = ",".join(
        f'{key}="{"x" if value == ANY else value}"'
        for key, value in sorted(stored.items())
        if key != "__name__"
    )
    return f"{stored['__name__']}{{{labels}}}"


def scrapes(
    run: StackRun,
    kps: Mapping[str, Any] | None = None,
    node_exporter: Mapping[str, Any] | None = None,
    gateway: Mapping[str, Any] | None = None,
) -> list[Scrape]:
    """The table: every scrape whose series the program's rules, panels and HPAs read, with the
    monitors as the render configures them (or as `kps`, `node_exporter` and `gateway`, values
    of those releases, would: for the negative controls)."""
    if kps is None:
        kps = helm_release(run, "kube-prometheus-stack").inputs["values"]
    if node_exporter is None:
        node_exporter = helm_release(run, "prometheus-node-exporter").inputs["values"]
    if gateway is None and any(r.inputs["chart"] == "gateway" for r in run.of_type(HELM_RELEASE)):
        gateway = helm_release(run, "gateway").inputs["values"]
    namespace = app_namespace(run)
    rows: list[Scrape] = []

    monitor, endpoint = kubelet_monitor(kps)
    app_name = next(_app_targets(run))[0]
    cadvisor_own = {"name": ANY, "image": ANY}
    rows.append(
        Scrape(
            "kubelet-cadvisor",
            monitor,
            endpoint,
            # The operator's kubelet Service (its --kubelet-service flag, set by the chart's
            # templates/prometheus-operator/deployment.yaml): endpoints are the Nodes.
            Discovered(
                namespace="kube-system",
                pod="",
                container="",
                port_name="https-metrics",
                port=10250,
                pod_ip=NODE_IP,
                service="monitoring-kubelet",
                service_labels={"k8s-app": "kubelet", "app.kubernetes.io/name": "kubelet"},
                service_port_name="https-metrics",
                target_kind="Node",
            ),
            tuple(
                Sample(metric, {**cadvisor_own, **extra, **own})
                for metric, extra in (
                    ("container_cpu_usage_seconds_total", {"cpu": "total"}),
                    ("container_memory_working_set_bytes", {}),
                )
                for own in (
                    # A container of a pod, the pod's own cgroup (container ""), and the node's
                    # root cgroup (id "/", no pod): kubelet pkg/kubelet/server/server.go,
                    # containerPrometheusLabelsFunc (blank strings for what a cgroup lacks).
                    # (ids as the systemd cgroup driver names them: never "/" for a pod's.)
                    {
                        "id": f"{POD_CGROUP}/cri-containerd-0f3c.scope",
                        "namespace": ANY,
                        "pod": ANY,
                        "container": ANY,
                    },
                    {"id": POD_CGROUP, "namespace": ANY, "pod": ANY, "container": ""},
                    {"id": "/", "namespace": "", "pod": "", "container": ""},
                )
            ),
            "kube-prometheus-stack 88.5.3 values.yaml kubelet.serviceMonitor and "
            "templates/exporters/kubelet/servicemonitor.yaml; kubelet server.go "
            "containerPrometheusLabelsFunc",
        )
    )

    monitor, endpoint = kube_state_metrics_monitor(kps)
    ksm_pod = _pod_name("kube-prometheus-stack-kube-state-metrics")
    rows.append(
        Scrape(
            "kube-state-metrics",
            monitor,
            endpoint,
            Discovered(
                namespace="monitoring",
                pod=ksm_pod,
                container="kube-state-metrics",
                port_name="http",
                port=8080,
                service="kube-prometheus-stack-kube-state-metrics",
                service_labels={"app.kubernetes.io/name": "kube-state-metrics"},
                service_port_name="http",
            ),
            (
                # kube-state-metrics v2.20.0 docs/metrics/workload/pod-metrics.md
                Sample(
                    "kube_pod_container_resource_limits",
                    {
                        "namespace": ANY,
                        "pod": ANY,
                        "container": ANY,
                        "node": NODE,
                        "resource": "cpu",
                        "unit": "core",
                        "uid": ANY,
                    },
                ),
                Sample(
                    "kube_pod_container_resource_limits",
                    {
                        "namespace": ANY,
                        "pod": ANY,
                        "container": ANY,
                        "node": NODE,
                        "resource": "memory",
                        "unit": "byte",
                        "uid": ANY,
                    },
                ),
                Sample("kube_pod_info", {"namespace": ANY, "pod": ANY, "node": NODE, "uid": ANY}),
                # docs/metrics/cluster/node-metrics.md
                Sample("kube_node_info", {"node": NODE, "kernel_version": ANY}),
                # docs/metrics/workload/horizontalpodautoscaler-metrics.md
                Sample(
                    "kube_horizontalpodautoscaler_status_current_replicas",
                    {"namespace": namespace, "horizontalpodautoscaler": app_name},
                ),
                Sample(
                    "kube_horizontalpodautoscaler_spec_max_replicas",
                    {"namespace": namespace, "horizontalpodautoscaler": app_name},
                ),
                # docs/metrics/workload/deployment-metrics.md
                Sample(
                    "kube_deployment_status_replicas_available",
                    {"namespace": namespace, "deployment": app_name},
                ),
            ),
            "kube-state-metrics chart 8.4.0 templates/servicemonitor.yaml with "
            "kube-prometheus-stack 88.5.3 values (honorLabels); kube-state-metrics v2.20.0 "
            "docs/metrics",
        )
    )

    monitor, endpoint, service_labels = node_exporter_monitor(node_exporter)
    rows.append(
        Scrape(
            "node-exporter",
            monitor,
            endpoint,
            # A DaemonSet pod on the host's network: its address is the node's.
            Discovered(
                namespace="node-exporter",
                pod=_pod_name("prometheus-node-exporter"),
                container="node-exporter",
                port_name="metrics",
                port=9100,
                pod_ip=NODE_IP,
                service="prometheus-node-exporter",
                service_labels=service_labels,
                service_port_name=endpoint["port"],
            ),
            (
                # node_exporter v1.12.1 collector/cpu_linux.go: one counter per CPU and mode.
                *(
                    Sample("node_cpu_seconds_total", {"cpu": cpu, "mode": mode})
                    for cpu in ("0", "1")
                    for mode in (
                        "idle",
                        "iowait",
                        "irq",
                        "nice",
                        "softirq",
                        "steal",
                        "system",
                        "user",
                    )
                ),
                # collector/meminfo_linux.go (the node_memory_ namespace, collector/meminfo.go).
                *(
                    Sample(f"node_memory_{field}_bytes")
                    for field in (
                        "MemAvailable",
                        "MemTotal",
                        "MemFree",
                        "Buffers",
                        "Cached",
                        "Slab",
                    )
                ),
                # What the chart's node rules read besides (tests/observability/chart_rules.json),
                # from collectors node_exporter v1.12.1 enables by default, with their labels:
                # filesystem_common.go (device, mountpoint, fstype; device_error only on error),
                *(
                    Sample(
                        f"node_filesystem_{metric}",
                        {"device": ANY, "mountpoint": ANY, "fstype": ANY},
                    )
                    for metric in ("avail_bytes", "size_bytes", "readonly", "files_free", "files")
                ),
                # netdev_common.go (device),
                *(
                    Sample(f"node_network_{direction}_{counter}_total", {"device": ANY})
                    for direction in ("receive", "transmit")
                    for counter in ("bytes", "packets", "errs", "drop")
                ),
                # diskstats_linux.go (device),
                *(
                    Sample(f"node_disk_{metric}_total", {"device": ANY})
                    for metric in ("io_time_seconds", "io_time_weighted_seconds")
                ),
                # conntrack_linux.go, textfile.go, timex.go, filefd_linux.go, loadavg.go,
                # vmstat_linux.go: no labels of their own.
                *(
                    Sample(metric)
                    for metric in (
                        "node_nf_conntrack_entries",
                        "node_nf_conntrack_entries_limit",
                        "node_textfile_scrape_error",
                        "node_timex_offset_seconds",
                        "node_timex_sync_status",
                        "node_timex_maxerror_seconds",
                        "node_filefd_allocated",
                        "node_filefd_maximum",
                        "node_load1",
                        "node_vmstat_pgmajfault",
                    )
                ),
            ),
            "prometheus-node-exporter 4.56.1 templates/servicemonitor.yaml, service.yaml, "
            "daemonset.yaml (container node-exporter); node_exporter v1.12.1 collector/",
        )
    )

    for service, pod, labels, container in _app_targets(run):
        rows.append(
            Scrape(
                f"application/{service}",
                monitor := _rendered_monitor(run, "ServiceMonitor", service, namespace),
                monitor.endpoints()[0],
                Discovered(
                    namespace=namespace,
                    pod=pod,
                    container=container,
                    port_name="metrics",
                    port=METRICS_PORT,
                    pod_labels=labels,
                    service=service,
                    service_labels=objects(run, "Service")[service]["metadata"]["labels"],
                    service_port_name=monitor.endpoints()[0]["port"],
                ),
                _contract_samples(),
                "the render's ServiceMonitor and Service; the metrics contract "
                "(components/shared/observability_contract.py)",
            )
        )
        if any(
            o["metadata"]["name"] == "istio-sidecars" for o in objects(run, "PodMonitor").values()
        ):
            monitor = _rendered_monitor(run, "PodMonitor", "istio-sidecars", "monitoring")
            rows.append(
                Scrape(
                    f"sidecar/{service}",
                    monitor,
                    monitor.endpoints()[0],
                    # The injected proxy: container istio-proxy, port 15090 http-envoy-prom, and
                    # the tlsMode label (istio 1.30.3 manifests/charts/istio-control/
                    # istio-discovery/files/injection-template.yaml).
                    Discovered(
                        namespace=namespace,
                        pod=pod,
                        container="istio-proxy",
                        port_name="http-envoy-prom",
                        port=15090,
                        pod_labels={**labels, "security.istio.io/tlsMode": "istio"},
                    ),
                    (_istio_requests("source"), _istio_requests("destination")),
                    "the render's PodMonitor; istio 1.30.3 injection-template.yaml; istio/proxy "
                    "1.30.3 istio_stats.cc",
                )
            )

    pod_monitors = {o["metadata"]["name"] for o in objects(run, "PodMonitor").values()}
    if "istio-ingress-gateway" in pod_monitors:
        monitor = _rendered_monitor(run, "PodMonitor", "istio-ingress-gateway", "monitoring")
        rows.append(
            Scrape(
                "ingress-gateway",
                monitor,
                monitor.endpoints()[0],
                # istio 1.30.3 manifests/charts/gateway/templates/deployment.yaml: container
                # istio-proxy, port 15090 http-envoy-prom.
                Discovered(
                    namespace=GATEWAY_NAMESPACE,
                    pod=_pod_name("istio-ingressgateway"),
                    container="istio-proxy",
                    port_name="http-envoy-prom",
                    port=15090,
                    pod_labels=dict(GATEWAY_SELECTOR),
                ),
                (_istio_requests("source"), *_gateway_envoy_samples(run, gateway)),
                "the render's PodMonitor, Gateway and gateway values; istio 1.30.3 gateway "
                "chart deployment.yaml, pkg/bootstrap/config.go, envoy_bootstrap.json",
            )
        )

    service_monitors = {o["metadata"]["name"] for o in objects(run, "ServiceMonitor").values()}
    if "jaeger" in service_monitors:
        monitor = _rendered_monitor(run, "ServiceMonitor", "jaeger", "monitoring")
        config = helm_release(run, "jaeger").inputs["values"]["userconfig"]
        [exporter] = config["service"]["pipelines"]["traces"]["exporters"]
        [receiver] = config["service"]["pipelines"]["traces"]["receivers"]
        [backend] = config["extensions"]["jaeger_storage"]["backends"]
        rows.append(
            Scrape(
                "jaeger",
                monitor,
                monitor.endpoints()[0],
                # jaeger chart 4.11.1 templates/jaeger/jaeger-service.yaml (port
                # internal-metrics -> 8888) and jaeger-deploy.yaml (container jaeger).
                Discovered(
                    namespace="tracing",
                    pod=_pod_name("jaeger"),
                    container="jaeger",
                    port_name="",
                    port=8888,
                    pod_labels=dict(JAEGER_SELECTOR),
                    service="jaeger",
                    service_labels={**JAEGER_SELECTOR, "app.kubernetes.io/component": "all-in-one"},
                    service_port_name="internal-metrics",
                ),
                (
                    # The collector's pipeline telemetry (names as jaeger v2.20.0's
                    # monitoring/jaeger-mixin reads them; labels by receiver and transport, by
                    # exporter). No service_name: the resource's attributes (service.name) go
                    # to `target_info` only, since the pull reader sets no
                    # with_resource_constant_labels (components/addons/jaeger.py; otelconf's
                    # prometheus reader adds WithResourceAsConstantLabels only when that is
                    # set, and the OpenTelemetry Go Prometheus exporter without it keeps
                    # resource attributes off the metrics).
                    Sample(
                        "otelcol_receiver_accepted_spans_total",
                        {"receiver": receiver, "transport": ANY},
                    ),
                    Sample(
                        "otelcol_receiver_refused_spans_total",
                        {"receiver": receiver, "transport": ANY},
                    ),
                    Sample(
                        "otelcol_exporter_sent_spans_total",
                        {"exporter": exporter},
                    ),
                    Sample(
                        "otelcol_exporter_send_failed_spans_total",
                        {"exporter": exporter},
                    ),
                    # The OpenSearch bulk indexer's counters (v2.20.0: esclient/bulk.go
                    # NewWriter(metricsFactory, "bulk_index") under the "jaeger" and "storage"
                    # namespaces with tags name=<backend>, role=tracestore:
                    # cmd/jaeger/internal/extension/jaegerstorage/extension.go,
                    # cmd/internal/storageconfig/factory.go; internal/metrics/otelmetrics joins
                    # and normalizes names with "_"; the Prometheus exporter adds "_total").
                    *(
                        Sample(
                            f"jaeger_storage_bulk_index_{counter}_total",
                            {
                                "name": backend,
                                "role": "tracestore",
                                # The meter's scope (otelmetrics.NewFactory: "jaeger-v2").
                                "otel_scope_name": "jaeger-v2",
                            },
                        )
                        for counter in ("attempts", "inserts", "errors")
                    ),
                ),
                "the render's ServiceMonitor; jaeger chart 4.11.1; jaeger v2.20.0 sources",
            )
        )
    return rows


def scrape(rows: Sequence[Scrape], name: str) -> Scrape:
    [row] = [r for r in rows if r.name == name]
    return row


def kept_series(rows: Sequence[Scrape]) -> list[dict[str, str]]:
    """Every series the scrape configuration keeps, one per exposed sample."""
    return [series for row in rows for series in row.stored()]
