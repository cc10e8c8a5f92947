"""Node groups: the seed's sizes and types, hardened launch templates, autoscaler-ready tags."""

from __future__ import annotations

from typing import Any

import pytest

from offline.engine import RecordedResource, StackRun
from tests.conftest import run_with
from tests.lookup import children_of

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
SEED = {
    "general": (["m5.large", "m5.xlarge", "m5.2xlarge"], 2, 20),
    "compute": (["c5.large", "c5.xlarge", "c5.2xlarge", "c5.4xlarge"], 3, 30),
    "memory": (["r5.large", "r5.xlarge", "r5.2xlarge", "r5.4xlarge"], 1, 10),
    "gpu": (["g4dn.xlarge", "p3.2xlarge"], 0, 5),
}


def groups(run: StackRun) -> dict[str, RecordedResource]:
    return {g.inputs["nodeGroupName"]: g for g in run.of_type(NODE_GROUP)}


def test_production_has_the_seed_instance_types_and_sizes(production: StackRun) -> None:
    found = {
        name: (
            g.inputs["instanceTypes"],
            g.inputs["scalingConfig"]["minSize"],
            g.inputs["scalingConfig"]["maxSize"],
        )
        for name, g in groups(production).items()
    }
    assert found == SEED


def test_staging_is_scaled_down(staging: StackRun) -> None:
    for name, group in groups(staging).items():
        types, minimum, maximum = SEED[name]
        scaling = group.inputs["scalingConfig"]
        assert scaling["maxSize"] < maximum
        assert scaling["minSize"] <= minimum
        assert set(group.inputs["instanceTypes"]) <= set(types)


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
            assert tag.inputs["autoscalingGroupName"].startswith(f"eks-{workload_class}-")
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
        f"{prefix}/node-template/taint/nvidia.com/gpu": "true:NoSchedule",
        f"{prefix}/node-template/resources/nvidia.com/gpu": "1",
    }


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
