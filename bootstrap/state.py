"""What every stack needs before its first `pulumi up`, created idempotently with boto3.

Once per account (one account per environment is the layout AWS recommends; one account for
several stacks works too):

- the state bucket (`pulumi login s3://<bucket>`): versioned, encrypted with the state key,
  TLS-only, public access blocked, owner-enforced, old versions expiring;
- the state key (`alias/<prefix>-state`), used only through S3;
- GitHub's OIDC provider;
- the permissions boundary (`<prefix>-workload-boundary`): an allow-list of the AWS services
  the program's workloads and controllers use, which every role the deploy roles create must
  carry;
- the GitHub connection (AWS CodeConnections) through which each stack's CodeBuild runner
  registers with the repository: created pending, authorized once by a person in the console.

Per stack (`--stack`, repeatable):

- its secrets key (`alias/<prefix>-pulumi-<stack>`): the stack file's `secretsprovider`;
- its deploy role, trusted only for the GitHub environment `<stack>` (`pulumi up`), which may
  manage the program's roles of its own stack only (`<project>-<stack>-*`);
- its preview role, trusted only for the GitHub environment `<stack>-preview` (pull requests):
  it reads its own stack's state objects and decrypts its own stack's secrets, nothing else.

A reviewed stack's two roles trust GitHub only once both its environments are read back from
GitHub with required reviewers who may not approve their own runs (bootstrap/github.py); until
then they are not made. And the names the deploy roles may manage are reserved for the roles
the program creates: a role there without the workload boundary stops the run.

Each step reads what exists and changes only what differs, so a second run changes nothing.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from bootstrap.github import EnvironmentGate
from components.shared.iam import managed_policy_arn, oidc_trust_policy
from components.shared.s3 import deny_insecure_transport
from stacks.aws_facts import REGIONS
from stacks.delivery_settings import BUCKET_PATTERN as BUCKET
from stacks.delivery_settings import REPOSITORY_PATTERN as REPOSITORY
from stacks.loader import STACK_NAME_PATTERN
from stacks.settings import REGION_PATTERN

GITHUB_ISSUER = "token.actions.githubusercontent.com"
# The Pulumi project (Pulumi.yaml `name`): the stem of the program's resource names and the
# folder of its stacks in the state bucket (tests/test_bootstrap.py compares the two).
PROJECT = "financial-planning"
GITHUB_AUDIENCE = "sts.amazonaws.com"
REPOSITORY_PATTERN = re.compile(REPOSITORY)
BUCKET_PATTERN = re.compile(BUCKET)
# 3-32 characters: it is also the GitHub connection's name, which CodeConnections caps at 32
# (CreateConnection, ConnectionName: 1-32; botocore's codeconnections model says the same).
PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")
NONCURRENT_VERSION_DAYS = 90
# How long one `pulumi up` may hold its credentials: the deploy jobs' timeout (90 minutes) fits
# inside it, so the token never expires mid-update. IAM allows 3600 to 43200 seconds
# (CreateRole, MaxSessionDuration); the workflow asks for exactly this (role-duration-seconds).
DEPLOY_SESSION_SECONDS = 2 * 3600
# A preview job runs 30 minutes at most.
PREVIEW_SESSION_SECONDS = 3600

# The permissions boundary: every AWS service the program's roles use, with who uses it, and
# nothing else. Whole services where a role of the program acts in them (each role's own policy
# narrows that down); single actions where only one is needed. IAM is absent but for
# service-linked roles (EKS's cluster role and the load balancer controller create the ELB
# one), so no role of the program can create or widen an identity. A test checks every role
# of every rendered stack against this list (tests/test_permissions_boundary.py).
BOUNDARY_ALLOWS: dict[str, str] = {
    "acm:*": "the load balancer controller finds the edge's certificates",
    "autoscaling:*": "the cluster autoscaler; EKS's cluster role",
    "backup:*": "AWS Backup copies the database to the recovery region",
    "codeconnections:GetConnection": "the CodeBuild runner registers with GitHub",
    "codeconnections:GetConnectionToken": "the CodeBuild runner registers with GitHub",
    "ec2:*": "nodes, the VPC CNI, the EBS CSI driver, the load balancer controller, EKS's "
    "cluster role, the runner's network interfaces",
    "ecr:*": "nodes pull the services' images",
    "eks:*": "nodes and the cluster autoscaler describe the cluster and its node groups",
    "eks-auth:*": "the Pod Identity agent on the nodes",
    "elasticloadbalancing:*": "the load balancer controller; EKS's cluster role",
    "es:*": "the log shipper, Jaeger and the search bootstrap write to the search domain",
    "iam:CreateServiceLinkedRole": "EKS's cluster role and the load balancer controller",
    "kms:*": "the stack's keys: volumes, secrets, logs, backups",
    "logs:*": "flow logs, the runner's build logs, the trail",
    "rds:*": "AWS Backup snapshots the database",
    "rds-db:*": "the services sign in to the database with IAM",
    "route53:*": "external-dns and cert-manager write the edge's records",
    "s3:*": "document-service's bucket",
    "secretsmanager:*": "External Secrets reads the application's secrets",
    "shield:*": "the load balancer controller protects the load balancer",
    "tag:GetResources": "AWS Backup finds what its selection names",
    "wafv2:*": "the load balancer controller attaches the web ACL",
}
# Role changes that IAM lets a policy tie to the boundary the role gets or has (condition key
# iam:PermissionsBoundary; IAM service authorization reference, "Actions defined by IAM").
BOUNDED_ROLE_WRITES = [
    "iam:AttachRolePolicy",
    "iam:CreateRole",
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
]


class BootstrapError(ValueError):
    """A bad argument: one line naming it, its value and what is allowed."""


class BootstrapRefusal(RuntimeError):
    """The account holds something the bootstrap will not build on: one line saying what."""


@dataclass(frozen=True)
class BootstrapSettings:
    region: str
    bucket: str
    repository: str  # owner/name on GitHub
    stacks: tuple[str, ...] = ("staging", "production")
    # Names the bootstrap's own resources (roles, keys, boundary, connection).
    prefix: str = "financial-planning"
    # Stacks whose deploys and previews wait for a reviewer (GitHub environment protection).
    reviewed: frozenset[str] = field(default_factory=lambda: frozenset({"production"}))

    def __post_init__(self) -> None:
        checks = [
            ("--region", self.region, REGION_PATTERN, "a commercial AWS region"),
            ("--bucket", self.bucket, BUCKET_PATTERN.pattern, "3-63 of a-z, 0-9 and -"),
            ("--repository", self.repository, REPOSITORY_PATTERN.pattern, "owner/name"),
            ("--prefix", self.prefix, PREFIX_PATTERN.pattern, "3-32 of a-z, 0-9 and -"),
            *(
                ("--stack", stack, STACK_NAME_PATTERN, "a stack name of the program")
                for stack in self.stacks
            ),
        ]
        for flag, value, pattern, allowed in checks:
            if not re.fullmatch(pattern, value, flags=re.ASCII):
                raise BootstrapError(f"{flag}: {value!r} is not {allowed}")
        if self.region not in REGIONS:
            raise BootstrapError(f"--region: {self.region!r} is not a commercial AWS region")
        if not self.stacks or len(set(self.stacks)) != len(self.stacks):
            raise BootstrapError(f"--stack: {list(self.stacks)} must name each stack once")
        for stack in sorted(self.reviewed - set(self.stacks)):
            raise BootstrapError(f"--reviewed: {stack!r} is not one of --stack {list(self.stacks)}")
        for stack, other in itertools.permutations(self.stacks, 2):
            # The deploy role of `stack` manages the roles named `<project>-<stack>-*`: with a
            # stack `<stack>-<more>` in the same account it would manage that one's roles too.
            if other.startswith(f"{stack}-"):
                raise BootstrapError(
                    f"--stack: {other!r} starts with {stack!r}-: the deploy role of {stack} "
                    f"could change the roles of {other} (both named {PROJECT}-{stack}-...); "
                    "bootstrap them in separate accounts or rename one"
                )

    @property
    def key_alias(self) -> str:
        """The state bucket's key."""
        return f"alias/{self.prefix}-state"

    def secrets_alias(self, stack: str) -> str:
        """The key of one stack's secrets (its `secretsprovider`). Not `<project>-<stack>-
        secrets`: the program's own Secrets Manager key is named that way."""
        return f"alias/{self.prefix}-pulumi-{stack}"

    def secrets_provider(self, stack: str) -> str:
        """The stack file's `secretsprovider` (Pulumi docs, "awskms" secrets provider)."""
        return f"awskms://{self.secrets_alias(stack)}?region={self.region}"

    def preview_role(self, stack: str) -> str:
        return f"{self.prefix}-github-{stack}-preview"

    def deploy_role(self, stack: str) -> str:
        return f"{self.prefix}-github-{stack}-deploy"

    @property
    def boundary_policy(self) -> str:
        """The stack setting `iamPermissionsBoundary` names this policy."""
        return f"{self.prefix}-workload-boundary"

    def program_role_prefix(self, stack: str) -> str:
        """The stem of every role the program creates in `stack` (components/context.py:
        `<project>-<stack>`, then Pulumi's auto-name suffix). The stack's deploy role may manage
        exactly these; the name space is reserved for them."""
        return f"{PROJECT}-{stack}-"

    @property
    def connection_name(self) -> str:
        return self.prefix

    def subjects(self, role: str) -> list[str]:
        """The OIDC `sub` claims a role trusts. A job that names a GitHub environment gets
        `repo:<owner>/<name>:environment:<environment>`, whatever event started it (GitHub
        docs, "OpenID Connect reference", filtering for a specific environment)."""
        for stack in self.stacks:
            if role == self.deploy_role(stack):
                return [f"repo:{self.repository}:environment:{deploy_environment(stack)}"]
            if role == self.preview_role(stack):
                return [f"repo:{self.repository}:environment:{preview_environment(stack)}"]
        raise KeyError(role)


