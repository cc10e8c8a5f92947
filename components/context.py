"""What every layer may use: where the stack deploys, how it names, tags and keeps resources,
and, once the foundation stands, the cluster. Layers get these instead of the settings object."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.shared.iam import OidcIssuer


@dataclass(frozen=True)
class StackContext:
    project: str
    stack: str
    region: str
    account_id: pulumi.Output[str]
    # Stack-wide tags; the AWS provider also applies them as default tags.
    tags: Mapping[str, str]
    # Protect stateful resources (and turn on the services' own deletion protection).
    protect: bool
    aws_provider: aws.Provider
    # The ARN of the permissions boundary every IAM role of the stack carries (the deploy role
    # may only create roles that carry it; see bootstrap/), or None.
    permissions_boundary: pulumi.Output[str] | None = None

    @property
    def prefix(self) -> str:
        """The stem of every name: `<project>-<stack>`."""
        return f"{self.project}-{self.stack}"

    @property
    def with_aws(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(providers=[self.aws_provider])


@dataclass(frozen=True)
class ClusterContext:
    """The cluster as the layers after the foundation see it."""

    name: pulumi.Output[str]
    oidc: OidcIssuer
    security_group_id: pulumi.Output[str]
    provider: k8s.Provider
    # What every Kubernetes object must wait for: nodes, DNS and the CSI driver.
    ready: Sequence[pulumi.Resource]


def stack_context(
    project: str,
    stack: str,
    region: str,
    tags: Mapping[str, str],
    protect: bool,
    permissions_boundary_policy: str | None = None,
) -> StackContext:
    """The AWS provider (region, default tags) and the account it deploys to."""
    aws_provider = aws.Provider(
        "aws", region=region, default_tags=aws.ProviderDefaultTagsArgs(tags=dict(tags))
    )
    account_id = aws.get_caller_identity_output(
        opts=pulumi.InvokeOutputOptions(provider=aws_provider)
    ).account_id
    boundary = (
        None
        if permissions_boundary_policy is None
        else account_id.apply(
            lambda account: f"arn:aws:iam::{account}:policy/{permissions_boundary_policy}"
        )
    )
    return StackContext(project, stack, region, account_id, tags, protect, aws_provider, boundary)


def with_cluster(context: StackContext, cluster: ClusterContext) -> pulumi.ResourceOptions:
    """Options of a component holding Kubernetes objects: both providers, after the cluster."""
    return pulumi.ResourceOptions(
        providers=[context.aws_provider, cluster.provider], depends_on=list(cluster.ready)
    )
