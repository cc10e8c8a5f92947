"""What every stack needs before its first `pulumi up`, created idempotently with boto3.

- the state bucket (`pulumi login s3://<bucket>`): versioned, encrypted with the state key,
  TLS-only, public access blocked, owner-enforced, old versions expiring;
- the state key (`pulumi stack init --secrets-provider awskms://alias/<prefix>-state`);
- GitHub's OIDC provider, and two roles only this repository's workflows can assume: the
  preview role (pull requests) and the deploy role (main, and the `production` environment);
- the permissions boundary (`<prefix>-workload-boundary`) that every role the deploy role
  creates must carry: no role of the program can ever change identities, whatever policy the
  program gives it, so the deploy role cannot grant more than it has.

Each step reads what exists and changes only what differs, so a second run changes nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from components.shared.iam import managed_policy_arn, oidc_trust_policy
from components.shared.s3 import deny_insecure_transport
from stacks.aws_facts import REGIONS
from stacks.settings import REGION_PATTERN

GITHUB_ISSUER = "token.actions.githubusercontent.com"
GITHUB_AUDIENCE = "sts.amazonaws.com"
# GitHub's rules for an owner (1-39, alphanumerics and single hyphens) and a repository name.
REPOSITORY_PATTERN = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}/[A-Za-z0-9._-]{1,100}$"
)
# S3 bucket names: 3-63 lowercase letters, digits, dots and hyphens, a letter or digit at each
# end (S3 user guide, "Bucket naming rules"); dots are refused here (they break TLS wildcard
# certificates of virtual-hosted-style URLs).
BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")
NONCURRENT_VERSION_DAYS = 90
# What the boundary denies: every IAM action that creates or widens an identity or its
# credentials, or removes a boundary (IAM service authorization reference). Reads and
# service-linked roles (which EKS's cluster role creates for load balancers) stay possible.
IDENTITY_WRITES = sorted(
    [
        "iam:AddUserToGroup",
        "iam:AttachGroupPolicy",
        "iam:AttachRolePolicy",
        "iam:AttachUserPolicy",
        "iam:CreateAccessKey",
        "iam:CreateGroup",
        "iam:CreateLoginProfile",
        "iam:CreateOpenIDConnectProvider",
        "iam:CreatePolicy",
        "iam:CreatePolicyVersion",
        "iam:CreateRole",
        "iam:CreateSAMLProvider",
        "iam:CreateUser",
        "iam:DeleteRolePermissionsBoundary",
        "iam:DeleteUserPermissionsBoundary",
        "iam:PassRole",
        "iam:PutGroupPolicy",
        "iam:PutRolePermissionsBoundary",
        "iam:PutRolePolicy",
        "iam:PutUserPermissionsBoundary",
        "iam:PutUserPolicy",
        "iam:SetDefaultPolicyVersion",
        "iam:UpdateAssumeRolePolicy",
        "iam:UpdateLoginProfile",
        "organizations:*",
        "account:*",
    ]
)
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


@dataclass(frozen=True)
class BootstrapSettings:
    region: str
    bucket: str
    repository: str  # owner/name on GitHub
    prefix: str = "financial-planning"

    def __post_init__(self) -> None:
        checks = [
            ("--region", self.region, REGION_PATTERN, "a commercial AWS region"),
            ("--bucket", self.bucket, BUCKET_PATTERN.pattern, "3-63 of a-z, 0-9 and -"),
            ("--repository", self.repository, REPOSITORY_PATTERN.pattern, "owner/name"),
            ("--prefix", self.prefix, PREFIX_PATTERN.pattern, "3-32 of a-z, 0-9 and -"),
        ]
        for flag, value, pattern, allowed in checks:
            if not re.fullmatch(pattern, value, flags=re.ASCII):
                raise BootstrapError(f"{flag}: {value!r} is not {allowed}")
        if self.region not in REGIONS:
            raise BootstrapError(f"--region: {self.region!r} is not a commercial AWS region")

    @property
    def key_alias(self) -> str:
        return f"alias/{self.prefix}-state"

    @property
    def preview_role(self) -> str:
        return f"{self.prefix}-github-preview"

    @property
    def deploy_role(self) -> str:
        return f"{self.prefix}-github-deploy"

    @property
    def boundary_policy(self) -> str:
        """The stack setting `iamPermissionsBoundary` names this policy."""
        return f"{self.prefix}-workload-boundary"

    def subjects(self, role: str) -> list[str]:
        """The OIDC `sub` claims a role trusts: GitHub's documented formats."""
        repo = f"repo:{self.repository}"
        if role == self.preview_role:
            return [f"{repo}:pull_request"]
        return [f"{repo}:ref:refs/heads/main", f"{repo}:environment:production"]


