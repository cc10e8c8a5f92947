"""Each service's HorizontalPodAutoscaler (autoscaling/v2) and VerticalPodAutoscaler.

An HPA owns its Deployment's replica count: the Deployment then leaves `spec.replicas` out, so
`pulumi up` never resets what the HPA chose. A VPA acts only on what its HPA does not scale on
(the settings refuse an overlap), or only recommends, and only on the service's own container.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.addons.prometheus_adapter import REQUEST_RATE_METRIC
from components.shared.conventions import standard_labels
from stacks.catalog import ServiceName, ServiceSettings
from stacks.scaling_settings import AutoscalingSettings, ScalingRules, VerticalScaling


def _rules(rules: ScalingRules) -> dict[str, Any]:
    return {
        "stabilizationWindowSeconds": rules.stabilization_window_seconds,
        "selectPolicy": rules.select_policy,
        "policies": [
            {"type": p.type, "value": p.value, "periodSeconds": p.period_seconds}
            for p in rules.policies
        ],
    }


def hpa_spec(deployment: str, hpa: AutoscalingSettings) -> dict[str, Any]:
    metrics: list[dict[str, Any]] = [
        {
            "type": "Resource",
            "resource": {
                "name": resource,
                "target": {"type": "Utilization", "averageUtilization": utilization},
            },
        }
        for resource, utilization in (
            ("cpu", hpa.cpu_utilization),
            ("memory", hpa.memory_utilization),
        )
        if utilization is not None
    ]
    if hpa.requests_per_second is not None:
        per_pod = str(hpa.requests_per_second)
        metrics.append(
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": REQUEST_RATE_METRIC},
                    "target": {"type": "AverageValue", "averageValue": per_pod},
                },
            }
        )
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
        "minReplicas": hpa.min_replicas,
        "maxReplicas": hpa.max_replicas,
        "metrics": metrics,
    }
    behavior = {
        key: _rules(rules)
        for key, rules in (("scaleUp", hpa.scale_up), ("scaleDown", hpa.scale_down))
        if rules is not None
    }
    if behavior:
        spec["behavior"] = behavior
    return spec


def vpa_spec(deployment: str, vpa: VerticalScaling) -> dict[str, Any]:
    return {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
        "updatePolicy": {"updateMode": vpa.update_mode},
        "resourcePolicy": {
            "containerPolicies": [
                {
                    "containerName": deployment,
                    "mode": "Auto",
                    "controlledResources": list(vpa.controlled_resources),
                    # Limits stay as set; the settings keep maxAllowed within them.
                    "controlledValues": "RequestsOnly",
                    "minAllowed": {"cpu": vpa.min_allowed.cpu, "memory": vpa.min_allowed.memory},
                    "maxAllowed": {"cpu": vpa.max_allowed.cpu, "memory": vpa.max_allowed.memory},
                },
                # Every other container (the injected istio-proxy) is left alone: without a
                # policy of its own a container gets the default, Auto on CPU and memory, and
                # a resized sidecar changes the pod's CPU request that the CPU HPA divides by.
                # "*" is the VPA's policy for containers without their own (autoscaling.k8s.io
                # v1 types.go DefaultContainerResourcePolicy, VPA 1.7.1, the chart's app).
                {"containerName": "*", "mode": "Off"},
            ]
        },
    }


@dataclass(frozen=True)
class ServiceAutoscalingArgs:
    namespace: pulumi.Input[str]
    services: Mapping[ServiceName, ServiceSettings]


class ServiceAutoscaling(pulumi.ComponentResource):
    """One HPA per horizontally scaled service and one VPA per service."""

    def __init__(
        self, name: str, args: ServiceAutoscalingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:workloads:ServiceAutoscaling", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        for service_name, service in args.services.items():
            if service.autoscaling is not None:
                spec: Any = hpa_spec(service_name, service.autoscaling)
                k8s.autoscaling.v2.HorizontalPodAutoscaler(
                    f"{service_name}-hpa",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=service_name,
                        namespace=args.namespace,
                        labels=standard_labels(service_name, "autoscaling"),
                    ),
                    spec=spec,
                    opts=child,
                )
            k8s.apiextensions.CustomResource(
                f"{service_name}-vpa",
                api_version="autoscaling.k8s.io/v1",
                kind="VerticalPodAutoscaler",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=service_name,
                    namespace=args.namespace,
                    labels=standard_labels(service_name, "autoscaling"),
                ),
                spec=vpa_spec(service_name, service.vertical_scaling),
                opts=child,
            )
        self.register_outputs({})
