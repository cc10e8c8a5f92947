"""Stakater Reloader: rolls a Deployment when a Secret or ConfigMap it reads changes.

External Secrets refreshes the Kubernetes Secrets from Secrets Manager (`refreshInterval`);
this restarts the pods that read them, so a rotated credential reaches running pods. It
watches the application namespaces only, with a namespaced Role there (no cluster-wide read of
Secrets), and records a reload as a pod-template annotation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components.addons.base import SelfMonitoredAddon, disruption_budget
from components.shared.conventions import (
    CONTROLLER_NODES,
    PLATFORM_PRIORITY_CLASS,
    restricted_container_security_context,
    restricted_pod_security_context,
)
from components.shared.helm import HelmChart
from stacks.addon_settings import ControllerSettings

NOBODY = 65534
# The annotation a Deployment carries to be rolled when a Secret or ConfigMap it uses changes.
RELOAD_ANNOTATION = "reloader.stakater.com/auto"


@dataclass(frozen=True)
class Reloader(SelfMonitoredAddon):
    settings: ControllerSettings
    watched_namespaces: Sequence[str]

    name = "reloader"
    chart = HelmChart(
        chart="reloader",
        version="2.2.16",
        repository="https://stakater.github.io/stakater-charts",
    )
    namespace = "reloader"

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def values(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        replicas = self.settings.replicas
        return {
            "reloader": {
                "watchGlobally": False,
                "namespaces": list(self.watched_namespaces),
                "reloadStrategy": "annotations",
                "readOnlyRootFileSystem": True,
                "enableHA": replicas > 1,
                "podDisruptionBudget": disruption_budget(replicas),
                "deployment": {
                    "replicas": replicas,
                    "nodeSelector": CONTROLLER_NODES,
                    "priorityClassName": PLATFORM_PRIORITY_CLASS,
                    "resources": self.settings.resources.as_values(),
                    "securityContext": restricted_pod_security_context(NOBODY),
                    # Its read-only root is `readOnlyRootFileSystem` above, which the chart
                    # writes over this context's own (and mounts /tmp for it).
                    "containerSecurityContext": {
                        key: value
                        for key, value in restricted_container_security_context(NOBODY).items()
                        if key != "readOnlyRootFilesystem"
                    },
                },
                # A PodMonitor on its metrics port (the chart's ServiceMonitor is deprecated).
                "podMonitor": {"enabled": self.monitored},
            }
        }
