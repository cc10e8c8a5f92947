"""`make diff`: a reviewer's resource-level view of a change, in `pulumi up`'s terms."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from offline.diff import FORMAT_SINCE, DiffError, check_base, main, render, report
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
    assert main(["--base", "HEAD", "--stack", "staging"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("== staging: ")


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
