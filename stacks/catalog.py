"""The service catalog: the eight microservices of the seed and what each needs from the platform.

Ports and roles come from the seed. Each stack may override any field of any service (staging
runs fewer, smaller replicas); it may not add or remove services.
"""

from __future__ import annotations

import re
import typing
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from stacks.settings_base import Settings, WorkloadClass, invalid

ServiceName = Literal[
    "financial-planning-api",
    "simulation-service",
    "user-service",
    "banking-service",
    "ml-service",
    "notification-service",
    "document-service",
    "graphql-gateway",
]
SERVICE_NAMES: tuple[ServiceName, ...] = typing.get_args(ServiceName)

_CPU = re.compile(r"^(\d+)(m?)$")
_MEMORY = re.compile(r"^(\d+)(Mi|Gi)$")


def cpu_millicores(quantity: str) -> int:
    match = _CPU.fullmatch(quantity)
    if not match:
        raise ValueError(quantity)
    return int(match[1]) * (1 if match[2] else 1000)


def memory_mib(quantity: str) -> int:
    match = _MEMORY.fullmatch(quantity)
    if not match:
        raise ValueError(quantity)
    return int(match[1]) * (1024 if match[2] == "Gi" else 1)


CpuQuantity = Annotated[str, Field(pattern=_CPU.pattern, description="e.g. 500m or 2")]
MemoryQuantity = Annotated[str, Field(pattern=_MEMORY.pattern, description="e.g. 512Mi or 2Gi")]


class ComputeResources(Settings):
    cpu: CpuQuantity
    memory: MemoryQuantity


def check_limits_cover_requests(
    requests: ComputeResources, cpu_limit: str | None, memory_limit: str
) -> None:
    """A limit below its request is refused (Kubernetes would refuse the pod); no CPU limit is
    allowed where the caller permits it."""
    for resource, limit, request, amount in (
        ("cpu", cpu_limit, requests.cpu, cpu_millicores),
        ("memory", memory_limit, requests.memory, memory_mib),
    ):
        if limit is not None and amount(limit) < amount(request):
            raise invalid(
                "limits", limit, f"{resource} limit {limit} is below the request {request}"
            )


class ServiceResources(Settings):
    requests: ComputeResources
    limits: ComputeResources

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> ServiceResources:
        check_limits_cover_requests(self.requests, self.limits.cpu, self.limits.memory)
        return self


class PersistentVolume(Settings):
    """A ReadWriteOnce EBS volume, so only for services that run a single replica."""

    mount_path: Annotated[str, Field(pattern=r"^/[a-z0-9/_-]+$")]
    size_gib: Annotated[int, Field(ge=1, le=16384)]


class ServiceSettings(Settings):
    port: Annotated[int, Field(ge=1024, le=65535)]
    workload_class: WorkloadClass
    replicas: Annotated[int, Field(ge=1, le=100)]
    resources: ServiceResources
    gpus: Annotated[int, Field(ge=0, le=8)] = 0
    image_tag: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    # Environment variable -> "<secret>/<key>" of a Secret delivered by External Secrets (which
    # ones are delivered is checked against stacks.secrets).
    secret_env: dict[
        Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")],
        Annotated[str, Field(pattern=r"^[a-z0-9-]+/[a-z0-9-]+$")],
    ] = {}
    persistent_volume: PersistentVolume | None = None
    # Reads and writes the documents bucket through its own IRSA role.
    documents_bucket: bool = False
    # Only services that call the Kubernetes API get a service account token.
    kubernetes_api: bool = False

    @field_validator("image_tag")
    @classmethod
    def _no_floating_tags(cls, tag: str) -> str:
        if tag == "latest":
            raise invalid("imageTag", tag, "'latest' floats; name a release (tags are immutable)")
        return tag

    @model_validator(mode="after")
    def _consistent(self) -> ServiceSettings:
        if (self.gpus > 0) != (self.workload_class == "gpu"):
            raise invalid(
                "gpus",
                self.gpus,
                "GPUs are requested exactly by the services of workload class 'gpu'",
            )
        if self.persistent_volume is not None and self.replicas != 1:
            raise invalid(
                "replicas",
                self.replicas,
                f"{self.replicas} replicas cannot share a ReadWriteOnce persistentVolume "
                "(allowed: 1)",
            )
        return self


def _service(
    port: int,
    workload_class: str,
    replicas: int,
    requests: tuple[str, str],
    limits: tuple[str, str],
    **extra: Any,
) -> dict[str, Any]:
    return {
        "port": port,
        "workloadClass": workload_class,
        "replicas": replicas,
        "resources": {
            "requests": {"cpu": requests[0], "memory": requests[1]},
            "limits": {"cpu": limits[0], "memory": limits[1]},
        },
        "imageTag": "1.0.0",
        **extra,
    }


_DATABASE = {
    "DATABASE_USERNAME": "database-credentials/username",
    "DATABASE_PASSWORD": "database-credentials/password",
}
_REDIS = {"REDIS_AUTH_TOKEN": "redis-credentials/auth-token"}

# The seed's catalog as production runs it; each environment's defaults adjust it.
SERVICE_CATALOG: dict[str, dict[str, Any]] = {
    "financial-planning-api": _service(
        8000, "general", 3, ("500m", "1Gi"), ("2", "2Gi"), secretEnv={**_DATABASE, **_REDIS}
    ),
    "simulation-service": _service(
        8001, "compute", 3, ("1", "2Gi"), ("2", "3Gi"), secretEnv=_DATABASE
    ),
    "user-service": _service(
        8002, "general", 3, ("250m", "512Mi"), ("1", "1Gi"), secretEnv={**_DATABASE, **_REDIS}
    ),
    "banking-service": _service(
        8003,
        "general",
        3,
        ("500m", "1Gi"),
        ("1", "2Gi"),
        secretEnv={
            "PLAID_CLIENT_ID": "api-credentials/plaid-client-id",
            "PLAID_SECRET": "api-credentials/plaid-secret",
            **_DATABASE,
        },
    ),
    "ml-service": _service(
        8004,
        "gpu",
        1,
        ("2", "8Gi"),
        ("4", "12Gi"),
        gpus=1,
        secretEnv={"OPENAI_API_KEY": "api-credentials/openai-api-key"},
        persistentVolume={"mountPath": "/models", "sizeGib": 100},
    ),
    "notification-service": _service(
        8005, "general", 2, ("250m", "256Mi"), ("500m", "512Mi"), secretEnv=_DATABASE
    ),
    # PDF rendering is memory-bound: it runs on the memory-optimised group.
    "document-service": _service(
        8006,
        "memory",
        2,
        ("500m", "2Gi"),
        ("1", "4Gi"),
        documentsBucket=True,
        secretEnv=_DATABASE,
    ),
    "graphql-gateway": _service(
        4000, "general", 3, ("250m", "512Mi"), ("1", "1Gi"), secretEnv=_REDIS
    ),
}
