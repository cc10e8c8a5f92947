"""The audit trail beyond EKS's own audit logs: GuardDuty (EKS audit-log and runtime threat
detection, findings to an encrypted SNS topic) and, for accounts without an organisation trail,
a CloudTrail trail in every region with log-file validation, KMS and a locked-down bucket."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.shared.iam import PARTITION, policy_document
from components.shared.kms import encryption_key

# GuardDuty findings at this severity and above (4 = medium) reach the topic.
FINDING_SEVERITY = 4


def trail_key_policy(account_id: str, region: str, trail_name: str) -> str:
    """The account administers the key; CloudTrail may encrypt this trail's logs only."""
    trail_arn = f"arn:{PARTITION}:cloudtrail:{region}:{account_id}:trail/{trail_name}"
    return policy_document(
        [
            {
                "Sid": "AccountAdministration",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{PARTITION}:iam::{account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "CloudTrailEncryptsThisTrail",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": ["kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"aws:SourceArn": trail_arn},
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": (
                            f"arn:{PARTITION}:cloudtrail:*:{account_id}:trail/*"
                        )
                    },
                },
            },
        ]
    )


def trail_bucket_policy(bucket_arn: str, account_id: str, trail_arn: str) -> str:
    """CloudTrail of this trail only may write; nobody may read or write over plain HTTP."""
    return policy_document(
        [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
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


def findings_key_policy(account_id: str) -> str:
    """The account administers the key; EventBridge of this account may publish with it."""
    return policy_document(
        [
            {
                "Sid": "AccountAdministration",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{PARTITION}:iam::{account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
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


@dataclass(frozen=True)
class AuditArgs:
    name_prefix: str
    region: str
    account_id: pulumi.Output[str]
    guard_duty: bool
    cloud_trail: bool
    trail_retention_days: int
    protect: bool


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
        aws.guardduty.DetectorFeature(
            f"{name}-runtime",
            detector_id=detector.id,
            name="RUNTIME_MONITORING",
            status="ENABLED",
            # GuardDuty installs and updates its agent add-on on the cluster.
            additional_configurations=[
                aws.guardduty.DetectorFeatureAdditionalConfigurationArgs(
                    name="EKS_ADDON_MANAGEMENT", status="ENABLED"
                )
            ],
            opts=child,
        )
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
        self.findings_topic_arn = topic.arn

    def _cloud_trail(self, name: str, args: AuditArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        kept = pulumi.ResourceOptions(parent=self, protect=args.protect)
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
        bucket = aws.s3.Bucket(f"{name}-trail", bucket=f"{trail_name}-logs", opts=kept)
        aws.s3.BucketPublicAccessBlock(
            f"{name}-trail",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-trail",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        aws.s3.BucketVersioning(
            f"{name}-trail",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled"
            ),
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-trail",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=(
                        aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                            sse_algorithm="aws:kms", kms_master_key_id=key.arn
                        )
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-trail",
            bucket=bucket.id,
            rules=[
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
            opts=child,
        )
        trail_arn = args.account_id.apply(
            lambda account: f"arn:{PARTITION}:cloudtrail:{args.region}:{account}:trail/{trail_name}"
        )
        policy = aws.s3.BucketPolicy(
            f"{name}-trail",
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.arn, args.account_id, trail_arn).apply(
                lambda values: trail_bucket_policy(values[0], values[1], values[2])
            ),
            opts=child,
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
