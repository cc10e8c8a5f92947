"""`make first-up STACK=...`: the order of a stack's first `pulumi up`, so no pod waits on an image
and the deploy jobs have a runner that reaches the cluster.

Every Deployment pulls `<its ECR repository>:<imageTag>`, and the stack creates those
repositories. In a single first `up` they are empty while the Deployments are created, the
pods sit in ImagePullBackOff and the update fails when Pulumi's readiness wait runs out. And
the workflows preview and deploy from the stack's own CodeBuild runner inside its VPC, which
the stack creates too. So a new stack goes up in three steps: the image repositories and the
deploy runner (`pulumi up --target`, with everything they need: their providers, the resources
they depend on and their parent components; AWS APIs only, nothing of the cluster's API, so it
runs from anywhere), then the images pushed under the tags the stack file names, then the
whole stack, from the runner. This prints those commands from the stack's rendered graph.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from offline.engine import RecordedResource, run_stack
from offline.estimate import waits

REGISTRY_TYPES = {"aws:ecr/repository:Repository", "aws:ecr/lifecyclePolicy:LifecyclePolicy"}
RUNNER_TYPE = "financial-planning:delivery:DeployRunner"
# The runner's builds reach GitHub and AWS through the network's NAT gateways, routes and
# endpoints, which nothing of the runner depends on: the whole network goes first with it.
WHOLE_IN_STEP_ONE = {RUNNER_TYPE, "financial-planning:foundation:Network"}


def _first(resource: RecordedResource, by_urn: dict[str, RecordedResource]) -> bool:
    """An image repository, or a part of the deploy runner or of the network."""
    if resource.type in REGISTRY_TYPES or resource.type in WHOLE_IN_STEP_ONE:
        return True
    parent = by_urn.get(resource.parent)
    return parent is not None and parent.type in WHOLE_IN_STEP_ONE


def first_targets(resources: Iterable[RecordedResource]) -> list[RecordedResource]:
    """The image repositories and the deploy runner, and all that `pulumi up --target` must
    create with them."""
    by_urn = {r.urn: r for r in resources}
    graph = waits(by_urn.values())
    wanted = [urn for urn, r in by_urn.items() if _first(r, by_urn)]
    targets: set[str] = set()
    while wanted:
        urn = wanted.pop()
        if urn in targets or urn not in by_urn:
            continue
        targets.add(urn)
        wanted.extend(graph[urn])
        parent = by_urn[urn].parent
        if parent in by_urn and by_urn[parent].type != "pulumi:pulumi:Stack":
            wanted.append(parent)
    return [r for r in by_urn.values() if r.urn in targets]


def images(resources: Iterable[RecordedResource]) -> list[str]:
    """The images the stack's Deployments pull, as rendered (repository URL and tag)."""
    found = set()
    for resource in resources:
        if resource.type == "kubernetes:apps/v1:Deployment":
            pod = resource.inputs["spec"]["template"]["spec"]
            for container in pod.get("initContainers", []) + pod["containers"]:
                found.add(str(container["image"]))
    return sorted(found)


def commands(stack: str, resources: list[RecordedResource]) -> str:
    targets = first_targets(resources)
    repositories = [
        str(r.state["repositoryUrl"]) for r in targets if r.type == "aws:ecr/repository:Repository"
    ]
    pushes = [i for i in images(resources) if i.rsplit(":", 1)[0] in repositories]
    if not targets:
        # No image repositories in the stack (development: a registry outside it).
        return "\n".join(
            [
                f"# 1. Build and push each service's image to {stack}'s registry:",
                *(f"#    {image}" for image in images(resources)),
                "# 2. Everything:",
                f"pulumi up --stack {stack}",
            ]
        )
    target_flags = " \\\n    ".join(f"--target '{r.urn}'" for r in targets)
    runner = any(r.type == RUNNER_TYPE for r in targets)
    return "\n".join(
        [
            f"# 1. The image repositories{' and the deploy runner' if runner else ''} of "
            f"{stack} ({len(targets)} resources, AWS APIs only), alone, with administrator "
            "credentials of the stack's account:",
            f"pulumi up --stack {stack} \\\n    {target_flags}",
            "# 2. Push each service's image under the tag the stack file names "
            "(account and region as rendered offline):",
            *(f"#    {image}" for image in pushes),
            "# 3. Everything else: the deploy workflow on the stack's runner (the next merge to "
            "main, or a re-run), or from a network the cluster's endpoint admits:",
            f"pulumi up --stack {stack}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="production")
    args = parser.parse_args(argv)
    try:
        run = run_stack(args.stack)
    except Exception as error:
        print(f"first-up {args.stack}: {error}", file=sys.stderr)
        return 1
    print(commands(args.stack, run.resources))
    return 0


if __name__ == "__main__":
    sys.exit(main())