def trust_policy(provider_arn: str, subjects: list[str]) -> dict[str, Any]:
    """Only GitHub tokens for STS and exactly these subjects (no wildcards)."""
    return dict(json.loads(oidc_trust_policy(provider_arn, GITHUB_ISSUER, subjects)))


def state_access_policy(bucket: str, key_arn: str, *, write: bool) -> dict[str, Any]:
    """The state bucket and key. A preview reads the state and writes only its lock."""
    objects = f"arn:aws:s3:::{bucket}/*" if write else f"arn:aws:s3:::{bucket}/.pulumi/locks/*"
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
        {
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:DeleteObject"],
            "Resource": objects,
        },
        {
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            "Resource": key_arn,
        },
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def workload_boundary() -> dict[str, Any]:
    """The most any role of the program may do: everything but identity changes. A boundary
    grants nothing itself; a role's rights are its own policies within it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "WithinTheRolesOwnPolicies", "Effect": "Allow", "Action": "*", "Resource": "*"},
            {
                "Sid": "NoIdentityChanges",
                "Effect": "Deny",
                "Action": IDENTITY_WRITES,
                "Resource": "*",
            },
        ],
    }


def deploy_iam_policy(account: str, prefix: str, boundary_arn: str) -> dict[str, Any]:
    """PowerUserAccess leaves IAM out; the program's roles (always under the workload boundary)
    and OIDC providers, by name only."""
    role = f"arn:aws:iam::{account}:role/{prefix}-*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                # Never the bootstrap's own roles: the deploy role may not widen itself.
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
                    "iam:CreateOpenIDConnectProvider",
                    "iam:DeleteOpenIDConnectProvider",
                    "iam:GetOpenIDConnectProvider",
                    "iam:TagOpenIDConnectProvider",
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


class Bootstrap:
    """Runs the steps against one account and region; `changes` lists what each run did."""

    def __init__(self, settings: BootstrapSettings, session: Any) -> None:
        self.settings = settings
        self.s3 = session.client("s3", region_name=settings.region)
        self.kms = session.client("kms", region_name=settings.region)
        self.iam = session.client("iam", region_name=settings.region)
        self.account = session.client("sts", region_name=settings.region).get_caller_identity()[
            "Account"
        ]
        self.changes: list[str] = []

    def run(self) -> list[str]:
        key_arn = self.state_key()
        self.state_bucket(key_arn)
        provider_arn = self.github_provider()
        boundary_arn = self.boundary()
        self.role(self.settings.preview_role, provider_arn, key_arn, write=False)
        self.role(
            self.settings.deploy_role, provider_arn, key_arn, write=True, boundary=boundary_arn
        )
        return self.changes

    # The state key ------------------------------------------------------------------------

    def state_key(self) -> str:
        alias = self.settings.key_alias
        aliases = self.kms.get_paginator("list_aliases").paginate()
        existing = next(
            (a for page in aliases for a in page["Aliases"] if a["AliasName"] == alias), None
        )
        if existing is None:
            key = self.kms.create_key(
                Description=f"{self.settings.prefix}: Pulumi state and stack secrets",
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

    # GitHub's OIDC provider and the two roles ----------------------------------------------

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
        key_arn: str,
        *,
        write: bool,
        boundary: str | None = None,
    ) -> None:
        trust = trust_policy(provider_arn, self.settings.subjects(name))
        try:
            current = self.iam.get_role(RoleName=name)["Role"]
        except self.iam.exceptions.NoSuchEntityException:
            self.iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(trust),
                MaxSessionDuration=3600 * (2 if write else 1),
                Description=f"GitHub Actions of {self.settings.repository}",
            )
            self.changes.append(f"created role {name}")
        else:
            if not _same_policy(current["AssumeRolePolicyDocument"], trust):
                self.iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
                self.changes.append(f"reset the trust policy of {name}")

        inline = {"state": state_access_policy(self.settings.bucket, key_arn, write=write)}
        if write:
            if boundary is None:
                raise ValueError("the deploy role needs the workload boundary's ARN")
            inline["program-iam"] = deploy_iam_policy(self.account, self.settings.prefix, boundary)
        for policy_name, document in inline.items():
            try:
                current_doc = self.iam.get_role_policy(RoleName=name, PolicyName=policy_name)[
                    "PolicyDocument"
                ]
            except self.iam.exceptions.NoSuchEntityException:
                current_doc = {}
            if not _same_policy(current_doc, document):
                self.iam.put_role_policy(
                    RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document)
                )
                self.changes.append(f"set policy {policy_name} of {name}")

        if write:
            managed = managed_policy_arn("PowerUserAccess")
            attached = self.iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
            if managed not in {p["PolicyArn"] for p in attached}:
                self.iam.attach_role_policy(RoleName=name, PolicyArn=managed)
                self.changes.append(f"attached PowerUserAccess to {name}")
