"""Monitoring: kube-prometheus-stack (Prometheus, Alertmanager, Grafana, kube-state-metrics and
the Prometheus operator), and node-exporter beside it.

Everything runs in the restricted `monitoring` namespace except node-exporter, which reads the
host (host network and PID namespace, /proc, /sys and / mounted): it is a separate release in
the privileged `node-exporter` namespace, where nothing else runs.

Secrets never appear in the values: Grafana's admin credentials and the Alertmanager receivers'
keys come from Secrets Manager through ExternalSecrets created before the chart installs, and
Alertmanager reads the receivers' keys and URLs from files (`routing_key_file`, `api_url_file`,
the heartbeat's `url_file`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from components.addons.base import MONITORING_ADDON, ClusterAddon, CompanionAddon
from components.addons.external_secrets import external_secret
from components.data.secrets import RemoteSecret
from components.shared.conventions import (
    CONTROLLER_NODES,
    PLATFORM_PRIORITY_CLASS,
    restricted_container_security_context,
    restricted_pod_security_context,
)
from components.shared.helm import HelmChart
from components.shared.observability_contract import (
    CALLERS_SEE_ERRORS,
    NODE_MEMORY_HIGH,
    SERVICE_ERRORS,
)
from stacks.addon_settings import NODE_EXPORTER_RESOURCES, MonitoringSettings
from stacks.secrets import ALERT_RECEIVERS, GRAFANA_ADMIN, HEARTBEAT_URL_KEY

# What each helper container in the monitoring pods asks for (Grafana's sidecars, the
# operator's config reloaders): they watch files and call a reload endpoint.
SIDECAR_RESOURCES = {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}
# The label Grafana's dashboard sidecar loads ConfigMaps by.
DASHBOARD_LABEL = ("grafana_dashboard", "1")

MONITORING_NAMESPACE = "monitoring"
# Names the chart derives its objects from: Services monitoring-prometheus:9090 and
# monitoring-alertmanager:9093, Grafana's Service grafana:80.
FULLNAME = "monitoring"
PROMETHEUS_SERVICE, PROMETHEUS_PORT = f"{FULLNAME}-prometheus", 9090
GRAFANA_SERVICE, GRAFANA_PORT = "grafana", 80
PROMETHEUS_URL = f"http://{PROMETHEUS_SERVICE}.{MONITORING_NAMESPACE}.svc:{PROMETHEUS_PORT}"
# Where the operator mounts each Secret listed in alertmanagerSpec.secrets.
ALERTMANAGER_SECRETS_DIR = "/etc/alertmanager/secrets"
# Users of the images (the charts' defaults): Prometheus and Alertmanager 1000 (group 2000),
# Grafana 472, the operator and kube-state-metrics 65534.
PROMETHEUS_USER, GRAFANA_USER, NOBODY = 1000, 472, 65534
# node-exporter's job, as kube-prometheus-stack 88.5.3's node rules select it
# (templates/prometheus/rules-1.14/node-exporter.yaml, node.rules.yaml, node-exporter.rules.yaml)
# and the Service label the ServiceMonitor takes it from.
NODE_EXPORTER_JOB = "node-exporter"
NODE_EXPORTER_JOB_LABEL = "jobLabel"
# Each node-exporter series gets the node it runs on (the pod's node, from service discovery):
# the node alerts and panels group by it.
NODE_NAME_RELABELING = {
    "action": "replace",
    "sourceLabels": ["__meta_kubernetes_pod_node_name"],
    "targetLabel": "node",
}
# kube-prometheus-stack 88.5.3 values.yaml, `prometheus-node-exporter.extraArgs`.
NODE_EXPORTER_FILESYSTEM_ARGS = (
    "--collector.filesystem.mount-points-exclude="
    "^/(dev|proc|sys|run/containerd/.+|var/lib/docker/.+|var/lib/kubelet/.+)($|/)",
    "--collector.filesystem.fs-types-exclude="
    "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|"
    "iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|"
    "sysfs|tracefs|erofs)$",
)
# kube-prometheus-stack 88.5.3's node alerts (templates/prometheus/rules-1.14/node-exporter.yaml)
# that one of ours duplicates, by name -> ours: NodeMemoryHighUtilization is memory not
# available above 90% (warning), as NodeMemoryHigh. (Its NodeCPUHighUsage, above 90%, is
# severity info, which notifies nobody: NodeCpuHigh at the seed's 80% is the one that does.)
# `defaultRules.disabled.<alert>` leaves a rule out (each rule's template).
CHART_ALERTS_OURS_REPLACE = {"NodeMemoryHighUtilization": NODE_MEMORY_HIGH}
# Control-plane components EKS manages: nothing in the cluster can scrape them.
MANAGED_CONTROL_PLANE = ("kubeEtcd", "kubeControllerManager", "kubeScheduler", "kubeProxy")


# How often Alertmanager sends the always-firing Watchdog to the heartbeat service: the
# service raises its own alarm when pings stop for longer than its grace period (set it to a
# few of these intervals).
HEARTBEAT_INTERVAL = "1m"


def alertmanager_config() -> dict[str, Any]:
    """Critical alerts page (PagerDuty) and go to chat, warnings go to chat (Slack), the
    chart's always-firing Watchdog to an external heartbeat (a dead man's switch: when
    Prometheus, Alertmanager or the path between them dies, the pings stop and the heartbeat
    service alarms), anything else (the charts' `info` alerts) nowhere. Keys and URLs are read
    from files of the `alert-receivers` Secret, never written here."""
    keys = f"{ALERTMANAGER_SECRETS_DIR}/{ALERT_RECEIVERS}"
    return {
        "route": {
            "receiver": "null",
            "group_by": ["alertname", "namespace", "service"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                # First, and without `continue`: the Watchdog (severity "none") pings and
                # nothing else sees it.
                {
                    "receiver": "heartbeat",
                    "matchers": ['alertname="Watchdog"'],
                    "group_wait": "0s",
                    "group_interval": HEARTBEAT_INTERVAL,
                    "repeat_interval": HEARTBEAT_INTERVAL,
                },
                {"receiver": "pager", "matchers": ['severity="critical"'], "continue": True},
                {"receiver": "chat", "matchers": ['severity=~"critical|warning"']},
            ],
        },
        "inhibit_rules": [
            {
                # A critical alert silences the warning of the same alert and service.
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["alertname", "namespace", "service"],
            },
            {
                # One incident, one page: while the service's own 5xx alert fires, its
                # callers' view of the same errors is silenced; it pages alone when the service
                # cannot count (down, crash-looping). Both carry the service's namespace and
                # name (components/observability/alerts.py).
                "source_matchers": [f'alertname="{SERVICE_ERRORS}"'],
                "target_matchers": [f'alertname="{CALLERS_SEE_ERRORS}"'],
                "equal": ["namespace", "service"],
            },
        ],
        "receivers": [
            {"name": "null"},
            {
                "name": "pager",
                "pagerduty_configs": [
                    {"routing_key_file": f"{keys}/pagerduty-routing-key", "send_resolved": True}
                ],
            },
            {
                "name": "chat",
                "slack_configs": [
                    {"api_url_file": f"{keys}/slack-webhook-url", "send_resolved": True}
                ],
            },
            {
                "name": "heartbeat",
                # `url_file`: Alertmanager 0.26 and later (the chart runs v0.34.0). The URL
                # holds the heartbeat's key (healthchecks.io, Dead Man's Snitch and the like).
                "webhook_configs": [
                    {"url_file": f"{keys}/{HEARTBEAT_URL_KEY}", "send_resolved": False}
                ],
            },
        ],
    }


def volume(storage_class: str, size_gib: int) -> dict[str, Any]:
    return {
        "volumeClaimTemplate": {
            "spec": {
                "storageClassName": storage_class,
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": f"{size_gib}Gi"}},
            }
        }
    }


def _placed(user: int, group: int | None = None) -> dict[str, Any]:
    """A component on the controller nodes, with a restricted pod security context."""
    context = restricted_pod_security_context(user)
    if group is not None:
        context.update(runAsGroup=group, fsGroup=group)
    return {
        "nodeSelector": CONTROLLER_NODES,
        "priorityClassName": PLATFORM_PRIORITY_CLASS,
        "securityContext": context,
    }


@dataclass(frozen=True)
class Monitoring(ClusterAddon):
    settings: MonitoringSettings
    environment: str
    cluster_name: str
    storage_class: str
    # The Secrets Manager secrets read here: Grafana's admin, the alert receivers' keys.
    secrets: Mapping[str, RemoteSecret]
    store_name: str
    # Where the edge serves Grafana and Prometheus (https://<host>), if it does: their links
    # and redirects name it.
    grafana_url: str | None = None
    prometheus_url: str | None = None
    # Jaeger's query API, where Jaeger runs: Grafana's trace data source.
    traces_url: str | None = None

    name = MONITORING_ADDON
    chart = HelmChart(
        chart="kube-prometheus-stack",
        version="88.5.3",
        repository="https://prometheus-community.github.io/helm-charts",
    )
    namespace = MONITORING_NAMESPACE
    # The ExternalSecrets made before the chart installs.
    after = ("eso",)

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def prepare_objects(
        self, name: str, namespace: pulumi.Input[str], opts: pulumi.ResourceOptions
    ) -> list[pulumi.Resource]:
        return [
            external_secret(
                secret,
                self.secrets[secret],
                namespace_name=namespace,
                store_name=self.store_name,
                opts=opts,
            )
            for secret in (GRAFANA_ADMIN, ALERT_RECEIVERS)
        ]

    def values(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        settings = self.settings
        restricted = restricted_container_security_context()
        # The chart's own containers set their users; the rest of restricted is stated here.
        container = {k: v for k, v in restricted.items() if k not in ("runAsUser", "runAsGroup")}
        return {
            "fullnameOverride": FULLNAME,
            "crds": {"enabled": True},
            # The default rules, but those of the control plane's components: each rule group
            # needs its component enabled as well (templates/prometheus/rules-1.14/*.yaml), so
            # the components below being off is what leaves them out.
            "defaultRules": {
                "create": True,
                # The chart's alerts that notify what one of ours already does (the same series
                # and threshold): one notification per incident.
                "disabled": dict.fromkeys(CHART_ALERTS_OURS_REPLACE, True),
            },
            **{component: {"enabled": False} for component in MANAGED_CONTROL_PLANE},
            # A release of its own in a privileged namespace (NodeExporter below), whose series
            # carry the job the chart's node rules and dashboards select; the dashboards are
            # made only with `forceDeployDashboards` while the chart's own exporter is off, and
            # only for the Linux nodes this cluster has.
            "nodeExporter": {
                "enabled": False,
                "forceDeployDashboards": True,
                "operatingSystems": {"aix": {"enabled": False}, "darwin": {"enabled": False}},
            },
            "prometheusOperator": {
                **_placed(NOBODY),
                "containerSecurityContext": container,
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"memory": "512Mi"},
                },
                "admissionWebhooks": {
                    "patch": {
                        "securityContext": restricted_pod_security_context(2000),
                        "priorityClassName": PLATFORM_PRIORITY_CLASS,
                    }
                },
                # The config reloader the operator adds to every Prometheus and Alertmanager
                # pod: the chart passes these as the operator's --config-reloader-* flags, and
                # without them the container requests nothing (a "0" flag is left out).
                "prometheusConfigReloader": {"resources": SIDECAR_RESOURCES},
            },
            "prometheus": {
                "prometheusSpec": {
                    **_placed(PROMETHEUS_USER, 2000),
                    **({"externalUrl": self.prometheus_url} if self.prometheus_url else {}),
                    "replicas": settings.replicas,
                    "retention": f"{settings.retention_days}d",
                    # Below the volume, so that Prometheus drops old blocks before it fills.
                    "retentionSize": f"{int(settings.storage_gib * 0.85)}GB",
                    "storageSpec": volume(self.storage_class, settings.storage_gib),
                    "resources": settings.resources.as_values(),
                    "externalLabels": {
                        "cluster": self.cluster_name,
                        "environment": self.environment,
                    },
                    # Every ServiceMonitor, PodMonitor and PrometheusRule in the cluster, not
                    # only those labelled with this release.
                    "serviceMonitorSelectorNilUsesHelmValues": False,
                    "podMonitorSelectorNilUsesHelmValues": False,
                    "ruleSelectorNilUsesHelmValues": False,
                    "podAntiAffinity": "hard",
                }
            },
            "alertmanager": {
                "alertmanagerSpec": {
                    **_placed(PROMETHEUS_USER, 2000),
                    "replicas": settings.alertmanager_replicas,
                    "storage": volume(self.storage_class, 10),
                    "secrets": [ALERT_RECEIVERS],
                    "podAntiAffinity": "hard",
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "128Mi"},
                        "limits": {"memory": "256Mi"},
                    },
                },
                "config": alertmanager_config(),
            },
            "grafana": {
                "fullnameOverride": GRAFANA_SERVICE,
                "replicas": 1,
                **(
                    {"grafana.ini": {"server": {"root_url": self.grafana_url}}}
                    if self.grafana_url
                    else {}
                ),
                "admin": {
                    "existingSecret": GRAFANA_ADMIN,
                    "userKey": "admin-user",
                    "passwordKey": "admin-password",
                },
                # Dashboards are code (ConfigMaps the sidecar loads), so Grafana keeps no state.
                "persistence": {"enabled": False},
                "sidecar": {
                    "dashboards": {
                        "enabled": True,
                        "label": DASHBOARD_LABEL[0],
                        "labelValue": DASHBOARD_LABEL[1],
                        "searchNamespace": "ALL",
                    },
                    "securityContext": container,
                    # Every sidecar of the Grafana pod (the chart's default is none).
                    "resources": SIDECAR_RESOURCES,
                },
                "additionalDataSources": (
                    [
                        {
                            "name": "Jaeger",
                            "uid": "jaeger",
                            "type": "jaeger",
                            "access": "proxy",
                            "url": self.traces_url,
                        }
                    ]
                    if self.traces_url
                    else []
                ),
                **_placed(GRAFANA_USER),
                "containerSecurityContext": container,
                "resources": {
                    "requests": {"cpu": "100m", "memory": "256Mi"},
                    "limits": {"memory": "512Mi"},
                },
            },
            "kube-state-metrics": {
                **_placed(NOBODY),
                "containerSecurityContext": container,
                "resources": {
                    "requests": {"cpu": "50m", "memory": "128Mi"},
                    "limits": {"memory": "256Mi"},
                },
            },
        }


@dataclass(frozen=True)
class NodeExporter(CompanionAddon):
    """Host metrics (node-exporter) on every node, the only workload of its namespace."""

    name = "node-exporter"
    chart = HelmChart(
        chart="prometheus-node-exporter",
        version="4.56.1",
        repository="https://prometheus-community.github.io/helm-charts",
    )
    namespace = "node-exporter"
    pod_security = "privileged"
    # Its ServiceMonitor is a kind kube-prometheus-stack's CRDs define.
    after = (MONITORING_ADDON,)

    def values(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        return {
            # The Service carries the job label and the ServiceMonitor names it (the
            # operator's `jobLabel`), so every series has job="node-exporter", as
            # kube-prometheus-stack's node rules, recording rules and dashboards select (the
            # chart's default would be its name, "prometheus-node-exporter").
            "service": {"labels": {NODE_EXPORTER_JOB_LABEL: NODE_EXPORTER_JOB}},
            "prometheus": {
                "monitor": {
                    "enabled": True,
                    "jobLabel": NODE_EXPORTER_JOB_LABEL,
                    "relabelings": [NODE_NAME_RELABELING],
                }
            },
            # kube-prometheus-stack's own flags for its node-exporter: leave out the kubelet's
            # and the container runtime's mounts, and pseudo filesystems, which the node
            # rules' disk-full alerts would otherwise read.
            "extraArgs": list(NODE_EXPORTER_FILESYSTEM_ARGS),
            "priorityClassName": PLATFORM_PRIORITY_CLASS,
            # Every node, GPU nodes included (their taints are tolerated).
            "tolerations": [{"operator": "Exists"}],
            # Counted on every node by the node groups' capacity (stacks/capacity.py).
            "resources": NODE_EXPORTER_RESOURCES.as_values(),
        }
