"""The document store: an S3 bucket that only document-service reaches, through its IRSA role
(see service_roles.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.shared.iam import policy_document
from components.shared.kms import encryption_key
from components.shared.urns import formerly


def tls_only_bucket_policy(bucket_arn: str) -> str:
    return policy_document(
        [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ]
    )


def document_access_statements(bucket_arn: str, key_arn: str) -> list[dict[str, Any]]:
    """List the bucket, read and write its objects, and use its key for them."""
    return [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn},
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": f"{bucket_arn}/*",
        },
        {
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": key_arn,
        },
    ]


@dataclass(frozen=True)
class DocumentStoreArgs:
    bucket_name: str
    noncurrent_version_days: int
    protect: bool


class DocumentStore(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    access_statements: pulumi.Output[list[dict[str, Any]]]

    def __init__(
        self, name: str, args: DocumentStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "financial-planning:data:DocumentStore",
            name,
            None,
            formerly(opts, "financial-planning:documents:DocumentStore"),
        )
        child = pulumi.ResourceOptions(parent=self)
        key = encryption_key(
            f"{name}-documents",
            alias=f"{args.bucket_name}",
            description=f"Encryption of the {args.bucket_name} bucket",
            protect=args.protect,
            parent=self,
        )
        bucket = aws.s3.Bucket(
            name,
            bucket=args.bucket_name,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
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
                            sse_algorithm="aws:kms", kms_master_key_id=key.arn
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
        aws.s3.BucketLifecycleConfiguration(
            name,
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-old-versions",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    noncurrent_version_expiration=(
                        aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                            noncurrent_days=args.noncurrent_version_days
                        )
                    ),
                    abort_incomplete_multipart_upload=(
                        aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                            days_after_initiation=7
                        )
                    ),
                )
            ],
            opts=child,
        )
        aws.s3.BucketPolicy(
            name, bucket=bucket.id, policy=bucket.arn.apply(tls_only_bucket_policy), opts=child
        )
        # What a service needs to use the store; the services' own roles carry it.
        self.access_statements = pulumi.Output.all(bucket.arn, key.arn).apply(
            lambda arns: document_access_statements(arns[0], arns[1])
        )
        self.bucket_name = bucket.bucket
        self.register_outputs({"bucketName": bucket.bucket})
