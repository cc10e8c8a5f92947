"""The documents bucket: private, encrypted, versioned, TLS only, reached by one service."""

from __future__ import annotations

import json

from offline.engine import StackRun
from tests.lookup import app_namespace, inline_policy, irsa_role, objects, policy


def test_documents_bucket_is_private_encrypted_versioned_and_tls_only(
    stack_run: StackRun,
) -> None:
    bucket = stack_run.one("aws:s3/bucket:Bucket")
    assert bucket.inputs["bucket"] == f"financial-planning-{stack_run.stack}-documents"
    assert bucket.protect is (stack_run.stack == "production")
    block = stack_run.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(
        block[k] is True
        for k in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    sse = stack_run.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs["rules"][0]
    assert sse["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    versioning = stack_run.one("aws:s3/bucketVersioning:BucketVersioning").inputs
    assert versioning["versioningConfiguration"]["status"] == "Enabled"
    [deny] = policy(stack_run.one("aws:s3/bucketPolicy:BucketPolicy"))["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_only_document_service_reaches_the_bucket(stack_run: StackRun) -> None:
    bucket = stack_run.one("aws:s3/bucket:Bucket").state["arn"]
    accounts = objects(stack_run, "ServiceAccount")
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
