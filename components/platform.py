"""The platform as layers, in dependency order; each returns what the layers after it need."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from components.addons.layer import AddonInputs, AddonsArgs, ClusterAddons, build_addons
from components.addons.mesh import IstioBase
from components.addons.monitoring import Monitoring
from components.context import StackContext, stack_context
from components.data.layer import DataArgs, DataTier, build_data
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
from stacks.settings import StackSettings


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
    """The layers in dependency order: each takes its typed arguments from the settings and
    its inputs from the layers above it (docs/architecture.md)."""
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
        AddonInputs.from_layers(foundation, data, search_bootstrap.output),
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
        StackServices.from_layers(foundation, data, addons),
    )
    search_bootstrap.resolve(workloads.search_users)
    edge = (
        build_edge(
            context, cluster, EdgeArgs.from_settings(settings), EdgeInputs.from_layers(data, addons)
        )
        if settings.edge.enabled
        else None
    )
    # Last: it guards what every layer above made, the edge's namespaces included.
    security = build_security(
        context,
        cluster,
        SecurityArgs.from_settings(settings, secrets),
        Guarded.from_layers(foundation, data, addons, workloads),
    )
    return Platform(
        context, foundation, data, addons, workloads, security, observability, traffic, edge, runner
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
