"""The service catalog: the eight microservices of the seed and what each needs from the platform.

Ports and roles come from the seed. Each stack may override any field of any service (staging
runs fewer, smaller replicas); it may not add or remove services.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from stacks.rules import service_port
from stacks.scaling_settings import AutoscalingSettings, Priority, VerticalScaling
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
# The same names, as a field type of the settings models below.
ServiceNameRef = ServiceName
DataStore = Literal["database", "cache", "search"]


def database_user(service: str) -> str:
    """The PostgreSQL user a service connects as (IAM authentication; created at bootstrap)."""
    return service.replace("-", "_")


def callers_of(name: str, services: Mapping[ServiceName, ServiceSettings]) -> list[ServiceName]:
    """The services whose `calls` name `name` (the service graph, read backwards), sorted."""
    return sorted(caller for caller, service in services.items() if name in service.calls)


def database_services(services: Mapping[ServiceName, ServiceSettings]) -> list[ServiceName]:
    """The services with a PostgreSQL user of their own, in catalog order."""
    return [name for name, service in services.items() if "database" in service.data_stores]


# ASCII digits only: a regex \d would also take Arabic-Indic or full-width ones.
_CPU = re.compile(r"^([0-9]{1,6})(m?)$")
_MEMORY = re.compile(r"^([0-9]{1,6})(Mi|Gi)$")


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

    @model_validator(mode="after")
    def _not_zero(self) -> ComputeResources:
        for key, amount in (("cpu", cpu_millicores(self.cpu)), ("memory", memory_mib(self.memory))):
            if amount == 0:
                raise invalid(key, getattr(self, key), "a request or limit of zero is no size")
        return self


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


class CacheVolume(Settings):
    """A volume of each pod's own for what the service can rebuild (ML's model cache): a
    generic ephemeral volume, made by the storage class in whichever zone the pod is scheduled
    and deleted with the pod. No volume outlives its pod, so none ties a pod to a zone: the
    cluster autoscaler models a multi-zone group as its first zone, and a pod bound to a
    zonal volume elsewhere would never get a node from zero (kubernetes/autoscaler
    cloudprovider/aws/README.md, "Common Notes and Gotchas")."""

    mount_path: Annotated[str, Field(pattern=r"^/[a-z0-9/_-]{1,200}$")]
    size_gib: Annotated[int, Field(ge=1, le=16384)]


class ServiceSettings(Settings):
    # The port the service listens on (the seed's; probes and the Service use it).
    port: Annotated[int, Field(ge=1024, le=65535), AfterValidator(service_port)]
    # The node group its pods run on; its requests must fit that group's first instance type.
    workload_class: WorkloadClass
    # Replicas set by hand (0 parks the service); exclusive with `autoscaling`.
    replicas: Annotated[int, Field(ge=0, le=100)] | None = None
    # The HPA's range and targets (docs/cluster.md, "Autoscaling, end to end").
    autoscaling: AutoscalingSettings | None = None
    # The VPA's mode and bounds.
    vertical_scaling: VerticalScaling
    # Which PriorityClass its pods get: under pressure, critical pods preempt standard and low.
    priority: Priority
    resources: ServiceResources
    # `nvidia.com/gpu` per pod: more than 0 exactly when the workload class is gpu.
    gpus: Annotated[int, Field(ge=0, le=8)] = 0
    # The release it runs, a tag of its image repository (immutable in ECR; never `latest`).
    image_tag: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    # Environment variable -> "<secret>/<key>" of a Secret delivered by External Secrets (which
    # ones are delivered is checked against stacks.secrets).
    secret_env: dict[
        Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")],
        Annotated[str, Field(pattern=r"^[a-z0-9-]+/[a-z0-9-]+$")],
    ] = {}
    # A volume of each pod's own, made in the pod's zone and deleted with it (ML's model cache).
    cache_volume: CacheVolume | None = None
    # Reads and writes the documents bucket through its own IRSA role.
    documents_bucket: bool = False
    # The data stores it uses: its egress is opened to exactly these, and a database user
    # reaches PostgreSQL as its own user with IAM authentication (no password).
    data_stores: list[DataStore] = []
    # The services it calls (the service graph): their ingress admits it, its egress reaches
    # them. The traffic and security layers both read this.
    calls: list[ServiceNameRef] = []
    # Reached from outside through the ingress gateway.
    edge: bool = False
    # Calls an API on the internet over HTTPS (OpenAI, Plaid, mail and SMS providers).
    internet_https: bool = False
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
        if (self.replicas is None) == (self.autoscaling is None):
            raise invalid(
                "replicas",
                self.replicas,
                "set either replicas (scaled by hand) or autoscaling (an HPA), not both or neither",
            )
        if self.autoscaling is not None and self.workload_class == "gpu":
            raise invalid(
                "autoscaling",
                self.autoscaling.max_replicas,
                "GPU services scale by hand (allowed: null, with replicas)",
            )
        if self.cache_volume is not None:
            path = self.cache_volume.mount_path.rstrip("/")
            # Every pod already mounts its scratch emptyDir at /tmp.
            if path == "/tmp" or path.startswith("/tmp/") or "/tmp".startswith(path + "/"):
                raise invalid(
                    "cacheVolume.mountPath",
                    self.cache_volume.mount_path,
                    "overlaps /tmp, where every pod mounts its scratch volume",
                )
        self._check_vertical_scaling()
        if len(set(self.calls)) != len(self.calls):
            raise invalid("calls", self.calls, f"{self.calls} names a service twice")
        return self

    def _check_vertical_scaling(self) -> None:
        vpa = self.vertical_scaling
        for resource, amount in (("cpu", cpu_millicores), ("memory", memory_mib)):
            low, high = getattr(vpa.min_allowed, resource), getattr(vpa.max_allowed, resource)
            if amount(high) < amount(low):
                raise invalid(
                    "verticalScaling.maxAllowed",
                    high,
                    f"{resource} {high} is below minAllowed {low}",
                )
        limits = self.resources.limits
        for resource, amount in (("cpu", cpu_millicores), ("memory", memory_mib)):
            high, limit = getattr(vpa.max_allowed, resource), getattr(limits, resource)
            if resource in vpa.controlled_resources and amount(high) > amount(limit):
                # The VPA raises requests only (limits stay): a request above the limit is refused.
                raise invalid(
                    "verticalScaling.maxAllowed",
                    high,
                    f"{resource} {high} is above the limit {limit} (allowed: at most the limit)",
                )
        if vpa.update_mode == "Off" or self.autoscaling is None:
            return
        overlap = [r for r in vpa.controlled_resources if r in self.autoscaling.resources]
        if overlap:
            raise invalid(
                "verticalScaling.controlledResources",
                vpa.controlled_resources,
                f"{overlap} are what the HPA scales on; a VPA acting on them fights it "
                "(allowed: updateMode Off, or only the other resource)",
            )

    @property
    def min_replicas(self) -> int:
        return self.autoscaling.min_replicas if self.autoscaling else self.replicas or 0

    @property
    def max_replicas(self) -> int:
        return self.autoscaling.max_replicas if self.autoscaling else self.replicas or 0


# The seed's replica ranges ("Auto-scaling", "Horizontal Pod Autoscaler": "API Service: 3-50
# replicas", "Banking Service: 3-20 replicas (critical service)"); it gives no other service a
# range ("ML Service: Manual scaling"). Production holds these two services inside them.
SEED_REPLICA_RANGES: dict[ServiceName, tuple[int, int]] = {
    "financial-planning-api": (3, 50),
    "banking-service": (3, 20),
}


def request_path_services(
    services: Mapping[ServiceName, ServiceSettings],
) -> list[ServiceName]:
    """The services a user's request can pass through: those the edge reaches, and every
    service they call, transitively (the service graph, `edge` and `calls`)."""
    reached: list[ServiceName] = [name for name, service in services.items() if service.edge]
    for name in reached:
        reached += [c for c in services[name].calls if c in services and c not in reached]
    return sorted(reached)


def _service(
    port: int,
    workload_class: str,
    priority: str,
    requests: tuple[str, str],
    limits: tuple[str, str],
    **extra: Any,
) -> dict[str, Any]:
    return {
        "port": port,
        "workloadClass": workload_class,
        "priority": priority,
        "resources": {
            "requests": {"cpu": requests[0], "memory": requests[1]},
            "limits": {"cpu": limits[0], "memory": limits[1]},
        },
        **extra,
    }


def _hpa(minimum: int, maximum: int, **extra: Any) -> dict[str, Any]:
    """An HPA on CPU at 70% of requests unless `extra` says otherwise."""
    return {"minReplicas": minimum, "maxReplicas": maximum, **extra}


def _vpa_on_memory(low: str, high: str, cpu: tuple[str, str] = ("50m", "1")) -> dict[str, Any]:
    """A VPA that sizes memory only: CPU is what the service's HPA scales on."""
    return {
        "updateMode": "Recreate",
        "controlledResources": ["memory"],
        "minAllowed": {"cpu": cpu[0], "memory": low},
        "maxAllowed": {"cpu": cpu[1], "memory": high},
    }


