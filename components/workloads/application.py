"""The application namespace with its configuration, secrets and the catalog's microservices."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pulumi
import pulumi_kubernetes as k8s

from components.addons.external_secrets import external_secret
from components.data.secrets import RemoteSecret
from components.shared.conventions import (
    namespace,
    service_host,
    service_priority_class,
    standard_labels,
)
from components.shared.kubernetes_secrets import opaque_secret
from components.workloads.microservice import ANY_NODE, Microservice, MicroserviceArgs, Placement
from stacks.catalog import ServiceName, ServiceSettings
from stacks.settings import ApplicationSettings, Taint
from stacks.settings_base import WorkloadClass

CONFIG_MAP = "financial-planning-config"


class SecretDelivery(Protocol):
    """How the application's Kubernetes Secrets come to exist in its namespace."""

    def deliver(
        self, namespace_name: pulumi.Input[str], opts: pulumi.ResourceOptions
    ) -> list[pulumi.Resource]:
        """Create what makes the Secrets (the Deployments wait for these)."""
        ...


@dataclass(frozen=True)
class ExternalSecrets:
    """On AWS: one ExternalSecret per Secrets Manager secret, through the ClusterSecretStore."""

    remote: Mapping[str, RemoteSecret]
    store: str
    refresh_interval: str

    def deliver(
        self, namespace_name: pulumi.Input[str], opts: pulumi.ResourceOptions
    ) -> list[pulumi.Resource]:
        return [
            external_secret(
                secret_name,
                remote,
                namespace_name=namespace_name,
                store_name=self.store,
                opts=opts,
                refresh_interval=self.refresh_interval,
            )
            for secret_name, remote in sorted(self.remote.items())
        ]


@dataclass(frozen=True)
class KubernetesSecrets:
    """Without AWS: plain Kubernetes Secrets from secret Outputs (stack secrets, generated
    passwords); the provider keeps their data encrypted in the state."""

    # secret -> key -> value
    values: Mapping[str, Mapping[str, pulumi.Output[str]]]

    def deliver(
        self, namespace_name: pulumi.Input[str], opts: pulumi.ResourceOptions
    ) -> list[pulumi.Resource]:
        return [
            opaque_secret(name, keys, namespace_name=namespace_name, opts=opts)
            for name, keys in sorted(self.values.items())
        ]


def service_url(name: str, namespace_name: str, port: int) -> str:
    return f"http://{service_host(name, namespace_name)}:{port}"


def env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def application_config(
    environment: str,
    region: str | None,
    application: ApplicationSettings,
    services: Mapping[ServiceName, ServiceSettings],
) -> dict[str, str]:
    """The plain configuration every service reads (never secrets: those come from Secrets)."""
    config = {"ENVIRONMENT": environment, "LOG_LEVEL": application.log_level}
    if region is not None:
        config["AWS_REGION"] = region
        # The SDKs' regional STS and S3 names (AWS SDKs and Tools reference guide,
        # `sts_regional_endpoints`, `s3_us_east_1_regional_endpoint`): the names the mesh
        # registers and the VPC's endpoints answer. Without them some SDKs still use the
        # global names in us-east-1: S3's are registered as well; STS's global name is not (it
        # lies outside the VPC, beyond most services' network policies).
        config["AWS_STS_REGIONAL_ENDPOINTS"] = "regional"
        config["AWS_S3_US_EAST_1_REGIONAL_ENDPOINT"] = "regional"
    for flag, enabled in sorted(application.feature_flags.items()):
        config[f"FEATURE_{env_name(flag)}"] = str(enabled).lower()
    for name, service in services.items():
        config[f"{env_name(name)}_URL"] = service_url(name, application.namespace, service.port)
    return config


@dataclass(frozen=True)
class ApplicationArgs:
    environment: str
    # None: no AWS (a development stack).
    region: str | None
    application: ApplicationSettings
    services: Mapping[ServiceName, ServiceSettings]
    # service -> image repository URL; the tag comes from the service's settings.
    image_repositories: Mapping[str, pulumi.Input[str]]
    # The taints of each workload class's node group; None on a cluster without node groups
    # (pods run on any node and are not spread over zones).
    node_taints: Mapping[WorkloadClass, Sequence[Taint]] | None
    # Node groups that start at zero nodes.
    scale_from_zero: Collection[WorkloadClass]
    # None: the cluster's default StorageClass.
    storage_class: str | None
    secrets: SecretDelivery
    # Each node group's maxSize (absent on a cluster without node groups).
    max_nodes: Mapping[WorkloadClass, int] = field(default_factory=dict)
    # service -> IRSA role of its service account.
    service_roles: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # Further configuration (data-store endpoints, bucket names), all non-secret.
    extra_config: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # Custom resource definitions and storage classes the objects here need first.
    depends_on: Sequence[pulumi.Resource] = ()
    # The namespace asks for Istio sidecars (the mesh's own issue installs Istio).
    mesh: bool = True
    # service -> Secret (key "password") of its database user, where it signs in with a
    # password instead of an IAM token (no AWS).
    database_passwords: Mapping[str, str] = field(default_factory=dict)


class Application(pulumi.ComponentResource):
    namespace_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: ApplicationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:workloads:Application", name, None, opts)
        ns = namespace(
            args.application.namespace,
            pod_security="restricted",
            istio_injection=args.mesh,
            opts=pulumi.ResourceOptions(parent=self),
        )
        inside = pulumi.ResourceOptions(parent=self, depends_on=[ns, *args.depends_on])
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata={
                "name": CONFIG_MAP,
                "namespace": ns.metadata.name,
                "labels": standard_labels(CONFIG_MAP, "configuration"),
            },
            data={
                **application_config(
                    args.environment, args.region, args.application, args.services
                ),
                **args.extra_config,
            },
            opts=inside,
        )
        secrets = args.secrets.deliver(ns.metadata.name, inside)
        for service_name, service in args.services.items():
            image = pulumi.Output.concat(
                args.image_repositories[service_name], ":", service.image_tag
            )
            Microservice(
                service_name,
                MicroserviceArgs(
                    namespace=ns.metadata.name,
                    service=service,
                    image=image,
                    config_map=config_map.metadata.name,
                    placement=Placement(
                        node_class=service.workload_class,
                        taints=args.node_taints[service.workload_class],
                        max_nodes=args.max_nodes.get(service.workload_class, 1),
                    )
                    if args.node_taints is not None
                    else ANY_NODE,
                    storage_class=args.storage_class,
                    priority_class=service_priority_class(service.priority),
                    scale_from_zero=service.workload_class in args.scale_from_zero,
                    iam_role_arn=args.service_roles.get(service_name),
                    database_password_secret=args.database_passwords.get(service_name),
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*secrets]),
            )
        self.namespace_name = ns.metadata.name
        self.register_outputs({"namespace": ns.metadata.name})
