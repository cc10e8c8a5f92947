"""Node groups: the seed's sizes and types, hardened launch templates, autoscaler-ready tags."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from offline.diff import REPLACED_ON_CHANGE
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


def generation_of(group: RecordedResource) -> int:
    return int(group.inputs["labels"].get("node-group-generation", "1"))


def groups(run: StackRun) -> dict[str, RecordedResource]:
    """Each class's current node group (its newest generation), by workload class."""
    found: dict[str, RecordedResource] = {}
    for group in sorted(run.of_type(NODE_GROUP), key=generation_of):
        found[group.inputs["labels"]["workload-class"]] = group
    return found


def retiring(run: StackRun) -> dict[str, RecordedResource]:
    """Each class's previous generation, where one is kept."""
    current = {g.urn for g in groups(run).values()}
    return {
        g.inputs["labels"]["workload-class"]: g
        for g in run.of_type(NODE_GROUP)
        if g.urn not in current
    }


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


# The node groups as main had them before issue 23 (git show 3771f7a:components/foundation/
# node_group.py): the EKS name was the class, the resource `<prefix>-<class>`.
def legacy_urn(stack: str, workload_class: str) -> str:
    return (
        f"urn:pulumi:{stack}::financial-planning::financial-planning:foundation:NodeGroup"
        f"$aws:eks/nodeGroup:NodeGroup::financial-planning-{stack}-{workload_class}"
    )


def test_generation_1_keeps_the_name_and_urn_the_groups_were_created_with(
    stack_run: StackRun,
) -> None:
    # Memory and GPU have not changed what EKS cannot change in place: generation 1, the very
    # groups already deployed, updated in place (no new name, no new URN).
    for workload_class in ("memory", "gpu"):
        group = groups(stack_run)[workload_class]
        assert group.inputs["nodeGroupName"] == workload_class
        assert group.urn == legacy_urn(stack_run.stack, workload_class)
        assert "node-group-generation" not in group.inputs["labels"]


def test_general_and_compute_move_to_generation_2_beside_generation_1(
    stack_run: StackRun,
) -> None:
    # Their instance types changed (xlarge first): ForceNew in terraform-provider-aws
    # internal/service/eks/node_group.go, so a new group, with a name of its own (EKS refuses
    # two groups of one name in a cluster), created while generation 1 stays.
    legacy_types = {
        "production": {
            "general": ["m5.large", "m5.xlarge", "m5.2xlarge"],
            "compute": ["c5.large", "c5.xlarge", "c5.2xlarge", "c5.4xlarge"],
        },
        "staging": {"general": ["m5.large", "m5.xlarge"], "compute": ["c5.large", "c5.xlarge"]},
    }[stack_run.stack]
    old = retiring(stack_run)
    assert set(old) == {"general", "compute"}
    for workload_class, types in legacy_types.items():
        new = groups(stack_run)[workload_class]
        assert new.inputs["nodeGroupName"] == f"{workload_class}-g2"
        assert new.inputs["labels"]["node-group-generation"] == "2"
        assert new.inputs["instanceTypes"][0].endswith(".xlarge")
        previous = old[workload_class]
        # Generation 1 as deployed: same URN, name, types and labels.
        assert previous.urn == legacy_urn(stack_run.stack, workload_class)
        assert previous.inputs["nodeGroupName"] == workload_class
        assert previous.inputs["instanceTypes"] == types
        assert previous.inputs["labels"] == {"workload-class": workload_class}
        # No minimum: the autoscaler may remove the nodes it has emptied onto generation 2
        # (an in-place UpdateNodegroupConfig); its maximum is generation 2's.
        assert previous.inputs["scalingConfig"]["minSize"] == 0
        assert previous.inputs["scalingConfig"]["maxSize"] == new.inputs["scalingConfig"]["maxSize"]
        # Its Kubernetes version stays as deployed (moving it would roll nodes about to go).
        assert previous.ignore_changes == ["scalingConfig.desiredSize", "version"]
        assert new.ignore_changes == ["scalingConfig.desiredSize"]
        # Each generation has its own role and launch template.
        assert new.inputs["nodeRoleArn"] != previous.inputs["nodeRoleArn"]
        assert new.inputs["launchTemplate"]["id"] != previous.inputs["launchTemplate"]["id"]


