"""Shared fixtures: each stack's program run once under mocks from its real stack file."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from offline import synth
from offline.engine import StackRun, run_stack, stack_config
from stacks import loader
from stacks.environments import EKS_ENVIRONMENTS, ENVIRONMENTS
from stacks.merge import deep_merge
from stacks.settings import StackSettings

# Property tests judge what the code accepts, never how fast: on a loaded machine (both cores
# busy with test workers) Hypothesis' 200 ms deadline and its too-slow check would fail tests
# whose properties hold.
hypothesis_settings.register_profile(
    "suite", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("suite")

# The day every test renders the stacks as of: EKS standard support is judged on it. Fixed, so
# that the suite does not start failing on the day a minor leaves standard support; the one
# alarm test (tests/foundation/test_kubernetes_versions.py) watches the real calendar instead.
# An upgrade to a new minor moves it into that minor's support (docs/operations.md,
# "Kubernetes upgrades").
RENDER_DATE = date(2026, 12, 3)


@pytest.fixture(autouse=True, scope="session")
def _fixed_render_date() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loader, "render_date", lambda: RENDER_DATE)
        patch.setattr(synth, "render_date", lambda: RENDER_DATE)
        yield


# Every stack is run; the fixtures below that iterate stacks are for the EKS ones (the
# development stack, on an existing cluster, has its own tests: tests/test_development.py).
STACKS = EKS_ENVIRONMENTS


def _fingerprint(run: StackRun) -> str:
    """A digest of everything a test reads from a run: its resources, their inputs and state."""
    payload = [[r.to_json(), r.state] for r in run.resources]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


# Every shared render and its fingerprint when it was made; checked again at the session's end.
_SHARED: list[tuple[str, StackRun, str]] = []


def _shared(label: str, run: StackRun) -> StackRun:
    _SHARED.append((label, run, _fingerprint(run)))
    return run


@pytest.fixture(scope="session", autouse=True)
def shared_renders_unchanged() -> Iterator[None]:
    """Renders are shared between tests (read them, never change them): a test that changes
    one would make others' results depend on the order they run in. Fails the session then."""
    yield
    changed = [label for label, run, digest in _SHARED if _fingerprint(run) != digest]
    assert changed == [], f"a test changed a shared render: {changed}"


@pytest.fixture(scope="session")
def runs() -> dict[str, StackRun]:
    return {stack: _shared(stack, run_stack(stack)) for stack in ENVIRONMENTS}


@pytest.fixture(scope="session")
def production(runs: dict[str, StackRun]) -> StackRun:
    return runs["production"]


@pytest.fixture(scope="session")
def staging(runs: dict[str, StackRun]) -> StackRun:
    return runs["staging"]


@pytest.fixture(params=STACKS)
def stack_run(request: pytest.FixtureRequest, runs: dict[str, StackRun]) -> StackRun:
    return runs[request.param]


# Renders with changed settings, by stack and configuration: a render is deterministic, and
# several tests ask for the same one (the stack without the mesh, without monitoring, ...).
_RENDERS: dict[str, StackRun] = {}


def run_with(stack: str, **overrides: Any) -> StackRun:
    """Run `stack` with some of its project settings changed (camelCase keys): a mapping is
    merged over the stack file's value for that key, anything else replaces it. The run is
    shared by every test that asks for the same one: read it, never change it."""
    config, secret_keys = stack_config(stack)
    for key, value in overrides.items():
        name = f"financial-planning:{key}"
        current = config.get(name)
        if isinstance(value, dict) and isinstance(current, dict):
            value = deep_merge(current, value)
        config[name] = value
    # The render date is part of the render: support windows are judged as of that day.
    rendered_on = loader.render_date().isoformat()
    key = json.dumps([stack, rendered_on, config, sorted(secret_keys)], sort_keys=True)
    if key not in _RENDERS:
        _RENDERS[key] = _shared(
            f"{stack} with {sorted(overrides)}",
            run_stack(stack, config=config, secret_keys=secret_keys),
        )
    return _RENDERS[key]


def run_at(day: date, stack: str, **overrides: Any) -> StackRun:
    """`run_with`, rendered as if on `day`: EKS standard support is judged as of that day."""
    rendered_on = loader.render_date
    loader.render_date = lambda: day
    try:
        return run_with(stack, **overrides)
    finally:
        loader.render_date = rendered_on


def _stack_values(stack: str, overrides: dict[str, Any]) -> dict[str, Any]:
    config, _ = stack_config(stack)
    prefix = "financial-planning:"
    values = {k.removeprefix(prefix): v for k, v in config.items() if k.startswith(prefix)}
    for key, value in overrides.items():
        current = values.get(key)
        values[key] = (
            deep_merge(current, value)
            if isinstance(value, dict) and isinstance(current, dict)
            else value
        )
    return values


def settings_of(stack: str, today: date | None = None, **overrides: Any) -> StackSettings:
    """`stack`'s settings from its stack file with some settings changed (as `run_with`),
    validated as of `today` (default: the render date)."""
    return loader.settings_from_values(stack, _stack_values(stack, overrides), today)


def settings_error(stack: str, today: date | None = None, **overrides: Any) -> str:
    """The error `settings_of` raises; fails if there is none."""
    with pytest.raises(loader.SettingsError) as caught:
        settings_of(stack, today, **overrides)
    return str(caught.value)


# Requirements, stated as literals: the seed's service ports and each stack's app namespace.
SEED_PORTS = {
    "financial-planning-api": 8000,
    "simulation-service": 8001,
    "user-service": 8002,
    "banking-service": 8003,
    "ml-service": 8004,
    "notification-service": 8005,
    "document-service": 8006,
    "graphql-gateway": 4000,
}
APP_NAMESPACES = {"production": "financial-planning", "staging": "financial-planning-staging"}
