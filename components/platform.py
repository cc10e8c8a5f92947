"""The platform as layers, in dependency order; each returns what the layers after it need."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from components.addons.external_secrets import ExternalSecrets
from components.addons.jaeger import Jaeger
from components.addons.layer import AddonInputs, AddonsArgs, ClusterAddons, build_addons
from components.addons.log_shipper import LogShipper
from components.addons.mesh import IstioBase, Istiod
from components.addons.monitoring import Monitoring
from components.addons.vertical_pod_autoscaler import VerticalPodAutoscaler
from components.context import StackContext, stack_context
from components.data.layer import DataArgs, DataTier, build_data
from components.data.search_access import index_replicas, platform_retention
from components.delivery.runner import DeployRunner, DeployRunnerArgs, runner_project_name
from components.edge.layer import Edge, EdgeArgs, EdgeInputs, build_edge
from components.foundation.layer import Foundation, FoundationArgs, build_foundation
from components.local_platform import LocalPlatform, build_local_platform
from components.mesh.layer import MeshArgs, MeshPolicies, build_mesh
from components.observability.layer import ObservabilityArgs, build_observability
from components.observability.monitors import ApplicationMonitoring
from components.security.layer import Guarded, Security, SecurityArgs, build_security
from components.shared.ordering import LaterResource
from components.workloads.layer import StackServices, Workloads, WorkloadsArgs, build_workloads
from stacks import AnySettings, LocalStackSettings
from stacks.addon_settings import JaegerSettings, LogShipperSettings
from stacks.settings import StackSettings

# The search domain's FGAC roles that add-ons hold, by the add-on whose IRSA role holds it.
SEARCH_WRITERS = {"log-writer": LogShipper.name, "trace-store": Jaeger.name}


def enabled_days(writer: LogShipperSettings | JaegerSettings) -> int | None:
    """How long a writer's indices are kept, where it runs."""
    return writer.retention_days if writer.enabled else None


@dataclass(frozen=True)
class Platform:
    context: StackContext
    foundation: Foundation
    data: DataTier
    addons: ClusterAddons
    workloads: Workloads
    security: Security
    observability: ApplicationMonitoring | None
    traffic: MeshPolicies | None
    edge: Edge | None
    # The CodeBuild runner the stack's workflows run on (stacks with `delivery` only).
    runner: DeployRunner | None = None

    def exports(self) -> dict[str, Any]:
        foundation = self.foundation
        return {
            "vpcId": foundation.network.vpc_id,
            "privateSubnetIds": foundation.network.private_subnet_ids,
            "clusterName": foundation.cluster.name,
            "clusterEndpoint": foundation.cluster.endpoint,
            "oidcProviderArn": foundation.cluster.oidc.provider_arn,
            "kubeconfig": foundation.cluster.kubeconfig,
            # The public entrance: the API's URL and the operator UIs' (behind sign-in or the
            # allow-list), and the web ACL in front of them.
            **(
                {
                    "apiUrl": f"https://{self.edge.api_host}",
                    "operatorUrls": {
                        host.split(".", 1)[0]: f"https://{host}"
                        for host in self.edge.operator_hosts
                    },
                    "webAclArn": self.edge.firewall.web_acl_arn,
                }
                if self.edge
                else {}
            ),
            "nodeGroups": {
                name: group.node_group.node_group_name
                for name, group in foundation.node_groups.items()
            },
            **({"runnerProject": self.runner.project_name} if self.runner else {}),
        }


