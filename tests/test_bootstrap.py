"""The state and secrets bootstrap against moto: settings, idempotence, drift, bad input, trust."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bootstrap.__main__ import main
from bootstrap.state import GITHUB_ISSUER, Bootstrap, BootstrapSettings, workload_boundary
from stacks.environments import DEFAULTS

REPOSITORY = "example-org/financial-planning"


@pytest.fixture(scope="module")
def account() -> Iterator[Any]:
    """One mocked account for the module: loading AWS's managed policies takes seconds."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "eu-west-1",
            # AWS's managed policies (PowerUserAccess) exist in moto only when asked for.
            "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
        }.items():
            patch.setenv(name, value)
        with mock_aws():
            yield boto3.Session()


_names = itertools.count()


@pytest.fixture
def session(account: Any) -> Any:
    return account


@pytest.fixture
def settings() -> BootstrapSettings:
    """A bucket and prefix of the test's own, so that tests sharing the account stay apart."""
    n = next(_names)
    return BootstrapSettings(
        region="eu-west-1", bucket=f"fp-state-{n}", repository=REPOSITORY, prefix=f"fp{n}-test"
    )


def as_dict(document: Any) -> dict[str, Any]:
    return json.loads(document) if isinstance(document, str) else dict(document)


def test_a_first_run_creates_everything_with_its_settings(
    session: Any, settings: BootstrapSettings
) -> None:
    changes = Bootstrap(settings, session).run()
    assert f"created bucket {settings.bucket}" in changes
    assert f"created role {settings.deploy_role}" in changes

    s3 = session.client("s3", region_name="eu-west-1")
    bucket = settings.bucket
    location = s3.get_bucket_location(Bucket=bucket)["LocationConstraint"]
    assert location == "eu-west-1"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    kms = session.client("kms", region_name="eu-west-1")
    key = kms.describe_key(KeyId=settings.key_alias)["KeyMetadata"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": key["Arn"],
    }
    assert rule["BucketKeyEnabled"] is True
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
    (lifecycle,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert lifecycle["NoncurrentVersionExpiration"] == {"NoncurrentDays": 90}
    (deny,) = as_dict(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
    controls = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]
    assert controls["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]

    iam = session.client("iam")
    (provider,) = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    assert provider["Arn"].endswith(f"oidc-provider/{GITHUB_ISSUER}")
    details = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=provider["Arn"])
    assert details["ClientIDList"] == ["sts.amazonaws.com"]
    attached = iam.list_attached_role_policies(RoleName=settings.deploy_role)
    assert [p["PolicyName"] for p in attached["AttachedPolicies"]] == ["PowerUserAccess"]
    preview = iam.list_attached_role_policies(RoleName=settings.preview_role)
    assert preview["AttachedPolicies"] == []


def test_the_preview_role_writes_only_its_lock_and_neither_role_may_touch_the_roles(
    session: Any, settings: BootstrapSettings
) -> None:
    Bootstrap(settings, session).run()
    iam = session.client("iam")
    state = as_dict(
        iam.get_role_policy(RoleName=settings.preview_role, PolicyName="state")["PolicyDocument"]
    )
    writes = [s for s in state["Statement"] if "s3:PutObject" in s["Action"]]
    assert [s["Resource"] for s in writes] == [f"arn:aws:s3:::{settings.bucket}/.pulumi/locks/*"]
    assert iam.list_role_policies(RoleName=settings.preview_role)["PolicyNames"] == ["state"]
    program = as_dict(
        iam.get_role_policy(RoleName=settings.deploy_role, PolicyName="program-iam")[
            "PolicyDocument"
        ]
    )
    denied = [s for s in program["Statement"] if s["Effect"] == "Deny"]
    assert denied and denied[0]["Resource"].endswith(f":role/{settings.prefix}-github-*")
    allowed = [s for s in program["Statement"] if s["Effect"] == "Allow"]
    assert all("*" not in str(s["Action"]) for s in allowed)


def test_a_second_run_changes_nothing(session: Any, settings: BootstrapSettings) -> None:
    assert Bootstrap(settings, session).run()
    assert Bootstrap(settings, session).run() == []


def test_drift_is_put_back_and_only_it(session: Any, settings: BootstrapSettings) -> None:
    Bootstrap(settings, session).run()
    s3 = session.client("s3", region_name="eu-west-1")
    s3.put_bucket_versioning(
        Bucket=settings.bucket, VersioningConfiguration={"Status": "Suspended"}
    )
    iam = session.client("iam")
    role = iam.get_role(RoleName=settings.preview_role)["Role"]
    widened = as_dict(role["AssumeRolePolicyDocument"])
    widened["Statement"][0]["Condition"]["StringEquals"][f"{GITHUB_ISSUER}:sub"] = (
        "repo:someone-else/fork:pull_request"
    )
    iam.update_assume_role_policy(
        RoleName=settings.preview_role, PolicyDocument=json.dumps(widened)
    )

    assert Bootstrap(settings, session).run() == [
        f"enabled versioning of {settings.bucket}",
        f"reset the trust policy of {settings.preview_role}",
    ]


def test_us_east_1_gets_no_location_constraint(session: Any) -> None:
    settings = BootstrapSettings(
        region="us-east-1", bucket="fp-state-virginia", repository=REPOSITORY
    )
    Bootstrap(settings, session).run()
    location = session.client("s3", region_name="us-east-1").get_bucket_location(
        Bucket="fp-state-virginia"
    )
    assert location["LocationConstraint"] is None


def allows(policy: dict[str, Any], claims: dict[str, str]) -> bool:
    """Whether a web-identity trust policy admits a token with these claims.

    Only the operators the bootstrap writes are understood (StringEquals, a value or a list of
    values: any of them); any other operator fails the test rather than being skipped.
    """
    for statement in policy["Statement"]:
        if statement["Action"] != "sts:AssumeRoleWithWebIdentity":
            continue
        conditions = statement["Condition"]
        assert set(conditions) == {"StringEquals"}, conditions
        if all(
            claims.get(key.removeprefix(f"{GITHUB_ISSUER}:"))
            in (values if isinstance(values, list) else [values])
            for key, values in conditions["StringEquals"].items()
        ):
            return True
    return False


@pytest.mark.parametrize(
    ("role", "sub", "admitted"),
    [
        ("preview", f"repo:{REPOSITORY}:pull_request", True),
        ("preview", "repo:example-org/other:pull_request", False),
        ("preview", f"repo:{REPOSITORY}:ref:refs/heads/main", False),
        ("deploy", f"repo:{REPOSITORY}:ref:refs/heads/main", True),
        ("deploy", f"repo:{REPOSITORY}:environment:production", True),
        ("deploy", f"repo:{REPOSITORY}:ref:refs/heads/feature", False),
        ("deploy", f"repo:{REPOSITORY}:environment:staging", False),
        ("deploy", f"repo:{REPOSITORY}:pull_request", False),
        ("deploy", "repo:example-org/other:ref:refs/heads/main", False),
        ("deploy", "repo:example-org/financial-planning-fork:ref:refs/heads/main", False),
    ],
)
def test_only_this_repositorys_workflows_may_assume_the_roles(
    session: Any, settings: BootstrapSettings, role: str, sub: str, admitted: bool
) -> None:
    Bootstrap(settings, session).run()
    iam = session.client("iam")
    trust = as_dict(
        iam.get_role(RoleName=f"{settings.prefix}-github-{role}")["Role"][
            "AssumeRolePolicyDocument"
        ]
    )
    assert allows(trust, {"sub": sub, "aud": "sts.amazonaws.com"}) is admitted
    # Another audience is never admitted.
    assert not allows(trust, {"sub": sub, "aud": "https://github.com/example-org"})


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--region", "us-east-\u0661"),
        ("--region", "mars-1"),
        # GovCloud and China have other partitions; every ARN here is the commercial one.
        ("--region", "us-gov-west-1"),
        ("--region", "xx-north-9"),
        ("--bucket", "Fp_State"),
        ("--bucket", "fp.state.bucket"),
        ("--repository", "example-org"),
        ("--repository", "example-org/a/b"),
        ("--repository", "-org/repo"),
        ("--prefix", "FP"),
    ],
)
def test_a_bad_argument_is_refused_in_one_line_before_any_call(
    capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    arguments = {
        "--region": "eu-west-1",
        "--bucket": "fp-state-1",
        "--repository": REPOSITORY,
        "--prefix": "financial-planning",
    }
    arguments[flag] = value
    argv = [f"{key}={value}" for key, value in arguments.items()]
    # No session and no mock: a call to AWS would fail loudly instead of this refusal.
    assert main(argv, session=object()) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"bootstrap: {flag}: {value!r} is not"), err


