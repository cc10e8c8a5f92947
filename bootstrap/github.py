"""Whether a GitHub environment really holds its jobs for a reviewer, read from GitHub's REST API.

A reviewed stack's roles trust the GitHub environments `<stack>` and `<stack>-preview` (their
OIDC subject). That trust is only as good as the environments' protection, which lives in
GitHub, not here: GitHub creates an environment without any protection the first time a job
names it, and required reviewers exist in private and internal repositories only on GitHub
Enterprise (GitHub REST API, "REST API endpoints for deployment environments": on Free, Pro and
Team, deployment protection rules other than branch rules are for public repositories only).
So the bootstrap reads each reviewed environment before it lets a role trust it.

GitHub REST API, "Get an environment" (GET /repos/{owner}/{repo}/environments/{environment_name};
@octokit/openapi 23.0.2, generated/api.github.com.deref.json): 200 with `protection_rules`, a
list of rules each with `id`, `node_id` and `type`; the `required_reviewers` rule carries
`reviewers` (each `{type: User|Team, reviewer}`) and `prevent_self_review` (whether the one who
started the run may approve it). An environment that does not exist answers 404.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Protocol

GITHUB_API = "https://api.github.com"
# The variables `gh` itself reads a token from (GitHub CLI manual, "gh help environment").
TOKEN_VARIABLES = ("GH_TOKEN", "GITHUB_TOKEN")
API_VERSION = "2022-11-28"


class EnvironmentGate(Protocol):
    def refusal(self, environment: str) -> str | None:
        """None when the environment holds every job for a reviewer other than the run's
        author; else why not, as a phrase naming the environment."""


class GitHubEnvironments:
    """Reads environments of one repository through GitHub's REST API (stdlib urllib)."""

    def __init__(
        self,
        repository: str,
        token: str,
        *,
        api_url: str = GITHUB_API,
        opener: urllib.request.OpenerDirector | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.repository = repository
        self.token = token
        self.api_url = api_url.rstrip("/")
        self.opener = opener or urllib.request.build_opener()
        self.timeout = timeout

    def get(self, environment: str) -> tuple[int, Any]:
        """The status and JSON body of "Get an environment"."""
        name = urllib.parse.quote(environment, safe="")
        request = urllib.request.Request(
            f"{self.api_url}/repos/{self.repository}/environments/{name}",
            headers={
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {self.token}",
                "X-GitHub-Api-Version": API_VERSION,
                # GitHub refuses requests without a User-Agent (REST API, "Getting started").
                "User-Agent": "financial-planning-bootstrap",
            },
        )
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return int(response.status), json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            try:
                body = json.loads(error.read() or b"null")
            except ValueError:
                body = None
            return int(error.code), body

    def refusal(self, environment: str) -> str | None:
        try:
            status, body = self.get(environment)
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            return f"GitHub could not be read for {environment} ({reason})"
        if status == 404:
            return (
                f"{environment} does not exist (GitHub would create it unprotected the first "
                "time a job names it)"
            )
        if status != 200 or not isinstance(body, dict):
            message = body.get("message", "") if isinstance(body, dict) else ""
            return f"GitHub answered {status} for {environment}" + (
                f" ({message})" if message else ""
            )
        return protection_refusal(environment, body)


def protection_refusal(environment: str, body: dict[str, Any]) -> str | None:
    """Why an environment, as "Get an environment" returns it, does not hold jobs for an
    independent reviewer; None when it does."""
    rules = body.get("protection_rules") or []
    reviewers = next(
        (r for r in rules if isinstance(r, dict) and r.get("type") == "required_reviewers"),
        None,
    )
    if reviewers is None:
        return (
            f"{environment} has no required reviewers (in a private or internal repository "
            "they need GitHub Enterprise)"
        )
    if not reviewers.get("reviewers"):
        return f"{environment} requires reviewers but names none"
    if reviewers.get("prevent_self_review") is not True:
        return f"{environment} lets the one who started a run approve it (prevent_self_review)"
    return None
