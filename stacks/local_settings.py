"""Settings of a stack that deploys onto an existing Kubernetes cluster, with no AWS account.

The development environment uses it: a kind, minikube or Docker Desktop cluster chosen by its
kubeconfig context, the application layer from the same service catalog as the EKS stacks, and
the data tier inside the cluster (CloudNativePG, Valkey, OpenSearch). Anything that needs AWS
(IRSA roles, Secrets Manager, S3, node groups) has no key here, so a stack file cannot ask for
it; services keep their catalog entries and this model refuses the fields a local cluster cannot
serve (GPUs, autoscaling without a metrics-server, the documents bucket).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from stacks.catalog import ServiceName, ServiceSettings
from stacks.rules import host_port
from stacks.secrets import check_secret_env
from stacks.settings import SUPPORTED_KUBERNETES_VERSIONS, ApplicationSettings
from stacks.settings_base import Settings, invalid

# A kubeconfig context name as kind (kind-<cluster>), minikube, Docker Desktop and EKS
# (arn:aws:eks:...) write them; no spaces or shell metacharacters.
KUBE_CONTEXT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@:/-]{0,252}$"
# host[:port][/path]: where the locally built images are pushed (kind's local registry is
# localhost:5001). Lowercase, as image references must be.
IMAGE_REGISTRY_PATTERN = r"^[a-z0-9]([a-z0-9.-]{0,252}[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9._-]+)*$"
# A PostgreSQL identifier that needs no quoting.
DATABASE_NAME_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"
STORAGE_CLASS_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"


class InClusterDatabase(Settings):
    # PostgreSQL major.minor of CloudNativePG's image; the defaults take production's.
    engine_version: Annotated[str, Field(pattern=r"^(15|16|17|18)\.[0-9]{1,2}$")]
    # PostgreSQL instances of the CloudNativePG cluster (1: no standby, as a laptop wants).
    instances: Annotated[int, Field(ge=1, le=3)] = 1
    storage_gib: Annotated[int, Field(ge=1, le=100)] = 5
    database_name: Annotated[str, Field(pattern=DATABASE_NAME_PATTERN)] = "financial_planning"


class InClusterCache(Settings):
    storage_gib: Annotated[int, Field(ge=1, le=50)] = 1


class InClusterSearch(Settings):
    storage_gib: Annotated[int, Field(ge=1, le=100)] = 5
    # The JVM heap; the container's memory limit is twice this (Lucene uses the page cache).
    heap_mib: Annotated[int, Field(ge=256, le=4096)] = 512


class InClusterDataSettings(Settings):
    database: InClusterDatabase
    cache: InClusterCache = InClusterCache()
    search: InClusterSearch = InClusterSearch()


class LocalStackSettings(Settings):
    environment: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")]
    # The kubeconfig context to deploy to (`kubectl config get-contexts`).
    kube_context: Annotated[str, Field(pattern=KUBE_CONTEXT_PATTERN)]
    # The local cluster's Kubernetes minor: the rendered objects are validated against it.
    kubernetes_version: str
    image_registry: Annotated[str, Field(pattern=IMAGE_REGISTRY_PATTERN), AfterValidator(host_port)]
    # Run every service as the placeholder image (devloop/placeholder/: answers the health and
    # metrics endpoints, nothing else) instead of the product's images, which a newcomer's
    # machine does not have. Off unless the stack file asks for it.
    placeholder_images: bool = False
    # None: the cluster's default StorageClass (kind's "standard", minikube's "standard").
    storage_class: Annotated[str, Field(pattern=STORAGE_CLASS_PATTERN)] | None = None
    application: ApplicationSettings
    services: dict[ServiceName, ServiceSettings]
    data: InClusterDataSettings

    @model_validator(mode="after")
    def _servable_locally(self) -> LocalStackSettings:
        if self.kubernetes_version not in SUPPORTED_KUBERNETES_VERSIONS:
            raise invalid(
                "kubernetesVersion",
                self.kubernetes_version,
                f"{self.kubernetes_version!r} is not supported "
                f"(allowed: {', '.join(SUPPORTED_KUBERNETES_VERSIONS)})",
            )
        for name, service in self.services.items():
            where = f"services.{name}"
            if service.workload_class == "gpu":
                raise invalid(
                    f"{where}.workloadClass",
                    service.workload_class,
                    "a local cluster has no GPU nodes (allowed: general, compute, memory, "
                    "with gpus 0)",
                )
            if service.autoscaling is not None:
                raise invalid(
                    f"{where}.autoscaling",
                    service.autoscaling.max_replicas,
                    "a development stack runs no metrics-server (allowed: null, with replicas)",
                )
            if service.documents_bucket:
                raise invalid(
                    f"{where}.documentsBucket",
                    True,
                    "a development stack has no S3 bucket (allowed: false)",
                )
            check_secret_env(where, service.secret_env)
        return self
