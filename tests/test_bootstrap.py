"""The account bootstrap against moto: settings, idempotence, drift, bad input, trust per
environment, per-stack keys, the boundary as an allow-list, the GitHub connection.

moto (5.2.5) implements S3, KMS, IAM and STS; it has no CodeConnections, so that client is a
real botocore client under botocore's Stubber, which checks every request and every canned
response against the service's API model (botocore's codeconnections service-2.json). GitHub's
environments come from a fake GitHub on the loopback interface (tests/github_fake.py): most
tests find every reviewed environment protected; the tests at the end do not
(tests/test_bootstrap_github.py covers the client itself).
"""

from __future__ import annotations

import fnmatch
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import boto3
import moto.kms.models
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws
from moto.kms.utils import generate_private_key as moto_generate_private_key

from bootstrap.__main__ import TEAM_ID, environment_commands, main, report
from bootstrap.github import GitHubEnvironments
from bootstrap.state import (
    BOUNDARY_ALLOWS,
    DEPLOY_SESSION_SECONDS,
    GITHUB_ISSUER,
    PREVIEW_SESSION_SECONDS,
    Bootstrap,
    BootstrapSettings,
    deploy_environment,
    preview_environment,
    workload_boundary,
)
from offline.engine import StackRun
from stacks.environments import DEFAULTS
from tests import github_fake

REPOSITORY = "example-org/financial-planning"
CONNECTION_ARN = (
    "arn:aws:codeconnections:eu-west-1:123456789012:connection/8f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b"
)


class DeferredKeyPair:
    """moto's key pair of a symmetric KMS key, made when first used. moto 5.2.5 gives every
    key one (kms/models.py `Key.__init__`: `generate_private_key(self.key_spec)`; kms/utils.py:
    a 2048-bit RSA pair for SYMMETRIC_DEFAULT, about 0.1 s of CPU each, some 40 keys here),
    which only Sign, Verify and GetPublicKey read (`key.private_key`): the same pair, made
    on the first of those calls instead of at CreateKey."""

    def __init__(self, key_spec: str) -> None:
        self._key_spec = key_spec
        self._made: Any = None

    def __getattr__(self, name: str) -> Any:
        # Only the key pair's own methods: a lookup of a private or special name (copy's, pickle's
        # probes before __init__ ran) must not recurse through the missing `_made`.
        if name.startswith("_"):
            raise AttributeError(name)
        if self._made is None:
            self._made = moto_generate_private_key(self._key_spec)
        return getattr(self._made, name)


def deferred_key_pair(key_spec: str) -> Any:
    """moto's `generate_private_key`, deferred for the symmetric keys the bootstrap makes (its
    RSA fallback, which never raises); any other spec made (or refused) at once, as before."""
    if key_spec == "SYMMETRIC_DEFAULT":
        return DeferredKeyPair(key_spec)
    return moto_generate_private_key(key_spec)


@pytest.fixture(scope="module")
def account() -> Iterator[Any]:
    """One mocked account for the module: loading AWS's managed policies takes seconds."""
    # The variables are set inside the mock and so gone before it stops: moto's stop resets
    # every backend it made by making it anew, and a new IAM backend loads the managed
    # policies only while MOTO_IAM_LOAD_MANAGED_POLICIES is set (moto 5.2.5, core/models.py
    # `_disable_patching`, core/base_backend.py `reset`, iam/models.py `_init_aws_policies`).
    with mock_aws(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(moto.kms.models, "generate_private_key", deferred_key_pair)
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "eu-west-1",
            # AWS's managed policies (PowerUserAccess) exist in moto only when asked for.
            "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
        }.items():
            patch.setenv(name, value)
        yield boto3.Session()


@pytest.fixture(scope="module")
def github() -> Iterator[github_fake.FakeGitHub]:
    with github_fake.serving() as fake:
        yield fake


def protected_gate(
    github: github_fake.FakeGitHub, settings: BootstrapSettings
) -> GitHubEnvironments:
    """GitHub with every reviewed environment of `settings` protected as the bootstrap's
    `gh api` calls leave it."""
    for stack in settings.reviewed:
        github.protect(settings.repository, deploy_environment(stack), preview_environment(stack))
    return GitHubEnvironments(settings.repository, github_fake.TOKEN, api_url=github.url)


class Connections:
    """CodeConnections as AWS answers it: one connection per name, created PENDING."""

    def __init__(self, session: Any, name: str) -> None:
        self.client = session.client("codeconnections", region_name="eu-west-1")
        self.stubber = Stubber(self.client)
        self.stubber.activate()
        self.name = name
        self.status: str | None = None

    def expect_run(self) -> None:
        """Queue what one bootstrap run asks, answered from the connection's current state."""
        listed = (
            []
            if self.status is None
            else [
                {
                    "ConnectionName": self.name,
                    "ConnectionArn": CONNECTION_ARN,
                    "ProviderType": "GitHub",
                    "OwnerAccountId": "123456789012",
                    "ConnectionStatus": self.status,
                }
            ]
        )
        self.stubber.add_response(
            "list_connections", {"Connections": listed}, {"ProviderTypeFilter": "GitHub"}
        )
        if self.status is None:
            self.stubber.add_response(
                "create_connection",
                {"ConnectionArn": CONNECTION_ARN},
                {"ProviderType": "GitHub", "ConnectionName": self.name},
            )
            self.status = "PENDING"


