"""Shared fixtures: each stack's program run once under mocks from its real stack file."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from offline import synth
from offline.engine import PROJECT_DIR, StackRun, project_values
from stacks import loader
from stacks.environments import EKS_ENVIRONMENTS, ENVIRONMENTS
from stacks.merge import deep_merge
from stacks.settings import StackSettings
from tests import render_cache
from tests.render_cache import LazyRuns, SharedRenders, fingerprint

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


# Every shared render, its label and its fingerprint when it was made or loaded; checked
# again at the session's end.
_SHARED: list[tuple[str, StackRun, str]] = []


def _shared(label: str, run: StackRun, digest: str) -> None:
    _SHARED.append((label, run, digest))
    _settle()


def _settle() -> None:
    """Take what this process holds for the whole session (the imported modules, each shared
    render) out of the garbage collector's view: a full collection walks every tracked object,
    and with a few dozen renders held (millions of objects) the collections the tests' own
    allocations trigger cost about a quarter of a worker's time. The young garbage is collected
    first, so only what is still referenced is set aside (gc.freeze: never collected again):
    with a render made during a test, that test's own live objects too, which only costs their
    memory until the worker ends; no test's outcome depends on when garbage is collected."""
    gc.collect()
    gc.freeze()


def pytest_collection_finish(session: pytest.Session) -> None:
    # Every test module is imported by now, and with them the SDKs.
    _settle()


@pytest.fixture(scope="session", autouse=True)
def shared_renders_unchanged() -> Iterator[None]:
    """Renders are shared between tests (read them, never change them): a test that changes
    one would make others' results depend on the order they run in. Fails the session then.
    Loaded renders included: each was checked against its stored fingerprint when loaded."""
    yield
    changed = [label for label, run, digest in _SHARED if fingerprint(run) != digest]
    assert changed == [], f"a test changed a shared render: {changed}"


# The renders this process shares: each made once, or loaded from the render cache on disk
# (tests/render_cache.py; RENDER_CACHE=off bypasses it), whichever process made it.
_RENDERS: SharedRenders | None = None


def shared_renders() -> SharedRenders:
    global _RENDERS
    if _RENDERS is None:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
        _RENDERS = SharedRenders(
            render_cache.open_cache(),
            ENVIRONMENTS,
            worker=int(worker) if worker.isdigit() else 0,
            on_shared=_shared,
        )
    return _RENDERS


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The base stacks the collected tests ask for: a parameter or a fixture named after the
    stack, or every stack for a test that reads `runs` without naming one."""
    wanted: set[str] = set()
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if "runs" not in names:
            continue
        params = getattr(getattr(item, "callspec", None), "params", {})
        named = {s for s in ENVIRONMENTS if s in names or s in params.values()}
        wanted |= named or set(ENVIRONMENTS)
    shared_renders().wanted = wanted


def pytest_sessionstart(session: pytest.Session) -> None:
    # Once per session, in the process that runs the workers (or the only one).
    cache = None if hasattr(session.config, "workerinput") else shared_renders().cache
    if cache is not None and cache.directory is not None:
        render_cache.prune(cache.directory)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workeroutput") and _RENDERS is not None:
        session.config.workeroutput["render_cache"] = asdict(_RENDERS.cache.stats)


# Each worker's render cache counts, summed for the summary line.
_WORKER_STATS: list[dict[str, int]] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    stats = getattr(node, "workeroutput", {}).get("render_cache")
    if stats:
        _WORKER_STATS.append(stats)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    counts = list(_WORKER_STATS)
    if not counts and _RENDERS is not None and not hasattr(terminalreporter.config, "workerinput"):
        counts = [asdict(_RENDERS.cache.stats)]
    total = {name: sum(c.get(name, 0) for c in counts) for name in asdict(render_cache.Stats())}
    if not any(total.values()) or _RENDERS is None:
        return
    where = _RENDERS.cache.directory
    not_stored = total["not_stored"]
    terminalreporter.write_line(
        f"render cache ({where.relative_to(PROJECT_DIR) if where else 'off'}): "
        f"{total['loaded']} loaded, {total['rendered']} rendered "
        f"({total['rendered_while_waiting']} while another worker rendered), "
        f"{total['waited']:.1f} s waiting for another's render, "
        f"{total['rejected']} entries rejected"
        + (f", {not_stored} not stored (read files outside the key)" if not_stored else "")
    )


@pytest.fixture(scope="session")
def runs() -> Mapping[str, StackRun]:
    """Every stack's render from its stack file, made (or loaded) when a test first asks."""
    return LazyRuns(shared_renders())


@pytest.fixture(scope="session")
def production(runs: Mapping[str, StackRun]) -> StackRun:
    return runs["production"]


@pytest.fixture(scope="session")
def staging(runs: Mapping[str, StackRun]) -> StackRun:
    return runs["staging"]


@pytest.fixture(params=STACKS)
def stack_run(request: pytest.FixtureRequest, runs: Mapping[str, StackRun]) -> StackRun:
    return runs[request.param]


class _Removed:
    def __repr__(self) -> str:
        return "REMOVED"


# An override that removes the setting from the stack file (`config_with(s, delivery=REMOVED)`):
# the stack then has the environment's default, or none.
REMOVED: Any = _Removed()


def config_with(stack: str, **overrides: Any) -> tuple[dict[str, Any], list[str]]:
    """`stack`'s config and secret keys with some of its project settings changed (camelCase
    keys): a mapping is merged over the stack file's value for that key, `REMOVED` takes the
    key out of the stack file (and its secret keys; one the file does not hold is an error),
    anything else replaces it."""
    config, secret_keys = render_cache.stack_file_config(stack)
    for key, value in overrides.items():
        name = f"financial-planning:{key}"
        if value is REMOVED:
            if name not in config:
                raise KeyError(f"{stack}'s stack file has no {key} to remove")
            del config[name]
            secret_keys = [k for k in secret_keys if k != name]
            continue
        current = config.get(name)
        if isinstance(value, dict) and isinstance(current, dict):
            value = deep_merge(current, value)
        config[name] = value
    return config, secret_keys


def run_with(stack: str, **overrides: Any) -> StackRun:
    """Run `stack` with some of its project settings changed (`config_with`, `REMOVED`
    included). The run is shared by every test that asks for the same one (keyed by stack,
    config, secret keys and render date: support windows are judged as of that day; the key
    holds the config as changed, so a removed setting is a render of its own): read it, never
    change it."""
    config, secret_keys = config_with(stack, **overrides)
    label = f"{stack} with {sorted(overrides)}"
    return shared_renders().render(stack, config, secret_keys, label)


def run_at(day: date, stack: str, **overrides: Any) -> StackRun:
    """`run_with`, rendered as if on `day`: EKS standard support is judged as of that day."""
    rendered_on = loader.render_date
    loader.render_date = lambda: day
    try:
        return run_with(stack, **overrides)
    finally:
        loader.render_date = rendered_on


def _stack_values(stack: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The project's settings `config_with` gives, without their namespace."""
    config, _ = config_with(stack, **overrides)
    return project_values(config, "financial-planning")


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