def build_platform(
    project: str,
    stack: str,
    settings: StackSettings,
    secrets: Mapping[str, pulumi.Output[str]],
) -> Platform:
    tags = {**settings.tags, "environment": settings.environment, "pulumi-stack": stack}
    context = stack_context(
        project,
        stack,
        settings.region,
        tags,
        settings.protect,
        permissions_boundary_policy=settings.iam_permissions_boundary,
    )

    foundation = build_foundation(context, FoundationArgs.from_settings(settings))
    cluster = foundation.cluster_context
    runner = build_runner(context, foundation, settings)
    data = build_data(
        context, foundation.private_network, cluster.oidc, DataArgs.from_settings(settings, secrets)
    )
    # Jaeger's release waits for the search bootstrap (components/addons/jaeger.py), which the
    # workloads make below from the add-ons' roles.
    search_bootstrap = LaterResource("the search bootstrap")
    addons = build_addons(
        context,
        cluster,
        AddonsArgs.from_settings(settings),
        AddonInputs(
            secret_access=data.secret_access,
            platform_secrets=data.platform_secrets,
            storage_class=foundation.default_storage_class,
            vpc_id=foundation.network.vpc_id,
            search_endpoint=data.search.endpoint,
            search_domain_arn=data.search.arn,
            search_access_applied=search_bootstrap.output,
        ),
    )
    traffic = build_mesh(
        context,
        cluster,
        MeshArgs.from_settings(settings),
        addons.installed.get(IstioBase.name),
        aws_callers=list(data.service_roles),
        search_endpoint=data.search.endpoint,
    )
    observability = build_observability(
        context,
        cluster,
        ObservabilityArgs.from_settings(settings),
        addons.installed.get(Monitoring.name),
    )
    workloads = build_workloads(
        context,
        cluster,
        WorkloadsArgs.from_settings(settings),
        StackServices(
            image_repositories=foundation.registry.repository_urls,
            storage_class=foundation.default_storage_class,
            remote_secrets=data.remote_secrets,
            secret_store=addons.secret_store,
            service_roles=data.service_roles,
            config=data.config,
            # What the services need before they start: their Secrets (External Secrets), the
            # storage classes, and their PriorityClasses (a pod naming a missing one is
            # refused). Scale-ups, HPAs and reloads act once their add-ons run: no waiting.
            depends_on=[
                # istiod's webhook gives the pods their sidecars: it must be there first.
                *(
                    addons.installed[name]
                    for name in (ExternalSecrets.name, Istiod.name)
                    if name in addons.installed
                ),
                foundation.storage,
                foundation.priority_classes,
            ],
            # The VPA kind comes with the VPA add-on's CRDs.
            autoscaling_depends_on=[
                addon
                for name, addon in addons.installed.items()
                if name == VerticalPodAutoscaler.name
            ],
            database_writer=data.database.address,
            database_name=settings.data.database.database_name,
            database_master=data.database_master,
            database_master_key=data.database.key_arn,
            database_ready=[data.database],
            search_access=data.search_access.with_writers(
                {
                    role: [
                        addon.role_arn
                        for name, addon in addons.installed.items()
                        if name == writer and addon.role_arn is not None
                    ]
                    for role, writer in SEARCH_WRITERS.items()
                },
                platform_retention(
                    log_days=enabled_days(settings.addons.log_shipper),
                    trace_days=enabled_days(settings.addons.jaeger),
                ),
                log_replicas=(
                    index_replicas(settings.data.search.instance_count)
                    if settings.addons.log_shipper.enabled
                    else None
                ),
            ),
        ),
    )
    search_bootstrap.resolve(workloads.search_users)
    security = build_security(
        context,
        cluster,
        SecurityArgs.from_settings(settings, secrets),
        Guarded(
            app_namespace=workloads.application.namespace_name,
            aws_callers=list(data.service_roles),
            platform_namespaces=sorted({a.namespace_name for a in addons.installed.values()}),
            mesh_crds=addons.installed.get(IstioBase.name),
            vpc_id=foundation.private_network.vpc_id,
            private_subnet_ids=foundation.private_network.subnet_ids,
        ),
    )
    edge = (
        build_edge(
            context,
            cluster,
            EdgeArgs.from_settings(settings),
            EdgeInputs(
                installed=addons.installed,
                platform_secrets=data.platform_secrets,
                remote_secrets=data.remote_secrets,
                redis_host=data.cache.primary_address,
                redis_port=data.cache.port,
            ),
        )
        if settings.edge.enabled
        else None
    )
    return Platform(
        context,
        foundation,
        data,
        addons,
        workloads,
        security,
        observability,
        traffic,
        edge,
        runner,
    )


def build_runner(
    context: StackContext, foundation: Foundation, settings: StackSettings
) -> DeployRunner | None:
    """The stack's own CodeBuild runner, inside its VPC, where the stack says how it is
    delivered; the deploy logs are kept as long as the control plane's."""
    if settings.delivery is None:
        return None
    delivery = settings.delivery
    return DeployRunner(
        f"{context.prefix}-runner",
        DeployRunnerArgs(
            project_name=runner_project_name(context.prefix),
            repository=delivery.repository,
            connection_arn=delivery.github_connection,
            compute_type=delivery.runner.compute_type,
            vpc_id=foundation.network.vpc_id,
            subnet_ids=foundation.network.private_subnet_ids,
            subnet_arns=foundation.network.private_subnet_arns,
            cluster_security_group_id=foundation.cluster_context.security_group_id,
            region=context.region,
            account_id=context.account_id,
            log_retention_days=settings.control_plane_log_retention_days,
            protect=context.protect,
            permissions_boundary=context.permissions_boundary,
        ),
        opts=context.with_aws,
    )


def build(
    project: str,
    stack: str,
    settings: AnySettings,
    secrets: Mapping[str, pulumi.Output[str]],
) -> Platform | LocalPlatform:
    """The stack's platform: on EKS, or onto an existing cluster (development)."""
    if isinstance(settings, LocalStackSettings):
        return build_local_platform(project, stack, settings, secrets)
    return build_platform(project, stack, settings, secrets)