_REDIS = {"REDIS_AUTH_TOKEN": "redis-credentials/auth-token"}

# The API's request rate per pod at which its HPA adds a replica: a quarter of a core (its
# request) serves about this many of its mostly cached reads; tune from its latency panel.
API_REQUESTS_PER_SECOND_PER_POD = 50

# Banking is critical: it adds capacity at once and gives it back slowly, one pod at a time.
_BANKING_BEHAVIOR = {
    "scaleUp": {
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 15},
            {"type": "Pods", "value": 4, "periodSeconds": 15},
        ],
    },
    "scaleDown": {
        "stabilizationWindowSeconds": 600,
        "selectPolicy": "Min",
        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
    },
}

# The seed's catalog as production runs it; each environment's defaults adjust it. Replica
# ranges are the seed's (API 3-50, banking 3-20); requests are sized so that every class's
# maximum fits its node group's maximum (checked by the settings).
SERVICE_CATALOG: dict[str, dict[str, Any]] = {
    "financial-planning-api": _service(
        8000,
        "general",
        "critical",
        ("250m", "512Mi"),
        ("2", "2Gi"),
        # Scales on CPU, memory and its request rate (the seed's custom metric, served by
        # prometheus-adapter from its request histogram), so its VPA only recommends.
        autoscaling=_hpa(
            3,
            50,
            cpuUtilization=70,
            memoryUtilization=80,
            requestsPerSecond=API_REQUESTS_PER_SECOND_PER_POD,
        ),
        verticalScaling={
            "updateMode": "Off",
            "minAllowed": {"cpu": "100m", "memory": "256Mi"},
            "maxAllowed": {"cpu": "1500m", "memory": "2Gi"},
        },
        secretEnv=_REDIS,
    ),
    "simulation-service": _service(
        8001,
        "compute",
        "low",
        ("1", "2Gi"),
        ("2", "3Gi"),
        autoscaling=_hpa(3, 20),
        verticalScaling=_vpa_on_memory("1Gi", "2560Mi", cpu=("500m", "1500m")),
    ),
    "user-service": _service(
        8002,
        "general",
        "critical",
        ("250m", "512Mi"),
        ("1", "1Gi"),
        autoscaling=_hpa(3, 10),
        verticalScaling=_vpa_on_memory("256Mi", "1Gi"),
        secretEnv=_REDIS,
    ),
    "banking-service": _service(
        8003,
        "general",
        "critical",
        ("250m", "1Gi"),
        ("1", "2Gi"),
        autoscaling=_hpa(3, 20, cpuUtilization=60, **_BANKING_BEHAVIOR),
        verticalScaling=_vpa_on_memory("512Mi", "2Gi"),
        secretEnv={
            "PLAID_CLIENT_ID": "api-credentials/plaid-client-id",
            "PLAID_SECRET": "api-credentials/plaid-secret",
        },
    ),
    # GPU inference scales by hand: one GPU node per replica, started from zero by the
    # cluster autoscaler. Its VPA only recommends, as the seed says. Two replicas: the API
    # calls it on a user's request, and production keeps the request path highly available
    # (the seed gives ML no range, only "Manual scaling"; staging runs one).
    "ml-service": _service(
        8004,
        "gpu",
        "standard",
        ("2", "8Gi"),
        ("4", "12Gi"),
        replicas=2,
        verticalScaling={
            "updateMode": "Off",
            "minAllowed": {"cpu": "1", "memory": "4Gi"},
            "maxAllowed": {"cpu": "3500m", "memory": "12Gi"},
        },
        gpus=1,
        secretEnv={"OPENAI_API_KEY": "api-credentials/openai-api-key"},
        # Its model cache: a volume of the pod's own, rebuilt when the pod moves.
        cacheVolume={"mountPath": "/models", "sizeGib": 100},
    ),
    "notification-service": _service(
        8005,
        "general",
        "low",
        ("100m", "256Mi"),
        ("500m", "512Mi"),
        autoscaling=_hpa(2, 6),
        verticalScaling=_vpa_on_memory("128Mi", "512Mi"),
    ),
    # PDF rendering is memory-bound: it runs on the memory-optimised group.
    "document-service": _service(
        8006,
        "memory",
        "standard",
        ("500m", "2Gi"),
        ("1", "4Gi"),
        autoscaling=_hpa(2, 10),
        verticalScaling=_vpa_on_memory("1Gi", "4Gi"),
        documentsBucket=True,
    ),
    "graphql-gateway": _service(
        4000,
        "general",
        "standard",
        ("250m", "512Mi"),
        ("1", "1Gi"),
        autoscaling=_hpa(3, 10),
        verticalScaling=_vpa_on_memory("256Mi", "1Gi"),
        secretEnv=_REDIS,
    ),
}

