"""The audit trail beyond EKS's own audit logs: GuardDuty (EKS audit-log and runtime threat
detection, findings to an encrypted SNS topic) and, for accounts without an organisation trail,
a CloudTrail trail in every region with log-file validation, KMS and a locked-down bucket.

GuardDuty's runtime agent is managed here, not by GuardDuty: its automated agent configuration
creates a VPC endpoint and a security group outside Pulumi's state (so destroying the VPC fails
until they are removed by hand) and installs the agent at a PriorityClass that never preempts
(so on full nodes it stays Pending). Here the endpoint, its security group and the agent's EKS
add-on are this stack's resources, and the agent preempts lower-priority pods."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.foundation.managed_addons import default_version
from components.shared.endpoints import https_from_vpc_group, interface_endpoint
from components.shared.iam import PARTITION, policy_document
from components.shared.kms import account_administration, encryption_key
from components.shared.s3 import deny_insecure_transport, private_bucket

# GuardDuty findings at this severity and above (4 = medium) reach the topic.
FINDING_SEVERITY = 4


def trail_key_policy(account_id: str, region: str, trail_name: str) -> str:
    """The account administers the key; CloudTrail's three required sections for a trail, as
    the CloudTrail User Guide states them ("Configure AWS KMS key policies for CloudTrail"):

    - encrypt: `kms:GenerateDataKey*` for this trail (`aws:SourceArn`) and log files of this
      account's trails (the `aws:cloudtrail:arn` encryption context);
    - decrypt: `kms:Decrypt` for CloudTrail, which creating or updating a trail needs when its
      bucket uses an S3 Bucket Key with this key (the trail's bucket does, see
      components/shared/s3.py); the guide's statement carries no condition;
    - describe: `kms:DescribeKey` for this trail (`aws:SourceArn`) and under no encryption
      context condition: DescribeKey takes no encryption context, so such a condition never
      matches it. The guide names the key's ARN as its resource; in the key's own policy `*` is
      that key (its ARN is not known before the key exists).
    """
    trail_arn = f"arn:{PARTITION}:cloudtrail:{region}:{account_id}:trail/{trail_name}"
    this_trail = {"StringEquals": {"aws:SourceArn": trail_arn}}
    return policy_document(
        [
            account_administration(account_id),
            {
                "Sid": "AllowCloudTrailEncryptLogs",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "kms:GenerateDataKey*",
                "Resource": "*",
                "Condition": {
                    **this_trail,
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": (
                            f"arn:{PARTITION}:cloudtrail:*:{account_id}:trail/*"
                        )
                    },
                },
            },
            {
                "Sid": "AllowCloudTrailDecryptTrail",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "kms:Decrypt",
                "Resource": "*",
            },
            {
                "Sid": "AllowCloudTrailAccess",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "kms:DescribeKey",
                "Resource": "*",
                "Condition": this_trail,
            },
        ]
    )


def trail_bucket_policy(bucket_arn: str, account_id: str, trail_arn: str) -> str:
    """CloudTrail of this trail only may write; nobody may read or write over plain HTTP."""
    return policy_document(
        [
            deny_insecure_transport(bucket_arn),
            {
                "Sid": "TrailChecksTheBucket",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:GetBucketAcl",
                "Resource": bucket_arn,
                "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}},
            },
            {
                "Sid": "TrailWritesItsLogs",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/AWSLogs/{account_id}/*",
                "Condition": {
                    "StringEquals": {
                        "aws:SourceArn": trail_arn,
                        "s3:x-amz-acl": "bucket-owner-full-control",
                    }
                },
            },
        ]
    )


def pager_endpoint(integration_key: str) -> str:
    """PagerDuty's endpoint for SNS notifications (its Amazon CloudWatch integration)."""
    return f"https://events.pagerduty.com/integration/{integration_key}/enqueue"


def findings_key_policy(account_id: str) -> str:
    """The account administers the key; EventBridge of this account may publish with it."""
    return policy_document(
        [
            account_administration(account_id),
            {
                "Sid": "EventBridgePublishes",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            },
        ]
    )


# The GuardDuty agent's PriorityClasses (GuardDuty User Guide, "Configure GuardDuty security
# agent (add-on) parameters for Amazon EKS"): its default, aws-guardduty-agent.priorityclass
# (1000000), never preempts; aws-guardduty-agent.priorityclass-high (100000000) preempts
# lower-priority pods, so the agent gets onto a full node. The platform's own classes stay
# below it (components/shared/conventions.py).
GUARDDUTY_AGENT_PRIORITY_CLASS = "aws-guardduty-agent.priorityclass-high"
GUARDDUTY_AGENT_PRIORITY = 100_000_000
GUARDDUTY_AGENT_ADDON = "aws-guardduty-agent"


