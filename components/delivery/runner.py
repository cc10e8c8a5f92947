"""The stack's deploy runner: an AWS CodeBuild project that runs the repository's GitHub Actions
jobs labelled for it, in the stack's private subnets, so that `pulumi preview` and `pulumi up`
reach the cluster's API endpoint from inside the VPC (GitHub-hosted runners cannot: their
egress addresses are large dynamic ranges, and the endpoint is private plus at most 40 CIDRs).

How CodeBuild runs GitHub Actions jobs (CodeBuild user guide, "Self-hosted GitHub Actions
runners in AWS CodeBuild"): a project whose source is the GitHub repository, with a webhook
filtered on WORKFLOW_JOB_QUEUED; a job whose `runs-on` is
`codebuild-<project>-${{ github.run_id }}-${{ github.run_attempt }}` starts one build of the
project, which registers an ephemeral runner for that one job. The project authenticates to
GitHub with the bootstrap's CodeConnections connection.

What a job on the runner may do in AWS comes from the role it assumes through GitHub's OIDC
(the stack's deploy or preview role), not from the project's role: that one only writes the
build's logs and makes the build's network interface (it is visible to the job, so it holds
nothing else). Any job that names the runner's label in a workflow the webhook accepts gets
a build, whatever environment it names or omits (see RUNNER_WORKFLOWS).

The first `up` of a stack has no runner yet: `make first-up` targets the runner and what it
needs (network, cluster, repositories) from outside the VPC, where only AWS APIs are called
(docs/delivery.md, "A new stack's first up").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.shared.iam import PARTITION, policy_document, service_trust_policy
from components.shared.kms import encryption_key, log_group_key_policy

# CodeBuild's curated Ubuntu image (x86_64): git, the AWS CLI (`aws eks get-token` signs the
# kubeconfig's requests) and Python, which the jobs' setup actions build on.
RUNNER_IMAGE = "aws/codebuild/standard:7.0"
# One build is one job: it may run longer than any job labelled for the runner (the deploy
# jobs' 90 minutes; tests/test_workflows.py compares them). CodeBuild allows 5 to 2160.
BUILD_TIMEOUT_MINUTES = 120
# The workflows whose jobs the runner takes (their `name:`; webhook filter WORKFLOW_NAME, a
# regular expression on the workflow's name, CodeBuild API reference, WebhookFilter). This is
# tidiness, not protection: a pull request runs its own copy of the workflow files, so it can
# give any job of a workflow with one of these names the runner's label (and drop the `if:`
# that keeps forks off). What keeps pull-request code off the runners is who may run
# workflows at all: those who can push a branch to the repository, and forks only as the
# repository's Actions settings allow (docs/delivery.md, "Runners inside the VPC"). Such a job gets
# the stack's network position and the project role below, never a deploy or preview role:
# those trust only their GitHub environments. A filter on the sender (ACTOR_ACCOUNT_ID) is not
# used: CodeBuild does not document which account a WORKFLOW_JOB_QUEUED event carries, and a
# teammate's branch would pass it anyway.
RUNNER_WORKFLOWS = ("deploy", "pull-request")


def runner_project_name(prefix: str) -> str:
    """The CodeBuild project, which the jobs' `runs-on` label names."""
    return f"{prefix}-runner"


def runner_label(project_name: str) -> str:
    """The `runs-on` label that sends a job to the project (CodeBuild user guide, "Label
    overrides supported with the CodeBuild-hosted GitHub Actions runner": required)."""
    return f"codebuild-{project_name}-${{{{ github.run_id }}}}-${{{{ github.run_attempt }}}}"


@dataclass(frozen=True)
class DeployRunnerArgs:
    project_name: str
    # owner/name on GitHub, and the connection CodeBuild reaches it through.
    repository: str
    connection_arn: str
    compute_type: str
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    subnet_arns: Sequence[pulumi.Input[str]]
    # The security group EKS puts on the API endpoint's network interfaces.
    cluster_security_group_id: pulumi.Input[str]
    region: str
    account_id: pulumi.Input[str]
    log_retention_days: int
    protect: bool
    permissions_boundary: pulumi.Input[str] | None = None


