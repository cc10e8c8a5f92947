"""Builds the foundation: everything the later layers run on or in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components.context import ClusterContext, StackContext, with_cluster
from components.foundation.cluster import Cluster, ClusterArgs
from components.foundation.managed_addons import (
    BEFORE_NODES,
    ManagedAddons,
    ManagedAddonsArgs,
    after_nodes,
)
from components.foundation.network import Network, NetworkArgs, PrivateNetwork
from components.foundation.node_group import NodeGroup, NodeGroupArgs, resource_name
from components.foundation.registry import ImageRegistry, ImageRegistryArgs
from components.foundation.scheduling import PriorityClasses
from components.foundation.storage import (
    DEFAULT_STORAGE_CLASS,
    StorageClasses,
    StorageClassesArgs,
    VolumeEncryption,
    VolumeEncryptionArgs,
)
from stacks.settings import (
    AccessSettings,
    ControlPlaneLogType,
    NatStrategy,
    NodeGroupSettings,
    NodeGroupsSettings,
    StackSettings,
)
from stacks.settings_base import WorkloadClass


@dataclass(frozen=True)
class FoundationArgs:
    vpc_cidr: str
    availability_zones: Sequence[str]
    nat_gateways: NatStrategy
    flow_log_retention_days: int
    kubernetes_version: str
    endpoint_public_access_cidrs: Sequence[str]
    control_plane_log_types: Sequence[ControlPlaneLogType]
    control_plane_log_retention_days: int
    access: AccessSettings
    node_groups: NodeGroupsSettings
    # One image repository per service.
    services: Sequence[str]

    @classmethod
    def from_settings(cls, settings: StackSettings) -> FoundationArgs:
        return cls(
            vpc_cidr=settings.vpc_cidr,
            availability_zones=settings.availability_zones,
            nat_gateways=settings.nat_gateways,
            flow_log_retention_days=settings.flow_log_retention_days,
            kubernetes_version=settings.kubernetes_version,
            endpoint_public_access_cidrs=settings.endpoint_public_access_cidrs,
            control_plane_log_types=settings.control_plane_log_types,
            control_plane_log_retention_days=settings.control_plane_log_retention_days,
            access=settings.access,
            node_groups=settings.node_groups,
            services=list(settings.services),
        )


@dataclass(frozen=True)
class Foundation:
    network: Network
    cluster: Cluster
    # Each class's current generation, and the previous generations kept while drained.
    node_groups: dict[WorkloadClass, NodeGroup]
    retiring_node_groups: dict[WorkloadClass, NodeGroup]
    managed_addons: list[ManagedAddons]
    registry: ImageRegistry
    storage: StorageClasses
    # The PriorityClasses every pod of the services names.
    priority_classes: PriorityClasses
    default_storage_class: str
    # Where the data stores live and who may reach them.
    private_network: PrivateNetwork
    # The cluster as later layers use it (providers, OIDC, what to wait for).
    cluster_context: ClusterContext


def build_foundation(context: StackContext, args: FoundationArgs) -> Foundation:
    prefix, with_aws = context.prefix, context.with_aws
    network = Network(
        prefix,
        NetworkArgs(
            permissions_boundary=context.permissions_boundary,
            cidr=args.vpc_cidr,
            availability_zones=args.availability_zones,
            nat_gateways=args.nat_gateways,
            flow_log_retention_days=args.flow_log_retention_days,
            region=context.region,
            account_id=context.account_id,
            cluster_name=prefix,
            protect=context.protect,
        ),
        opts=with_aws,
    )
    cluster = Cluster(
        prefix,
        ClusterArgs(
            permissions_boundary=context.permissions_boundary,
            cluster_name=prefix,
            kubernetes_version=args.kubernetes_version,
            region=context.region,
            account_id=context.account_id,
            subnet_ids=network.control_plane_subnet_ids,
            public_access_cidrs=args.endpoint_public_access_cidrs,
            log_types=args.control_plane_log_types,
            log_retention_days=args.control_plane_log_retention_days,
            access=args.access,
            protect=context.protect,
        ),
        opts=with_aws,
    )
    before_nodes = ManagedAddons(
        f"{prefix}-before-nodes",
        ManagedAddonsArgs(
            permissions_boundary=context.permissions_boundary,
            cluster_name=cluster.name,
            kubernetes_version=args.kubernetes_version,
            role_prefix=prefix,
            oidc=cluster.oidc,
            addons=BEFORE_NODES,
        ),
        opts=with_aws,
    )

    def node_group(
        workload_class: WorkloadClass, group: NodeGroupSettings, retiring: bool = False
    ) -> NodeGroup:
        return NodeGroup(
            resource_name(prefix, workload_class, group.generation),
            NodeGroupArgs(
                permissions_boundary=context.permissions_boundary,
                cluster_name=prefix,
                kubernetes_version=args.kubernetes_version,
                workload_class=workload_class,
                group=group,
                subnet_ids=network.private_subnet_ids,
                tags=context.tags,
                depends_on=[cluster.eks_cluster, before_nodes],
                retiring=retiring,
            ),
            opts=with_aws,
        )

    node_groups = {
        workload_class: node_group(workload_class, group)
        for workload_class, group in args.node_groups.items()
    }
    retiring_node_groups = {
        workload_class: node_group(workload_class, previous, retiring=True)
        for workload_class, group in args.node_groups.items()
        if (previous := group.previous_group()) is not None
    }
    volumes = VolumeEncryption(
        f"{prefix}-volumes",
        VolumeEncryptionArgs(alias=f"{prefix}-volumes", protect=context.protect),
        opts=with_aws,
    )
    after = ManagedAddons(
        f"{prefix}-after-nodes",
        ManagedAddonsArgs(
            permissions_boundary=context.permissions_boundary,
            cluster_name=cluster.name,
            kubernetes_version=args.kubernetes_version,
            role_prefix=prefix,
            oidc=cluster.oidc,
            addons=after_nodes(volumes.key_arn),
            depends_on=[*node_groups.values(), *retiring_node_groups.values()],
        ),
        opts=with_aws,
    )
    # Kubernetes objects wait for a cluster that can run them (nodes, DNS, CSI driver) and
    # that lets the deployer in: through the provider they all use.
    ready: list[pulumi.Resource] = [after, *cluster.access]
    cluster_context = ClusterContext(
        name=cluster.name,
        oidc=cluster.oidc,
        security_group_id=cluster.security_group_id,
        provider=cluster.kubernetes_provider(ready),
        ready=ready,
    )
    storage = StorageClasses(
        f"{prefix}-storage",
        StorageClassesArgs(key_arn=volumes.key_arn),
        opts=with_cluster(context, cluster_context),
    )
    priority_classes = PriorityClasses(
        f"{prefix}-priorities", opts=with_cluster(context, cluster_context)
    )
    registry = ImageRegistry(
        f"{prefix}-images",
        ImageRegistryArgs(name_prefix=prefix, services=args.services, protect=context.protect),
        opts=with_aws,
    )
    return Foundation(
        network=network,
        cluster=cluster,
        node_groups=node_groups,
        retiring_node_groups=retiring_node_groups,
        managed_addons=[before_nodes, after],
        registry=registry,
        storage=storage,
        priority_classes=priority_classes,
        default_storage_class=DEFAULT_STORAGE_CLASS,
        private_network=PrivateNetwork(
            vpc_id=network.vpc_id,
            subnet_ids=network.private_subnet_ids,
            client_security_group_id=cluster.security_group_id,
        ),
        cluster_context=cluster_context,
    )