def guardduty_endpoint_policy(account_id: str) -> str:
    """The endpoint policy GuardDuty's prerequisite page gives: anyone of this account may use
    it, nobody else (GuardDuty User Guide, "Prerequisite - Creating an Amazon VPC endpoint")."""
    return policy_document(
        [
            {"Action": "*", "Resource": "*", "Effect": "Allow", "Principal": "*"},
            {
                "Condition": {"StringNotEquals": {"aws:PrincipalAccount": account_id}},
                "Action": "*",
                "Resource": "*",
                "Effect": "Deny",
                "Principal": "*",
            },
        ]
    )


@dataclass(frozen=True)
class RuntimeAgentArgs:
    """Where GuardDuty's runtime agent runs: the cluster, and the VPC its endpoint goes in."""

    cluster_name: pulumi.Input[str]
    kubernetes_version: str
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    subnet_ids: Sequence[pulumi.Input[str]]
    # The agent's add-on waits for the nodes (a DaemonSet with no node is degraded).
    depends_on: Sequence[pulumi.Resource] = ()


@dataclass(frozen=True)
class AuditArgs:
    name_prefix: str
    region: str
    account_id: pulumi.Output[str]
    guard_duty: bool
    cloud_trail: bool
    trail_retention_days: int
    protect: bool
    # The PagerDuty integration key findings page through (an HTTPS subscriber of the topic).
    findings_pager_key: pulumi.Output[str] | None = None
    # Where GuardDuty runs: the cluster its runtime agent is installed on.
    runtime_agent: RuntimeAgentArgs | None = None


