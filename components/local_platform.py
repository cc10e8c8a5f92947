"""The development platform: the application and its data stores on an existing cluster.

No AWS: the Kubernetes provider targets the stack's kubeconfig context, the data tier runs in
the cluster (components/data/in_cluster.py), and Secrets are plain Kubernetes Secrets made from
the stack's secrets and generated passwords. No autoscalers, mesh or monitoring are installed;
the services come from the same catalog and component as on EKS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.addons.base import HelmAddon, HelmAddonArgs
from components.addons.cloudnative_pg import CloudNativePG
from components.addons.jaeger import sdk_environment
from components.data.in_cluster import InClusterData, InClusterDataArgs
from components.foundation.scheduling import PriorityClasses
from components.workloads.application import Application, ApplicationArgs, KubernetesSecrets
from stacks.catalog import database_services
from stacks.local_settings import LocalStackSettings
from stacks.secrets import secret_values

# The repository of the stand-in every service runs when the stack asks for placeholder
# images (`make dev-up` builds it from devloop/placeholder/ and pushes it under each tag the
# services name): its name says it is not the product.
PLACEHOLDER_IMAGE = "placeholder-service"


@dataclass(frozen=True)
class LocalPlatform:
    provider: k8s.Provider
    data: InClusterData
    application: Application
    kube_context: str

    def exports(self) -> dict[str, Any]:
        return {
            "kubeContext": self.kube_context,
            "namespace": self.application.namespace_name,
            "dataNamespace": self.data.namespace_name,
        }


def build_local_platform(
    project: str,
    stack: str,
    settings: LocalStackSettings,
    secrets: Mapping[str, pulumi.Output[str]],
) -> LocalPlatform:
    prefix = f"{project}-{stack}"
    provider = k8s.Provider("kubernetes", context=settings.kube_context)
    with_cluster = pulumi.ResourceOptions(providers=[provider])
    priority_classes = PriorityClasses(f"{prefix}-priority-classes", opts=with_cluster)
    operator = HelmAddon(
        f"{prefix}-{CloudNativePG.name}",
        HelmAddonArgs(addon=CloudNativePG(), oidc=None),
        opts=with_cluster,
    )
    data_settings = settings.data
    data = InClusterData(
        f"{prefix}-data",
        InClusterDataArgs(
            namespace=f"{settings.application.namespace}-data",
            engine_version=data_settings.database.engine_version,
            database_name=data_settings.database.database_name,
            database_instances=data_settings.database.instances,
            database_storage_gib=data_settings.database.storage_gib,
            cache_storage_gib=data_settings.cache.storage_gib,
            search_storage_gib=data_settings.search.storage_gib,
            search_heap_mib=data_settings.search.heap_mib,
            database_users=database_services(settings.services),
            storage_class=settings.storage_class,
            operator=operator,
        ),
        opts=with_cluster,
    )
    application = Application(
        f"{prefix}-app",
        ApplicationArgs(
            environment=settings.environment,
            region=None,
            application=settings.application,
            services=settings.services,
            image_repositories={
                name: f"{settings.image_registry}/"
                + (PLACEHOLDER_IMAGE if settings.placeholder_images else name)
                for name in settings.services
            },
            node_taints=None,
            scale_from_zero=(),
            storage_class=settings.storage_class,
            secrets=KubernetesSecrets({**secret_values(secrets), **data.secrets}),
            # No trace collector here: the services' SDKs export nothing.
            extra_config={**data.config, **sdk_environment(None, 0)},
            depends_on=[priority_classes],
            mesh=False,
            database_passwords=data.database_passwords,
        ),
        opts=with_cluster,
    )
    return LocalPlatform(provider, data, application, settings.kube_context)
