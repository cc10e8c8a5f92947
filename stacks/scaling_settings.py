"""How a service scales: horizontally (an HPA on CPU, memory and request rate) or by hand, and
vertically (a VPA that recommends, or acts on the resources the HPA does not scale on)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from stacks.rules import Utilization
from stacks.settings_base import Settings, invalid

Resource = Literal["cpu", "memory"]
Priority = Literal["critical", "standard", "low"]


class ScalingPolicy(Settings):
    type: Literal["Pods", "Percent"]
    value: Annotated[int, Field(ge=1, le=1000)]
    period_seconds: Annotated[int, Field(ge=1, le=1800)]


class ScalingRules(Settings):
    """One direction of an HPA's `behavior` (autoscaling/v2 HPAScalingRules)."""

    stabilization_window_seconds: Annotated[int, Field(ge=0, le=3600)]
    select_policy: Literal["Max", "Min"] = "Max"
    policies: Annotated[list[ScalingPolicy], Field(min_length=1, max_length=4)]


class AutoscalingSettings(Settings):
    """A HorizontalPodAutoscaler (autoscaling/v2) over the service's Deployment."""

    min_replicas: Annotated[int, Field(ge=1, le=200)]
    max_replicas: Annotated[int, Field(ge=1, le=200)]
    # Targets as a percentage of the pods' requests (above 100 allowed: pods may use more than
    # they request); None leaves that resource out.
    cpu_utilization: Utilization | None = 70
    memory_utilization: Utilization | None = None
    # Requests per second per pod, served by prometheus-adapter from Prometheus.
    requests_per_second: Annotated[int, Field(ge=1, le=100000)] | None = None
    scale_up: ScalingRules | None = None
    scale_down: ScalingRules | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AutoscalingSettings:
        if self.max_replicas < self.min_replicas:
            raise invalid(
                "maxReplicas",
                self.max_replicas,
                f"{self.max_replicas} is below minReplicas {self.min_replicas}",
            )
        if not self.resources and self.requests_per_second is None:
            raise invalid(
                "cpuUtilization",
                None,
                "an HPA needs a metric (cpuUtilization, memoryUtilization or requestsPerSecond)",
            )
        return self

    @property
    def resources(self) -> list[Resource]:
        """The resources this HPA scales on."""
        found: list[Resource] = []
        if self.cpu_utilization is not None:
            found.append("cpu")
        if self.memory_utilization is not None:
            found.append("memory")
        return found


class ResourceBounds(Settings):
    cpu: Annotated[str, Field(pattern=r"^[0-9]+m?$")]
    memory: Annotated[str, Field(pattern=r"^[0-9]+(Mi|Gi)$")]


class VerticalScaling(Settings):
    """A VerticalPodAutoscaler (autoscaling.k8s.io/v1) for the service's Deployment.

    `Off` only recommends. `Recreate` applies its recommendations by evicting pods, to the
    `controlledResources` only, within `minAllowed`..`maxAllowed`.
    """

    update_mode: Literal["Off", "Recreate"]
    controlled_resources: Annotated[list[Resource], Field(min_length=1, max_length=2)] = [
        "cpu",
        "memory",
    ]
    min_allowed: ResourceBounds
    max_allowed: ResourceBounds