def test_what_aws_would_refuse_is_not_asked(session: Any) -> None:
    """Constraints moto does not enforce, pinned against the AWS API references."""
    longest = BootstrapSettings(
        region="eu-west-1", bucket="fp-state-longest", repository=REPOSITORY, prefix="p" * 32
    )
    Bootstrap(longest, session).run()
    iam = session.client("iam")
    for name in (longest.preview_role, longest.deploy_role):
        role = iam.get_role(RoleName=name)["Role"]
        # IAM CreateRole: RoleName at most 64 characters; MaxSessionDuration 3600 to 43200.
        assert len(name) <= 64
        assert 3600 <= role["MaxSessionDuration"] <= 43200
    s3 = session.client("s3", region_name="eu-west-1")
    # S3 LifecycleRule: a Filter holds exactly one of Prefix, Tag, ObjectSize*, And.
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=longest.bucket)["Rules"]
    assert rule["Filter"] == {"Prefix": ""}
    # With BlockPublicPolicy on, S3 refuses a bucket policy granting anything to "*": only the
    # TLS deny may name every principal.
    policy = as_dict(s3.get_bucket_policy(Bucket=longest.bucket)["Policy"])
    assert all(s["Effect"] == "Deny" for s in policy["Statement"] if s.get("Principal") == "*")
    # IAM quotas: a managed policy's name at most 128 characters and its document at most
    # 6,144 (whitespace not counted); a role's inline policies at most 10,240 together.
    assert len(longest.boundary_policy) <= 128
    assert len(json.dumps(workload_boundary(), separators=(",", ":"))) <= 6144
    inline = [
        as_dict(iam.get_role_policy(RoleName=longest.deploy_role, PolicyName=n)["PolicyDocument"])
        for n in iam.list_role_policies(RoleName=longest.deploy_role)["PolicyNames"]
    ]
    assert sum(len(json.dumps(d, separators=(",", ":"))) for d in inline) <= 10240