class Session:
    """The moto session, with the stubbed CodeConnections client (and the fake GitHub the
    bootstrap reads environments from)."""

    def __init__(
        self, session: Any, connections: Connections, github: github_fake.FakeGitHub
    ) -> None:
        self.session = session
        self.connections = connections
        self.github = github
        # Each client made once per session object (a client costs botocore 10-40 ms to
        # make; a test asked for some 200): a client keeps no state between calls but the
        # handlers registered on it, which only `ReadOnlySession` adds, to its own clients.
        self._clients: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}

    def client(self, service: str, **kwargs: Any) -> Any:
        if service == "codeconnections":
            return self.connections.client
        key = (service, tuple(sorted(kwargs.items())))
        if key not in self._clients:
            self._clients[key] = self.made(self.session.client(service, **kwargs))
        return self._clients[key]

    def made(self, client: Any) -> Any:
        """A client just made for this session (ReadOnlySession: it then refuses writes)."""
        return client


# What a test of the shared first run may ask AWS: reads only (each AWS API names its reads
# so), so that no test can leave a change behind that the closing second run would not see.
READ_OPERATIONS = ("Get", "List", "Describe", "Head", "Simulate")


def refuse_writes(model: Any, **_: Any) -> None:
    if not model.name.startswith(READ_OPERATIONS):
        raise AssertionError(f"{model.name}: the shared first run is read-only")


class ReadOnlySession(Session):
    """The session, with clients that refuse every operation but reads."""

    def made(self, client: Any) -> Any:
        # The stubbed CodeConnections client is one object, also the closing run's, and never
        # comes here; a call its stubber was not told of fails anyway.
        client.meta.events.register("before-call.*.*", refuse_writes)
        return client


_names = itertools.count()


def own_settings() -> BootstrapSettings:
    """A bucket and prefix of their own, so that runs sharing the account stay apart."""
    n = next(_names)
    return BootstrapSettings(
        region="eu-west-1",
        bucket=f"fp-state-{n}",
        repository=REPOSITORY,
        stacks=("staging", "production"),
        prefix=f"fp{n}-test",
    )


@pytest.fixture
def settings() -> BootstrapSettings:
    """A bucket and prefix of the test's own, so that tests sharing the account stay apart."""
    return own_settings()


@pytest.fixture
def connections(account: Any, settings: BootstrapSettings) -> Iterator[Connections]:
    found = Connections(account, settings.connection_name)
    yield found
    found.stubber.assert_no_pending_responses()


@pytest.fixture
def session(account: Any, connections: Connections, github: github_fake.FakeGitHub) -> Session:
    return Session(account, connections, github)


def run(settings: BootstrapSettings, session: Session) -> Bootstrap:
    session.connections.expect_run()
    bootstrap = Bootstrap(settings, session, protected_gate(session.github, settings))
    bootstrap.run()
    assert bootstrap.outcome.held_back == {}
    return bootstrap


class FirstRun(NamedTuple):
    settings: BootstrapSettings
    session: Session
    bootstrap: Bootstrap


@pytest.fixture(scope="module")
def first_run(account: Any, github: github_fake.FakeGitHub) -> Iterator[FirstRun]:
    """One first run, shared by the tests that only read what it made (a run costs moto about
    half a second; each of those tests used to make its own, alike but for the names). Its
    session's clients refuse writes (`ReadOnlySession`); and at the end a second run must change
    nothing, which fails the module when drift was left behind (a run puts back the drift it
    knows and says so: test_drift_is_put_back_and_only_it)."""
    settings = own_settings()
    connections = Connections(account, settings.connection_name)
    session = Session(account, connections, github)
    made = run(settings, session)
    yield FirstRun(settings, ReadOnlySession(account, connections, github), made)
    assert run(settings, session).changes == [], "a test changed the shared first run"
    connections.stubber.assert_no_pending_responses()


def as_dict(document: Any) -> dict[str, Any]:
    return json.loads(document) if isinstance(document, str) else dict(document)


def inline(session: Session, role: str, name: str) -> dict[str, Any]:
    iam = session.client("iam")
    return as_dict(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])


