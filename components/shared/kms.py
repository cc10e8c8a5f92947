"""Customer-managed KMS keys: one per purpose, rotated, with an alias."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.shared.iam import PARTITION, policy_document


def encryption_key(
    name: str,
    *,
    alias: str,
    description: str,
    protect: bool,
    parent: pulumi.Resource,
    policy: pulumi.Input[str] | None = None,
    region: str | None = None,
) -> aws.kms.Key:
    """A symmetric key with yearly rotation and a 30-day deletion window.

    Without `policy` the key gets AWS's default policy: the account administers it and IAM
    policies grant its use, which is how the roles of this program are given access. `region`
    places it outside the provider's region (KMS keys are regional).
    """
    key = aws.kms.Key(
        name,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=policy,
        region=region,
        opts=pulumi.ResourceOptions(parent=parent, protect=protect),
    )
    aws.kms.Alias(
        name,
        name=f"alias/{alias}",
        target_key_id=key.key_id,
        region=region,
        opts=pulumi.ResourceOptions(parent=parent, protect=protect),
    )
    return key


def account_administration(account_id: str) -> dict[str, Any]:
    """The key policy statement by which the account administers its key (in a key policy,
    `Resource: "*"` is the key itself); IAM policies then grant its use."""
    return {
        "Sid": "AccountAdministration",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{PARTITION}:iam::{account_id}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }


def log_key_policy(account_id: str, region: str, log_group_arn_pattern: str) -> str:
    """The account administers the key; CloudWatch Logs may use it for matching log groups only."""
    return policy_document(
        [
            account_administration(account_id),
            {
                "Sid": "ControlPlaneLogs",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                "Action": [
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                "Resource": "*",
                "Condition": {
                    "ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_group_arn_pattern}
                },
            },
        ]
    )


def log_group_key_policy(
    account_id: pulumi.Input[str], region: str, log_group_name: str
) -> pulumi.Output[str]:
    """`log_key_policy` for the one log group of that name in this account and region."""
    return pulumi.Output.from_input(account_id).apply(
        lambda account: log_key_policy(
            account,
            region,
            f"arn:{PARTITION}:logs:{region}:{account}:log-group:{log_group_name}",
        )
    )
