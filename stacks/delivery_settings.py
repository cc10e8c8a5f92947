"""How a stack is delivered: the AWS account it lives in, the preview role, the state bucket,
and the GitHub repository whose runner the stack hosts.

The workflows read these from the stack file (`python -m offline.preflight`), so each stack
names its own account and roles: one account per environment needs nothing else. The deploy
role is `access.deployer` (the principal `pulumi up` runs as); `python -m bootstrap` prints the
values for a new account.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from stacks.rules import PrincipalArn
from stacks.settings_base import Settings, invalid

# GitHub's rules for an owner (1-39, alphanumerics and single hyphens) and a repository name.
REPOSITORY_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}/[A-Za-z0-9._-]{1,100}$"
# A CodeConnections connection (botocore's codeconnections model, ConnectionArn). Only the
# codeconnections prefix: a connection made before the service's rename keeps the
# codestar-connections prefix, and IAM matches a policy's service prefix against the resource
# ARN's ("Connections rename - Summary of changes": the prefixes must match), while the
# runner's role and the workload boundary grant codeconnections: actions. The bootstrap makes
# its connection with the codeconnections API, so its ARN has the new prefix.
CONNECTION_ARN_PATTERN = (
    r"^arn:aws:codeconnections:([a-z]{2}-[a-z]+-[0-9]):([0-9]{12}):connection/[A-Za-z0-9_-]+$"
)
OLD_CONNECTION_PREFIX = "arn:aws:codestar-connections:"
# S3 bucket names: 3-63 lowercase letters, digits, dots and hyphens, a letter or digit at each
# end (S3 user guide, "Bucket naming rules"); dots are refused here (they break TLS wildcard
# certificates of virtual-hosted-style URLs).
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"
# CodeBuild's Linux compute types (CodeBuild API reference, ProjectEnvironment.computeType).
RunnerComputeType = Literal[
    "BUILD_GENERAL1_SMALL",
    "BUILD_GENERAL1_MEDIUM",
    "BUILD_GENERAL1_LARGE",
    "BUILD_GENERAL1_XLARGE",
    "BUILD_GENERAL1_2XLARGE",
]


def account_of(arn: str) -> str:
    return arn.split(":")[4]


class RunnerSettings(Settings):
    # MEDIUM: 4 vCPUs and 7 GB, room for the program, its policy pack and the providers.
    compute_type: RunnerComputeType = "BUILD_GENERAL1_MEDIUM"


class DeliverySettings(Settings):
    account_id: Annotated[str, Field(pattern=r"^[0-9]{12}$")]
    # The bucket `pulumi login s3://...` uses for this stack (the bootstrap's, in this account).
    state_bucket: Annotated[str, Field(pattern=BUCKET_PATTERN)]
    # owner/name on GitHub: the repository whose workflows run on this stack's runner.
    repository: str
    # The bootstrap's GitHub connection in this account and region.
    github_connection: str
    # The role pull requests preview this stack with (read-only: list it in access.auditors).
    preview_role: PrincipalArn
    runner: RunnerSettings = RunnerSettings()

    @field_validator("repository")
    @classmethod
    def _owner_and_name(cls, repository: str) -> str:
        # Python's re: the pattern's look-ahead is beyond pydantic's own regex engine.
        if not re.fullmatch(REPOSITORY_PATTERN, repository, flags=re.ASCII):
            raise invalid("repository", repository, f"{repository!r} is not owner/name on GitHub")
        return repository

    @field_validator("github_connection")
    @classmethod
    def _a_codeconnections_arn(cls, arn: str) -> str:
        if arn.startswith(OLD_CONNECTION_PREFIX):
            raise invalid(
                "githubConnection",
                arn,
                f"{arn} has the codestar-connections prefix, and the runner's role and the "
                "workload boundary grant codeconnections: actions, which IAM does not match to "
                "it: use the bootstrap's connection (arn:aws:codeconnections:...)",
            )
        if not re.fullmatch(CONNECTION_ARN_PATTERN, arn, flags=re.ASCII):
            raise invalid(
                "githubConnection",
                arn,
                f"{arn!r} is not a connection ARN "
                "(arn:aws:codeconnections:<region>:<account>:connection/<id>)",
            )
        return arn

    @model_validator(mode="after")
    def _one_account(self) -> DeliverySettings:
        for key, arn in (
            ("previewRole", self.preview_role),
            ("githubConnection", self.github_connection),
        ):
            if account_of(arn) != self.account_id:
                raise invalid(
                    key,
                    arn,
                    f"{arn} is in account {account_of(arn)}, not the stack's {self.account_id} "
                    "(allowed: an ARN of accountId)",
                )
        return self

    def connection_region(self) -> str:
        match = re.fullmatch(CONNECTION_ARN_PATTERN, self.github_connection)
        return match.group(1) if match else ""