def key_arn(session: Session, alias: str) -> str:
    kms = session.client("kms", region_name="eu-west-1")
    return str(kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"])


def test_a_first_run_creates_everything_with_its_settings(first_run: FirstRun) -> None:
    settings, session = first_run.settings, first_run.session
    changes = first_run.bootstrap.changes
    assert f"created bucket {settings.bucket}" in changes
    for stack in settings.stacks:
        assert f"created role {settings.deploy_role(stack)}" in changes
        assert f"created role {settings.preview_role(stack)}" in changes
        assert f"created KMS key {settings.secrets_alias(stack)}" in changes
    assert f"created the GitHub connection {settings.connection_name} (pending)" in changes

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
    for alias in (settings.key_alias, *map(settings.secrets_alias, settings.stacks)):
        key_id = kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"]
        assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
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
    for stack in settings.stacks:
        deploy = iam.get_role(RoleName=settings.deploy_role(stack))["Role"]
        preview = iam.get_role(RoleName=settings.preview_role(stack))["Role"]
        assert deploy["MaxSessionDuration"] == DEPLOY_SESSION_SECONDS
        assert preview["MaxSessionDuration"] == PREVIEW_SESSION_SECONDS
        attached = iam.list_attached_role_policies(RoleName=settings.deploy_role(stack))
        assert [p["PolicyName"] for p in attached["AttachedPolicies"]] == ["PowerUserAccess"]
        attached = iam.list_attached_role_policies(RoleName=settings.preview_role(stack))
        assert attached["AttachedPolicies"] == []


def test_each_stacks_roles_decrypt_its_own_secrets_key_and_no_other(first_run: FirstRun) -> None:
    settings, session = first_run.settings, first_run.session
    keys = {stack: key_arn(session, settings.secrets_alias(stack)) for stack in settings.stacks}
    assert len(set(keys.values())) == len(settings.stacks)
    state_key = key_arn(session, settings.key_alias)
    for stack in settings.stacks:
        for role in (settings.preview_role(stack), settings.deploy_role(stack)):
            secrets = inline(session, role, "stack-secrets")
            assert secrets["Statement"] == [
                {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": keys[stack]}
            ]
            # The state key only through S3: it cannot decrypt a stack's secrets or data key.
            (through_s3,) = [
                s for s in inline(session, role, "state")["Statement"] if "kms:" in str(s)
            ]
            assert through_s3["Resource"] == state_key
            assert through_s3["Condition"] == {
                "StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}
            }
            granted = [
                s["Resource"]
                for name in session.client("iam").list_role_policies(RoleName=role)["PolicyNames"]
                for s in inline(session, role, name)["Statement"]
                if s["Effect"] == "Allow" and "kms:" in str(s["Action"])
            ]
            others = set(keys.values()) - {keys[stack]}
            assert not others & set(granted), (role, granted)


def test_the_preview_roles_write_nothing_and_no_role_may_touch_the_bootstraps_roles(
    first_run: FirstRun,
) -> None:
    settings, session = first_run.settings, first_run.session
    iam = session.client("iam")
    for stack in settings.stacks:
        preview = settings.preview_role(stack)
        state = inline(session, preview, "state")
        actions = {a for s in state["Statement"] for a in _listed(s["Action"])}
        assert actions == {"s3:ListBucket", "s3:GetObject", "kms:Decrypt"}
        (listing,) = [s for s in state["Statement"] if s["Action"] == "s3:ListBucket"]
        assert listing["Condition"] == {
            "StringLike": {"s3:prefix": [f".pulumi/stacks/financial-planning/{stack}.*"]}
        }
        assert sorted(iam.list_role_policies(RoleName=preview)["PolicyNames"]) == [
            "stack-secrets",
            "state",
        ]
        program = inline(session, settings.deploy_role(stack), "program-iam")
        denied = [s for s in program["Statement"] if s["Effect"] == "Deny"]
        assert denied and denied[0]["Resource"].endswith(f":role/{settings.prefix}-github-*")
        allowed = [s for s in program["Statement"] if s["Effect"] == "Allow"]
        assert all("*" not in str(s["Action"]) for s in allowed)


def _listed(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


# The objects of the S3 (diy) backend, laid out as pulumi/pulumi pkg/backend/diy writes them
# in project mode (store.go: StacksDir, HistoriesDir, BackupsDir under .pulumi; lock.go:
# .pulumi/locks/<org>/<project>/<stack>/<lock id>.json, the org being "organization").
def _state_objects(stack: str) -> dict[str, str]:
    return {
        "checkpoint": f".pulumi/stacks/financial-planning/{stack}.json",
        "tags": f".pulumi/stacks/financial-planning/{stack}.pulumi-tags",
        "history": f".pulumi/history/financial-planning/{stack}/{stack}-1700000000.history.json",
        "backup": f".pulumi/backups/financial-planning/{stack}/{stack}.1700000000.json",
        "lock": f".pulumi/locks/organization/financial-planning/{stack}/0f7c.json",
    }


def test_a_preview_role_reads_its_stacks_state_only_and_locks_nothing(
    session: Session, settings: BootstrapSettings
) -> None:
    """moto enforcing IAM on S3 (moto.core.authorization; it matches actions and resources,
    not conditions, so the prefix of ListBucket is checked above, not here): staging's preview
    role reads what a staging preview reads (pulumi/pulumi pkg/backend/diy: meta.yaml, the
    checkpoint, the tags file; bootstrap.state.preview_state_objects) and none of production's
    objects, nor staging's history, and cannot write or delete a lock. The deploy role, the
    control, can."""
    from moto.core.authorization import enable_iam_authentication

    run(settings, session)
    s3 = session.client("s3", region_name="eu-west-1")
    bucket = settings.bucket
    # moto cannot evaluate the TLS-only bucket policy's aws:SecureTransport condition and so
    # treats its Deny as matching every request; it is not what this test is about.
    s3.delete_bucket_policy(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=".pulumi/meta.yaml", Body=b"version: 1\n")
    for stack in settings.stacks:
        for key in _state_objects(stack).values():
            s3.put_object(Bucket=bucket, Key=key, Body=b"{}")

    def as_role(role: str) -> Any:
        account = session.client("sts").get_caller_identity()["Account"]
        credentials = session.client("sts").assume_role_with_web_identity(
            RoleArn=f"arn:aws:iam::{account}:role/{role}",
            RoleSessionName="test",
            WebIdentityToken="a-github-token",
        )["Credentials"]
        return boto3.client(
            "s3",
            region_name="eu-west-1",
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )

    preview = as_role(settings.preview_role("staging"))
    deploy = as_role(settings.deploy_role("staging"))
    own, other = _state_objects("staging"), _state_objects("production")

    def denied(call: Any, **kwargs: Any) -> bool:
        try:
            call(Bucket=bucket, **kwargs)
        except ClientError as error:
            assert error.response["Error"]["Code"] == "AccessDenied", error.response
            return True
        return False

    with enable_iam_authentication():
        for key in (".pulumi/meta.yaml", own["checkpoint"], own["tags"]):
            assert not denied(preview.get_object, Key=key), key
            assert not denied(preview.head_object, Key=key), key
        for key in (other["checkpoint"], other["tags"], other["history"], own["history"]):
            assert denied(preview.get_object, Key=key), key
        assert denied(preview.get_object, Key=own["backup"])
        assert denied(preview.put_object, Key=own["lock"], Body=b"{}")
        assert denied(preview.delete_object, Key=own["lock"])
        assert denied(preview.put_object, Key=other["lock"], Body=b"{}")
        assert denied(preview.put_object, Key=own["checkpoint"], Body=b"{}")
        # The control: the same calls as the deploy role go through.
        assert not denied(deploy.get_object, Key=other["checkpoint"])
        assert not denied(deploy.put_object, Key=own["lock"], Body=b"{}")
        assert not denied(deploy.delete_object, Key=own["lock"])


def test_a_second_run_changes_nothing(session: Session, settings: BootstrapSettings) -> None:
    assert run(settings, session).changes
    assert run(settings, session).changes == []


def test_drift_is_put_back_and_only_it(session: Session, settings: BootstrapSettings) -> None:
    run(settings, session)
    s3 = session.client("s3", region_name="eu-west-1")
    s3.put_bucket_versioning(
        Bucket=settings.bucket, VersioningConfiguration={"Status": "Suspended"}
    )
    iam = session.client("iam")
    preview = settings.preview_role("staging")
    role = iam.get_role(RoleName=preview)["Role"]
    widened = as_dict(role["AssumeRolePolicyDocument"])
    widened["Statement"][0]["Condition"]["StringEquals"][f"{GITHUB_ISSUER}:sub"] = (
        f"repo:{REPOSITORY}:pull_request"
    )
    iam.update_assume_role_policy(RoleName=preview, PolicyDocument=json.dumps(widened))
    deploy = settings.deploy_role("production")
    iam.update_role(RoleName=deploy, MaxSessionDuration=43200)
    # What an earlier bootstrap granted: decrypt with any key.
    iam.put_role_policy(
        RoleName=deploy,
        PolicyName="any-key",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}],
            }
        ),
    )

    assert run(settings, session).changes == [
        f"enabled versioning of {settings.bucket}",
        f"reset the trust policy of {preview}",
        f"set the session length of {deploy} to {DEPLOY_SESSION_SECONDS} s",
        f"removed policy any-key of {deploy}",
    ]