# The service graph (who calls whom) and what each service reaches outside it. The security
# layer's NetworkPolicies follow it; the traffic layer's authorization policies will too.
_REACH: dict[str, dict[str, Any]] = {
    "financial-planning-api": {
        "edge": True,
        "dataStores": ["database", "cache", "search"],
        "calls": [
            "user-service",
            "banking-service",
            "simulation-service",
            "ml-service",
            "notification-service",
            "document-service",
        ],
    },
    "graphql-gateway": {
        "edge": True,
        "dataStores": ["cache"],
        "calls": [
            "financial-planning-api",
            "user-service",
            "banking-service",
            "simulation-service",
            "document-service",
        ],
    },
    "user-service": {"dataStores": ["database", "cache"], "calls": ["notification-service"]},
    # Plaid.
    "banking-service": {
        "dataStores": ["database"],
        "calls": ["notification-service"],
        "internetHttps": True,
    },
    "simulation-service": {"dataStores": ["database"], "calls": ["ml-service"]},
    # OpenAI.
    "ml-service": {"internetHttps": True},
    # Mail and SMS providers.
    "notification-service": {"dataStores": ["database"], "internetHttps": True},
    "document-service": {"dataStores": ["database", "search"]},
}
for _name, _reach in _REACH.items():
    SERVICE_CATALOG[_name].update(_reach)