def test_every_role_the_deploy_role_makes_carries_the_workload_boundary(
    session: Any, settings: BootstrapSettings
) -> None:
    Bootstrap(settings, session).run()
    iam = session.client("iam")
    account = session.client("sts").get_caller_identity()["Account"]
    boundary_arn = f"arn:aws:iam::{account}:policy/{settings.boundary_policy}"
    policy = iam.get_policy(PolicyArn=boundary_arn)["Policy"]
    boundary = as_dict(
        iam.get_policy_version(PolicyArn=boundary_arn, VersionId=policy["DefaultVersionId"])[
            "PolicyVersion"
        ]["Document"]
    )
    [denied] = [s for s in boundary["Statement"] if s["Effect"] == "Deny"]
    # No role under it can make or widen an identity, or shed the boundary.
    for action in (
        "iam:CreateRole",
        "iam:PutRolePolicy",
        "iam:AttachRolePolicy",
        "iam:CreateUser",
        "iam:CreateAccessKey",
        "iam:DeleteRolePermissionsBoundary",
        "iam:PassRole",
    ):
        assert action in denied["Action"], action
    assert "iam:CreateServiceLinkedRole" not in denied["Action"]

    program = as_dict(
        iam.get_role_policy(RoleName=settings.deploy_role, PolicyName="program-iam")[
            "PolicyDocument"
        ]
    )
    allowed = [s for s in program["Statement"] if s["Effect"] == "Allow"]
    granting = [s for s in allowed if {"iam:CreateRole", "iam:PutRolePolicy"} & set(s["Action"])]
    assert granting and all(
        s["Condition"] == {"StringEquals": {"iam:PermissionsBoundary": boundary_arn}}
        for s in granting
    )
    for action in ("iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:DeleteRolePolicy"):
        assert all("Condition" in s for s in allowed if action in s["Action"]), action
    assert not any("iam:DeleteRolePermissionsBoundary" in s["Action"] for s in allowed)
    denied_to_deploy = [s for s in program["Statement"] if s["Effect"] == "Deny"]
    assert any(
        s["Resource"] == boundary_arn and "iam:CreatePolicyVersion" in s["Action"]
        for s in denied_to_deploy
    )


def test_a_loosened_boundary_is_put_back(session: Any, settings: BootstrapSettings) -> None:
    Bootstrap(settings, session).run()
    iam = session.client("iam")
    account = session.client("sts").get_caller_identity()["Account"]
    arn = f"arn:aws:iam::{account}:policy/{settings.boundary_policy}"
    everything = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    for _ in range(4):  # up to IAM's five versions, so the reset must make room
        iam.create_policy_version(
            PolicyArn=arn, PolicyDocument=json.dumps(everything), SetAsDefault=True
        )
    assert Bootstrap(settings, session).run() == [
        f"reset permissions boundary {settings.boundary_policy}"
    ]
    assert Bootstrap(settings, session).run() == []


def test_the_program_names_the_boundary_the_bootstrap_makes_by_default() -> None:
    default = BootstrapSettings(region="eu-west-1", bucket="state", repository=REPOSITORY)
    assert DEFAULTS["production"]["iamPermissionsBoundary"] == default.boundary_policy
    assert DEFAULTS["staging"]["iamPermissionsBoundary"] == default.boundary_policy
