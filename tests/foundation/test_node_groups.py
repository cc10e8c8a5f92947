"""Node groups: the seed's sizes and types, hardened launch templates, autoscaler-ready tags."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest

from offline.engine import RecordedResource, StackRun
from tests.conftest import run_at, run_with, settings_error
from tests.lookup import children_of

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
# The seed's node groups: types and node counts (seed, "Cluster Autoscaler").
SEED = {
    "general": (["m5.large", "m5.xlarge", "m5.2xlarge"], 2, 20),
    "compute": (["c5.large", "c5.xlarge", "c5.2xlarge", "c5.4xlarge"], 3, 30),
    "memory": (["r5.large", "r5.xlarge", "r5.2xlarge", "r5.4xlarge"], 1, 10),
    "gpu": (["g4dn.xlarge", "p3.2xlarge"], 0, 5),
}
# The GPU types the cluster autoscaler's AWS provider knows by name (kubernetes/autoscaler
# cluster-autoscaler/cloudprovider/aws/aws_cloud_provider.go, availableGPUTypes, at tag
# cluster-autoscaler-1.35.2): a label value outside it is reported as an unknown GPU.
AUTOSCALER_GPU_TYPES = {
    "nvidia-tesla-k80",
    "nvidia-tesla-p100",
    "nvidia-tesla-v100",
    "nvidia-tesla-t4",
    "nvidia-tesla-a100",
    "nvidia-a10g",
    "nvidia-l4",
    "nvidia-l40s",
}


def groups(run: StackRun) -> dict[str, RecordedResource]:
    """Each node group by its workload class."""
    return {g.inputs["labels"]["workload-class"]: g for g in run.of_type(NODE_GROUP)}


def test_production_stays_within_the_seed_types_and_sizes(production: StackRun) -> None:
    for name, group in groups(production).items():
        types, minimum, maximum = SEED[name]
        found = group.inputs["instanceTypes"]
        # The seed's types, in the seed's (smallest first) order: general and compute start at
        # xlarge, since a large node cannot hold their largest pods beside the node agents.
        assert found == [t for t in types if t in found], name
        scaling = group.inputs["scalingConfig"]
        assert (scaling["minSize"], scaling["maxSize"]) == (minimum, maximum)
    assert groups(production)["general"].inputs["instanceTypes"][0] == "m5.xlarge"
    assert groups(production)["compute"].inputs["instanceTypes"][0] == "c5.xlarge"


def test_staging_is_scaled_down(staging: StackRun) -> None:
    for name, group in groups(staging).items():
        types, minimum, maximum = SEED[name]
        scaling = group.inputs["scalingConfig"]
        assert scaling["maxSize"] < maximum
        assert scaling["minSize"] <= minimum
        assert set(group.inputs["instanceTypes"]) <= set(types)


def test_a_group_is_named_after_what_eks_cannot_change_in_place(stack_run: StackRun) -> None:
    # Instance types, AMI type and capacity type force a new node group (terraform-provider-aws
    # internal/service/eks/node_group.go: ForceNew on instance_types, ami_type, capacity_type and
    # node_group_name). EKS refuses two groups of one name in a cluster, so a new group must
    # have a new name for Pulumi to create it before deleting the old one.
    names = {name: g.inputs["nodeGroupName"] for name, g in groups(stack_run).items()}
    for workload_class, name in names.items():
        assert re.fullmatch(rf"{workload_class}-[0-9a-f]{{6}}", name), name
    changed = run_with(
        stack_run.stack, nodeGroups={"memory": {"instanceTypes": ["r5.xlarge", "r5.2xlarge"]}}
    )
    renamed = {name: g.inputs["nodeGroupName"] for name, g in groups(changed).items()}
    assert renamed["memory"] != names["memory"]
    assert {k: v for k, v in renamed.items() if k != "memory"} == {
        k: v for k, v in names.items() if k != "memory"
    }


def test_a_version_upgrade_keeps_every_group_name(stack_run: StackRun) -> None:
    # The Kubernetes version is updated in place (UpdateNodegroupVersion): no new name.
    older = run_at(date(2026, 11, 1), stack_run.stack, kubernetesVersion="1.34")
    assert {n: g.inputs["nodeGroupName"] for n, g in groups(older).items()} == {
        n: g.inputs["nodeGroupName"] for n, g in groups(stack_run).items()
    }
    assert {g.inputs["version"] for g in groups(older).values()} == {"1.34"}


def test_gpu_group_is_tainted_and_on_the_nvidia_ami(stack_run: StackRun) -> None:
    gpu = groups(stack_run)["gpu"]
    assert gpu.inputs["amiType"] == "AL2023_x86_64_NVIDIA"
    assert gpu.inputs["taints"] == [
        {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}
    ]
    for name, other in groups(stack_run).items():
        if name != "gpu":
            assert other.inputs["amiType"] == "AL2023_x86_64_STANDARD"
            assert "taints" not in other.inputs or other.inputs["taints"] == []


def test_every_group_is_labelled_with_its_workload_class(stack_run: StackRun) -> None:
    for name, group in groups(stack_run).items():
        assert group.inputs["labels"]["workload-class"] == name


def test_autoscaler_owns_the_desired_size(stack_run: StackRun) -> None:
    for group in groups(stack_run).values():
        assert group.ignore_changes == ["scalingConfig.desiredSize"]


def test_launch_templates_require_imdsv2_and_encrypt_gp3_root_volumes(
    stack_run: StackRun,
) -> None:
    templates = stack_run.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert len(templates) == 4
    by_id = {t.id: t for t in templates}
    for group in groups(stack_run).values():
        template = by_id[group.inputs["launchTemplate"]["id"]]
        metadata = template.inputs["metadataOptions"]
        assert metadata["httpTokens"] == "required"
        assert metadata["httpPutResponseHopLimit"] == 1
        [root] = template.inputs["blockDeviceMappings"]
        assert root["deviceName"] == "/dev/xvda"
        assert root["ebs"]["encrypted"] == "true"
        assert root["ebs"]["volumeType"] == "gp3"
        # The instance type comes from the node group, never the template.
        assert "instanceType" not in template.inputs


def test_node_roles_hold_only_what_nodes_need(stack_run: StackRun) -> None:
    for group in groups(stack_run).values():
        [component] = [r for r in stack_run.resources if r.urn == group.parent]
        attached = sorted(
            r.inputs["policyArn"].rsplit("/", 1)[1]
            for r in children_of(stack_run, component)
            if r.type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
        )
        assert attached == ["AmazonEC2ContainerRegistryPullOnly", "AmazonEKSWorkerNodePolicy"]
        role = next(r for r in children_of(stack_run, component) if r.type == "aws:iam/role:Role")
        assert group.inputs["nodeRoleArn"].endswith(role.id)


def asg_tags(run: StackRun, workload_class: str) -> dict[str, Any]:
    group = groups(run)[workload_class]
    [component] = [r for r in run.resources if r.urn == group.parent]
    tags = {}
    for tag in children_of(run, component):
        if tag.type == "aws:autoscaling/tag:Tag":
            # Each tag goes on this group's own Auto Scaling group.
            assert tag.inputs["autoscalingGroupName"].startswith(
                f"eks-{group.inputs['nodeGroupName']}-"
            )
            assert group.urn in tag.dependencies
            assert tag.inputs["tag"]["propagateAtLaunch"] is False
            tags[tag.inputs["tag"]["key"]] = tag.inputs["tag"]["value"]
    return tags


def test_gpu_asg_carries_the_node_template_tags_that_scale_it_from_zero(
    stack_run: StackRun,
) -> None:
    prefix = "k8s.io/cluster-autoscaler"
    assert asg_tags(stack_run, "gpu") == {
        f"{prefix}/node-template/label/workload-class": "gpu",
        f"{prefix}/node-template/label/k8s.amazonaws.com/accelerator": "nvidia-tesla-t4",
        f"{prefix}/node-template/taint/nvidia.com/gpu": "true:NoSchedule",
        f"{prefix}/node-template/resources/nvidia.com/gpu": "1",
    }


def test_gpu_nodes_carry_the_accelerator_label_the_autoscaler_waits_on(
    stack_run: StackRun,
) -> None:
    # kubernetes/autoscaler cloudprovider/aws/README.md, "Special note on GPU instances": with
    # k8s.amazonaws.com/accelerator on a node, the autoscaler treats it as unready until the
    # device plugin advertises its GPU, instead of adding more nodes meanwhile. The managed
    # node group's labels reach the nodes; the ASG tag (above) describes a node from zero.
    for name, group in groups(stack_run).items():
        accelerator = group.inputs["labels"].get("k8s.amazonaws.com/accelerator")
        if name == "gpu":
            # g4dn.xlarge, the first type: an NVIDIA T4.
            assert accelerator == "nvidia-tesla-t4"
            assert accelerator in AUTOSCALER_GPU_TYPES
        else:
            assert accelerator is None


def test_the_accelerator_label_is_the_programs_own() -> None:
    message = settings_error(
        "staging", nodeGroups={"gpu": {"labels": {"k8s.amazonaws.com/accelerator": "a100"}}}
    )
    assert message.startswith("nodeGroups.gpu.labels: ")
    assert "'k8s.amazonaws.com/accelerator' is set by the program" in message


@pytest.mark.parametrize("workload_class", ["general", "compute", "memory"])
def test_other_asgs_carry_only_their_label_template_and_never_the_eks_discovery_tags(
    production: StackRun, workload_class: str
) -> None:
    # EKS owns the discovery tags on a managed node group's ASG: a Tag resource for the same
    # key would strip EKS's tag when it is replaced or deleted.
    assert asg_tags(production, workload_class) == {
        "k8s.io/cluster-autoscaler/node-template/label/workload-class": workload_class,
    }


def test_labels_and_taints_from_settings_reach_group_and_asg_tags() -> None:
    run = run_with(
        "staging",
        nodeGroups={
            "memory": {
                "labels": {"team": "risk"},
                "taints": [{"key": "dedicated", "value": "risk", "effect": "PREFER_NO_SCHEDULE"}],
            }
        },
    )
    memory = groups(run)["memory"]
    assert memory.inputs["labels"] == {"workload-class": "memory", "team": "risk"}
    assert memory.inputs["taints"] == [
        {"key": "dedicated", "value": "risk", "effect": "PREFER_NO_SCHEDULE"}
    ]
    tags = asg_tags(run, "memory")
    assert tags["k8s.io/cluster-autoscaler/node-template/label/team"] == "risk"
    assert (
        tags["k8s.io/cluster-autoscaler/node-template/taint/dedicated"] == "risk:PreferNoSchedule"
    )


def test_node_groups_wait_for_the_cluster_and_networking_addons(stack_run: StackRun) -> None:
    cluster = stack_run.one("aws:eks/cluster:Cluster")
    vpc_cni = next(
        a for a in stack_run.of_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "vpc-cni"
    )
    for group in groups(stack_run).values():
        assert {cluster.urn, vpc_cni.urn} <= set(group.dependencies)
        assert group.inputs["version"] == cluster.inputs["version"]
