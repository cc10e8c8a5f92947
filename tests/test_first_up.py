"""A new stack's first `pulumi up`: repositories and the deploy runner first, so no pod waits on
an image and the deploy jobs have a runner inside the VPC."""

from __future__ import annotations

from offline.engine import StackRun
from offline.estimate import waits
from offline.first_up import commands, first_targets, images
from tests.lookup import app_deployments
from tests.records import STACK, node


def test_the_targets_bring_what_the_repositories_need_and_nothing_of_the_cluster() -> None:
    key = node("key", "aws:kms/key:Key")
    registry = node("registry", "p:ImageRegistry", custom=False)
    provider = node("aws", "pulumi:providers:aws")
    repository = node(
        "repo",
        "aws:ecr/repository:Repository",
        parent=registry.urn,
        dependencies=(key.urn,),
        provider=f"{provider.urn}::id-1",
    )
    policy = node(
        "repo",
        "aws:ecr/lifecyclePolicy:LifecyclePolicy",
        parent=registry.urn,
        dependencies=(repository.urn,),
    )
    cluster = node("cluster", "aws:eks/cluster:Cluster", dependencies=(key.urn,))
    stack = node("p-s", "pulumi:pulumi:Stack", custom=False, parent="")
    assert stack.urn == STACK

    targets = first_targets([key, registry, provider, repository, policy, cluster, stack])

    assert {t.name for t in targets} == {"key", "registry", "aws", "repo"}
    # The repository, its lifecycle policy, the key it uses, its provider and its component.
    assert len(targets) == 5 and stack.urn not in {t.urn for t in targets}


def test_each_stacks_first_step_is_closed_and_covers_every_deployments_image(
    stack_run: StackRun,
) -> None:
    resources = stack_run.resources
    targets = first_targets(resources)
    targeted = {t.urn for t in targets}
    graph = waits(resources)
    by_urn = {r.urn: r for r in resources}
    for target in targets:
        # `pulumi up --target` can create it: what it waits for and its parent are targeted too.
        assert graph[target.urn] <= targeted, target.urn
        parent = by_urn.get(target.parent)
        assert parent is None or parent.type == "pulumi:pulumi:Stack" or parent.urn in targeted
        assert not target.type.startswith("kubernetes:"), target.urn
    repositories = {
        str(t.state["repositoryUrl"]) for t in targets if t.type == "aws:ecr/repository:Repository"
    }
    assert len(repositories) == 8
    # The deploy runner and the rule that lets it reach the API are in step 1, so that step 3
    # runs on it.
    runner = stack_run.one("financial-planning:delivery:DeployRunner")
    parts = {r.urn for r in resources if r.parent == runner.urn}
    assert runner.urn in targeted and parts and parts <= targeted
    assert {"aws:codebuild/project:Project", "aws:codebuild/webhook:Webhook"} <= {
        t.type for t in targets
    }
    # With the way out of its subnets: the network's NAT gateways, routes and endpoints (the
    # network's own: GuardDuty's endpoint belongs to the audit trail and waits for step 3).
    network = stack_run.one("financial-planning:foundation:Network")
    for kind in (
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/route:Route",
        "aws:ec2/vpcEndpoint:VpcEndpoint",
    ):
        own = {r.urn for r in stack_run.of_type(kind) if r.parent == network.urn}
        assert own and own <= targeted, kind
    # Every service's Deployment pulls from a repository of step 1, under a tag step 2 pushes
    # (platform workloads, such as the rate limiter, pull public images).
    deployment_images = images(app_deployments(stack_run))
    assert len(deployment_images) == 8
    assert {image.rsplit(":", 1)[0] for image in deployment_images} == repositories
    text = commands(stack_run.stack, resources)
    assert all(f"#    {image}" in text for image in deployment_images)
    assert all(f"--target '{urn}'" in text for urn in targeted)
    assert text.rstrip().endswith(f"pulumi up --stack {stack_run.stack}")
