"""Settings of the cluster add-ons: one entry per add-on, each with per-environment defaults."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from stacks.catalog import (
    ComputeResources,
    CpuQuantity,
    MemoryQuantity,
    check_limits_cover_requests,
)
from stacks.settings_base import Settings, invalid


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

    def as_values(self) -> dict[str, dict[str, str]]:
        """The `resources` block of a chart's values."""
        limits = {"memory": self.limits.memory}
        if self.limits.cpu is not None:
            limits["cpu"] = self.limits.cpu
        return {
            "requests": {"cpu": self.requests.cpu, "memory": self.requests.memory},
            "limits": limits,
        }


class AddonSettings(Settings):
    enabled: bool = True
    # Controllers with more than one replica elect a leader and get a PodDisruptionBudget.
    replicas: Annotated[int, Field(ge=1, le=5)]
    resources: AddonResources


class AddonsSettings(Settings):
    external_secrets: AddonSettings

    @model_validator(mode="after")
    def _required_addons(self) -> AddonsSettings:
        if not self.external_secrets.enabled:
            raise invalid(
                "externalSecrets.enabled",
                False,
                "External Secrets delivers every secret the services read (allowed: true)",
            )
        return self
