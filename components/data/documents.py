"""The document store: an S3 bucket that only document-service reaches, through its IRSA role."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.shared.iam import IrsaRole, IrsaRoleArgs, OidcIssuer, policy_document
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


def document_access_policy(bucket_arn: str, key_arn: str) -> str:
    return policy_document(
        [
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
    )


@dataclass(frozen=True)
class DocumentStoreArgs:
    bucket_name: str
    oidc: OidcIssuer
    # The service accounts allowed in, each through its own IRSA role.
    namespace: str
    service_accounts: Sequence[str]
    noncurrent_version_days: int
    protect: bool


class DocumentStore(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    role_arns: dict[str, pulumi.Output[str]]

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
        access = pulumi.Output.all(bucket.arn, key.arn).apply(
            lambda arns: document_access_policy(arns[0], arns[1])
        )
        self.role_arns = {
            account: IrsaRole(
                f"{name}-{account}",
                IrsaRoleArgs(
                    oidc=args.oidc,
                    namespace=args.namespace,
                    service_account=account,
                    inline_policy=access,
                ),
                opts=child,
            ).role_arn
            for account in args.service_accounts
        }
        self.bucket_name = bucket.bucket
        self.register_outputs({"bucketName": bucket.bucket, "roleArns": self.role_arns})