def test_without_a_previous_generation_only_the_current_group_is_rendered() -> None:
    # Step 2 of the procedure: previousGeneration removed, generation 1 goes.
    run = run_with(
        "staging",
        nodeGroups={
            "general": {"previousGeneration": None},
            "compute": {"previousGeneration": None},
        },
    )
    assert retiring(run) == {}
    assert {g.inputs["nodeGroupName"] for g in run.of_type(NODE_GROUP)} == {
        "general-g2",
        "compute-g2",
        "memory",
        "gpu",
    }


def test_a_previous_generation_must_be_older_and_a_group_of_its_class() -> None:
    message = settings_error(
        "staging",
        nodeGroups={
            "memory": {"previousGeneration": {"generation": 1, "instanceTypes": ["r5.large"]}}
        },
    )
    assert message == (
        "nodeGroups.memory.previousGeneration.generation: 1 is not older than generation 1 "
        "(a group of generation 1 has none: bump generation first)"
    )
    message = settings_error(
        "staging",
        nodeGroups={
            "general": {"previousGeneration": {"generation": 1, "instanceTypes": ["m5.huge"]}}
        },
    )
    assert message.startswith("nodeGroups.general.previousGeneration: ")
    assert "'m5.huge' is not a known instance type" in message
    message = settings_error(
        "staging",
        nodeGroups={
            "gpu": {
                "generation": 2,
                "previousGeneration": {
                    "generation": 1,
                    "instanceTypes": ["m5.large"],
                    "amiType": "AL2023_x86_64_STANDARD",
                },
            }
        },
    )
    assert message == (
        "nodeGroups.gpu.previousGeneration.amiType: a gpu group needs GPUs in every generation"
    )


# What EKS changes on an existing managed node group, per the EKS API reference
# (docs.aws.amazon.com/eks/latest/APIReference): UpdateNodegroupConfig takes labels, taints,
# scalingConfig, updateConfig and nodeRepairConfig; UpdateNodegroupVersion takes version,
# releaseVersion and launchTemplate (a new version of the same template: its id or name stays);
# TagResource changes tags. Every other CreateNodegroup field is fixed for the group's life.
UPDATED_IN_PLACE = {
    "labels",
    "taints",
    "scalingConfig",
    "updateConfig",
    "nodeRepairConfig",
    "version",
    "releaseVersion",
    "launchTemplate.version",
    "tags",
}


def test_every_fixed_node_group_input_counts_as_a_replacement_in_make_diff(
    stack_run: StackRun,
) -> None:
    # A rendered group's inputs that EKS cannot update must be ones offline/diff.py treats as
    # replacing the group, so that a change to any of them is refused there (a new generation
    # instead). The provider's extra identity fields (clusterName) count too.
    rendered: set[str] = set()
    for group in stack_run.of_type(NODE_GROUP):
        for key, value in group.inputs.items():
            if key == "launchTemplate":
                rendered |= {f"launchTemplate.{k}" for k in value}
            else:
                rendered.add(key)
    fixed = rendered - UPDATED_IN_PLACE
    assert {"instanceTypes", "amiType", "subnetIds", "nodeRoleArn", "launchTemplate.id"} <= fixed
    assert fixed <= set(REPLACED_ON_CHANGE[NODE_GROUP]), fixed - set(REPLACED_ON_CHANGE[NODE_GROUP])
    # And nothing EKS updates in place is called a replacement.
    assert not UPDATED_IN_PLACE & set(REPLACED_ON_CHANGE[NODE_GROUP])


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
    # One per group: the four current ones and the two kept previous generations.
    assert len(templates) == 6
    by_id = {t.id: t for t in templates}
    for group in stack_run.of_type(NODE_GROUP):
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
    template = "k8s.io/cluster-autoscaler/node-template/label"
    generation = {"general": "2", "compute": "2"}.get(workload_class)
    assert asg_tags(production, workload_class) == {
        f"{template}/workload-class": workload_class,
        # A second generation's nodes carry their generation: the autoscaler then does not
        # take the two generations for similar groups (kubernetes/autoscaler
        # cluster-autoscaler-1.35.2 processors/nodegroupset/compare_nodegroups.go compares
        # every label but hostname, zone and, on AWS, eks.amazonaws.com/nodegroup and a few
        # others: aws_nodegroups.go), so a scale-up is never spread onto the group drained.
        **({f"{template}/node-group-generation": generation} if generation else {}),
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
