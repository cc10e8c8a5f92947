"""`make synth`: render one stack offline into build/<stack>/ and print a summary.

    python -m offline.synth --stack production [--out build] [--verbose]

Writes build/<stack>/inventory.json (every registered resource with its options and inputs),
build/<stack>/manifests/ (one YAML document per Kubernetes object) and build/<stack>/helm/
(one file per Helm release: chart, version, repository and values), and prints the stack's
monthly on-demand cost at desired size (offline/cost.py). The summary comes first: the stack and
its resource counts, the first `pulumi up` estimate, the cost, where the files went and any
warnings; then each node class's headroom. `--verbose` (`VERBOSE=1 make synth`) adds the
component tree and the count of every resource type. A stack whose estimate is above its
`monthlyBudgetUsd` is still written, then refused in one line (exit status 3).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from offline import cost
from offline.engine import PROJECT_DIR, RecordedResource, StackRun, run_stack
from offline.estimate import critical_path, describe
from stacks.aws_facts import EKS_KUBERNETES_RELEASES
from stacks.capacity import ClassCapacity, class_capacity, zone_loss_capacity
from stacks.environments import ENVIRONMENTS
from stacks.loader import render_date
from stacks.settings import StackSettings, support_warning

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


def _is_kubernetes_object(resource: RecordedResource) -> bool:
    return (
        resource.custom
        and resource.type.startswith("kubernetes:")
        and resource.type != HELM_RELEASE
    )


def _api_version_and_kind(type_token: str) -> tuple[str, str]:
    # kubernetes:apps/v1:Deployment -> ("apps/v1", "Deployment"); core/v1 -> "v1".
    _, api, kind = type_token.split(":")
    group, version = api.rsplit("/", 1)
    return (version if group == "core" else f"{group}/{version}"), kind


def kubernetes_objects(run: StackRun) -> list[dict[str, Any]]:
    """Every Kubernetes object the stack creates, as the manifest the provider would apply."""
    objects = []
    for resource in run.resources:
        if not _is_kubernetes_object(resource):
            continue
        api_version, kind = _api_version_and_kind(resource.type)
        body = {
            key: value
            for key, value in resource.inputs.items()
            if key not in ("apiVersion", "kind")
        }
        manifest = {
            "apiVersion": resource.inputs.get("apiVersion", api_version),
            "kind": resource.inputs.get("kind", kind),
            **body,
        }
        if not manifest.get("metadata", {}).get("name"):
            raise ValueError(
                f"{resource.urn} has no metadata.name: every object is named "
                "explicitly so that the render matches what the cluster gets"
            )
        objects.append(manifest)
    return sorted(
        objects,
        key=lambda o: (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]),
    )


def helm_releases(run: StackRun) -> list[dict[str, Any]]:
    return [resource.inputs for resource in run.of_type(HELM_RELEASE)]


def _file_name(*parts: str) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", part) for part in parts if part) + ".yaml"


def write_build(run: StackRun, out_dir: Path) -> Path:
    target = out_dir / run.stack
    if target.exists():
        shutil.rmtree(target)
    (target / "manifests").mkdir(parents=True)
    inventory = {
        "project": run.project,
        "stack": run.stack,
        "resources": [r.to_json() for r in run.resources],
    }
    (target / "inventory.json").write_text(json.dumps(inventory, indent=2, sort_keys=True) + "\n")
    for manifest in kubernetes_objects(run):
        metadata = manifest["metadata"]
        name = _file_name(manifest["kind"], metadata.get("namespace", ""), metadata["name"])
        (target / "manifests" / name).write_text(
            yaml.safe_dump(manifest, sort_keys=True, explicit_start=True)
        )
    releases = helm_releases(run)
    if releases:
        (target / "helm").mkdir()
        for release in releases:
            (target / "helm" / _file_name(str(release.get("name", "release")))).write_text(
                yaml.safe_dump(release, sort_keys=True, explicit_start=True)
            )
    return target


def headline(run: StackRun) -> str:
    """The stack and its counts: resources and components, and resources by provider."""
    custom = [r for r in run.resources if r.custom]
    by_provider: dict[str, int] = {}
    for resource in custom:
        package = resource.type.split(":")[0]
        if package == "pulumi":
            package = "providers"
        by_provider[package] = by_provider.get(package, 0) + 1
    counts = ", ".join(f"{package} {count}" for package, count in sorted(by_provider.items()))
    return (
        f"Stack {run.project}/{run.stack} (offline, mocked engine): {len(custom)} resources "
        f"({counts}) in {len(run.resources) - len(custom)} components"
    )


def warnings(settings: object) -> list[str]:
    """What the stack should act on soon (the render still passed)."""
    found = []
    if isinstance(settings, StackSettings):
        warning = support_warning(settings.kubernetes_version, render_date())
        if warning is not None:
            found.append(warning)
    return found


def written(target: Path, seconds: float) -> str:
    manifests = len(list((target / "manifests").glob("*.yaml")))
    releases = len(list((target / "helm").glob("*.yaml"))) if (target / "helm").exists() else 0
    try:
        shown = target.relative_to(Path.cwd())
    except ValueError:
        shown = target
    return (
        f"Wrote {shown}/: inventory.json, {manifests} manifests, {releases} Helm releases "
        f"({seconds:.1f}s)"
    )


def summary(run: StackRun) -> str:
    """The component tree (components with their direct child counts) and counts by type."""
    children: dict[str, list[RecordedResource]] = {}
    for resource in run.resources:
        children.setdefault(resource.parent, []).append(resource)
    lines = [f"Component tree of {run.project}/{run.stack}:"]

    def walk(urn: str, depth: int) -> None:
        for child in sorted(children.get(urn, []), key=lambda r: (r.custom, r.type, r.name)):
            if child.custom:
                continue
            own = children.get(child.urn, [])
            custom = sum(1 for r in own if r.custom)
            protected = sum(1 for r in own if r.protect)
            note = f"{custom} resources" + (f", {protected} protected" if protected else "")
            lines.append(f"{'  ' * depth}+ {child.type} {child.name} ({note})")
            walk(child.urn, depth + 1)

    roots = {
        r.parent
        for r in run.resources
        if r.parent.endswith(f"pulumi:pulumi:Stack::{run.project}-{run.stack}")
    }
    for root in sorted(roots):
        walk(root, 1)
    lines.append("")
    lines.append("Resources by type:")
    counts = run.count_by_type()
    width = max(map(len, counts))
    lines.extend(f"  {type_:<{width}}  {count:>4}" for type_, count in counts.items())
    custom = sum(1 for r in run.resources if r.custom)
    lines.append(
        f"  {'total':<{width}}  {len(run.resources):>4}  "
        f"({custom} resources, {len(run.resources) - custom} components)"
    )
    return "\n".join(lines)


def _headroom(report: ClassCapacity) -> str:
    room, needed = report.headroom, report.nodes_needed
    return (
        f"    {report.workload_class:<8} {report.nodes:>3} x {report.instance_type:<12} "
        f"pods pack into {'-' if needed is None else needed:>3} "
        f"headroom {room.cpu_millicores:>6}m CPU {room.memory_mib:>7}Mi memory "
        f"{room.pods:>5} pods" + (f" {room.gpus} GPU" if report.per_node.gpus else "")
    )


def capacity_report(settings: StackSettings) -> str:
    """The Kubernetes minor's EKS support, and each class's headroom at its maxima and with one
    zone lost (what the settings checked: a negative figure would have refused the stack)."""
    release = EKS_KUBERNETES_RELEASES[settings.kubernetes_version]
    days = (release.end_of_standard_support - render_date()).days
    groups, load = settings.group_plans(), settings.platform_load()
    zones = len(settings.availability_zones)
    lines = [
        f"Kubernetes {settings.kubernetes_version}: EKS standard support until "
        f"{release.end_of_standard_support} ({days} days from today)",
        "Capacity (nodes of each group's first type, less the kubelet and node agents; the nodes "
        "its pods pack into, first-fit-decreasing):",
        "  every service at its maximum replicas, controllers on general:",
        *map(_headroom, class_capacity(groups, settings.services.values(), load)),
        f"  one of {zones} zones lost, every service at its minimum, controllers on general:",
        *map(_headroom, zone_loss_capacity(groups, settings.services.values(), load, zones)),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="production")
    parser.add_argument("--all", action="store_true", help="every environment's stack")
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "build")
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=PROJECT_DIR,
        help="where Pulumi.yaml, the stack files and __main__.py are",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="also the component tree and counts by type"
    )
    args = parser.parse_args(argv)
    status = 0
    for stack in ENVIRONMENTS if args.all else (args.stack,):
        started = time.perf_counter()
        if sys.stderr.isatty():  # a person waiting; a refusal stays one line for scripts
            print(f"synth {stack}: rendering under the mock engine ...", file=sys.stderr)
        try:
            run = run_stack(stack, project_dir=args.project_dir)
        except Exception as error:
            print(f"synth {stack}: {error}", file=sys.stderr)
            status = 1
            continue
        target = write_build(run, args.out)
        try:
            estimate = cost.estimate(cost.from_recorded(run.resources))
        except cost.UnknownPrice as error:
            print(f"synth {stack}: cost: {error.args[0]}", file=sys.stderr)
            status = 1
            continue
        settings = run.namespace.get("settings")
        print(headline(run))
        print(describe(critical_path(run.resources)))
        print(cost.summary(estimate))
        print(written(target, time.perf_counter() - started))
        found = warnings(settings)
        print("Warnings: none" if not found else "\n".join(f"Warning: {w}" for w in found))
        if isinstance(settings, StackSettings):
            print()
            print(capacity_report(settings))
        print()
        if args.verbose:
            print(summary(run))
        else:
            print("The component tree and the count of every resource type: VERBOSE=1 make synth")
        problem = cost.over_budget(estimate, cost.budget_of(run.namespace), stack)
        if problem:
            print(f"synth {problem}", file=sys.stderr)
            status = status or cost.OVER_BUDGET
    return status


if __name__ == "__main__":
    sys.exit(main())
