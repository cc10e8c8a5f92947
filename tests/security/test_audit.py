"""The CloudTrail trail's key: the sections the CloudTrail User Guide requires, as stated."""

from __future__ import annotations

import json
from typing import Any

from components.security.audit import guardduty_endpoint_policy, trail_key_policy
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


# GuardDuty's runtime agent, managed by this stack (GuardDuty User Guide: "Prerequisite -
# Creating an Amazon VPC endpoint", "Installing GuardDuty security agent manually on Amazon EKS
# resources", "Configure GuardDuty security agent (add-on) parameters for Amazon EKS").
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"


def guardduty_endpoints(run: StackRun) -> list[Any]:
    return [e for e in run.of_type(ENDPOINT) if e.inputs["serviceName"].endswith("guardduty-data")]


def guardduty_agents(run: StackRun) -> list[Any]:
    return [
        a
        for a in run.of_type("aws:eks/addon:Addon")
        if a.inputs["addonName"] == "aws-guardduty-agent"
    ]


def test_guardduty_leaves_nothing_outside_the_state(production: StackRun) -> None:
    features = {
        f.inputs["name"]: f.inputs
        for f in production.of_type("aws:guardduty/detectorFeature:DetectorFeature")
    }
    # Automated agent configuration would create the endpoint and its security group itself.
    assert features["RUNTIME_MONITORING"]["status"] == "ENABLED"
    assert features["RUNTIME_MONITORING"]["additionalConfigurations"] == [
        {"name": "EKS_ADDON_MANAGEMENT", "status": "DISABLED"}
    ]
    [endpoint] = guardduty_endpoints(production)
    vpc = production.one("aws:ec2/vpc:Vpc")
    assert endpoint.inputs["serviceName"] == "com.amazonaws.us-east-1.guardduty-data"
    assert endpoint.inputs["vpcEndpointType"] == "Interface"
    assert endpoint.inputs["privateDnsEnabled"] is True
    assert endpoint.inputs["vpcId"] == vpc.id
    # In the nodes' subnets, where the agents run (the control plane has small subnets of its own).
    node_subnets = {
        subnet
        for group in production.of_type("aws:eks/nodeGroup:NodeGroup")
        for subnet in group.inputs["subnetIds"]
    }
    assert set(endpoint.inputs["subnetIds"]) == node_subnets
    [group_id] = endpoint.inputs["securityGroupIds"]
    groups = production.of_type("aws:ec2/securityGroup:SecurityGroup")
    [group] = [g for g in groups if g.id == group_id]
    rules = [
        r.inputs
        for r in production.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["securityGroupId"] == group.id
    ]
    assert rules == [
        {
            "securityGroupId": group.id,
            "cidrIpv4": "10.0.0.0/16",
            "ipProtocol": "tcp",
            "fromPort": 443,
            "toPort": 443,
            "description": "HTTPS from the VPC (GuardDuty recommends the VPC's range)",
        }
    ]
    # The page's policy: this account's principals only.
    assert json.loads(endpoint.inputs["policy"])["Statement"][1] == {
        "Condition": {"StringNotEquals": {"aws:PrincipalAccount": ACCOUNT_ID}},
        "Action": "*",
        "Resource": "*",
        "Effect": "Deny",
        "Principal": "*",
    }


def test_the_guardduty_agent_preempts_and_waits_for_its_endpoint(production: StackRun) -> None:
    [addon] = guardduty_agents(production)
    configuration = json.loads(addon.inputs["configurationValues"])
    # The default class (aws-guardduty-agent.priorityclass, preemptionPolicy Never) can leave
    # the agent Pending on a full node; the high one preempts lower-priority pods.
    assert configuration == {"priorityClassName": "aws-guardduty-agent.priorityclass-high"}
    from components.shared.conventions import PRIORITY_CLASSES

    assert max(PRIORITY_CLASSES.values()) < 100_000_000
    [endpoint] = guardduty_endpoints(production)
    runtime = next(
        f
        for f in production.of_type("aws:guardduty/detectorFeature:DetectorFeature")
        if f.inputs["name"] == "RUNTIME_MONITORING"
    )
    assert {endpoint.urn, runtime.urn} <= set(addon.dependencies)
    # After the nodes: the managed add-ons that run after them are among its dependencies.
    coredns = next(
        a for a in production.of_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "coredns"
    )
    assert coredns.urn in addon.dependencies
    assert addon.inputs["addonVersion"].startswith("v")


def test_staging_manages_no_guardduty_agent(staging: StackRun) -> None:
    # The organisation's GuardDuty covers staging: no detector, endpoint or agent of its own
    # (docs/operations.md, "Known limits": its automated agent configuration may leave an
    # endpoint behind).
    assert guardduty_endpoints(staging) == []
    assert guardduty_agents(staging) == []


def test_an_endpoint_policy_open_to_other_accounts_is_caught(production: StackRun) -> None:
    policy = json.loads(guardduty_endpoint_policy(ACCOUNT_ID))
    where = f"urn:...{ENDPOINT}::x policy"
    own = Owned(set(), "c")
    assert problems(Document(where, "resource", policy), own) == []
    policy["Statement"][1]["Condition"]["StringNotEquals"]["aws:PrincipalAccount"] = "999999999999"
    assert "allows any principal" in " ".join(problems(Document(where, "resource", policy), own))