def deploy_environment(stack: str) -> str:
    """The GitHub environment whose jobs may deploy `stack`."""
    return stack


def preview_environment(stack: str) -> str:
    """The GitHub environment whose jobs may preview `stack` from a pull request."""
    return f"{stack}-preview"


def trust_policy(provider_arn: str, subjects: list[str]) -> dict[str, Any]:
    """Only GitHub tokens for STS and exactly these subjects (no wildcards)."""
    return dict(json.loads(oidc_trust_policy(provider_arn, GITHUB_ISSUER, subjects)))


def _through_s3(key_arn: str, region: str, actions: list[str]) -> dict[str, Any]:
    """The state key, only as S3 uses it for the bucket's objects (SSE-KMS: S3 decrypts for
    reads and asks for a data key for writes; S3 user guide, "Using server-side encryption
    with AWS KMS keys", permissions)."""
    return {
        "Effect": "Allow",
        "Action": actions,
        "Resource": key_arn,
        "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
    }


def deploy_state_policy(bucket: str, key_arn: str, region: str) -> dict[str, Any]:
    """The whole state bucket: an `up` writes its checkpoint, history, backups and lock.
    (Scoping it to the stack's objects would protect nothing: the deploy role has
    PowerUserAccess, S3 included.)"""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": f"arn:aws:s3:::{bucket}/*",
            },
            _through_s3(key_arn, region, ["kms:Decrypt", "kms:GenerateDataKey"]),
        ],
    }


def preview_state_objects(project: str, stack: str) -> list[str]:
    """The state objects `pulumi preview` of one stack reads in the S3 (diy) backend, and only
    those (pulumi/pulumi pkg/backend/diy, at the mirror's newest commit, after v3.259.0):

    - `.pulumi/meta.yaml`, the state's layout version, read at login (meta.go,
      ensurePulumiMeta; it is written only when missing, which an administrator's
      `pulumi stack init` has long settled);
    - the checkpoint `.pulumi/stacks/<project>/<stack>.json`, or `.json.gz` / `.json.zst` when
      compressed (store.go StackBasePath; state.go stackPath, which lists that prefix to pick
      one, stackExists and getCheckpoint);
    - `.pulumi/stacks/<project>/<stack>.pulumi-tags` (stack_tags.go, loadStackTags, which
      getTarget calls for every update, previews included).

    A preview takes no lock (backend.go: Preview has no b.Lock, unlike Update, Refresh,
    Destroy and Import) and writes no history or backup (apply: only when not a dry run)."""
    stem = f".pulumi/stacks/{project}/{stack}"
    return [
        ".pulumi/meta.yaml",
        f"{stem}.json",
        f"{stem}.json.gz",
        f"{stem}.json.zst",
        f"{stem}.pulumi-tags",
    ]


def preview_state_policy(
    bucket: str, key_arn: str, region: str, project: str, stack: str
) -> dict[str, Any]:
    """Read the objects of `preview_state_objects` and list only their prefix; write nothing.
    So a preview role, whose jobs run a pull request's code, can neither read another stack's
    state nor hold a lock that blocks an `up`."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                # s3:prefix is the ListObjects request's prefix (S3 user guide, "Condition keys
                # for Amazon S3"); the backend lists `<stem>.json` to find the checkpoint.
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": f"arn:aws:s3:::{bucket}",
                "Condition": {"StringLike": {"s3:prefix": [f".pulumi/stacks/{project}/{stack}.*"]}},
            },
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": [
                    f"arn:aws:s3:::{bucket}/{key}" for key in preview_state_objects(project, stack)
                ],
            },
            _through_s3(key_arn, region, ["kms:Decrypt"]),
        ],
    }


def stack_secrets_policy(key_arn: str) -> dict[str, Any]:
    """Decrypt the stack's data key (the stack file's `encryptedkey`), nothing else: Pulumi's
    awskms provider unwraps it with kms:Decrypt and encrypts values locally with it
    (pulumi/pulumi pkg/secrets/cloud/manager.go). Wrapping a new data key (kms:Encrypt) is a
    person's one-time `pulumi stack init`, never CI's."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn}],
    }


def workload_boundary() -> dict[str, Any]:
    """The most any role of the program may do: the services in BOUNDARY_ALLOWS. A boundary
    grants nothing itself; a role's rights are its own policies within it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ServicesOfTheProgram",
                "Effect": "Allow",
                "Action": sorted(BOUNDARY_ALLOWS),
                "Resource": "*",
            }
        ],
    }


def deploy_iam_policy(
    account: str, prefix: str, role_prefix: str, boundary_arn: str
) -> dict[str, Any]:
    """PowerUserAccess leaves IAM out; the program's roles of the deploy role's own stack
    (`role_prefix`, always under the workload boundary) and the clusters' OIDC providers, by
    name only. The role changes IAM cannot tie to a boundary (UpdateAssumeRolePolicy,
    PassRole, UpdateRole) reach any role of that name, so the names are reserved for the
    program's roles: `Bootstrap.reserved_role_names` refuses an account with another there."""
    role = f"arn:aws:iam::{account}:role/{role_prefix}*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                # Never the bootstrap's own roles: a deploy role may not widen itself.
                "Effect": "Deny",
                "Action": "iam:*",
                "Resource": f"arn:aws:iam::{account}:role/{prefix}-github-*",
            },
            {
                # Nor loosen the boundary, or take it off a role.
                "Effect": "Deny",
                "Action": [
                    "iam:CreatePolicyVersion",
                    "iam:DeletePolicy",
                    "iam:DeletePolicyVersion",
                    "iam:SetDefaultPolicyVersion",
                ],
                "Resource": boundary_arn,
            },
            {
                "Effect": "Deny",
                "Action": "iam:DeleteRolePermissionsBoundary",
                "Resource": f"arn:aws:iam::{account}:role/*",
            },
            {
                # Creating a role, and changing its policies, only with the boundary on it.
                "Effect": "Allow",
                "Action": BOUNDED_ROLE_WRITES,
                "Resource": role,
                "Condition": {"StringEquals": {"iam:PermissionsBoundary": boundary_arn}},
            },
            {
                "Effect": "Allow",
                "Action": [
                    "iam:DeleteRole",
                    "iam:GetRole",
                    "iam:GetRolePolicy",
                    "iam:ListAttachedRolePolicies",
                    "iam:ListInstanceProfilesForRole",
                    "iam:ListRolePolicies",
                    "iam:PassRole",
                    "iam:TagRole",
                    "iam:UntagRole",
                    "iam:UpdateAssumeRolePolicy",
                    "iam:UpdateRole",
                    "iam:UpdateRoleDescription",
                ],
                "Resource": role,
            },
            {
                "Effect": "Allow",
                "Action": [
                    # What the provider's create, update and delete of an
                    # aws.iam.OpenIdConnectProvider call: its client ids and stack-wide tags
                    # change in place (IAM API reference, OpenID Connect provider actions).
                    "iam:AddClientIDToOpenIDConnectProvider",
                    "iam:CreateOpenIDConnectProvider",
                    "iam:DeleteOpenIDConnectProvider",
                    "iam:GetOpenIDConnectProvider",
                    "iam:RemoveClientIDFromOpenIDConnectProvider",
                    "iam:TagOpenIDConnectProvider",
                    "iam:UntagOpenIDConnectProvider",
                    "iam:UpdateOpenIDConnectProviderThumbprint",
                ],
                "Resource": f"arn:aws:iam::{account}:oidc-provider/oidc.eks.*",
            },
        ],
    }


def _same_policy(current: Any, wanted: dict[str, Any]) -> bool:
    if isinstance(current, str):
        current = json.loads(current)
    return bool(current == wanted)


@dataclass
class Outcome:
    """What a run changed, what a person still has to do, and the ARNs the stack files name."""

    changes: list[str] = field(default_factory=list)
    to_do: list[str] = field(default_factory=list)
    account: str = ""
    connection_arn: str = ""
    # Reviewed stacks whose roles were not made or changed, and why (bootstrap/github.py);
    # None when there was no GitHub token to check with.
    held_back: dict[str, str | None] = field(default_factory=dict)


class Bootstrap:
    """Runs the steps against one account and region; `run` says what it did."""

    def __init__(
        self, settings: BootstrapSettings, session: Any, gate: EnvironmentGate | None = None
    ) -> None:
        """`gate` reads the reviewed stacks' GitHub environments; without one (no GitHub
        token) the reviewed stacks' roles are held back."""
        self.settings = settings
        self.gate = gate
        region = settings.region
        self.s3 = session.client("s3", region_name=region)
        self.kms = session.client("kms", region_name=region)
        self.iam = session.client("iam", region_name=region)
        self.connections = session.client("codeconnections", region_name=region)
        self.account = session.client("sts", region_name=region).get_caller_identity()["Account"]
        self.outcome = Outcome(account=self.account)

    @property
    def changes(self) -> list[str]:
        return self.outcome.changes

    @property
    def boundary_arn(self) -> str:
        return f"arn:aws:iam::{self.account}:policy/{self.settings.boundary_policy}"

    def run(self) -> list[str]:
        # Before any change: an account whose reserved names hold a foreign role is refused.
        self.reserved_role_names()
        state_key = self.key(self.settings.key_alias, "Pulumi state (the state bucket)")
        self.state_bucket(state_key)
        provider_arn = self.github_provider()
        boundary_arn = self.boundary()
        self.outcome.connection_arn = self.github_connection()
        self.earlier_shared_roles()
        for stack in self.settings.stacks:
            secrets_key = self.key(
                self.settings.secrets_alias(stack), f"the secrets of stack {stack}"
            )
            if not self.environments_protected(stack):
                continue
            secrets = stack_secrets_policy(secrets_key)
            self.role(
                self.settings.preview_role(stack),
                provider_arn,
                {
                    "state": preview_state_policy(
                        self.settings.bucket, state_key, self.settings.region, PROJECT, stack
                    ),
                    "stack-secrets": secrets,
                },
                session_seconds=PREVIEW_SESSION_SECONDS,
            )
            self.role(
                self.settings.deploy_role(stack),
                provider_arn,
                {
                    "state": deploy_state_policy(
                        self.settings.bucket, state_key, self.settings.region
                    ),
                    "stack-secrets": secrets,
                    "program-iam": deploy_iam_policy(
                        self.account,
                        self.settings.prefix,
                        self.settings.program_role_prefix(stack),
                        boundary_arn,
                    ),
                },
                session_seconds=DEPLOY_SESSION_SECONDS,
                managed=[managed_policy_arn("PowerUserAccess")],
            )
        return self.changes

    def environments_protected(self, stack: str) -> bool:
        """Whether the stack's roles may trust its GitHub environments now: always for a stack
        without reviewers; for a reviewed one, only when GitHub shows both environments with
        required reviewers who cannot approve their own runs. Otherwise its roles are neither
        made nor changed (a role of an earlier run stays as it is, and the refusal names it)."""
        if stack not in self.settings.reviewed:
            return True
        if self.gate is None:
            self.outcome.held_back[stack] = None
            return False
        reasons = [
            reason
            for environment in (deploy_environment(stack), preview_environment(stack))
            if (reason := self.gate.refusal(environment)) is not None
        ]
        if not reasons:
            return True
        existing = [
            name
            for name in (self.settings.deploy_role(stack), self.settings.preview_role(stack))
            if self._role_exists(name)
        ]
        if existing:
            reasons.append(
                f"{' and '.join(existing)} of an earlier run still trust them: restore the "
                "reviewers or delete the roles"
            )
        self.outcome.held_back[stack] = "; ".join(reasons)
        return False

    def _role_exists(self, name: str) -> bool:
        try:
            self.iam.get_role(RoleName=name)
        except self.iam.exceptions.NoSuchEntityException:
            return False
        return True

    def reserved_role_names(self) -> None:
        """Refuse an account where a role named like the program's roles of a bootstrapped
        stack (`<project>-<stack>-*`) lacks the workload boundary: the deploy role could make
        it its own (IAM has no iam:PermissionsBoundary condition for UpdateAssumeRolePolicy,
        PassRole or UpdateRole; IAM service authorization reference). ListRoles does not
        return PermissionsBoundary (IAM API reference, ListRoles), so each match is read with
        GetRole. The bootstrap's own roles (`<prefix>-github-*`) are denied to the deploy
        roles outright and are not counted."""
        prefixes = tuple(self.settings.program_role_prefix(s) for s in self.settings.stacks)
        own = f"{self.settings.prefix}-github-"
        foreign: list[str] = []
        for page in self.iam.get_paginator("list_roles").paginate():
            for listed in page["Roles"]:
                name = str(listed["RoleName"])
                if not name.startswith(prefixes) or name.startswith(own):
                    continue
                role = self.iam.get_role(RoleName=name)["Role"]
                boundary = role.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")
                if boundary != self.boundary_arn:
                    foreign.append(name)
        if foreign:
            raise BootstrapRefusal(
                f"{', '.join(sorted(foreign))}: named like the program's roles "
                f"({', '.join(p + '*' for p in prefixes)}) but without the workload boundary "
                f"{self.settings.boundary_policy}, so a deploy role could take them over: "
                "rename or delete them (or put the boundary on them), then run again"
            )

    def earlier_shared_roles(self) -> None:
        """An earlier bootstrap made one preview and one deploy role for every stack; nothing
        uses them once the workflows assume the per-stack roles, and they can deploy both
        environments: a person deletes them (they may still serve a running workflow)."""
        for old in ("preview", "deploy"):
            name = f"{self.settings.prefix}-github-{old}"
            try:
                self.iam.get_role(RoleName=name)
            except self.iam.exceptions.NoSuchEntityException:
                continue
            self.outcome.to_do.append(
                f"delete the role {name} of an earlier bootstrap (one role for every stack) "
                "once no workflow run uses it"
            )

    # Keys ---------------------------------------------------------------------------------

    def key(self, alias: str, purpose: str) -> str:
        aliases = self.kms.get_paginator("list_aliases").paginate()
        existing = next(
            (a for page in aliases for a in page["Aliases"] if a["AliasName"] == alias), None
        )
        if existing is None:
            key = self.kms.create_key(
                Description=f"{self.settings.prefix}: {purpose}",
                KeySpec="SYMMETRIC_DEFAULT",
                KeyUsage="ENCRYPT_DECRYPT",
            )["KeyMetadata"]
            self.kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
            self.changes.append(f"created KMS key {alias}")
            key_id = key["KeyId"]
        else:
            key_id = existing["TargetKeyId"]
        if not self.kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"]:
            self.kms.enable_key_rotation(KeyId=key_id)
            self.changes.append(f"enabled rotation of {alias}")
        return str(self.kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"])

    # The state bucket ---------------------------------------------------------------------

    def state_bucket(self, key_arn: str) -> None:
        bucket = self.settings.bucket
        try:
            self.s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=self.account)
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
                raise
            create: dict[str, Any] = {"Bucket": bucket, "ObjectOwnership": "BucketOwnerEnforced"}
            # us-east-1 refuses a LocationConstraint naming itself (S3 CreateBucket reference).
            if self.settings.region != "us-east-1":
                create["CreateBucketConfiguration"] = {"LocationConstraint": self.settings.region}
            self.s3.create_bucket(**create)
            self.changes.append(f"created bucket {bucket}")

        if self.s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
            self.s3.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
            )
            self.changes.append(f"enabled versioning of {bucket}")

        block = {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        }
        try:
            current = self.s3.get_public_access_block(Bucket=bucket)
            current_block = current["PublicAccessBlockConfiguration"]
        except ClientError:
            current_block = {}
        if current_block != block:
            self.s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=block)
            self.changes.append(f"blocked public access to {bucket}")

        rule = {
            "ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms",
                "KMSMasterKeyID": key_arn,
            },
            "BucketKeyEnabled": True,
        }
        try:
            rules = self.s3.get_bucket_encryption(Bucket=bucket)[
                "ServerSideEncryptionConfiguration"
            ]["Rules"]
        except ClientError:
            rules = []
        if rules != [rule]:
            self.s3.put_bucket_encryption(
                Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]}
            )
            self.changes.append(f"encrypted {bucket} with the state key")

        lifecycle = [
            {
                "ID": "expire-old-state-versions",
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "NoncurrentVersionExpiration": {"NoncurrentDays": NONCURRENT_VERSION_DAYS},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
            }
        ]
        try:
            current_rules = self.s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        except ClientError:
            current_rules = []
        if current_rules != lifecycle:
            self.s3.put_bucket_lifecycle_configuration(
                Bucket=bucket, LifecycleConfiguration={"Rules": lifecycle}
            )
            self.changes.append(f"set {bucket} to expire old versions")

        tls_only = {
            "Version": "2012-10-17",
            "Statement": [deny_insecure_transport(f"arn:aws:s3:::{bucket}")],
        }
        try:
            current_policy: Any = self.s3.get_bucket_policy(Bucket=bucket)["Policy"]
        except ClientError:
            current_policy = {}
        if not _same_policy(current_policy, tls_only):
            self.s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(tls_only))
            self.changes.append(f"made {bucket} TLS-only")

    # GitHub: the OIDC provider and the connection -------------------------------------------

    def github_provider(self) -> str:
        arn = f"arn:aws:iam::{self.account}:oidc-provider/{GITHUB_ISSUER}"
        providers = self.iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
        if arn not in {p["Arn"] for p in providers}:
            # The thumbprint list is optional: IAM trusts GitHub's certificate through its own
            # library of trusted root CAs (IAM CreateOpenIDConnectProvider reference).
            self.iam.create_open_id_connect_provider(
                Url=f"https://{GITHUB_ISSUER}", ClientIDList=[GITHUB_AUDIENCE]
            )
            self.changes.append("created the GitHub OIDC provider")
            return arn
        clients = self.iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
        if GITHUB_AUDIENCE not in clients["ClientIDList"]:
            self.iam.add_client_id_to_open_id_connect_provider(
                OpenIDConnectProviderArn=arn, ClientID=GITHUB_AUDIENCE
            )
            self.changes.append(f"added {GITHUB_AUDIENCE} to the GitHub OIDC provider")
        return arn

    def github_connection(self) -> str:
        """The connection the runners' CodeBuild projects authenticate to GitHub with. AWS
        creates it PENDING; a person completes it once in the console (installing AWS's GitHub
        App on the repository), after which CodeBuild can create the runners' webhooks
        (CodeConnections user guide, "Update a pending connection")."""
        name = self.settings.connection_name
        found = None
        token: str | None = None
        while found is None:
            page = self.connections.list_connections(
                ProviderTypeFilter="GitHub", **({"NextToken": token} if token else {})
            )
            found = next(
                (c for c in page.get("Connections", []) if c["ConnectionName"] == name), None
            )
            token = page.get("NextToken")
            if not token:
                break
        if found is None:
            arn = str(
                self.connections.create_connection(ProviderType="GitHub", ConnectionName=name)[
                    "ConnectionArn"
                ]
            )
            self.changes.append(f"created the GitHub connection {name} (pending)")
            status = "PENDING"
        else:
            arn, status = str(found["ConnectionArn"]), str(found["ConnectionStatus"])
        if status != "AVAILABLE":
            self.outcome.to_do.append(
                f"complete the GitHub connection {name} ({status}): AWS console, Developer "
                f"Tools > Settings > Connections, region {self.settings.region}, 'Update "
                f"pending connection', and install the AWS Connector app on "
                f"{self.settings.repository}; the runners' webhooks need it"
            )
        return arn

    # The boundary and the roles -------------------------------------------------------------

    def boundary(self) -> str:
        """The workload boundary, reset to its document if it was changed."""
        name = self.settings.boundary_policy
        arn = f"arn:aws:iam::{self.account}:policy/{name}"
        wanted = workload_boundary()
        try:
            policy = self.iam.get_policy(PolicyArn=arn)["Policy"]
        except self.iam.exceptions.NoSuchEntityException:
            self.iam.create_policy(
                PolicyName=name,
                PolicyDocument=json.dumps(wanted),
                Description=f"{self.settings.prefix}: the boundary of every role of the program",
            )
            self.changes.append(f"created permissions boundary {name}")
            return arn
        current = self.iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])[
            "PolicyVersion"
        ]["Document"]
        if not _same_policy(current, wanted):
            # A managed policy keeps at most five versions: drop the oldest spare one first.
            versions = self.iam.list_policy_versions(PolicyArn=arn)["Versions"]
            spare = sorted(
                (v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"]
            )
            if len(versions) >= 5:
                self.iam.delete_policy_version(PolicyArn=arn, VersionId=spare[0]["VersionId"])
            self.iam.create_policy_version(
                PolicyArn=arn, PolicyDocument=json.dumps(wanted), SetAsDefault=True
            )
            self.changes.append(f"reset permissions boundary {name}")
        return arn

    def role(
        self,
        name: str,
        provider_arn: str,
        inline: dict[str, dict[str, Any]],
        *,
        session_seconds: int,
        managed: list[str] | None = None,
    ) -> None:
        trust = trust_policy(provider_arn, self.settings.subjects(name))
        try:
            current = self.iam.get_role(RoleName=name)["Role"]
        except self.iam.exceptions.NoSuchEntityException:
            self.iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(trust),
                MaxSessionDuration=session_seconds,
                Description=f"GitHub Actions of {self.settings.repository}",
            )
            self.changes.append(f"created role {name}")
        else:
            if not _same_policy(current["AssumeRolePolicyDocument"], trust):
                self.iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
                self.changes.append(f"reset the trust policy of {name}")
            if current.get("MaxSessionDuration") != session_seconds:
                self.iam.update_role(RoleName=name, MaxSessionDuration=session_seconds)
                self.changes.append(f"set the session length of {name} to {session_seconds} s")

        present = set(self.iam.list_role_policies(RoleName=name)["PolicyNames"])
        for policy_name in sorted(present - set(inline)):
            # A policy this version no longer grants (an earlier bootstrap's) goes.
            self.iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
            self.changes.append(f"removed policy {policy_name} of {name}")
        for policy_name, document in inline.items():
            current_doc: Any = {}
            if policy_name in present:
                current_doc = self.iam.get_role_policy(RoleName=name, PolicyName=policy_name)[
                    "PolicyDocument"
                ]
            if not _same_policy(current_doc, document):
                self.iam.put_role_policy(
                    RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document)
                )
                self.changes.append(f"set policy {policy_name} of {name}")

        attached = {
            p["PolicyArn"]
            for p in self.iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        }
        for arn in sorted(set(managed or []) - attached):
            self.iam.attach_role_policy(RoleName=name, PolicyArn=arn)
            self.changes.append(f"attached {arn.rsplit('/', 1)[-1]} to {name}")
        for arn in sorted(attached - set(managed or [])):
            self.iam.detach_role_policy(RoleName=name, PolicyArn=arn)
            self.changes.append(f"detached {arn.rsplit('/', 1)[-1]} from {name}")
