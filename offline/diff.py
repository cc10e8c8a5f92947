"""`make diff BASE=<git ref> [STACK=...]`: what a change does to each stack, resource by resource.

Renders the stack at BASE (in a temporary git worktree) and in the work tree, offline, and
prints, in `pulumi up`'s terms: resources created, deleted, re-created (URN changed without an
alias), moved (alias), replaced (an input the provider cannot update in place) and updated,
with each changed input path. Protected resources are marked; an update that makes EKS
replace every node of a group says "rolls nodes". Each stack's monthly on-demand cost at
desired size before and after, and what changed it, follow (offline/cost.py prices both renders
with the work tree's price table). Exits 1 when a protected resource would be deleted,
re-created or replaced, when a node group would be replaced in place or swapped for its next
generation in one up (one line each, naming the setting to change), or the work tree's
estimate is above the stack's budget, and 2 with one
line (no traceback) when BASE is missing, names no commit or predates the inventory format, or
a stack is unknown.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from offline import cost
from offline.engine import PROJECT_DIR, stack_names, unknown_stack
from offline.snapshot import Entry, compare
from stacks.environments import ENVIRONMENTS

# Updates of these make EKS replace the nodes of a managed node group: a launch template's
# new version (its tags or block devices, say), or the group's own AMI, version or template.
ROLLS_NODES = {
    "aws:ec2/launchTemplate:LaunchTemplate": None,
    "aws:eks/nodeGroup:NodeGroup": {"amiType", "version", "launchTemplate", "releaseVersion"},
}


# Inputs whose change makes the provider replace the resource rather than update it: the
# ForceNew fields of the bridged terraform-provider-aws schema (internal/service/eks/cluster.go,
# node_group.go and addon.go as pulumi-aws 7.x bundles them, with deletion_protection and
# control_plane_scaling_config). Anything else changed on these types is updated in place: a
# cluster's `version` by UpdateClusterVersion, a node group's by UpdateNodegroupVersion, an
# add-on's `addonVersion` by UpdateAddon, and `vpcConfig.subnetIds` (since v5.25.0) by EKS
# UpdateClusterConfig, within the zones the cluster was created in.
REPLACED_ON_CHANGE = {
    "aws:eks/cluster:Cluster": (
        "name",
        "roleArn",
        "bootstrapSelfManagedAddons",
        "accessConfig.bootstrapClusterCreatorAdminPermissions",
        "kubernetesNetworkConfig.ipFamily",
        "kubernetesNetworkConfig.serviceIpv4Cidr",
        "outpostConfig.controlPlaneInstanceType",
        "outpostConfig.controlPlanePlacement.groupName",
        "remoteNetworkConfig",
    ),
    "aws:eks/nodeGroup:NodeGroup": (
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
    ),
    "aws:eks/addon:Addon": ("addonName", "clusterName"),
    # internal/service/autoscaling/group_tag.go: autoscaling_group_name and tag.key ForceNew.
    "aws:autoscaling/tag:Tag": ("autoscalingGroupName", "tag.key"),
    # pulumi-kubernetes provider/pkg/provider/helm_release.go: a release's name and namespace.
    "kubernetes:helm.sh/v3:Release": ("name", "namespace"),
}
# pulumi-kubernetes provider/pkg/provider/diff.go (`forceNewProperties`, at v4.32.0 and at main
# of 2026-07-01, unchanged between; the pinned 4.34.2 is not in the stored snapshot): every
# object is replaced when its name or namespace changes, and these kinds also on these fields.
# ConfigMaps and Secrets count as immutable unless the provider sets enableConfigMapMutable /
# enableSecretMutable, which this program's provider does not (both default to false). A
# replaced object that keeps its name is deleted before it is created again.
KUBERNETES_IDENTITY = ("metadata.name", "metadata.namespace")
KUBERNETES_REPLACED_ON_CHANGE = {
    "batch/v1:Job": ("spec.completions", "spec.parallelism", "spec.selector", "spec.template"),
    "core/v1:ConfigMap": ("binaryData", "data"),
    "core/v1:Secret": ("type", "stringData", "data"),
    "core/v1:PersistentVolumeClaim": (
        "spec.accessModes",
        "spec.selector",
        "spec.storageClassName",
        "spec.volumeName",
    ),
    "core/v1:Service": ("spec.clusterIP",),
    "apps/v1:Deployment": ("spec.selector",),
    "apps/v1:DaemonSet": ("spec.selector",),
    "apps/v1:StatefulSet": (
        "spec.podManagementPolicy",
        "spec.revisionHistoryLimit",
        "spec.selector",
        "spec.serviceName",
        "spec.volumeClaimTemplates",
    ),
    "rbac.authorization.k8s.io/v1:RoleBinding": ("roleRef",),
    "rbac.authorization.k8s.io/v1:ClusterRoleBinding": ("roleRef",),
    "storage.k8s.io/v1:StorageClass": ("parameters", "provisioner"),
}


def replaced_on_change(type_: str) -> tuple[str, ...]:
    """The input paths whose change makes the provider replace a resource of this type."""
    if type_.startswith("kubernetes:") and not type_.startswith("kubernetes:helm.sh/"):
        kind = type_.removeprefix("kubernetes:")
        return (*KUBERNETES_IDENTITY, *KUBERNETES_REPLACED_ON_CHANGE.get(kind, ()))
    return REPLACED_ON_CHANGE.get(type_, ())


def _bare(path: str) -> str:
    return re.sub(r"\[[0-9]+\]", "", path)


def _under(path: str, fields: tuple[str, ...] | list[str]) -> bool:
    bare = _bare(path)
    return any(bare == f or bare.startswith(f"{f}.") for f in fields)


def forces_replacement(type_: str, paths: list[str]) -> list[str]:
    """The changed paths that make the provider replace a resource of this type."""
    fields = replaced_on_change(type_)
    return [path for path in paths if _under(path, fields)]


def ignored(paths: list[str], ignore_changes: list[str]) -> list[str]:
    """The paths Pulumi does not diff: under the resource's `ignoreChanges`, the state's value
    stands for the input (a group's desired size, a retiring node group's version)."""
    return [path for path in paths if not _under(path, ignore_changes)]


# The first commit whose render this diff can compare with today's: from it on, the inventory
# holds the real engine's URNs and each resource's aliases (offline/engine.py, `to_json`).
# Before it URNs were the mock engine's, so every resource would show as re-created.
FORMAT_SINCE = "898266f"
# What `report` reads of each inventory resource.
INVENTORY_KEYS = ("urn", "type", "protect", "aliases", "inputs")


class DiffError(Exception):
    """A problem the person running `make diff` can fix: printed as one line, no traceback."""


def render(
    project_dir: Path,
    stack: str,
    out: Path,
    base: str | None = None,
    over_budget: list[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every resource of `stack` as rendered from `project_dir` (a checkout of `base`, or the
    work tree), by URN. A render above the stack's budget is still read; its one-line refusal
    goes to `over_budget` when given."""
    where = f"BASE={base}" if base is not None else "the work tree"
    result = subprocess.run(
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
        check=False,
        cwd=project_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Over its budget, a stack is still rendered (and its inventory written): the diff shows it.
    if result.returncode not in (0, cost.OVER_BUDGET):
        last = (result.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise DiffError(f"rendering {stack} at {where} failed: {last}")
    if result.returncode == cost.OVER_BUDGET and over_budget is not None:
        over_budget.append(result.stderr.strip().splitlines()[-1].removeprefix("synth "))
    inventory = json.loads((out / stack / "inventory.json").read_text())
    missing = sorted(
        {key for r in inventory["resources"] for key in INVENTORY_KEYS if key not in r}
    )
    if missing:
        raise DiffError(
            f"{where} predates the inventory format this diff compares (its resources have no "
            f"{', '.join(missing)}): use a base at or after {FORMAT_SINCE}, e.g. BASE=origin/main"
        )
    return {r["urn"]: r for r in inventory["resources"]}


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=PROJECT_DIR, capture_output=True, text=True, check=False
    )


def check_base(base: str | None) -> str:
    """The commit BASE names, or one line saying what is wrong with it and what to do."""
    if not base:
        raise DiffError(
            "BASE is not set: name the git ref to compare with (make diff BASE=origin/main)"
        )
    commit = git("rev-parse", "--verify", "--quiet", f"{base}^{{commit}}").stdout.strip()
    if not commit:
        raise DiffError(
            f"BASE={base} is not a commit of this clone: give a branch, tag or commit id "
            "(`git fetch` first for a remote branch)"
        )
    # Without FORMAT_SINCE in the clone (a shallow one), `render` still finds an old base by
    # its inventory.
    known = git("rev-parse", "--verify", "--quiet", f"{FORMAT_SINCE}^{{commit}}").returncode == 0
    if known and git("merge-base", "--is-ancestor", FORMAT_SINCE, commit).returncode != 0:
        raise DiffError(
            f"BASE={base} predates the inventory format this diff compares (real-engine URNs "
            f"and aliases): use a base at or after {FORMAT_SINCE}, e.g. BASE=origin/main"
        )
    return commit


def check_stacks(stacks: list[str] | None) -> list[str]:
    """The stacks to compare (default: every environment's), each one that exists."""
    known = stack_names()
    for stack in stacks or []:
        if stack not in known:
            raise DiffError(unknown_stack(stack))
    return stacks or list(ENVIRONMENTS)


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
        paths = ignored(
            list(changed_paths(previous["inputs"], resource["inputs"])),
            resource.get("ignoreChanges") or [],
        )
        replacing = forces_replacement(resource["type"], paths)
        if replacing:
            marks = " [PROTECTED: the update fails]" if resource["protect"] else ""
            lines.append(
                f"replaced{marks}: {urn}: {', '.join(paths)} (the provider replaces on "
                f"{', '.join(replacing)})"
            )
            replaced_protected = replaced_protected or resource["protect"]
        elif paths:
            marks = " [PROTECTED]" if resource["protect"] else ""
            marks += " [rolls nodes]" if rolls_nodes(resource["type"], paths) else ""
            lines.append(f"updated{marks}: {urn}: {', '.join(paths)}")
    dangerous = (
        replaced_protected
        or any(e.protect for e in difference.deleted)
        or any(old.protect for old, _ in difference.recreated)
    )
    return "\n".join(line for line in lines if line), dangerous


NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"


def _generation(resource: dict[str, Any]) -> int:
    """A node group's generation, from its name (components/foundation/node_group.py,
    `resource_name`: generation 1 has no suffix)."""
    found = re.search(r"-g([0-9]+)$", resource["urn"].rsplit("::", 1)[-1])
    return int(found[1]) if found else 1


def _workload_class(resource: dict[str, Any]) -> str:
    return str((resource["inputs"].get("labels") or {}).get("workload-class", "?"))


def node_group_refusals(
    before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]
) -> list[str]:
    """One line for each node group that `pulumi up` would replace in place (deleting its
    nodes at the end of the up, its pods evicted together) or swap for its next generation
    in a single up, naming the setting that makes it a blue/green change instead (docs/cluster.md,
    "Node group generations")."""
    old_groups = {u: r for u, r in before.items() if r["type"] == NODE_GROUP}
    new_groups = {u: r for u, r in after.items() if r["type"] == NODE_GROUP}
    newest: dict[str, int] = {}
    for group in new_groups.values():
        workload_class = _workload_class(group)
        newest[workload_class] = max(newest.get(workload_class, 0), _generation(group))
    problems = []
    for urn, group in sorted(new_groups.items()):
        previous = old_groups.get(urn)
        if previous is None:
            continue
        paths = ignored(
            list(changed_paths(previous["inputs"], group["inputs"])),
            group.get("ignoreChanges") or [],
        )
        fields = sorted({_bare(p).split(".")[0] for p in forces_replacement(NODE_GROUP, paths)})
        if not fields:
            continue
        workload_class, generation = _workload_class(group), _generation(group)
        changed = ", ".join(fields)
        if generation < newest[workload_class]:
            problems.append(
                f"nodeGroups.{workload_class}.previousGeneration: generation {generation} as "
                f"kept would be replaced ({changed} differ from the deployed group): state "
                "them as deployed"
            )
        else:
            problems.append(
                f"nodeGroups.{workload_class}: generation {generation} would be replaced in "
                f"place ({changed} changed), its nodes deleted together: bump "
                f"nodeGroups.{workload_class}.generation to {generation + 1} and keep "
                f"generation {generation} as nodeGroups.{workload_class}.previousGeneration "
                '(docs/cluster.md, "Node group generations")'
            )
    created = {_workload_class(g): _generation(g) for u, g in new_groups.items() if u not in before}
    deleted = {_workload_class(g): _generation(g) for u, g in old_groups.items() if u not in after}
    for workload_class in sorted(created.keys() & deleted.keys()):
        old, new = deleted[workload_class], created[workload_class]
        problems.append(
            f"nodeGroups.{workload_class}: generation {new} is created and generation {old} "
            "deleted in one up, its pods evicted together: keep generation "
            f"{old} as nodeGroups.{workload_class}.previousGeneration for this up, and drain "
            'it before the next (docs/cluster.md, "Node group generations")'
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Optional to argparse, so that `make diff` without BASE (`--base` with no value) gets
    # the one-line explanation of check_base rather than a usage message.
    parser.add_argument("--base", nargs="?", help="the git ref to compare with")
    parser.add_argument("--stack", action="append", help="a stack (default: every one)")
    args = parser.parse_args(argv)
    try:
        return compare_with(check_base(args.base), args.base, check_stacks(args.stack))
    except DiffError as error:
        print(f"diff: {error}", file=sys.stderr)
        return 2


def compare_with(commit: str, base: str, stacks: list[str]) -> int:
    status = 0
    with tempfile.TemporaryDirectory() as scratch:
        base_dir = Path(scratch) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(base_dir), commit],
            check=True,
            cwd=PROJECT_DIR,
        )
        try:
            for stack in stacks:
                # A stack new in the work tree: everything in it is an addition.
                new_stack = not (base_dir / f"Pulumi.{stack}.yaml").exists()
                before = (
                    {} if new_stack else render(base_dir, stack, Path(scratch) / "before", base)
                )
                over_budget: list[str] = []
                after = render(PROJECT_DIR, stack, Path(scratch) / "after", None, over_budget)
                text, dangerous = report(before, after)
                print(
                    f"== {stack}: {len(before)} -> {len(after)} resources"
                    + (" (a new stack)" if new_stack else "")
                )
                print(text or "no changes")
                print(cost.inventory_change(before.values(), after.values()))
                if dangerous:
                    print(f"{stack}: a protected resource would be deleted or re-created")
                    status = 1
                for problem in node_group_refusals(before, after):
                    print(f"{stack}: {problem}")
                    status = 1
                for problem in over_budget:
                    print(problem)
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