def test_us_east_1_gets_no_location_constraint(
    account: Any, github: github_fake.FakeGitHub
) -> None:
    settings = BootstrapSettings(
        region="us-east-1", bucket="fp-state-virginia", repository=REPOSITORY, prefix="fpva"
    )
    connections = Connections(account, settings.connection_name)
    run(settings, Session(account, connections, github))
    location = account.client("s3", region_name="us-east-1").get_bucket_location(
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


# The subjects GitHub puts in a job's token (GitHub docs, "OpenID Connect reference"): with an
# environment, `environment:<name>` whatever the event; else `pull_request` for pull requests,
# `ref:<ref>` otherwise.
REPO = f"repo:{REPOSITORY}"


@pytest.mark.parametrize(
    ("role", "sub", "admitted"),
    [
        ("staging-deploy", f"{REPO}:environment:staging", True),
        ("staging-deploy", f"{REPO}:environment:production", False),
        ("staging-deploy", f"{REPO}:ref:refs/heads/main", False),
        ("staging-deploy", f"{REPO}:environment:staging-preview", False),
        ("production-deploy", f"{REPO}:environment:production", True),
        ("production-deploy", f"{REPO}:environment:staging", False),
        ("production-deploy", f"{REPO}:ref:refs/heads/main", False),
        ("production-deploy", f"{REPO}:pull_request", False),
        ("production-deploy", "repo:example-org/other:environment:production", False),
        ("production-deploy", f"{REPO}-fork:environment:production", False),
        ("staging-preview", f"{REPO}:environment:staging-preview", True),
        ("staging-preview", f"{REPO}:pull_request", False),
        ("staging-preview", f"{REPO}:environment:production-preview", False),
        ("production-preview", f"{REPO}:environment:production-preview", True),
        ("production-preview", f"{REPO}:environment:staging-preview", False),
        ("production-preview", f"{REPO}:pull_request", False),
        ("production-preview", f"{REPO}:environment:production", False),
    ],
)
def test_each_role_admits_only_its_github_environment(
    first_run: FirstRun, role: str, sub: str, admitted: bool
) -> None:
    settings, session = first_run.settings, first_run.session
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
        # The prefix is also the GitHub connection's name: CodeConnections allows 32.
        ("--prefix", "p" * 33),
        ("--stack", "Production"),
        ("--stack", "a-very-long-stack"),
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
        "--stack": "staging",
    }
    arguments[flag] = value
    argv = [f"{key}={value}" for key, value in arguments.items()]
    # No session and no mock: a call to AWS would fail loudly instead of this refusal.
    assert main(argv, session=object()) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"bootstrap: {flag}: {value!r} is not"), err


def test_a_stack_twice_or_a_reviewed_stack_not_bootstrapped_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["--region=eu-west-1", "--bucket=fp-state-1", f"--repository={REPOSITORY}"]
    assert main([*base, "--stack=staging", "--stack=staging"], session=object()) == 2
    assert capsys.readouterr().err.startswith("bootstrap: --stack: ['staging', 'staging']")
    assert main([*base, "--stack=staging", "--reviewed=production"], session=object()) == 2
    assert capsys.readouterr().err.startswith("bootstrap: --reviewed: 'production' is not")
    # prod's deploy role manages financial-planning-prod-*, which prod-eu's roles match too.
    assert main([*base, "--stack=prod", "--stack=prod-eu", "--reviewed=prod"], session=object())
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("bootstrap: --stack: 'prod-eu' starts with")


