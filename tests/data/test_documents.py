"""The documents bucket: private, encrypted, versioned, TLS only, reached by one service."""

from __future__ import annotations

import json

from offline.engine import RecordedResource, StackRun
from tests.lookup import app_namespace, app_objects, inline_policy, irsa_role, policy


def documents_bucket(run: StackRun) -> RecordedResource:
    [bucket] = [
        b
        for b in run.of_type("aws:s3/bucket:Bucket")
        if b.inputs["bucket"] == f"financial-planning-{run.stack}-documents"
    ]
    return bucket


def of_bucket(run: StackRun, type_: str) -> RecordedResource:
    """The documents bucket's own resource of this type (its `bucket` is the bucket's id)."""
    bucket = documents_bucket(run)
    [found] = [r for r in run.of_type(type_) if r.inputs["bucket"] == bucket.id]
    return found


def test_documents_bucket_is_private_encrypted_versioned_and_tls_only(
    stack_run: StackRun,
) -> None:
    bucket = documents_bucket(stack_run)
    assert bucket.inputs["bucket"] == f"financial-planning-{stack_run.stack}-documents"
    assert bucket.protect is (stack_run.stack == "production")
    block = of_bucket(stack_run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(
        block[k] is True
        for k in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    sse = of_bucket(
        stack_run,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    ).inputs["rules"][0]
    assert sse["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    versioning = of_bucket(stack_run, "aws:s3/bucketVersioning:BucketVersioning").inputs
    assert versioning["versioningConfiguration"]["status"] == "Enabled"
    [deny] = policy(of_bucket(stack_run, "aws:s3/bucketPolicy:BucketPolicy"))["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_only_document_service_reaches_the_bucket(stack_run: StackRun) -> None:
    bucket = documents_bucket(stack_run).state["arn"]
    accounts = app_objects(stack_run, "ServiceAccount")
    reaching = set()
    for name, account in accounts.items():
        annotation = account["metadata"].get("annotations", {}).get("eks.amazonaws.com/role-arn")
        if annotation is None:
            continue
        role = irsa_role(stack_run, app_namespace(stack_run), name)
        assert annotation.endswith(role.id)
        if any(bucket in json.dumps(s) for s in inline_policy(stack_run, role)):
            reaching.add(name)
    assert reaching == {"document-service"}
    assert all(sa["automountServiceAccountToken"] is False for sa in accounts.values())
