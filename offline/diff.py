"""`make diff BASE=<git ref> [STACK=...]`: what a change does to each stack, resource by resource.

Renders the stack at BASE (in a temporary git worktree) and in the work tree, offline, and
prints, in `pulumi up`'s terms: resources created, deleted, re-created (URN changed without an
alias), moved (alias), replaced (an input the provider cannot change in place) and updated
(in place), with each changed input path. Protected resources are marked; an update that makes EKS
replace every node of a group says "rolls nodes". Exits 1 when a protected resource would be
deleted, re-created or replaced.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from offline.engine import PROJECT_DIR
from offline.snapshot import Entry, compare
from stacks.environments import ENVIRONMENTS

# Updates of these make EKS replace the nodes of a managed node group: a launch template's
# new version (its tags or block devices, say), or the group's own AMI, version or template.
ROLLS_NODES = {
    "aws:ec2/launchTemplate:LaunchTemplate": None,
    "aws:eks/nodeGroup:NodeGroup": {"amiType", "version", "launchTemplate", "releaseVersion"},
}


# Inputs whose change makes the provider replace the resource rather than update it: pulumi-aws
# wraps terraform-provider-aws, whose schemas mark them ForceNew (internal/service/eks/
# cluster.go, node_group.go, addon.go). Anything else changed on these types is updated in place
# (a cluster's `version` by UpdateClusterVersion, a node group's by UpdateNodegroupVersion, an
# add-on's `addonVersion` by UpdateAddon).
REPLACED_ON = {
    "aws:eks/cluster:Cluster": {
        "name",
        "roleArn",
        "bootstrapSelfManagedAddons",
        "accessConfig.bootstrapClusterCreatorAdminPermissions",
        "kubernetesNetworkConfig.ipFamily",
        "kubernetesNetworkConfig.serviceIpv4Cidr",
        "remoteNetworkConfig",
        "outpostConfig",
    },
    "aws:eks/nodeGroup:NodeGroup": {
        "amiType",
        "capacityType",
        "clusterName",
        "diskSize",
        "instanceTypes",
        "launchTemplate.id",
        "launchTemplate.name",
        "nodeGroupName",
        "nodeGroupNamePrefix",
        "nodeRoleArn",
        "remoteAccess",
        "subnetIds",
    },
    "aws:eks/addon:Addon": {"addonName", "clusterName"},
}


def replacing(type_: str, paths: list[str]) -> list[str]:
    """The changed paths that make the provider replace a resource of `type_`."""
    keys = REPLACED_ON.get(type_, set())
    return [p for p in paths if any(p == k or p.startswith((f"{k}.", f"{k}[")) for k in keys)]


def render(project_dir: Path, stack: str, out: Path) -> dict[str, dict[str, Any]]:
    """Every resource of `stack` as rendered from `project_dir`, by URN."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "offline.synth",
            "--stack",
            stack,
            "--out",
            str(out),
            "--project-dir",
            str(project_dir),
        ],
        check=True,
        cwd=project_dir,
        stdout=subprocess.DEVNULL,
    )
    inventory = json.loads((out / stack / "inventory.json").read_text())
    return {r["urn"]: r for r in inventory["resources"]}


def changed_paths(old: Any, new: Any, path: str = "") -> Iterator[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            yield from changed_paths(old.get(key), new.get(key), f"{path}.{key}" if path else key)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from changed_paths(a, b, f"{path}[{index}]")
    elif old != new:
        yield path or "(value)"


def rolls_nodes(type_: str, paths: list[str]) -> bool:
    if type_ not in ROLLS_NODES:
        return False
    keys = ROLLS_NODES[type_]
    return keys is None or any(p.split(".")[0].split("[")[0] in keys for p in paths)


def report(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> tuple[str, bool]:
    """The difference as text, and whether it deletes or re-creates a protected resource."""
    difference = compare(
        [Entry(u, r["protect"], tuple(r["aliases"])) for u, r in before.items()],
        [Entry(u, r["protect"], tuple(r["aliases"])) for u, r in after.items()],
    )
    lines = [difference.report()] if not difference.empty else []
    moved_to = {new: old for old, new in difference.moved}
    replaced_protected = False
    for urn, resource in sorted(after.items()):
        previous = before.get(urn) or before.get(moved_to.get(urn, ""))
        if previous is None:
            continue
        paths = list(changed_paths(previous["inputs"], resource["inputs"]))
        if paths:
            marks = " [PROTECTED]" if resource["protect"] else ""
            forcing = replacing(resource["type"], paths)
            if forcing:
                replaced_protected = replaced_protected or resource["protect"]
                reason = ", ".join(forcing)
                lines.append(f"replaced{marks} (by {reason}): {urn}: {', '.join(paths)}")
                continue
            marks += " [rolls nodes]" if rolls_nodes(resource["type"], paths) else ""
            lines.append(f"updated{marks}: {urn}: {', '.join(paths)}")
    dangerous = (
        replaced_protected
        or any(e.protect for e in difference.deleted)
        or any(old.protect for old, _ in difference.recreated)
    )
    return "\n".join(line for line in lines if line), dangerous


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the git ref to compare with")
    parser.add_argument("--stack", action="append", help="a stack (default: every one)")
    args = parser.parse_args(argv)
    status = 0
    with tempfile.TemporaryDirectory() as scratch:
        base_dir = Path(scratch) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(base_dir), args.base],
            check=True,
            cwd=PROJECT_DIR,
        )
        try:
            for stack in args.stack or ENVIRONMENTS:
                # A stack new in the work tree: everything in it is an addition.
                new_stack = not (base_dir / f"Pulumi.{stack}.yaml").exists()
                before = {} if new_stack else render(base_dir, stack, Path(scratch) / "before")
                after = render(PROJECT_DIR, stack, Path(scratch) / "after")
                text, dangerous = report(before, after)
                print(
                    f"== {stack}: {len(before)} -> {len(after)} resources"
                    + (" (a new stack)" if new_stack else "")
                )
                print(text or "no changes")
                if dangerous:
                    print(f"{stack}: a protected resource would be deleted or re-created")
                    status = 1
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(base_dir)],
                check=False,
                cwd=PROJECT_DIR,
            )
    return status


if __name__ == "__main__":
    sys.exit(main())
