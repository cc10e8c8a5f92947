"""A stand-in for GitHub's "Get an environment" endpoint, served over HTTP on the loopback
interface, so the bootstrap's real urllib client talks to it as it would to api.github.com.

The bodies follow GitHub's REST API description (@octokit/openapi 23.0.2,
generated/api.github.com.deref.json, GET /repos/{owner}/{repo}/environments/{environment_name}):
an Environment has id, node_id, name, url, html_url, created_at, updated_at, protection_rules
and deployment_branch_policy; a protection rule has id, node_id and type, plus `wait_timer`
(type wait_timer) or `prevent_self_review` and `reviewers` (type required_reviewers), each
reviewer `{type: User|Team, reviewer: <simple user or team>}`. Errors are the description's
"Basic Error" (message, documentation_url, status).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "ghp_test-token-for-the-fake"
DOCS = "https://docs.github.com/rest/deployments/environments#get-an-environment"


def team_reviewer(team_id: int = 42) -> dict[str, Any]:
    return {
        "type": "Team",
        "reviewer": {
            "id": team_id,
            "node_id": "MDQ6VGVhbTQy",
            "url": f"https://api.github.com/teams/{team_id}",
            "html_url": "https://github.com/orgs/example-org/teams/release",
            "name": "release",
            "slug": "release",
            "description": "Approves production",
            "privacy": "closed",
            "notification_setting": "notifications_enabled",
            "permission": "push",
            "members_url": f"https://api.github.com/teams/{team_id}/members{{/member}}",
            "repositories_url": f"https://api.github.com/teams/{team_id}/repos",
            "parent": None,
        },
    }


def reviewers_rule(
    *, prevent_self_review: bool = True, reviewers: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "id": 3755,
        "node_id": "MDQ6R2F0ZTM3NTU=",
        "prevent_self_review": prevent_self_review,
        "type": "required_reviewers",
        "reviewers": [team_reviewer()] if reviewers is None else reviewers,
    }


WAIT_TIMER_RULE = {
    "id": 3736,
    "node_id": "MDQ6R2F0ZTM3MzY=",
    "type": "wait_timer",
    "wait_timer": 30,
}
BRANCH_POLICY_RULE = {"id": 3756, "node_id": "MDQ6R2F0ZTM3NTY=", "type": "branch_policy"}


def environment(
    repository: str,
    name: str,
    rules: list[dict[str, Any]] | None,
    branch_policy: dict[str, bool] | None = None,
) -> dict[str, Any]:
    """An environment as GitHub returns it; `rules=None` leaves `protection_rules` out (it is
    optional in the description)."""
    body: dict[str, Any] = {
        "id": 161088068,
        "node_id": "MDExOkVudmlyb25tZW50MTYxMDg4MDY4",
        "name": name,
        "url": f"https://api.github.com/repos/{repository}/environments/{name}",
        "html_url": (
            f"https://github.com/{repository}/deployments/activity_log?environments_filter={name}"
        ),
        "created_at": "2020-11-23T22:00:40Z",
        "updated_at": "2020-11-23T22:00:40Z",
        "deployment_branch_policy": branch_policy,
    }
    if rules is not None:
        body["protection_rules"] = rules
    return body


def protected(repository: str, name: str) -> dict[str, Any]:
    """What the bootstrap's `gh api` calls leave: reviewers who may not approve their own
    runs, and (deploy environments) a custom branch rule."""
    return environment(
        repository,
        name,
        [reviewers_rule(), BRANCH_POLICY_RULE],
        {"protected_branches": False, "custom_branch_policies": True},
    )


class FakeGitHub:
    """Environments by (owner/name, environment); anything else is GitHub's 404."""

    def __init__(self) -> None:
        self.environments: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []  # (path, Authorization header)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests.append((self.path, self.headers.get("Authorization", "")))
                status, body = fake.answer(self.path, self.headers)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, path: str, headers: Any) -> tuple[int, dict[str, Any]]:
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}
        if headers.get("Accept") != "application/vnd.github+json" or not headers.get("User-Agent"):
            return 400, {"message": "Bad request", "documentation_url": DOCS, "status": "400"}
        parts = path.strip("/").split("/")
        if len(parts) == 5 and parts[0] == "repos" and parts[3] == "environments":
            found = self.environments.get((f"{parts[1]}/{parts[2]}", parts[4]))
            if found is not None:
                return 200, found
        return 404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}

    def protect(self, repository: str, *names: str) -> None:
        for name in names:
            self.environments[(repository, name)] = protected(repository, name)


@contextmanager
def serving() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
        thread.join(timeout=5)