def test_the_project_is_the_one_pulumi_yaml_names() -> None:
    """The deploy roles' role names and the preview roles' state paths follow the project
    (components/context.py prefixes; pulumi/pulumi pkg/backend/diy/store.go, StacksDir/
    <project>/<stack>)."""
    import yaml

    from bootstrap.state import PROJECT

    project = yaml.safe_load((Path(__file__).parents[1] / "Pulumi.yaml").read_text())["name"]
    assert project == PROJECT


def test_each_deploy_role_manages_its_own_stacks_roles_whatever_the_prefix(
    first_run: FirstRun,
) -> None:
    """The program names its roles `<project>-<stack>-...` (components/context.py), not after
    the bootstrap's --prefix (here fpN-test): the deploy role's role statements name those."""
    settings, session = first_run.settings, first_run.session
    account = session.client("sts").get_caller_identity()["Account"]
    for stack in settings.stacks:
        program = inline(session, settings.deploy_role(stack), "program-iam")
        on_roles = {
            str(s["Resource"])
            for s in program["Statement"]
            if s["Effect"] == "Allow" and "iam:PassRole" in s["Action"] + ["iam:CreateRole"]
        }
        assert on_roles == {f"arn:aws:iam::{account}:role/financial-planning-{stack}-*"}
        (providers,) = [
            s for s in program["Statement"] if "iam:CreateOpenIDConnectProvider" in s["Action"]
        ]
        # A change of the stack-wide tags or of the provider's audiences updates the provider in
        # place: Untag, AddClientID and RemoveClientID (IAM API reference; PowerUserAccess has
        # no IAM).
        for action in (
            "iam:UntagOpenIDConnectProvider",
            "iam:TagOpenIDConnectProvider",
            "iam:AddClientIDToOpenIDConnectProvider",
            "iam:RemoveClientIDFromOpenIDConnectProvider",
        ):
            assert action in providers["Action"], action


def test_program_roles_fall_under_their_stacks_deploy_role(runs: dict[str, StackRun]) -> None:
    """Every role the program creates is auto-named from a logical name that starts with the
    stack's program-role prefix (Pulumi adds `-` and seven random characters: IAM allows 64)."""
    settings = BootstrapSettings(region="us-east-1", bucket="state", repository=REPOSITORY)
    for stack in ("staging", "production"):
        roles = [r for r in runs[stack].resources if r.type == "aws:iam/role:Role"]
        assert roles
        for role in roles:
            assert "name" not in role.inputs and "namePrefix" not in role.inputs, role.name
            assert role.name.startswith(settings.program_role_prefix(stack)), role.name
            assert len(role.name) + 8 <= 64, role.name


def test_a_foreign_role_in_the_reserved_names_stops_the_run_before_any_change(
    session: Session, settings: BootstrapSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    """A role named like the program's roles without the workload boundary: a deploy role could
    rewrite its trust (UpdateAssumeRolePolicy has no iam:PermissionsBoundary condition). With
    the boundary (as every role the program makes has it) it is fine."""
    run(settings, session)
    s3 = session.client("s3", region_name="eu-west-1")
    # Drift the next run would put back, had it started changing things.
    s3.put_bucket_versioning(
        Bucket=settings.bucket, VersioningConfiguration={"Status": "Suspended"}
    )
    iam = session.client("iam")
    squatter = "financial-planning-staging-admin"
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    iam.create_role(RoleName=squatter, AssumeRolePolicyDocument=trust)
    try:
        argv = [
            "--region=eu-west-1",
            f"--bucket={settings.bucket}",
            f"--repository={REPOSITORY}",
            f"--prefix={settings.prefix}",
            "--stack=staging",
            "--stack=production",
        ]
        gate = protected_gate(session.github, settings)
        assert main(argv, session=session, gate=gate) == 1
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1
        assert captured.err.startswith(f"bootstrap: {squatter}: named like the program's roles")
        assert s3.get_bucket_versioning(Bucket=settings.bucket)["Status"] == "Suspended"

        # Once it carries the boundary, the run goes on.
        account = session.client("sts").get_caller_identity()["Account"]
        boundary = f"arn:aws:iam::{account}:policy/{settings.boundary_policy}"
        iam.put_role_permissions_boundary(RoleName=squatter, PermissionsBoundary=boundary)
        assert run(settings, session).changes == [f"enabled versioning of {settings.bucket}"]
    finally:
        iam.delete_role(RoleName=squatter)


def test_without_credentials_it_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real boto3 session with nothing to sign with: botocore raises NoCredentialsError
    before sending anything (no instance metadata, no files, no environment)."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    argv = ["--region=eu-west-1", "--bucket=fp-state-1", f"--repository={REPOSITORY}"]
    assert main([*argv, "--stack=staging"], session=boto3.Session()) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("bootstrap: no AWS credentials found")
    assert "Traceback" not in captured.err


def test_refused_credentials_are_said_in_one_line(
    account: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Expired or foreign credentials: STS answers ExpiredToken (STS API reference, common
    errors); the bootstrap names the call and AWS's words, without a traceback."""

    class Expired:
        def client(self, service: str, **kwargs: Any) -> Any:
            client = account.client(service, **kwargs)
            if service == "sts":
                stubber = Stubber(client)
                stubber.add_client_error(
                    "get_caller_identity",
                    service_error_code="ExpiredToken",
                    service_message="The security token included in the request is expired",
                    http_status_code=403,
                )
                stubber.activate()
            return client

    argv = ["--region=eu-west-1", "--bucket=fp-state-1", f"--repository={REPOSITORY}"]
    assert main([*argv, "--stack=staging"], session=Expired()) == 1
    err = capsys.readouterr().err
    assert err == (
        "bootstrap: AWS refused GetCallerIdentity: ExpiredToken: "
        "The security token included in the request is expired\n"
    )


def test_what_aws_would_refuse_is_not_asked(account: Any, github: github_fake.FakeGitHub) -> None:
    """Constraints moto does not enforce, pinned against the AWS API references."""
    longest = BootstrapSettings(
        region="eu-west-1",
        bucket="fp-state-longest",
        repository=REPOSITORY,
        prefix="p" * 32,
        stacks=("production", "s" * 12),
    )
    connections = Connections(account, longest.connection_name)
    run(longest, Session(account, connections, github))
    iam = account.client("iam")
    for stack in longest.stacks:
        for name in (longest.preview_role(stack), longest.deploy_role(stack)):
            role = iam.get_role(RoleName=name)["Role"]
            # IAM CreateRole: RoleName at most 64 characters; MaxSessionDuration 3600 to 43200.
            assert len(name) <= 64
            assert 3600 <= role["MaxSessionDuration"] <= 43200
            inline = [
                as_dict(iam.get_role_policy(RoleName=name, PolicyName=n)["PolicyDocument"])
                for n in iam.list_role_policies(RoleName=name)["PolicyNames"]
            ]
            # IAM quotas: a role's inline policies at most 10,240 characters together.
            assert sum(len(json.dumps(d, separators=(",", ":"))) for d in inline) <= 10240
        # KMS CreateAlias: AliasName at most 256 characters, alias/ then [a-zA-Z0-9/_-].
        assert len(longest.secrets_alias(stack)) <= 256
    s3 = account.client("s3", region_name="eu-west-1")
    # S3 LifecycleRule: a Filter holds exactly one of Prefix, Tag, ObjectSize*, And.
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=longest.bucket)["Rules"]
    assert rule["Filter"] == {"Prefix": ""}
    # With BlockPublicPolicy on, S3 refuses a bucket policy granting anything to "*": only the
    # TLS deny may name every principal.
    policy = as_dict(s3.get_bucket_policy(Bucket=longest.bucket)["Policy"])
    assert all(s["Effect"] == "Deny" for s in policy["Statement"] if s.get("Principal") == "*")
    # IAM quotas: a managed policy's name at most 128 characters and its document at most
    # 6,144 (whitespace not counted).
    assert len(longest.boundary_policy) <= 128
    assert len(json.dumps(workload_boundary(), separators=(",", ":"))) <= 6144


def boundary_document(session: Any, settings: BootstrapSettings) -> dict[str, Any]:
    iam = session.client("iam")
    account = session.client("sts").get_caller_identity()["Account"]
    arn = f"arn:aws:iam::{account}:policy/{settings.boundary_policy}"
    policy = iam.get_policy(PolicyArn=arn)["Policy"]
    return as_dict(
        iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])[
            "PolicyVersion"
        ]["Document"]
    )


