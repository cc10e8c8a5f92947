"""A private bucket, the one way this program makes them: owner-enforced, public access
blocked, KMS-encrypted, versioned, TLS only, with a lifecycle."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from components.shared.iam import policy_document

Statements = Callable[[str], list[dict[str, Any]]]


def deny_insecure_transport(bucket_arn: str) -> dict[str, Any]:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def private_bucket(
    name: str,
    *,
    bucket_name: str,
    key_arn: pulumi.Input[str],
    lifecycle: Sequence[aws.s3.BucketLifecycleConfigurationRuleArgs],
    protect: bool,
    parent: pulumi.Resource,
    policy: pulumi.Input[str] | None = None,
) -> tuple[aws.s3.Bucket, aws.s3.BucketPolicy]:
    """The bucket and its settings, all named `name` (the bucket protected with `protect`).

    `policy` replaces the default bucket policy (TLS only); it should keep that statement.
    """
    child = pulumi.ResourceOptions(parent=parent)
    bucket = aws.s3.Bucket(
        name, bucket=bucket_name, opts=pulumi.ResourceOptions(parent=parent, protect=protect)
    )
    aws.s3.BucketOwnershipControls(
        name,
        bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=child,
    )
    aws.s3.BucketPublicAccessBlock(
        name,
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        name,
        bucket=bucket.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=(
                    aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=key_arn
                    )
                ),
                bucket_key_enabled=True,
            )
        ],
        opts=child,
    )
    aws.s3.BucketVersioning(
        name,
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
            status="Enabled"
        ),
        opts=child,
    )
    aws.s3.BucketLifecycleConfiguration(name, bucket=bucket.id, rules=list(lifecycle), opts=child)
    bucket_policy = aws.s3.BucketPolicy(
        name,
        bucket=bucket.id,
        policy=(
            policy
            if policy is not None
            else bucket.arn.apply(lambda arn: policy_document([deny_insecure_transport(arn)]))
        ),
        opts=child,
    )
    return bucket, bucket_policy
