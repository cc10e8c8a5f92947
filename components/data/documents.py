"""The document store: an S3 bucket that only document-service reaches, through its IRSA role
(see service_roles.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.shared.kms import encryption_key
from components.shared.s3 import private_bucket
from components.shared.urns import formerly


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
        key = encryption_key(
            f"{name}-documents",
            alias=f"{args.bucket_name}",
            description=f"Encryption of the {args.bucket_name} bucket",
            protect=args.protect,
            parent=self,
        )
        bucket, _ = private_bucket(
            name,
            bucket_name=args.bucket_name,
            key_arn=key.arn,
            lifecycle=[
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
            protect=args.protect,
            parent=self,
        )
        # What a service needs to use the store; the services' own roles carry it.
        self.access_statements = pulumi.Output.all(bucket.arn, key.arn).apply(
            lambda arns: document_access_statements(arns[0], arns[1])
        )
        self.bucket_name = bucket.bucket
        self.register_outputs({"bucketName": bucket.bucket})