@pytest.fixture(scope="module")
def first_boundary(first_run: FirstRun) -> dict[str, Any]:
    """The shared first run's boundary document, read once for the tests that match actions
    against it (they only read it)."""
    return boundary_document(first_run.session.session, first_run.settings)


def boundary_allows(boundary: dict[str, Any], action: str) -> bool:
    """IAM's matching of an action against a policy's: case-insensitive, `*` and `?` wildcards
    (IAM User Guide, "IAM JSON policy elements: Action"). Only Allow statements exist here."""
    assert all(s["Effect"] == "Allow" and "NotAction" not in s for s in boundary["Statement"])
    return any(
        fnmatch.fnmatchcase(action.lower(), str(pattern).lower())
        for statement in boundary["Statement"]
        for pattern in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    )


@pytest.mark.parametrize(
    "action",
    [
        # What the deny-list of the earlier boundary left open (issue 24, item 5).
        "iam:UpdateSAMLProvider",
        "iam:UpdateAccessKey",
        "iam:CreateServiceSpecificCredential",
        "iam:UploadSSHPublicKey",
        "iam:TagRole",
        "iam:TagUser",
        # And what it closed.
        "iam:CreateRole",
        "iam:PutRolePolicy",
        "iam:AttachRolePolicy",
        "iam:CreateUser",
        "iam:CreateAccessKey",
        "iam:DeleteRolePermissionsBoundary",
        "iam:PassRole",
        "organizations:LeaveOrganization",
        "account:PutAlternateContact",
        "sts:AssumeRole",
        # Services the program does not use at all.
        "lambda:CreateFunction",
        "dynamodb:Scan",
        "ssm:GetParameter",
        "cloudformation:CreateStack",
    ],
)
def test_the_boundary_allows_no_identity_change_nor_any_unused_service(
    first_boundary: dict[str, Any], action: str
) -> None:
    assert not boundary_allows(first_boundary, action)


def test_the_boundary_is_an_allow_list_of_the_programs_services(first_run: FirstRun) -> None:
    settings, session = first_run.settings, first_run.session
    boundary = boundary_document(session.session, settings)
    (statement,) = boundary["Statement"]
    assert statement["Effect"] == "Allow" and statement["Resource"] == "*"
    assert statement["Action"] == sorted(BOUNDARY_ALLOWS)
    for action in (
        "iam:CreateServiceLinkedRole",
        "secretsmanager:GetSecretValue",
        "ec2:CreateNetworkInterface",
        "codeconnections:GetConnectionToken",
    ):
        assert boundary_allows(boundary, action), action
    # IAM: service-linked roles only.
    assert [a for a in statement["Action"] if a.startswith("iam:")] == [
        "iam:CreateServiceLinkedRole"
    ]


