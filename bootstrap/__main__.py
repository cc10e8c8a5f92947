"""`python -m bootstrap --region R --bucket B --repository owner/name --stack S [--stack S2]`.

Creates or corrects the account's state bucket and key, GitHub's OIDC provider and connection,
the workload boundary, and each stack's secrets key, preview role and deploy role; prints what
it changed, what a person still has to do, and what the stack files and GitHub need.

The roles of a reviewed stack (`--reviewed`, production by default) trust GitHub only once
GitHub shows their environments with required reviewers: the bootstrap reads them with the
token in GH_TOKEN or GITHUB_TOKEN (`GH_TOKEN=$(gh auth token) python -m bootstrap ...`) and
otherwise says, in one line, what is missing and exits 1 after doing the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from bootstrap.github import TOKEN_VARIABLES, EnvironmentGate, GitHubEnvironments
from bootstrap.state import (
    PROJECT,
    Bootstrap,
    BootstrapError,
    BootstrapRefusal,
    BootstrapSettings,
    Outcome,
    deploy_environment,
    preview_environment,
)

# GitHub's REST API: "Create or update an environment" (PUT .../environments/{name}: reviewers
# as {type, id}, at most six; prevent_self_review; deployment_branch_policy) and "Create a
# deployment branch policy" (POST .../deployment-branch-policies: name, type).
TEAM_ID = "__TEAM_ID__"


def environment_commands(settings: BootstrapSettings, stack: str) -> list[str]:
    """The `gh api` calls that set up a stack's two GitHub environments.

    Deploys run only from main (a branch rule). Previews run from pull requests, and GitHub
    checks an environment's branch rule against the run's head branch, which is whatever a
    contributor named it: a rule would refuse every preview or, admitting every name, add
    nothing; so the preview environment has none, and its reviewers (reviewed stacks) and the
    preview role's narrow rights are what hold. A reviewed stack waits for a reviewer who is
    not the one who started the run, in both.
    """
    repo = settings.repository
    reviewed = stack in settings.reviewed
    lines: list[str] = []
    for environment, branches in (
        (deploy_environment(stack), ["main"]),
        (preview_environment(stack), []),
    ):
        body: dict[str, object] = {
            "wait_timer": 0,
            "prevent_self_review": reviewed,
            "reviewers": [{"type": "Team", "id": TEAM_ID}] if reviewed else None,
            "deployment_branch_policy": (
                {"protected_branches": False, "custom_branch_policies": True} if branches else None
            ),
        }
        document = json.dumps(body).replace(f'"{TEAM_ID}"', "$TEAM_ID")
        lines += [
            f"gh api --method PUT repos/{repo}/environments/{environment} --input - <<EOF",
            document,
            "EOF",
            *(
                f"gh api --method POST repos/{repo}/environments/{environment}/"
                f"deployment-branch-policies -f name={branch} -f type=branch"
                for branch in branches
            ),
        ]
    return lines


def report(settings: BootstrapSettings, outcome: Outcome) -> str:
    account = outcome.account
    lines = outcome.changes or ["nothing to change"]
    if outcome.to_do:
        lines += ["", "To do:", *(f"- {item}" for item in outcome.to_do)]
    for stack in settings.stacks:
        preview = f"arn:aws:iam::{account}:role/{settings.preview_role(stack)}"
        if stack in outcome.held_back:
            lines += ["", f"# The roles of {stack} are not made yet: see the last lines."]
        lines += [
            "",
            f"# Pulumi.{stack}.yaml: the secrets provider, and who deploys and previews it",
            f"secretsprovider: {settings.secrets_provider(stack)}",
            "config:",
            f"  {PROJECT}:iamPermissionsBoundary: {settings.boundary_policy}",
            "  financial-planning:access:",
            f"    deployer: arn:aws:iam::{account}:role/{settings.deploy_role(stack)}",
            f"    auditors: [{preview}]",
            "  financial-planning:delivery:",
            f'    accountId: "{account}"',
            f"    stateBucket: {settings.bucket}",
            f"    repository: {settings.repository}",
            f"    githubConnection: {outcome.connection_arn}",
            f"    previewRole: {preview}",
            "",
            f"# Once, with administrator credentials; then commit Pulumi.{stack}.yaml",
            f"pulumi login s3://{settings.bucket}",
            f"pulumi stack init {stack} --secrets-provider '{settings.secrets_provider(stack)}'",
            f"pulumi config set --secret <key> <value> --stack {stack}"
            f"   # each key `python -m offline.preflight --stack {stack}` names",
            # The preview role reads `<stack>.pulumi-tags`; with the file there, a preview never
            # depends on how S3 answers a missing object to a role that lists only a prefix.
            f"pulumi stack tag set environment {stack} --stack {stack}",
            "",
            f"# GitHub environments of {stack} (a repository administrator; TEAM_ID: "
            "gh api orgs/<org>/teams/<team> --jq .id)",
            *environment_commands(settings, stack),
        ]
    return "\n".join(lines)


def held_back_lines(outcome: Outcome, argv: list[str]) -> list[str]:
    """One line per reviewed stack whose roles were held back; one line in all when there was
    no GitHub token to check with, naming the command to run."""
    unchecked = sorted(s for s, reason in outcome.held_back.items() if reason is None)
    lines = []
    if unchecked:
        environments = ", ".join(
            name for s in unchecked for name in (deploy_environment(s), preview_environment(s))
        )
        lines.append(
            f"bootstrap: no GitHub token to check the reviewers of {environments}, so the roles "
            f"of {', '.join(unchecked)} were not made: run "
            f"`GH_TOKEN=$(gh auth token) python -m bootstrap {shlex.join(argv)}`"
        )
    for stack, reason in sorted(outcome.held_back.items()):
        if reason is not None:
            lines.append(
                f"bootstrap: the roles of {stack} were not made: {reason}; set the environments "
                "with the gh api calls above, then run again"
            )
    return lines


def main(
    argv: list[str] | None = None,
    session: object | None = None,
    gate: EnvironmentGate | None = None,
) -> int:
    """`gate` replaces the GitHub client built from GH_TOKEN or GITHUB_TOKEN (tests)."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--repository", required=True, help="owner/name on GitHub")
    parser.add_argument(
        "--stack", action="append", required=True, help="a stack this account holds (repeat)"
    )
    parser.add_argument(
        "--reviewed",
        action="append",
        help="a stack whose deploys and previews wait for a reviewer (default: production)",
    )
    parser.add_argument("--prefix", default="financial-planning")
    args = parser.parse_args(argv)
    try:
        settings = BootstrapSettings(
            region=args.region,
            bucket=args.bucket,
            repository=args.repository,
            stacks=tuple(args.stack),
            prefix=args.prefix,
            reviewed=frozenset(args.reviewed or {"production"} & set(args.stack)),
        )
    except BootstrapError as error:
        print(f"bootstrap: {error}", file=sys.stderr)
        return 2
    if gate is None:
        token = next((os.environ[v] for v in TOKEN_VARIABLES if os.environ.get(v)), None)
        gate = GitHubEnvironments(settings.repository, token) if token else None
    try:
        bootstrap = Bootstrap(settings, session or boto3.Session(), gate)
        bootstrap.run()
    except BootstrapRefusal as refusal:
        print(f"bootstrap: {refusal}", file=sys.stderr)
        return 1
    except NoCredentialsError:
        print(
            "bootstrap: no AWS credentials found: sign in to the target account first "
            "(aws sso login, AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
            file=sys.stderr,
        )
        return 1
    except ClientError as error:
        details = error.response.get("Error", {})
        print(
            f"bootstrap: AWS refused {error.operation_name}: "
            f"{details.get('Code', '?')}: {details.get('Message', '')}".rstrip(": "),
            file=sys.stderr,
        )
        return 1
    except BotoCoreError as error:
        print(f"bootstrap: {error}", file=sys.stderr)
        return 1
    print(report(settings, bootstrap.outcome))
    refusals = held_back_lines(bootstrap.outcome, argv)
    for line in refusals:
        print(line, file=sys.stderr)
    return 1 if refusals else 0


if __name__ == "__main__":
    sys.exit(main())
