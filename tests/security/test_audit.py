"""The CloudTrail trail's key: the sections the CloudTrail User Guide requires, as stated."""

from __future__ import annotations

import json
from typing import Any

from components.security.audit import trail_key_policy
from offline.engine import ACCOUNT_ID, StackRun
from tests.iam_properties import Document, Owned, problems

TRAIL = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT_ID}:trail/financial-planning-production-audit"
CLOUDTRAIL = {"Service": "cloudtrail.amazonaws.com"}


def trail_key(run: StackRun) -> dict[str, Any]:
    [key] = [
        k
        for k in run.of_type("aws:kms/key:Key")
        if "CloudTrail logs" in str(k.inputs.get("description"))
    ]
    return dict(json.loads(key.inputs["policy"]))


def cloudtrail_statements(policy: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for statement in policy["Statement"]:
        if statement["Principal"] == CLOUDTRAIL:
            action = statement["Action"]
            assert isinstance(action, str), "one action per CloudTrail statement, as the guide"
            found[action] = statement
    return found


def test_the_trail_key_holds_the_guides_three_sections(production: StackRun) -> None:
    # CloudTrail User Guide, "Configure AWS KMS key policies for CloudTrail": required for a
    # trail are encrypt, decrypt and describe.
    found = cloudtrail_statements(trail_key(production))
    assert set(found) == {"kms:GenerateDataKey*", "kms:Decrypt", "kms:DescribeKey"}
    # "Granting encrypt permissions for trails": this trail, this account's trails' context.
    assert found["kms:GenerateDataKey*"]["Condition"] == {
        "StringEquals": {"aws:SourceArn": TRAIL},
        "StringLike": {
            "kms:EncryptionContext:aws:cloudtrail:arn": (
                f"arn:aws:cloudtrail:*:{ACCOUNT_ID}:trail/*"
            )
        },
    }
    # "Granting decrypt permissions for trails": with an S3 Bucket Key, CloudTrail needs
    # kms:Decrypt to create or update the trail; the guide's statement has no condition.
    assert found["kms:Decrypt"] == {
        "Sid": "AllowCloudTrailDecryptTrail",
        "Effect": "Allow",
        "Principal": CLOUDTRAIL,
        "Action": "kms:Decrypt",
        "Resource": "*",
    }
    # "Enable CloudTrail to describe KMS key properties": aws:SourceArn only. DescribeKey
    # carries no encryption context, so a condition on one would never match.
    assert found["kms:DescribeKey"]["Condition"] == {"StringEquals": {"aws:SourceArn": TRAIL}}


def test_the_trails_bucket_uses_a_bucket_key_with_the_trails_key(production: StackRun) -> None:
    # Why the Decrypt section is needed: SSE-KMS with an S3 Bucket Key under the trail's key.
    trail = production.one("aws:cloudtrail/trail:Trail")
    [encryption] = [
        r
        for r in production.of_type(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
        )
        if r.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"]
        == trail.inputs["kmsKeyId"]
    ]
    buckets = production.of_type("aws:s3/bucket:Bucket")
    [bucket] = [r for r in buckets if r.id == encryption.inputs["bucket"]]
    assert bucket.state["bucket"] == trail.inputs["s3BucketName"]
    [rule] = encryption.inputs["rules"]
    assert rule["bucketKeyEnabled"] is True
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"


def test_the_unconditioned_decrypt_is_the_only_exception(production: StackRun) -> None:
    # Least privilege lets CloudTrail's Decrypt go without a condition (the guide's own
    # statement); the same grant of any other action is still caught.
    policy = json.loads(trail_key_policy(ACCOUNT_ID, "us-east-1", "t"))
    own = Owned(set(), "financial-planning-production")
    assert problems(Document("trail-key", "key", policy), own) == []
    for statement in policy["Statement"]:
        if statement.get("Action") == "kms:DescribeKey":
            statement.pop("Condition")
    found = problems(Document("trail-key", "key", policy), own)
    assert found == [f"trail-key statement 3: a key grant to {CLOUDTRAIL} without a condition"]