def test_every_role_a_deploy_role_makes_carries_the_workload_boundary(first_run: FirstRun) -> None:
    settings, session = first_run.settings, first_run.session
    account = session.client("sts").get_caller_identity()["Account"]
    boundary_arn = f"arn:aws:iam::{account}:policy/{settings.boundary_policy}"
    for stack in settings.stacks:
        program = inline(session, settings.deploy_role(stack), "program-iam")
        allowed = [s for s in program["Statement"] if s["Effect"] == "Allow"]
        granting = [
            s for s in allowed if {"iam:CreateRole", "iam:PutRolePolicy"} & set(s["Action"])
        ]
        assert granting and all(
            s["Condition"] == {"StringEquals": {"iam:PermissionsBoundary": boundary_arn}}
            for s in granting
        )
        for action in ("iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:DeleteRolePolicy"):
            assert all("Condition" in s for s in allowed if action in s["Action"]), action
        assert not any("iam:DeleteRolePermissionsBoundary" in s["Action"] for s in allowed)
        denied = [s for s in program["Statement"] if s["Effect"] == "Deny"]
        assert any(
            s["Resource"] == boundary_arn and "iam:CreatePolicyVersion" in s["Action"]
            for s in denied
        )


def test_a_loosened_boundary_is_put_back(session: Session, settings: BootstrapSettings) -> None:
    run(settings, session)
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
    assert run(settings, session).changes == [
        f"reset permissions boundary {settings.boundary_policy}"
    ]
    assert run(settings, session).changes == []


def test_a_pending_connection_and_an_earlier_shared_role_are_left_to_a_person(
    session: Session, settings: BootstrapSettings
) -> None:
    iam = session.client("iam")
    old = f"{settings.prefix}-github-deploy"
    iam.create_role(RoleName=old, AssumeRolePolicyDocument=json.dumps({"Statement": []}))
    to_do = run(settings, session).outcome.to_do
    assert len(to_do) == 2
    assert to_do[0].startswith(f"complete the GitHub connection {settings.connection_name}")
    assert to_do[1].startswith(f"delete the role {old}")
    # Once a person completed the connection, nothing about it is left to do.
    session.connections.status = "AVAILABLE"
    iam.delete_role(RoleName=old)
    assert run(settings, session).outcome.to_do == []


def test_the_report_names_what_the_stack_files_and_github_need(first_run: FirstRun) -> None:
    settings, bootstrap = first_run.settings, first_run.bootstrap
    text = report(settings, bootstrap.outcome)
    account = bootstrap.account
    assert f"secretsprovider: awskms://alias/{settings.prefix}-pulumi-production?region=" in text
    assert f"deployer: arn:aws:iam::{account}:role/{settings.prefix}-github-staging-deploy" in text
    assert f"githubConnection: {CONNECTION_ARN}" in text
    assert f'accountId: "{account}"' in text
    # The program's setting names the boundary this bootstrap made, whatever --prefix was.
    assert f"  financial-planning:iamPermissionsBoundary: {settings.prefix}-workload-boundary" in (
        text
    )
    assert "pulumi stack tag set environment production --stack production" in text


def test_the_github_environment_commands_are_valid_api_bodies() -> None:
    """GitHub's REST API, "Create or update an environment": reviewers {type, id} (at most
    six), prevent_self_review, deployment_branch_policy {protected_branches,
    custom_branch_policies}; "Create a deployment branch policy": name and type."""
    settings = BootstrapSettings(
        region="eu-west-1",
        bucket="fp-state",
        repository=REPOSITORY,
        stacks=("staging", "production"),
    )
    bodies: dict[str, dict[str, Any]] = {}
    branch_rules: dict[str, list[str]] = {}
    for stack in settings.stacks:
        lines = environment_commands(settings, stack)
        for index, line in enumerate(lines):
            if line.startswith("gh api --method PUT"):
                environment = line.split("/environments/")[1].split()[0]
                text = lines[index + 1].replace("$TEAM_ID", "42")
                assert TEAM_ID not in text
                bodies[environment] = json.loads(text)
            elif "deployment-branch-policies" in line:
                environment = line.split("/environments/")[1].split("/")[0]
                branch_rules.setdefault(environment, []).append(line.split("-f ")[1])
    assert set(bodies) == {"staging", "staging-preview", "production", "production-preview"}
    for environment, document in bodies.items():
        assert set(document) == {
            "wait_timer",
            "prevent_self_review",
            "reviewers",
            "deployment_branch_policy",
        }
        reviewed = environment.startswith("production")
        assert document["reviewers"] == ([{"type": "Team", "id": 42}] if reviewed else None)
        assert document["prevent_self_review"] is reviewed
    # Deploys only from main. Previews run from pull requests, whose head branch (what GitHub
    # checks a branch rule against) is any name a contributor picks: no branch rule.
    assert branch_rules == {"staging": ["name=main "], "production": ["name=main "]}
    assert bodies["production"]["deployment_branch_policy"] == {
        "protected_branches": False,
        "custom_branch_policies": True,
    }
    assert bodies["production-preview"]["deployment_branch_policy"] is None


def test_the_program_names_the_boundary_the_bootstrap_makes_by_default() -> None:
    default = BootstrapSettings(region="eu-west-1", bucket="state", repository=REPOSITORY)
    assert DEFAULTS["production"]["iamPermissionsBoundary"] == default.boundary_policy
    assert DEFAULTS["staging"]["iamPermissionsBoundary"] == default.boundary_policy


# A reviewed stack's roles and its GitHub environments ------------------------------------------


