"""Every IAM policy document the program renders is one IAM accepts (checked with moto's IAM)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from offline.engine import StackRun

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


@pytest.fixture
def iam() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client(
            "iam",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        yield client


def test_every_role_and_inline_policy_is_accepted_by_iam(stack_run: StackRun, iam: Any) -> None:
    roles = stack_run.of_type("aws:iam/role:Role")
    by_id = {role.id: role for role in roles}
    for role in roles:
        iam.create_role(RoleName=role.id, AssumeRolePolicyDocument=role.inputs["assumeRolePolicy"])
    inline = stack_run.of_type(ROLE_POLICY)
    assert len(inline) >= 5
    for policy in inline:
        role_id = policy.inputs["role"]
        assert role_id in by_id, policy.urn
        # Raises MalformedPolicyDocument on bad grammar, unknown effects or unprefixed actions.
        iam.put_role_policy(
            RoleName=role_id, PolicyName=policy.name, PolicyDocument=policy.inputs["policy"]
        )
        stored = iam.get_role_policy(RoleName=role_id, PolicyName=policy.name)
        assert stored["PolicyDocument"] == json.loads(policy.inputs["policy"])


def test_iam_check_rejects_a_malformed_policy(iam: Any) -> None:
    iam.create_role(
        RoleName="r",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "ec2.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    bad = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "secretsmanagerGetSecretValue", "Resource": "*"}
            ],
        }
    )
    with pytest.raises(Exception, match="MalformedPolicyDocument"):
        iam.put_role_policy(
            RoleName="r",
            PolicyName="p",
            PolicyDocument=bad,
        )
