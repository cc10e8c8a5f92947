"""`make diff`: a reviewer's resource-level view of a change, in `pulumi up`'s terms."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from offline.diff import (
    FORMAT_SINCE,
    DiffError,
    check_base,
    main,
    node_group_refusals,
    render,
    report,
)
from offline.engine import PROJECT_DIR

URN = "urn:pulumi:s::p::"


def resource(
    name: str,
    type_: str,
    inputs: dict[str, Any],
    protect: bool = False,
    aliases: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "urn": f"{URN}{type_}::{name}",
        "type": type_,
        "protect": protect,
        "aliases": list(aliases),
        "inputs": inputs,
    }


def by_urn(*resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["urn"]: r for r in resources}


TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
GROUP = "aws:eks/nodeGroup:NodeGroup"
BUCKET = "aws:s3/bucket:Bucket"


def test_a_launch_template_change_says_it_rolls_nodes() -> None:
    before = by_urn(resource("lt", TEMPLATE, {"tagSpecifications": [{"tags": {"a": "1"}}]}))
    after = by_urn(resource("lt", TEMPLATE, {"tagSpecifications": [{"tags": {"a": "2"}}]}))
    text, dangerous = report(before, after)
    assert text == f"updated [rolls nodes]: {URN}{TEMPLATE}::lt: tagSpecifications[0].tags.a"
    assert not dangerous


def test_a_node_group_size_change_rolls_nothing() -> None:
    before = by_urn(resource("g", GROUP, {"scalingConfig": {"maxSize": 4}}))
    after = by_urn(resource("g", GROUP, {"scalingConfig": {"maxSize": 5}}))
    assert report(before, after)[0] == f"updated: {URN}{GROUP}::g: scalingConfig.maxSize"


ADDON = "aws:eks/addon:Addon"


def test_a_kubernetes_upgrade_is_an_in_place_update() -> None:
    # terraform-provider-aws internal/service/eks: a cluster's version (UpdateClusterVersion), a
    # node group's version (UpdateNodegroupVersion) and an add-on's version (UpdateAddon) are
    # not ForceNew.
    before = by_urn(
        resource("c", CLUSTER, {"version": "1.34"}, protect=True),
        resource("g", GROUP, {"version": "1.34"}),
        resource("a", ADDON, {"addonVersion": "v1.34.0-eksbuild.1"}),
    )
    after = by_urn(
        resource("c", CLUSTER, {"version": "1.35"}, protect=True),
        resource("g", GROUP, {"version": "1.35"}),
        resource("a", ADDON, {"addonVersion": "v1.35.0-eksbuild.1"}),
    )
    text, dangerous = report(before, after)
    assert not dangerous
    assert text.splitlines() == [
        f"updated: {URN}{ADDON}::a: addonVersion",
        f"updated [PROTECTED]: {URN}{CLUSTER}::c: version",
        f"updated [rolls nodes]: {URN}{GROUP}::g: version",
    ]


def test_a_forcing_input_replaces_and_a_protected_replacement_is_dangerous() -> None:
    # node_group.go: instance_types and node_group_name are ForceNew; cluster.go: name is.
    before = by_urn(resource("g", GROUP, {"instanceTypes": ["m5.large"], "nodeGroupName": "a"}))
    after = by_urn(resource("g", GROUP, {"instanceTypes": ["m5.xlarge"], "nodeGroupName": "b"}))
    text, dangerous = report(before, after)
    assert text == (
        f"replaced: {URN}{GROUP}::g: instanceTypes[0], nodeGroupName "
        "(the provider replaces on instanceTypes[0], nodeGroupName)"
    )
    assert not dangerous
    cluster = resource("c", CLUSTER, {"name": "x"}, protect=True)
    renamed = resource("c", CLUSTER, {"name": "y"}, protect=True)
    text, dangerous = report(by_urn(cluster), by_urn(renamed))
    assert dangerous and text.startswith("replaced [PROTECTED: the update fails]")
    assert text.endswith("(the provider replaces on name)")


def test_deleting_or_recreating_a_protected_resource_is_dangerous() -> None:
    bucket = resource("b", BUCKET, {"bucket": "x"}, protect=True)
    text, dangerous = report(by_urn(bucket), {})
    assert dangerous and text.startswith("deleted [PROTECTED: the update fails]")
    moved = resource("b", "aws:s3/bucket:Other", {"bucket": "x"}, protect=True)
    assert report(by_urn(bucket), by_urn(moved))[1]


CLUSTER = "aws:eks/cluster:Cluster"


def test_new_cluster_subnets_update_the_cluster_in_place_a_new_role_replaces_it() -> None:
    """terraform-provider-aws internal/service/eks/cluster.go (the schema pulumi-aws 7.x
    bundles): `vpc_config.subnet_ids` has no ForceNew and is sent with UpdateClusterConfig
    (since v5.25.0, after EKS allowed it in October 2023); `role_arn` is ForceNew."""
    old = {"roleArn": "arn:r1", "vpcConfig": {"subnetIds": ["a", "b", "c"]}}
    before = by_urn(resource("c", CLUSTER, old, protect=True))
    moved = by_urn(
        resource("c", CLUSTER, {**old, "vpcConfig": {"subnetIds": ["x", "y", "z"]}}, protect=True)
    )
    text, dangerous = report(before, moved)
    assert text.startswith(f"updated [PROTECTED]: {URN}{CLUSTER}::c: vpcConfig.subnetIds")
    assert not dangerous
    renamed = by_urn(resource("c", CLUSTER, {**old, "roleArn": "arn:r2"}, protect=True))
    text, dangerous = report(before, renamed)
    assert text.startswith("replaced [PROTECTED: the update fails]") and dangerous
    assert text.endswith("(the provider replaces on roleArn)")


def test_an_aliased_move_with_an_update_is_kept_and_shows_the_update() -> None:
    old = resource("b", BUCKET, {"bucket": "x"}, protect=True)
    new = resource("b", "aws:s3/bucket:Other", {"bucket": "y"}, protect=True, aliases=(old["urn"],))
    text, dangerous = report(by_urn(old), by_urn(new))
    assert not dangerous
    assert "moved by alias (kept)" in text
    assert f"updated [PROTECTED]: {new['urn']}: bucket" in text


@pytest.mark.manifests
def test_the_command_renders_both_revisions(capsys: pytest.CaptureFixture[str]) -> None:
    # The command end to end: BASE checked out in a worktree and rendered by its own synth, the
    # work tree rendered, the two compared. That is the same for every stack, so the cheapest
    # one shows it: development's render (a fresh interpreter each) imports no AWS provider
    # modules, about a quarter of staging's CPU. Each EKS stack's inventory, the file `render`
    # reads, is checked in tests/test_program.py::test_synth_writes_inventory_and_manifests and
    # priced from it as the diff prices it in tests/test_cost.py::
    # test_each_stack_is_priced_from_its_render; `report` over two real production renders in
    # tests/foundation/test_kubernetes_versions.py::
    # test_an_upgrade_is_one_in_place_update_of_cluster_add_ons_groups_and_autoscaler.
    assert main(["--base", "HEAD", "--stack", "development"]) == 0
    out = capsys.readouterr().out
    # Both revisions rendered whole (a count each side), then the cost line. What changed
    # between them depends on the work tree (a developer's uncommitted edits), so it is not
    # asserted here; the report's lines are tested above on inventories.
    lines = out.splitlines()
    assert re.fullmatch(r"== development: \d+ -> \d+ resources", lines[0]), out
    assert int(lines[0].split()[2]) > 50 and int(lines[0].split()[4]) > 50, out
    assert lines[-1] == "cost: nothing on AWS to price", out


# Newcomer errors: each is one line on stderr, exit 2, and no traceback.


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("diff: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


@pytest.mark.parametrize("argv", [["--stack", "staging"], ["--base", "--stack", "staging"]])
def test_no_base_says_how_to_name_one(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # `make diff` without BASE passes `--base` with no value: argparse must not answer first.
    line = one_line_error(argv, capsys)
    assert line.startswith("diff: BASE is not set") and "BASE=origin/main" in line


def test_a_bad_ref_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(["--base", "no-such-ref-anywhere"], capsys)
    assert line.startswith("diff: BASE=no-such-ref-anywhere is not a commit of this clone")


def test_a_misspelt_stack_lists_the_stacks(capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(["--base", "HEAD", "--stack", "prodution"], capsys)
    assert line == (
        "diff: no stack 'prodution': the stacks are development, production, staging "
        "(one Pulumi.<stack>.yaml each); did you mean production?"
    )


def in_this_clone(ref: str) -> bool:
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        cwd=PROJECT_DIR,
        capture_output=True,
        check=False,
    )
    return found.returncode == 0


@pytest.mark.skipif(
    not in_this_clone("d30d754") or not in_this_clone(FORMAT_SINCE),
    reason="a shallow clone lacks the history (the inventory check below still runs)",
)
def test_a_base_before_the_inventory_format_is_refused_before_rendering(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # d30d754: the base the issue reports (a KeyError: 'aliases' traceback, after rendering).
    line = one_line_error(["--base", "d30d754", "--stack", "production"], capsys)
    assert line.startswith("diff: BASE=d30d754 predates the inventory format")
    assert f"at or after {FORMAT_SINCE}" in line
    # The commit that brought the format is a usable base itself, and HEAD is.
    assert check_base(FORMAT_SINCE) and check_base("HEAD")

    # FORMAT_SINCE is where `aliases` entered the inventory: its parent's engine lacks them.
    def writes_aliases(ref: str) -> bool:
        engine = subprocess.run(
            ["git", "show", f"{ref}:offline/engine.py"],
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return '"aliases": self.aliases' in engine

    assert writes_aliases(FORMAT_SINCE) and not writes_aliases(f"{FORMAT_SINCE}^")


def test_an_old_inventory_is_refused_where_the_history_is_missing(tmp_path: Path) -> None:
    # A shallow clone cannot tell the base's age from the history: the rendered inventory
    # shows it (an old synth, faked here, wrote resources without aliases).
    old = tmp_path / "old"
    (old / "offline").mkdir(parents=True)
    (old / "offline" / "__init__.py").write_text("")
    (old / "offline" / "synth.py").write_text(
        "import argparse, json, pathlib\n"
        "p = argparse.ArgumentParser()\n"
        "for flag in ('--stack', '--out', '--project-dir'):\n"
        "    p.add_argument(flag)\n"
        "a = p.parse_args()\n"
        "target = pathlib.Path(a.out) / a.stack\n"
        "target.mkdir(parents=True)\n"
        "resource = {'urn': 'u', 'type': 't', 'protect': False, 'inputs': {}}\n"
        "(target / 'inventory.json').write_text(json.dumps({'resources': [resource]}))\n"
    )
    with pytest.raises(DiffError, match=r"^BASE=abc predates the inventory format .*no aliases"):
        render(old, "production", tmp_path / "out", "abc")


def test_a_base_that_fails_to_render_says_so_in_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    (broken / "offline").mkdir(parents=True)
    (broken / "offline" / "__init__.py").write_text("")
    (broken / "offline" / "synth.py").write_text(
        "import sys\nprint('first line', file=sys.stderr)\n"
        "print('synth production: what went wrong', file=sys.stderr)\nsys.exit(1)\n"
    )
    with pytest.raises(DiffError) as raised:
        render(broken, "production", tmp_path / "out", "abc")
    assert str(raised.value) == (
        "rendering production at BASE=abc failed: synth production: what went wrong"
    )


# Node groups: what EKS updates in place and what makes a new group. The EKS API reference
# (docs.aws.amazon.com/eks/latest/APIReference) lets UpdateNodegroupConfig change a group's
# labels, taints, scalingConfig, updateConfig and nodeRepairConfig, and UpdateNodegroupVersion
# its version, releaseVersion and launchTemplate version; every other CreateNodegroup field
# (instanceTypes, amiType, capacityType, diskSize, subnets, nodeRole, the launch template's id
# or name, the name itself) is fixed: ForceNew in terraform-provider-aws
# internal/service/eks/node_group.go, as pulumi-aws 7.x bundles it.
def node_group(name: str, workload_class: str, **inputs: Any) -> dict[str, Any]:
    ignore = inputs.pop("ignore", ["scalingConfig.desiredSize"])
    group = resource(name, GROUP, {"labels": {"workload-class": workload_class}, **inputs})
    group["ignoreChanges"] = ignore
    return group


def test_a_node_group_replaced_in_place_is_refused_with_the_setting_to_change() -> None:
    before = by_urn(node_group("p-general", "general", instanceTypes=["m5.large"]))
    after = by_urn(node_group("p-general", "general", instanceTypes=["m5.xlarge"]))
    assert node_group_refusals(before, after) == [
        "nodeGroups.general: generation 1 would be replaced in place (instanceTypes changed), "
        "its nodes deleted together: bump nodeGroups.general.generation to 2 and keep "
        'generation 1 as nodeGroups.general.previousGeneration (docs/cluster.md, "Node group '
        'generations")'
    ]
    # Each fixed field counts, not only the instance types (finding 3 of review 23: a new
    # subnet, role or launch template with the same name).
    for field, old, new in [
        ("subnetIds", ["a", "b"], ["a", "c"]),
        ("nodeRoleArn", "arn:1", "arn:2"),
        ("launchTemplate", {"id": "lt-1", "version": "1"}, {"id": "lt-2", "version": "1"}),
        ("diskSize", 20, 40),
    ]:
        refused = node_group_refusals(
            by_urn(node_group("p-general", "general", **{field: old})),
            by_urn(node_group("p-general", "general", **{field: new})),
        )
        assert len(refused) == 1 and f"({field} changed)" in refused[0], (field, refused)


def test_what_eks_updates_in_place_is_not_refused() -> None:
    # Negative controls: labels, taints, sizes and a launch template's new version are
    # UpdateNodegroupConfig / UpdateNodegroupVersion changes.
    old = {
        "labels": {"workload-class": "general"},
        "taints": [],
        "scalingConfig": {"minSize": 1, "maxSize": 3, "desiredSize": 1},
        "launchTemplate": {"id": "lt-1", "version": "1"},
        "version": "1.34",
    }
    new = {
        "labels": {"workload-class": "general", "team": "x"},
        "taints": [{"key": "k", "value": "v", "effect": "NO_SCHEDULE"}],
        "scalingConfig": {"minSize": 2, "maxSize": 6, "desiredSize": 4},
        "launchTemplate": {"id": "lt-1", "version": "2"},
        "version": "1.35",
    }
    before = by_urn(node_group("p-general", "general", **old))
    after = by_urn(node_group("p-general", "general", **new))
    assert node_group_refusals(before, after) == []


def test_a_new_generation_beside_the_old_one_passes_and_a_swap_in_one_up_is_refused() -> None:
    gen1 = node_group("p-general", "general", instanceTypes=["m5.large"], nodeGroupName="general")
    gen2 = node_group(
        "p-general-g2", "general", instanceTypes=["m5.xlarge"], nodeGroupName="general-g2"
    )
    # Step 1: generation 2 created, generation 1 kept as deployed.
    assert node_group_refusals(by_urn(gen1), by_urn(gen1, gen2)) == []
    # Step 2: generation 1 removed once drained.
    assert node_group_refusals(by_urn(gen1, gen2), by_urn(gen2)) == []
    # Both in one up: the old group's nodes go at the end of the up, all together.
    assert node_group_refusals(by_urn(gen1), by_urn(gen2)) == [
        "nodeGroups.general: generation 2 is created and generation 1 deleted in one up, its "
        "pods evicted together: keep generation 1 as nodeGroups.general.previousGeneration "
        'for this up, and drain it before the next (docs/cluster.md, "Node group generations")'
    ]
    # A kept generation that no longer matches what is deployed would itself be replaced.
    changed = node_group(
        "p-general", "general", instanceTypes=["m5.2xlarge"], nodeGroupName="general"
    )
    assert node_group_refusals(by_urn(gen1, gen2), by_urn(changed, gen2)) == [
        "nodeGroups.general.previousGeneration: generation 1 as kept would be replaced "
        "(instanceTypes differ from the deployed group): state them as deployed"
    ]


def test_a_retiring_group_s_ignored_version_is_no_change() -> None:
    # pulumi ignoreChanges: the state's value stands for the input, so no update is shown.
    old = node_group("p-general", "general", version="1.34")
    new = node_group(
        "p-general", "general", version="1.35", ignore=["scalingConfig.desiredSize", "version"]
    )
    assert report(by_urn(old), by_urn(new))[0] == ""
    plain = node_group("p-general", "general", version="1.35")
    assert report(by_urn(old), by_urn(plain))[0].endswith(": version")


JOB = "kubernetes:batch/v1:Job"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
ASG_TAG = "aws:autoscaling/tag:Tag"


def test_a_job_s_new_template_or_name_replaces_it_a_deployment_s_template_updates() -> None:
    # pulumi-kubernetes provider/pkg/provider/diff.go at v4.32.0 (forceNewProperties): every
    # object is replaced on .metadata.name/.namespace; a batch/v1 Job also on .spec.template,
    # .spec.completions, .spec.parallelism, .spec.selector; a Deployment only on .spec.selector.
    template = {"spec": {"containers": [{"image": "a"}]}}
    newer = {"spec": {"containers": [{"image": "b"}]}}
    job = resource("j", JOB, {"metadata": {"name": "j-1"}, "spec": {"template": template}})
    job2 = resource("j", JOB, {"metadata": {"name": "j-1"}, "spec": {"template": newer}})
    assert report(by_urn(job), by_urn(job2))[0].startswith(f"replaced: {URN}{JOB}::j")
    renamed = resource("j", JOB, {"metadata": {"name": "j-2"}, "spec": {"template": template}})
    assert report(by_urn(job), by_urn(renamed))[0].endswith(
        "(the provider replaces on metadata.name)"
    )
    deployment = resource("d", DEPLOYMENT, {"spec": {"template": template}})
    rolled = resource("d", DEPLOYMENT, {"spec": {"template": newer}})
    assert report(by_urn(deployment), by_urn(rolled))[0].startswith("updated: ")


def test_an_asg_tag_moved_to_another_group_or_key_is_replaced_its_value_updated() -> None:
    # terraform-provider-aws internal/service/autoscaling/group_tag.go (aws_autoscaling_group_
    # tag): autoscaling_group_name and tag.key are ForceNew, tag.value is not.
    tag = {"autoscalingGroupName": "eks-a", "tag": {"key": "k", "value": "1"}}
    moved = resource("t", ASG_TAG, {**tag, "autoscalingGroupName": "eks-b"})
    assert report(by_urn(resource("t", ASG_TAG, tag)), by_urn(moved))[0].startswith("replaced")
    rekeyed = resource("t", ASG_TAG, {**tag, "tag": {"key": "k2", "value": "1"}})
    assert report(by_urn(resource("t", ASG_TAG, tag)), by_urn(rekeyed))[0].startswith("replaced")
    revalued = resource("t", ASG_TAG, {**tag, "tag": {"key": "k", "value": "2"}})
    assert report(by_urn(resource("t", ASG_TAG, tag)), by_urn(revalued))[0].startswith("updated")