def argv_of(settings: BootstrapSettings) -> list[str]:
    return [
        "--region=eu-west-1",
        f"--bucket={settings.bucket}",
        f"--repository={settings.repository}",
        f"--prefix={settings.prefix}",
        *(f"--stack={stack}" for stack in settings.stacks),
    ]


def role_names(session: Session) -> set[str]:
    pages = session.client("iam").get_paginator("list_roles").paginate()
    return {r["RoleName"] for page in pages for r in page["Roles"]}


@pytest.fixture
def unprotected(settings: BootstrapSettings) -> BootstrapSettings:
    """The same account layout under a repository of its own, whose environments the test
    sets (the fake GitHub is shared by the module)."""
    n = next(_names)
    return BootstrapSettings(
        region=settings.region,
        bucket=settings.bucket,
        repository=f"example-org/unprotected-{n}",
        stacks=settings.stacks,
        prefix=settings.prefix,
    )


def test_an_environment_github_made_unprotected_holds_the_reviewed_roles_back(
    session: Session, unprotected: BootstrapSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pull request opened before the environments were set makes GitHub create
    production-preview without protection; the bootstrap then makes no production role, says
    why in one line, and does the rest (staging's roles, every key)."""
    github = session.github
    github.protect(unprotected.repository, "production")
    github.environments[(unprotected.repository, "production-preview")] = github_fake.environment(
        unprotected.repository, "production-preview", []
    )
    gate = GitHubEnvironments(unprotected.repository, github_fake.TOKEN, api_url=github.url)
    session.connections.expect_run()
    assert main(argv_of(unprotected), session=session, gate=gate) == 1
    captured = capsys.readouterr()
    assert captured.err == (
        "bootstrap: the roles of production were not made: production-preview has no required "
        "reviewers (in a private or internal repository they need GitHub Enterprise); set the "
        "environments with the gh api calls above, then run again\n"
    )
    assert "# The roles of production are not made yet" in captured.out
    roles = role_names(session)
    assert {unprotected.deploy_role("staging"), unprotected.preview_role("staging")} <= roles
    assert not {unprotected.deploy_role("production"), unprotected.preview_role("production")} & (
        roles
    )
    kms = session.client("kms", region_name="eu-west-1")
    kms.describe_key(KeyId=unprotected.secrets_alias("production"))  # stack init needs it

    # Reviewers set as printed: the next run makes production's roles and exits 0.
    github.protect(unprotected.repository, "production-preview")
    session.connections.expect_run()
    assert main(argv_of(unprotected), session=session, gate=gate) == 0
    assert capsys.readouterr().err == ""
    assert {unprotected.deploy_role("production"), unprotected.preview_role("production")} <= (
        role_names(session)
    )


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        (None, "production has no required reviewers"),
        (
            [github_fake.reviewers_rule(prevent_self_review=False)],
            "production lets the one who started a run approve it",
        ),
    ],
)
def test_each_unprotected_reviewed_environment_is_named(
    session: Session,
    unprotected: BootstrapSettings,
    capsys: pytest.CaptureFixture[str],
    rules: list[dict[str, Any]] | None,
    reason: str,
) -> None:
    github = session.github
    github.environments[(unprotected.repository, "production")] = github_fake.environment(
        unprotected.repository, "production", rules
    )
    # production-preview was never made (GitHub: 404).
    gate = GitHubEnvironments(unprotected.repository, github_fake.TOKEN, api_url=github.url)
    session.connections.expect_run()
    assert main(argv_of(unprotected), session=session, gate=gate) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"bootstrap: the roles of production were not made: {reason}")
    assert "production-preview does not exist" in err


def test_without_a_github_token_it_says_what_to_run_and_trusts_no_reviewed_environment(
    session: Session,
    settings: BootstrapSettings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in ("GH_TOKEN", "GITHUB_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    session.connections.expect_run()
    assert main(argv_of(settings), session=session) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(
        "bootstrap: no GitHub token to check the reviewers of production, production-preview, "
        "so the roles of production were not made: run `GH_TOKEN=$(gh auth token) python -m "
        f"bootstrap --region=eu-west-1 --bucket={settings.bucket} "
    )
    roles = role_names(session)
    assert settings.deploy_role("staging") in roles
    assert settings.deploy_role("production") not in roles
    assert settings.preview_role("production") not in roles


def test_reviewers_removed_later_leave_the_roles_as_they_are_and_say_so(
    session: Session, settings: BootstrapSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    run(settings, session)
    iam = session.client("iam")
    preview = settings.preview_role("production")
    before = iam.get_role(RoleName=preview)["Role"]["AssumeRolePolicyDocument"]
    github = session.github
    github.environments[(settings.repository, "production-preview")] = github_fake.environment(
        settings.repository, "production-preview", [github_fake.WAIT_TIMER_RULE]
    )
    try:
        gate = GitHubEnvironments(settings.repository, github_fake.TOKEN, api_url=github.url)
        session.connections.expect_run()
        assert main(argv_of(settings), session=session, gate=gate) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert (
            f"{settings.deploy_role('production')} and {preview} of an earlier run still trust "
            "them: restore the reviewers or delete the roles"
        ) in err
        assert iam.get_role(RoleName=preview)["Role"]["AssumeRolePolicyDocument"] == before
    finally:
        github.protect(settings.repository, "production-preview")


def test_the_shared_first_run_refuses_a_write(first_run: FirstRun) -> None:
    """Negative control of `ReadOnlySession`: a write through the shared run's session is
    refused before it reaches the account; a read of the same bucket goes through."""
    s3 = first_run.session.client("s3", region_name=first_run.settings.region)
    bucket = first_run.settings.bucket
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    with pytest.raises(AssertionError, match="PutBucketVersioning: the shared first run"):
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
