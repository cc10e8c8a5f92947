"""A managed node group for one workload class (one generation of it), ready for the cluster
autoscaler.

A class's group is replaced, never changed in place, when an input EKS cannot update changes
(instance types, AMI type, capacity type, disk size, subnets, node role, launch template:
ForceNew in terraform-provider-aws internal/service/eks/node_group.go). Such a change is a new
generation: a new group with its own name and resources, created beside the old one, which is
kept (`previousGeneration`) until its nodes are drained and then removed in a later `up`
(docs/cluster.md, "Node group generations"). `make diff` refuses a group replaced in place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.shared.conventions import (
    NODE_GENERATION_LABEL,
    WORKLOAD_CLASS_LABEL,
    node_group_name,
)
from components.shared.iam import managed_policy_arn, service_trust_policy
from components.shared.urns import formerly
from stacks.instance_types import INSTANCE_TYPES
from stacks.settings import NodeGroupSettings
from stacks.settings_base import WorkloadClass

AUTOSCALER_TAG_PREFIX = "k8s.io/cluster-autoscaler"
# The label that tells the cluster autoscaler a node has GPUs before its device plugin advertises
# them: without it the autoscaler counts a new GPU node as ready without the GPU and adds more
# (kubernetes/autoscaler cloudprovider/aws/README.md, "Special note on GPU instances";
# aws_cloud_provider.go GPULabel, at cluster-autoscaler-1.35.2).
GPU_ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
# What a node needs from IAM itself. The VPC CNI's permissions live on its own IRSA role.
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly")


def autoscaler_asg_tags(workload_class: WorkloadClass, group: NodeGroupSettings) -> dict[str, str]:
    """Node-template tags the cluster autoscaler reads from the Auto Scaling group.

    They tell it the labels, taints and GPUs of a node it has not seen yet, which is what lets a
    group scale up from zero. The discovery tags (`k8s.io/cluster-autoscaler/enabled` and
    `.../<cluster>`) are EKS's own on every managed node group's Auto Scaling group: managing
    them here too would strip them whenever one of these resources is replaced or deleted.
    """
    template = f"{AUTOSCALER_TAG_PREFIX}/node-template"
    tags = {}
    for key, value in node_labels(workload_class, group).items():
        tags[f"{template}/label/{key}"] = value
    for taint in group.taints:
        tags[f"{template}/taint/{taint.key}"] = f"{taint.value}:{taint.kubernetes_effect()}"
    gpus = INSTANCE_TYPES[group.instance_types[0]].gpus
    if gpus:
        tags[f"{template}/resources/nvidia.com/gpu"] = str(gpus)
    return tags


def node_labels(workload_class: WorkloadClass, group: NodeGroupSettings) -> dict[str, str]:
    """The group's labels: its class, its generation from the second on, a GPU group's
    accelerator, and the stack's own.

    The accelerator is the first instance type's GPU, the one the autoscaler plans with; a
    fallback type with another GPU model carries the same label (the autoscaler reads its
    presence to wait for the device plugin, and its value only to name the GPU in metrics).
    Generation 1 carries no generation label: it is the group as first deployed, unchanged.
    """
    labels: dict[str, str] = {WORKLOAD_CLASS_LABEL: workload_class}
    if group.generation > 1:
        labels[NODE_GENERATION_LABEL] = str(group.generation)
    accelerator = INSTANCE_TYPES[group.instance_types[0]].accelerator
    if accelerator is not None:
        labels[GPU_ACCELERATOR_LABEL] = accelerator
    return {**labels, **group.labels}


def resource_name(prefix: str, workload_class: WorkloadClass, generation: int) -> str:
    """The Pulumi name of a class's group component in one generation (its children's names
    derive from it): generation 1 keeps the name, and so the URNs, the group always had."""
    return f"{prefix}-{workload_class}" + ("" if generation == 1 else f"-g{generation}")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@dataclass(frozen=True)
class NodeGroupArgs:
    # A plain name: the autoscaler's discovery tag needs it.
    cluster_name: str
    kubernetes_version: str
    workload_class: WorkloadClass
    group: NodeGroupSettings
    subnet_ids: Sequence[pulumi.Input[str]]
    tags: Mapping[str, str]
    # Nodes only become Ready once the cluster and its networking add-ons exist.
    depends_on: Sequence[pulumi.Resource] = ()
    # The permissions boundary every IAM role of the stack carries (None: none).
    permissions_boundary: pulumi.Input[str] | None = None
    # A previous generation, kept while its nodes are drained: its Kubernetes version is left
    # as deployed (moving it would roll nodes that are about to go).
    retiring: bool = False


class NodeGroup(pulumi.ComponentResource):
    node_group: aws.eks.NodeGroup
    role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: NodeGroupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "financial-planning:foundation:NodeGroup",
            name,
            None,
            formerly(opts, "financial-planning:cluster:NodeGroup"),
        )
        child = pulumi.ResourceOptions(parent=self)
        group = args.group

        role = aws.iam.Role(
            f"{name}-node",
            assume_role_policy=service_trust_policy("ec2.amazonaws.com"),
            permissions_boundary=args.permissions_boundary,
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-{policy}",
                role=role.name,
                policy_arn=managed_policy_arn(policy),
                opts=child,
            )
            for policy in NODE_POLICIES
        ]

        launch_template = aws.ec2.LaunchTemplate(
            name,
            description=f"{args.workload_class} nodes: IMDSv2 only, encrypted gp3 root volume",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                # Pods reach AWS through IRSA; one hop keeps them away from the node's role.
                http_put_response_hop_limit=1,
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=group.disk_size_gib,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(
                    resource_type=resource_type,
                    tags={**args.tags, "Name": name, WORKLOAD_CLASS_LABEL: args.workload_class},
                )
                for resource_type in ("instance", "volume")
            ],
            update_default_version=True,
            opts=child,
        )

        self.node_group = aws.eks.NodeGroup(
            name,
            cluster_name=args.cluster_name,
            node_group_name=node_group_name(args.workload_class, group.generation),
            version=args.kubernetes_version,
            node_role_arn=role.arn,
            subnet_ids=list(args.subnet_ids),
            instance_types=list(group.instance_types),
            capacity_type=group.capacity_type,
            ami_type=group.ami_type,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=group.min_size,
                max_size=group.max_size,
                desired_size=group.desired_size,
            ),
            labels=node_labels(args.workload_class, group),
            taints=[
                aws.eks.NodeGroupTaintArgs(key=t.key, value=t.value, effect=t.effect)
                for t in group.taints
            ],
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=launch_template.id,
                version=launch_template.latest_version.apply(str),
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable_percentage=33),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*attachments, *args.depends_on],
                # The cluster autoscaler owns the desired size once the group exists.
                ignore_changes=[
                    "scalingConfig.desiredSize",
                    *(["version"] if args.retiring else []),
                ],
            ),
        )

        # Managed node group tags never reach its Auto Scaling group, so tag the group itself.
        asg_name = self.node_group.resources.apply(
            lambda resources: (resources[0].autoscaling_groups or [])[0].name or ""
        )
        for key, value in autoscaler_asg_tags(args.workload_class, group).items():
            aws.autoscaling.Tag(
                f"{name}-asg-{_slug(key.removeprefix(AUTOSCALER_TAG_PREFIX))}",
                autoscaling_group_name=asg_name,
                tag=aws.autoscaling.TagTagArgs(key=key, value=value, propagate_at_launch=False),
                opts=child,
            )

        self.role_arn = role.arn
        self.register_outputs(
            {"nodeGroupName": self.node_group.node_group_name, "roleArn": role.arn}
        )