class DeployRunner(pulumi.ComponentResource):
    project_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: DeployRunnerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:delivery:DeployRunner", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # The deploy job runs on this runner and updates the stack it belongs to: replacing the
        # group or one of its rules would cut the job off mid-update (and a rule created before
        # its twin is deleted fails with InvalidPermission.Duplicate). So they are protected
        # like the stack's stateful resources: such a change fails `make diff` on its pull
        # request and stops the `up` at that resource instead of cutting it off; a person
        # applies it from an administrator's machine (docs/operations.md, "Known limits"). The
        # rules are deleted before they are re-created. Neither option is part of a URN.
        kept = pulumi.ResourceOptions(parent=self, protect=args.protect)
        rule_kept = pulumi.ResourceOptions(
            parent=self, protect=args.protect, delete_before_replace=True
        )
        # No inbound rule; out only HTTPS (GitHub, the Pulumi CLI and plugins, PyPI, AWS APIs
        # and the cluster's endpoint). The provider removes AWS's default allow-all egress rule
        # from a new group (pulumi-aws ec2.SecurityGroup, "NOTE on Egress rules").
        group = aws.ec2.SecurityGroup(
            name,
            vpc_id=args.vpc_id,
            description="Deploy runner: no inbound, HTTPS out",
            tags={"Name": name},
            opts=kept,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-https",
            security_group_id=group.id,
            cidr_ipv4="0.0.0.0/0",
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="HTTPS out: GitHub, Pulumi, PyPI, AWS APIs, the cluster endpoint",
            opts=rule_kept,
        )
        # EKS attaches its cluster security group to the API endpoint's network interfaces in
        # the VPC (EKS user guide, "View Amazon EKS security group requirements for
        # clusters"); by default it admits only itself.
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-to-api",
            security_group_id=args.cluster_security_group_id,
            referenced_security_group_id=group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="The deploy runner reaches the Kubernetes API",
            opts=rule_kept,
        )

        log_group_name = f"/aws/codebuild/{args.project_name}"
        key = encryption_key(
            f"{name}-logs",
            alias=f"{args.project_name}-logs",
            description=f"Encryption of {args.project_name}'s build logs",
            protect=args.protect,
            parent=self,
            policy=log_group_key_policy(args.account_id, args.region, log_group_name),
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-builds",
            name=log_group_name,
            retention_in_days=args.log_retention_days,
            kms_key_id=key.arn,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )

        role = aws.iam.Role(
            name,
            assume_role_policy=service_trust_policy("codebuild.amazonaws.com"),
            description=f"CodeBuild project {args.project_name}: logs and network only",
            permissions_boundary=args.permissions_boundary,
            opts=child,
        )
        # What CodeBuild needs of a project's role to run builds in a VPC and authenticate to
        # GitHub with a connection (CodeBuild user guide, "Use CodeBuild with Amazon VPC" and
        # "GitHub App connections"; the pulumi-aws 7.51 codebuild.Project example shows the
        # same statements).
        role_policy = aws.iam.RolePolicy(
            name,
            role=role.id,
            policy=pulumi.Output.all(log_group.arn, list(args.subnet_arns), args.account_id).apply(
                lambda values: policy_document(
                    [
                        {
                            "Sid": "BuildLogs",
                            "Effect": "Allow",
                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                            "Resource": [values[0], f"{values[0]}:*"],
                        },
                        {
                            "Sid": "SeeTheNetwork",
                            "Effect": "Allow",
                            "Action": [
                                "ec2:DescribeDhcpOptions",
                                "ec2:DescribeNetworkInterfaces",
                                "ec2:DescribeSecurityGroups",
                                "ec2:DescribeSubnets",
                                "ec2:DescribeVpcs",
                            ],
                            "Resource": "*",
                        },
                        {
                            "Sid": "BuildNetworkInterfaces",
                            "Effect": "Allow",
                            "Action": ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"],
                            "Resource": "*",
                        },
                        {
                            "Sid": "AttachThemForCodeBuild",
                            "Effect": "Allow",
                            "Action": "ec2:CreateNetworkInterfacePermission",
                            "Resource": f"arn:{PARTITION}:ec2:{args.region}:{values[2]}:"
                            "network-interface/*",
                            "Condition": {
                                "StringEquals": {
                                    "ec2:Subnet": list(values[1]),
                                    "ec2:AuthorizedService": "codebuild.amazonaws.com",
                                }
                            },
                        },
                        {
                            "Sid": "GitHubConnection",
                            "Effect": "Allow",
                            "Action": [
                                "codeconnections:GetConnection",
                                "codeconnections:GetConnectionToken",
                            ],
                            "Resource": args.connection_arn,
                        },
                    ]
                )
            ),
            opts=child,
        )

        project = aws.codebuild.Project(
            name,
            name=args.project_name,
            description=f"GitHub Actions runner of {args.repository} inside the stack's VPC",
            service_role=role.arn,
            source=aws.codebuild.ProjectSourceArgs(
                type="GITHUB",
                location=f"https://github.com/{args.repository}",
                auth=aws.codebuild.ProjectSourceAuthArgs(
                    type="CODECONNECTIONS", resource=args.connection_arn
                ),
            ),
            artifacts=aws.codebuild.ProjectArtifactsArgs(type="NO_ARTIFACTS"),
            environment=aws.codebuild.ProjectEnvironmentArgs(
                type="LINUX_CONTAINER",
                compute_type=args.compute_type,
                image=RUNNER_IMAGE,
                image_pull_credentials_type="CODEBUILD",
                privileged_mode=False,
            ),
            vpc_config=aws.codebuild.ProjectVpcConfigArgs(
                vpc_id=args.vpc_id,
                subnets=list(args.subnet_ids),
                security_group_ids=[group.id],
            ),
            logs_config=aws.codebuild.ProjectLogsConfigArgs(
                cloudwatch_logs=aws.codebuild.ProjectLogsConfigCloudwatchLogsArgs(
                    status="ENABLED", group_name=log_group.name
                ),
                s3_logs=aws.codebuild.ProjectLogsConfigS3LogsArgs(status="DISABLED"),
            ),
            build_timeout=BUILD_TIMEOUT_MINUTES,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )
        aws.codebuild.Webhook(
            name,
            project_name=project.name,
            build_type="BUILD",
            filter_groups=[
                aws.codebuild.WebhookFilterGroupArgs(
                    filters=[
                        aws.codebuild.WebhookFilterGroupFilterArgs(
                            type="EVENT", pattern="WORKFLOW_JOB_QUEUED"
                        ),
                        aws.codebuild.WebhookFilterGroupFilterArgs(
                            type="WORKFLOW_NAME", pattern=f"^({'|'.join(RUNNER_WORKFLOWS)})$"
                        ),
                    ]
                )
            ],
            opts=child,
        )

        self.project_name = project.name
        self.register_outputs({"projectName": project.name, "securityGroupId": group.id})