class AuditTrail(pulumi.ComponentResource):
    findings_topic_arn: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: AuditArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:security:AuditTrail", name, None, opts)
        self.findings_topic_arn = None
        if args.guard_duty:
            self._guard_duty(name, args)
        if args.cloud_trail:
            self._cloud_trail(name, args)
        self.register_outputs({"findingsTopicArn": self.findings_topic_arn})

    def _guard_duty(self, name: str, args: AuditArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        detector = aws.guardduty.Detector(name, enable=True, opts=child)
        aws.guardduty.DetectorFeature(
            f"{name}-eks-audit-logs",
            detector_id=detector.id,
            name="EKS_AUDIT_LOGS",
            status="ENABLED",
            opts=child,
        )
        runtime = aws.guardduty.DetectorFeature(
            f"{name}-runtime",
            detector_id=detector.id,
            name="RUNTIME_MONITORING",
            status="ENABLED",
            # The agent, its endpoint and their security group are this stack's (below), not
            # GuardDuty's: its automated agent configuration is off.
            additional_configurations=[
                aws.guardduty.DetectorFeatureAdditionalConfigurationArgs(
                    name="EKS_ADDON_MANAGEMENT", status="DISABLED"
                )
            ],
            opts=child,
        )
        if args.runtime_agent is not None:
            self._runtime_agent(name, args, args.runtime_agent, runtime)
        key = encryption_key(
            f"{name}-findings",
            alias=f"{args.name_prefix}-security-findings",
            description=f"Security findings of {args.name_prefix}",
            protect=args.protect,
            parent=self,
            policy=args.account_id.apply(findings_key_policy),
        )
        topic = aws.sns.Topic(
            f"{name}-findings",
            name=f"{args.name_prefix}-security-findings",
            kms_master_key_id=key.arn,
            opts=child,
        )
        rule = aws.cloudwatch.EventRule(
            f"{name}-findings",
            description="GuardDuty findings of medium severity and above",
            event_pattern=json.dumps(
                {
                    "source": ["aws.guardduty"],
                    "detail-type": ["GuardDuty Finding"],
                    "detail": {"severity": [{"numeric": [">=", FINDING_SEVERITY]}]},
                }
            ),
            opts=child,
        )
        aws.sns.TopicPolicy(
            f"{name}-findings",
            arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, rule.arn).apply(
                lambda arns: policy_document(
                    [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sns:Publish",
                            "Resource": arns[0],
                            "Condition": {"ArnEquals": {"aws:SourceArn": arns[1]}},
                        }
                    ]
                )
            ),
            opts=child,
        )
        aws.cloudwatch.EventTarget(f"{name}-findings", rule=rule.name, arn=topic.arn, opts=child)
        if args.findings_pager_key is not None:
            # PagerDuty's CloudWatch/SNS integration: it confirms the subscription itself.
            # The key is part of the URL, so the endpoint stays a secret in the state. SNS
            # Subscribe: protocol https takes a URL beginning with https://; the provider waits
            # for the confirmation of an http(s) endpoint unless endpoint_auto_confirms says
            # the endpoint confirms by itself (aws.sns.TopicSubscription docstring).
            aws.sns.TopicSubscription(
                f"{name}-findings-pager",
                topic=topic.arn,
                protocol="https",
                # A secret config value: the URL built from it stays secret too.
                endpoint=args.findings_pager_key.apply(pager_endpoint),
                endpoint_auto_confirms=True,
                opts=child,
            )
        self.findings_topic_arn = topic.arn

    def _runtime_agent(
        self,
        name: str,
        args: AuditArgs,
        agent: RuntimeAgentArgs,
        runtime: aws.guardduty.DetectorFeature,
    ) -> None:
        """GuardDuty's manual agent management (GuardDuty User Guide, "Prerequisite - Creating
        an Amazon VPC endpoint" and "Installing GuardDuty security agent manually on Amazon EKS
        resources"): the guardduty-data interface endpoint with private DNS in the cluster's
        subnets, behind a group admitting HTTPS from the VPC, then the agent's EKS add-on."""
        child = pulumi.ResourceOptions(parent=self)
        group = https_from_vpc_group(
            f"{name}-guardduty-endpoint",
            vpc_id=agent.vpc_id,
            vpc_cidr=agent.vpc_cidr,
            description="GuardDuty runtime agent endpoint: HTTPS from inside the VPC only",
            rule_description="HTTPS from the VPC (GuardDuty recommends the VPC's range)",
            tag_name=f"{args.name_prefix}-guardduty-endpoint",
            opts=child,
        )
        # The agent resolves guardduty-data.<region>.amazonaws.com to it (private DNS).
        endpoint = interface_endpoint(
            f"{name}-guardduty-data",
            vpc_id=agent.vpc_id,
            region=args.region,
            service="guardduty-data",
            subnet_ids=agent.subnet_ids,
            security_group=group,
            policy=args.account_id.apply(guardduty_endpoint_policy),
            tag_name=f"{args.name_prefix}-guardduty-data",
            opts=child,
        )
        aws.eks.Addon(
            f"{name}-guardduty-agent",
            cluster_name=agent.cluster_name,
            addon_name=GUARDDUTY_AGENT_ADDON,
            addon_version=default_version(
                GUARDDUTY_AGENT_ADDON,
                agent.kubernetes_version,
                pulumi.InvokeOutputOptions(parent=self),
            ),
            # Its parameters (agent v1.5.0 and above): the PriorityClass that preempts; its
            # default requests (200m, 256Mi), which the node groups' capacity counts.
            configuration_values=json.dumps(
                {"priorityClassName": GUARDDUTY_AGENT_PRIORITY_CLASS}, sort_keys=True
            ),
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[runtime, endpoint, *agent.depends_on]
            ),
        )

    def _cloud_trail(self, name: str, args: AuditArgs) -> None:
        trail_name = f"{args.name_prefix}-audit"
        key = encryption_key(
            f"{name}-trail",
            alias=trail_name,
            description=f"CloudTrail logs of {args.name_prefix}",
            protect=args.protect,
            parent=self,
            policy=args.account_id.apply(
                lambda account: trail_key_policy(account, args.region, trail_name)
            ),
        )
        trail_arn = args.account_id.apply(
            lambda account: f"arn:{PARTITION}:cloudtrail:{args.region}:{account}:trail/{trail_name}"
        )
        bucket_name = f"{trail_name}-logs"
        bucket_arn = f"arn:{PARTITION}:s3:::{bucket_name}"
        bucket, policy = private_bucket(
            f"{name}-trail",
            bucket_name=bucket_name,
            key_arn=key.arn,
            lifecycle=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-audit-logs",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=args.trail_retention_days
                    ),
                    noncurrent_version_expiration=(
                        aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                            noncurrent_days=30
                        )
                    ),
                )
            ],
            protect=args.protect,
            parent=self,
            policy=pulumi.Output.all(args.account_id, trail_arn).apply(
                lambda values: trail_bucket_policy(bucket_arn, values[0], values[1])
            ),
        )
        aws.cloudtrail.Trail(
            f"{name}-trail",
            name=trail_name,
            s3_bucket_name=bucket.bucket,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_log_file_validation=True,
            kms_key_id=key.arn,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, depends_on=[policy]),
        )
