"""Wires one stack's settings into the components, in dependency order."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.addons import AddonSpec, ManagedAddons, ManagedAddonsArgs
from components.cluster import Cluster, ClusterArgs
from components.network import Network, NetworkArgs
from components.node_group import NodeGroup, NodeGroupArgs
from stacks.settings import StackSettings, WorkloadClass

BEFORE_NODES = (
    AddonSpec("vpc-cni", service_account="aws-node", managed_policies=["AmazonEKS_CNI_Policy"]),
    AddonSpec("kube-proxy"),
    AddonSpec("eks-pod-identity-agent"),
)
AFTER_NODES = (
    AddonSpec("coredns"),
    AddonSpec(
        "aws-ebs-csi-driver",
        service_account="ebs-csi-controller-sa",
        managed_policies=["service-role/AmazonEBSCSIDriverPolicy"],
    ),
)


@dataclass(frozen=True)
class Platform:
    aws_provider: aws.Provider
    network: Network
    cluster: Cluster
    node_groups: dict[WorkloadClass, NodeGroup]
    addons: list[ManagedAddons]


def build_platform(project: str, stack: str, settings: StackSettings) -> Platform:
    prefix = f"{project}-{stack}"
    tags = {**settings.tags, "environment": settings.environment, "pulumi-stack": stack}
    aws_provider = aws.Provider(
        "aws", region=settings.region, default_tags=aws.ProviderDefaultTagsArgs(tags=tags)
    )
    with_aws = pulumi.ResourceOptions(providers=[aws_provider])
    account_id = aws.get_caller_identity_output(
        opts=pulumi.InvokeOutputOptions(provider=aws_provider)
    ).account_id

    network = Network(
        prefix,
        NetworkArgs(
            cidr=settings.vpc_cidr,
            availability_zones=settings.availability_zones,
            nat_gateways=settings.nat_gateways,
            flow_log_retention_days=settings.flow_log_retention_days,
            cluster_name=prefix,
            protect=settings.protect,
        ),
        opts=with_aws,
    )

    cluster = Cluster(
        prefix,
        ClusterArgs(
            cluster_name=prefix,
            kubernetes_version=settings.kubernetes_version,
            region=settings.region,
            account_id=account_id,
            subnet_ids=network.private_subnet_ids,
            public_access_cidrs=settings.endpoint_public_access_cidrs,
            log_types=settings.control_plane_log_types,
            log_retention_days=settings.control_plane_log_retention_days,
            admin_access=settings.admin_access,
            protect=settings.protect,
        ),
        opts=with_aws,
    )

    before_nodes = ManagedAddons(
        f"{prefix}-before-nodes",
        ManagedAddonsArgs(
            cluster_name=cluster.name, role_prefix=prefix, oidc=cluster.oidc, addons=BEFORE_NODES
        ),
        opts=with_aws,
    )
    node_groups = {
        workload_class: NodeGroup(
            f"{prefix}-{workload_class}",
            NodeGroupArgs(
                cluster_name=prefix,
                kubernetes_version=settings.kubernetes_version,
                workload_class=workload_class,
                group=group,
                subnet_ids=network.private_subnet_ids,
                tags=tags,
                depends_on=[cluster.eks_cluster, before_nodes],
            ),
            opts=with_aws,
        )
        for workload_class, group in settings.node_groups.items()
    }
    after_nodes = ManagedAddons(
        f"{prefix}-after-nodes",
        ManagedAddonsArgs(
            cluster_name=cluster.name,
            role_prefix=prefix,
            oidc=cluster.oidc,
            addons=AFTER_NODES,
            depends_on=list(node_groups.values()),
        ),
        opts=with_aws,
    )

    return Platform(
        aws_provider=aws_provider,
        network=network,
        cluster=cluster,
        node_groups=node_groups,
        addons=[before_nodes, after_nodes],
    )
