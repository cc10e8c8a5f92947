"""`make diff`: a reviewer's resource-level view of a change, in `pulumi up`'s terms."""

from __future__ import annotations

from typing import Any

import pytest

from offline.diff import main, report

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


CLUSTER = "aws:eks/cluster:Cluster"
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
        f"replaced (by instanceTypes[0], nodeGroupName): {URN}{GROUP}::g: "
        "instanceTypes[0], nodeGroupName"
    )
    assert not dangerous
    cluster = resource("c", CLUSTER, {"name": "x"}, protect=True)
    renamed = resource("c", CLUSTER, {"name": "y"}, protect=True)
    text, dangerous = report(by_urn(cluster), by_urn(renamed))
    assert dangerous and text.startswith("replaced [PROTECTED] (by name)")


def test_deleting_or_recreating_a_protected_resource_is_dangerous() -> None:
    bucket = resource("b", BUCKET, {"bucket": "x"}, protect=True)
    text, dangerous = report(by_urn(bucket), {})
    assert dangerous and text.startswith("deleted [PROTECTED: the update fails]")
    moved = resource("b", "aws:s3/bucket:Other", {"bucket": "x"}, protect=True)
    assert report(by_urn(bucket), by_urn(moved))[1]


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
