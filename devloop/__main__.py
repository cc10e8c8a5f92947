"""`python -m devloop cluster|images|up|down [--stack development] [--dry-run] [--yes]`.

    cluster   the kind cluster and local registry the stack names  (make dev-cluster)
    images    build and push the placeholder image the stack pulls (make dev-images)
    up        cluster, images, then `pulumi up` the stack          (make dev-up)
    down      delete the kind cluster (the registry stays)          (make dev-down)

`--dry-run` prints the commands a fresh machine would run, and runs none.
"""

from __future__ import annotations

import argparse
import sys

from devloop import cluster, images
from devloop.runner import DevLoopError, DryRun, Runner, Shell


def pulumi_up(runner: Runner, stack: str, yes: bool) -> None:
    if not isinstance(runner, DryRun) and runner.query("pulumi", "whoami") is None:
        # Otherwise `pulumi up` would stop at an interactive sign-in to Pulumi Cloud.
        raise DevLoopError(
            "the Pulumi CLI is not logged in: once, `pulumi login --local` (or the team's "
            f"backend) and `pulumi stack init {stack}` (docs/development.md)"
        )
    runner.run("pulumi", "up", "--stack", stack, *(["--yes"] if yes else []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("cluster", "images", "up", "down"))
    parser.add_argument("--stack", default="development", help="a stack of a local cluster")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    parser.add_argument("--yes", action="store_true", help="pulumi up without confirming")
    args = parser.parse_args(argv)
    runner: Runner = DryRun() if args.dry_run else Shell()
    try:
        dev = images.dev_stack(args.stack)
        if args.step != "images":
            # The images step pushes to any registry (minikube's, Docker Desktop's); the others
            # make or remove the kind cluster the stack names.
            local = cluster.local_cluster(dev.settings.kube_context, dev.settings.image_registry)
        if args.step == "down":
            cluster.delete(runner, local)
            return 0
        if args.step in ("cluster", "up"):
            cluster.create(runner, local)
        if args.step in ("images", "up"):
            images.push(runner, dev)
        if args.step == "up":
            pulumi_up(runner, dev.stack, args.yes)
    except DevLoopError as error:
        print(f"devloop: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
