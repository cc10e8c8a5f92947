"""The bootstrap's reading of GitHub environments (bootstrap/github.py) against a fake GitHub on
the loopback interface that answers as GitHub's REST API describes "Get an environment"
(tests/github_fake.py). What the bootstrap then does with a refusal is in
tests/test_bootstrap.py."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from bootstrap.github import GitHubEnvironments, protection_refusal
from tests import github_fake
from tests.github_fake import (
    BRANCH_POLICY_RULE,
    WAIT_TIMER_RULE,
    environment,
    reviewers_rule,
)

REPOSITORY = "example-org/financial-planning"


@pytest.fixture(scope="module")
def github() -> Iterator[github_fake.FakeGitHub]:
    with github_fake.serving() as fake:
        yield fake


def client(github: github_fake.FakeGitHub, token: str = github_fake.TOKEN) -> GitHubEnvironments:
    return GitHubEnvironments(REPOSITORY, token, api_url=github.url)


@pytest.mark.parametrize(
    ("rules", "refusal"),
    [
        # What the bootstrap's `gh api` calls leave.
        ([reviewers_rule(), BRANCH_POLICY_RULE], None),
        # GitHub's own example answer: a reviewer rule that lets the author approve.
        (
            [WAIT_TIMER_RULE, reviewers_rule(prevent_self_review=False), BRANCH_POLICY_RULE],
            "production lets the one who started a run approve it",
        ),
        # What GitHub creates when a job first names an environment: no rules at all.
        ([], "production has no required reviewers"),
        (None, "production has no required reviewers"),
        # A wait timer and a branch rule are no reviewer.
        ([WAIT_TIMER_RULE, BRANCH_POLICY_RULE], "production has no required reviewers"),
        ([reviewers_rule(reviewers=[])], "production requires reviewers but names none"),
    ],
)
def test_an_environment_counts_only_with_reviewers_who_cannot_approve_their_own_run(
    github: github_fake.FakeGitHub, rules: list[dict[str, Any]] | None, refusal: str | None
) -> None:
    github.environments[(REPOSITORY, "production")] = environment(REPOSITORY, "production", rules)
    found = client(github).refusal("production")
    if refusal is None:
        assert found is None
    else:
        assert found is not None and found.startswith(refusal), found


def test_a_rule_without_prevent_self_review_does_not_count() -> None:
    """prevent_self_review is optional in the description: absent is not true."""
    rule = reviewers_rule()
    del rule["prevent_self_review"]
    refusal = protection_refusal("production", {"protection_rules": [rule]})
    assert refusal is not None and "prevent_self_review" in refusal


def test_the_request_is_githubs_get_an_environment(github: github_fake.FakeGitHub) -> None:
    github.protect(REPOSITORY, "production-preview")
    github.requests.clear()
    assert client(github).refusal("production-preview") is None
    assert github.requests == [
        (
            f"/repos/{REPOSITORY}/environments/production-preview",
            f"Bearer {github_fake.TOKEN}",
        )
    ]


def test_a_missing_environment_is_refused_as_github_would_create_it_unprotected(
    github: github_fake.FakeGitHub,
) -> None:
    refusal = client(github).refusal("staging-preview-never-made")
    assert refusal is not None and "does not exist" in refusal


def test_a_refused_token_is_said_with_githubs_words(github: github_fake.FakeGitHub) -> None:
    github.protect(REPOSITORY, "production")
    refusal = client(github, token="ghp_wrong").refusal("production")
    assert refusal == "GitHub answered 401 for production (Bad credentials)"


def test_an_unreachable_github_is_a_refusal_not_a_traceback() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    unreachable = GitHubEnvironments(REPOSITORY, "t", api_url=f"http://127.0.0.1:{port}")
    refusal = unreachable.refusal("production")
    assert refusal is not None and refusal.startswith("GitHub could not be read for production")
