"""Builds the application: namespace, configuration, secrets delivery and the catalog's services."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi

from components.addons.external_secrets import ExternalSecrets as ExternalSecretsAddon
from components.addons.jaeger import Jaeger, sdk_environment, tracing_collector
from components.addons.layer import ClusterAddons
from components.addons.log_shipper import LogShipper
from components.addons.mesh import Istiod
from components.addons.vertical_pod_autoscaler import VerticalPodAutoscaler
from components.context import ClusterContext, StackContext, with_cluster
from components.data.layer import DataTier, SearchAccess
from components.data.secrets import RemoteSecret
from components.foundation.layer import Foundation
from components.workloads.application import Application, ApplicationArgs, ExternalSecrets
from components.workloads.autoscaling import ServiceAutoscaling, ServiceAutoscalingArgs
from components.workloads.database_users import DatabaseUsers, DatabaseUsersArgs
from components.workloads.search_users import SearchUsers, SearchUsersArgs
from stacks.catalog import ServiceName, ServiceSettings, database_services, database_user
from stacks.settings import ApplicationSettings, StackSettings, Taint
from stacks.settings_base import WorkloadClass


@dataclass(frozen=True)
class WorkloadsArgs:
    environment: str
    application: ApplicationSettings
    services: Mapping[ServiceName, ServiceSettings]
    # Taints of each node group, which its services must tolerate.
    node_taints: Mapping[WorkloadClass, Sequence[Taint]]
    # Node groups that start at zero nodes (their first pod waits for a node).
    scale_from_zero: Sequence[WorkloadClass]
    # Each node group's maxSize: whether a GPU service's rollout can surge onto a second node.
    max_nodes: Mapping[WorkloadClass, int]
    # The mesh runs: the namespace asks for sidecars.
    mesh: bool
    # Where the services' OpenTelemetry SDKs send spans, if anywhere.
    tracing_config: Mapping[str, str]
    # The database the bootstrap Job creates the services' users in.
    database_name: str

    @classmethod
    def from_settings(cls, settings: StackSettings) -> WorkloadsArgs:
        return cls(
            environment=settings.environment,
            application=settings.application,
            services=settings.services,
            node_taints={name: group.taints for name, group in settings.node_groups.items()},
            scale_from_zero=[
                name for name, group in settings.node_groups.items() if group.min_size == 0
            ],
            max_nodes={name: group.max_size for name, group in settings.node_groups.items()},
            mesh=settings.addons.mesh.enabled,
            tracing_config=sdk_environment(
                tracing_collector(settings.addons), settings.addons.mesh.tracing.sampling_percent
            ),
            database_name=settings.data.database.database_name,
        )


# The search domain's FGAC roles that add-ons hold, by the add-on whose IRSA role holds it.
SEARCH_WRITERS = {"log-writer": LogShipper.name, "trace-store": Jaeger.name}


@dataclass(frozen=True)
class StackServices:
    """What the earlier layers give the services: images, storage, secrets and configuration."""

    image_repositories: Mapping[str, pulumi.Input[str]]
    storage_class: str
    remote_secrets: Mapping[str, RemoteSecret]
    secret_store: str
    service_roles: Mapping[str, pulumi.Input[str]]
    config: Mapping[str, pulumi.Input[str]]
    # Components whose objects (CRDs, storage classes) the workloads use.
    depends_on: Sequence[pulumi.Resource]
    # What the HPAs and VPAs need first (the VPA kind's CRDs).
    autoscaling_depends_on: Sequence[pulumi.Resource]
    # The database: its writer, name and master secret (for the bootstrap job only), and the
    # resources that must exist before the job can connect.
    database_writer: pulumi.Input[str]
    database_master: RemoteSecret
    # The key the master secret is encrypted with (the bootstrap's role decrypts through it).
    database_master_key: pulumi.Input[str]
    database_ready: Sequence[pulumi.Resource]
    # Who may use the search domain (the search bootstrap applies it).
    search_access: SearchAccess

    @classmethod
    def from_layers(
        cls, foundation: Foundation, data: DataTier, addons: ClusterAddons
    ) -> StackServices:
        installed = addons.installed
        return cls(
            image_repositories=foundation.registry.repository_urls,
            storage_class=foundation.default_storage_class,
            remote_secrets=data.remote_secrets,
            secret_store=addons.secret_store,
            service_roles=data.service_roles,
            config=data.config,
            # What the services need before they start: their Secrets (External Secrets),
            # istiod (its webhook gives the pods their sidecars), the storage classes and their
            # PriorityClasses (a pod naming a missing one is refused). Scale-ups, HPAs and
            # reloads act once their add-ons run: no waiting.
            depends_on=[
                *(
                    installed[name]
                    for name in (ExternalSecretsAddon.name, Istiod.name)
                    if name in installed
                ),
                foundation.storage,
                foundation.priority_classes,
            ],
            # The VPA kind comes with the VPA add-on's CRDs.
            autoscaling_depends_on=[
                addon for name, addon in installed.items() if name == VerticalPodAutoscaler.name
            ],
            database_writer=data.database.address,
            database_master=data.database_master,
            database_master_key=data.database.key_arn,
            database_ready=[data.database],
            search_access=data.search_access.with_writers(
                {
                    role: [
                        addon.role_arn
                        for name, addon in installed.items()
                        if name == writer and addon.role_arn is not None
                    ]
                    for role, writer in SEARCH_WRITERS.items()
                }
            ),
        )


@dataclass(frozen=True)
class Workloads:
    application: Application
    autoscaling: ServiceAutoscaling
    database_users: DatabaseUsers
    search_users: SearchUsers


def build_workloads(
    context: StackContext, cluster: ClusterContext, args: WorkloadsArgs, given: StackServices
) -> Workloads:
    application = Application(
        f"{context.prefix}-app",
        ApplicationArgs(
            environment=args.environment,
            region=context.region,
            application=args.application,
            services=args.services,
            image_repositories=given.image_repositories,
            node_taints=args.node_taints,
            scale_from_zero=args.scale_from_zero,
            max_nodes=args.max_nodes,
            storage_class=given.storage_class,
            secrets=ExternalSecrets(
                given.remote_secrets,
                given.secret_store,
                refresh_interval=args.application.secret_refresh_interval,
            ),
            service_roles=given.service_roles,
            extra_config={**given.config, **args.tracing_config},
            depends_on=given.depends_on,
            mesh=args.mesh,
        ),
        opts=with_cluster(context, cluster),
    )
    autoscaling = ServiceAutoscaling(
        f"{context.prefix}-autoscaling",
        ServiceAutoscalingArgs(namespace=application.namespace_name, services=args.services),
        # The VPA kind comes with the VPA add-on's CRDs.
        opts=pulumi.ResourceOptions.merge(
            with_cluster(context, cluster),
            pulumi.ResourceOptions(depends_on=list(given.autoscaling_depends_on)),
        ),
    )
    database_users = DatabaseUsers(
        f"{context.prefix}-database-users",
        DatabaseUsersArgs(
            users=[database_user(name) for name in database_services(args.services)],
            database_name=args.database_name,
            writer_host=given.database_writer,
            master=given.database_master,
            master_key_arn=given.database_master_key,
            cluster_name=cluster.name,
            region=context.region,
            permissions_boundary=context.permissions_boundary,
        ),
        opts=pulumi.ResourceOptions.merge(
            with_cluster(context, cluster),
            pulumi.ResourceOptions(depends_on=[*given.depends_on, *given.database_ready]),
        ),
    )
    search = given.search_access
    search_users = SearchUsers(
        f"{context.prefix}-search-users",
        SearchUsersArgs(
            cluster_name=cluster.name,
            region=context.region,
            endpoint=search.endpoint,
            master_role_arn=search.master_role_arn,
            administrator_arn=search.administrator_arn,
            mappings=search.mappings,
            retention=search.retention,
            log_replicas=search.log_replicas,
        ),
        opts=with_cluster(context, cluster),
    )
    return Workloads(application, autoscaling, database_users, search_users)
