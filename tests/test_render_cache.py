"""The render cache (tests/render_cache.py): its key covers everything a render reads, a loaded
entry is the render it stands for, a damaged entry is rendered again, two processes asking for
one render make it once, and a base stack is rendered only when a test asks for it."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import pickle
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from offline.engine import PROJECT_DIR, RecordedResource, StackRun, run_stack
from stacks import loader
from tests import render_cache
from tests.conftest import RENDER_DATE, config_with, run_with, shared_renders
from tests.render_cache import (
    RenderCache,
    SharedRenders,
    environment,
    files_digest,
    fingerprint,
    keyed_files,
    render_key,
    shareable,
)

# --- What a render reads -------------------------------------------------------------------

# Run in a fresh interpreter from the project directory (as the suite runs: the project's
# packages first on the path): every file opened (the `open` audit event, which `open()`,
# `os.open` and the import system's `io.open_code` raise) and every directory listed from the
# first import of the engine to the end of each stack's render, then every module imported.
# A docs page is read last, outside the renders, as the negative control. Each render's
# fingerprint (as a shared run would hold it) is printed too: an independent render, made
# with no test module imported, to compare the cache's entries with.
TRACE = """
import json, os, sys
opened, listed = [], []
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        opened.append([os.path.abspath(os.fsdecode(args[0])), args[2] if len(args) > 2 else 0])
    elif event in ("os.listdir", "os.scandir", "glob.glob") and args[0] is not None:
        listed.append(os.path.abspath(os.fsdecode(args[0]) or "."))
sys.addaudithook(hook)
before = set(sys.modules)
from offline.engine import run_stack
from stacks import loader
loader.render_date = lambda: __import__("datetime").date.fromisoformat(sys.argv[1])
runs = {stack: run_stack(stack) for stack in sys.argv[2:]}
modules = [getattr(sys.modules[n], "__file__", None) for n in set(sys.modules) - before]
control, seen = len(opened), len(listed)
open("docs/offline.md").read()
after = len(opened)
from tests.render_cache import fingerprint, shareable
print(json.dumps({"opened": opened[:control], "control": opened[control:after],
                  "listed": listed[:seen], "path": [os.path.abspath(p) for p in sys.path],
                  "modules": sorted(m for m in modules if m),
                  "fingerprints": {s: fingerprint(shareable(r)) for s, r in runs.items()}}))
"""


TRACE_PARTS = ("opened", "control", "listed", "path", "modules", "fingerprints")
# Production and development: the EKS program and the existing-cluster one (staging runs
# production's modules with other settings; every file under components/ is keyed anyway).
TRACED_STACKS = ("production", "development")


def trace() -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", TRACE, RENDER_DATE.isoformat(), *TRACED_STACKS],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    traced: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return traced


def traced() -> dict[str, Any]:
    """The trace, made once per state of what the key covers (a fresh interpreter's first
    render costs some 10 s of CPU): kept in the render cache under the key of the renders it
    traces and of the trace script. The tests below judge it afresh each time."""
    cache = shared_renders().cache
    arguments = {"script": TRACE, "stacks": TRACED_STACKS}
    key = render_key(cache.environment_digest, "trace", arguments, [], RENDER_DATE.isoformat())
    with cache.locked(key, wait=True):
        with contextlib.suppress(ValueError):
            stored = json.loads(cache.read(key, ".trace") or b"")
            if isinstance(stored, dict) and set(stored) == set(TRACE_PARTS):
                return stored
        traced = trace()  # none stored yet, or unreadable
        cache.write(key, json.dumps(traced).encode(), ".trace")
        return traced


def test_a_render_in_a_fresh_interpreter_reads_only_what_its_key_covers_and_equals_its_entry(
    tmp_path: Path,
) -> None:
    # One test, so that one worker traces (another would wait for it).
    found = traced()
    reads_only_what_the_key_covers(found)
    for stack in TRACED_STACKS:
        entry_equals_the_traced_render(stack, found, tmp_path)


def reads_only_what_the_key_covers(found: dict[str, Any]) -> None:
    # A file created exclusively (the tempfile module's probe, which an import makes) held
    # nothing before: not an input.
    created = render_cache.CREATED
    read = [path for path, flags in found["opened"] if flags & created != created]
    assert render_cache.unkeyed(read) == []
    assert render_cache.unkeyed(found["modules"]) == []
    # The project's files are read from this work tree, whatever the editable install says.
    project_reads = [
        p for p in read if render_cache.under(Path(p).resolve(), PROJECT_DIR.resolve())
    ]
    assert any(p.endswith("components/addons/scripts/fields_within_term_limit.lua") for p in read)
    assert any(p.endswith("Pulumi.production.yaml") for p in project_reads)
    # Listed directories: the project's own (its root and keyed folders), the interpreter's,
    # and the module search path's entries (PYTHONPATH, keyed by value), which the import
    # system lists when it looks for a module; the modules found are judged above.
    listed = [p for p in found["listed"] if p not in found["path"]]
    assert render_cache.unkeyed(listed) == []
    # What the key leaves out of the project: tests/, docs/, README.md (and generated folders).
    left_out = [PROJECT_DIR / name for name in render_cache.UNREAD_TOP_LEVEL]
    paths = [path for path, _ in found["opened"]] + found["modules"]
    assert [p for p in paths if any(render_cache.under(Path(p), out) for out in left_out)] == []
    # Negative control: the same trace sees a docs page read, and the check names it.
    control = [path for path, _ in found["control"]]
    assert render_cache.unkeyed(control) == [str(PROJECT_DIR / "docs" / "offline.md")]


def entry_equals_the_traced_render(stack: str, found: dict[str, Any], tmp_path: Path) -> None:
    # The traced render (made once per state of what the key covers, with no test module
    # imported) against the session's entry read back from disk: the fingerprint covers every
    # field of every resource (inputs, state, id, options), the outputs and the settings.
    loaded = loaded_from_disk(stack, {}, tmp_path / stack)
    assert fingerprint(loaded) == found["fingerprints"][stack]
    # Negative control: one input changed, or one state value, changes the fingerprint.
    first = loaded.resources[0]
    for changed in (
        replace(first, inputs={**first.inputs, "x": 1}),
        replace(first, state={**first.state, "x": 1}),
    ):
        altered = replace(loaded, resources=[changed, *loaded.resources[1:]])
        assert fingerprint(altered) != found["fingerprints"][stack]


# --- The key -------------------------------------------------------------------------------


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The keyed files of the project, copied as they are."""
    copy = tmp_path / "project"
    for path in keyed_files(PROJECT_DIR):
        target = copy / path.relative_to(PROJECT_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return copy


# One file of each kind a render reads.
READ_FILES = [
    "__main__.py",
    "Pulumi.yaml",
    "Pulumi.staging.yaml",
    "components/foundation/cluster.py",
    "components/addons/scripts/fields_within_term_limit.lua",
    "components/workloads/scripts/aws_sigv4.py",
    "stacks/environments/staging.py",
    "offline/engine.py",
    "tests/conftest.py",
    "tests/render_cache.py",
]


@pytest.mark.parametrize("name", READ_FILES)
def test_the_key_changes_when_a_file_a_render_reads_changes(project_copy: Path, name: str) -> None:
    before = files_digest(project_copy)
    assert before == files_digest(PROJECT_DIR)  # the copy is the project, as the key sees it
    path = project_copy / name
    path.write_bytes(path.read_bytes() + b"\n")
    assert files_digest(project_copy) != before


def test_the_key_changes_when_a_file_is_added_or_removed(project_copy: Path) -> None:
    before = files_digest(project_copy)
    (project_copy / "components" / "observability" / "new-dashboard.json").write_text("{}")
    added = files_digest(project_copy)
    assert added != before
    (project_copy / "components" / "observability" / "new-dashboard.json").unlink()
    (project_copy / "components" / "addons" / "scripts" / "fields_within_term_limit.lua").unlink()
    assert files_digest(project_copy) not in {before, added}


def test_what_a_render_never_reads_is_not_in_the_key(project_copy: Path) -> None:
    # The negative control of the tests above: only what the trace shows unread is left out.
    before = files_digest(project_copy)
    for name in ("docs/offline.md", "tests/test_program.py", "README.md", "build/x/inventory.json"):
        (project_copy / name).parent.mkdir(parents=True, exist_ok=True)
        (project_copy / name).write_text("changed")
    (project_copy / "components" / "__pycache__").mkdir(exist_ok=True)
    (project_copy / "components" / "__pycache__" / "platform.cpython-311.pyc").write_text("x")
    assert files_digest(project_copy) == before


def test_the_key_changes_with_the_installed_distributions_and_python(
    project_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = render_cache.installed_distributions()
    assert ("pulumi", next(v for n, v in installed if n == "pulumi")) in installed
    base = render_cache.digest_of(environment(project_copy, installed, {}))
    assert render_cache.digest_of(environment(project_copy, list(installed), {})) == base
    aws = [n for n, _ in installed if n.replace("_", "-").lower() == "pulumi-aws"]
    bumped = [(n, "99.0.0" if n in aws else v) for n, v in installed]
    assert aws and bumped != installed
    assert render_cache.digest_of(environment(project_copy, bumped, {})) != base
    added = [*installed, ("pulumi-extra", "1.0.0")]
    assert render_cache.digest_of(environment(project_copy, added, {})) != base
    variables = {"PULUMI_CONFIG": "{}", "HOME": "/elsewhere"}
    assert render_cache.digest_of(environment(project_copy, installed, variables)) != base
    assert render_cache.digest_of(environment(project_copy, installed, {"HOME": "/x"})) == base
    for name in render_cache.KEYED_VARIABLES:
        changed = environment(project_copy, installed, {name: "/somewhere"})
        assert render_cache.digest_of(changed) != base, name
    assert "PYTHONPATH" in render_cache.KEYED_VARIABLES
    monkeypatch.setattr(sys, "version", sys.version.replace("3.", "4.", 1))
    assert render_cache.digest_of(environment(project_copy, installed, {})) != base


def test_the_key_changes_with_each_argument_of_a_render(monkeypatch: pytest.MonkeyPatch) -> None:
    config, secret_keys = config_with("staging")
    day = "2026-12-03"
    base = render_key("env", "staging", config, secret_keys, day)
    assert render_key("env", "staging", dict(config), list(reversed(secret_keys)), day) == base
    variants = [
        render_key("other-env", "staging", config, secret_keys, day),
        render_key("env", "production", config, secret_keys, day),
        render_key(
            "env", "staging", config_with("staging", natGateways="perAz")[0], secret_keys, day
        ),
        render_key(
            "env",
            "staging",
            config_with("staging", edge={"shieldAdvanced": True})[0],
            secret_keys,
            day,
        ),
        render_key("env", "staging", config, [*secret_keys, "financial-planning:x"], day),
        render_key("env", "staging", config, secret_keys[1:], day),
        render_key("env", "staging", config, secret_keys, "2026-11-01"),
    ]
    assert base not in variants and len(set(variants)) == len(variants)
    # The suite's keys take the render date in force when a render is asked for (run_at).
    renders = shared_renders()
    today = renders.key_of("staging", config, secret_keys)
    monkeypatch.setattr(loader, "render_date", lambda: RENDER_DATE.replace(day=1))
    assert renders.key_of("staging", config, secret_keys) != today


# --- Entries -------------------------------------------------------------------------------


def small_run(name: str = "bucket", size: int = 1) -> StackRun:
    """A run as the engine records one, without rendering the program."""
    resource = RecordedResource(
        urn=f"urn:pulumi:s::p::aws:s3/bucket:Bucket::{name}",
        type="aws:s3/bucket:Bucket",
        name=name,
        parent="",
        custom=True,
        protect=False,
        provider="",
        dependencies=[],
        ignore_changes=[],
        inputs={"tags": {"size": size}},
        id=f"{name}-id",
        state={"arn": f"arn:aws:s3:::{name}"},
    )
    return StackRun("p", "s", [resource], {"settings": {"size": size}}, {"urn": {"o": size}})


class Counted:
    """A render that counts how often it runs."""

    def __init__(self, run: StackRun) -> None:
        self.run, self.calls = run, 0

    def __call__(self) -> StackRun:
        self.calls += 1
        return self.run


def differences(loaded: StackRun, fresh: StackRun) -> list[str]:
    """What a test could read differently from the two runs."""
    found = []
    if (loaded.project, loaded.stack) != (fresh.project, fresh.stack):
        found.append("project or stack")
    if len(loaded.resources) != len(fresh.resources):
        found.append("resource count")
    for old, new in zip(loaded.resources, fresh.resources, strict=False):
        if old != new:  # every field: URN, options, inputs, aliases, id, state
            found.append(old.urn)
    if loaded.outputs != fresh.outputs:
        found.append("outputs")
    if loaded.namespace.get("settings") != fresh.namespace.get("settings"):
        found.append("settings")
    return found


def loaded_from_disk(stack: str, overrides: dict[str, Any], tmp_path: Path) -> StackRun:
    """The session's shared render of `stack` with `overrides`, read back from its entry on
    disk (whichever process stored it, this session or an earlier one)."""
    shared = run_with(stack, **overrides)
    config, secret_keys = config_with(stack, **overrides)
    key = shared_renders().key_of(stack, config, secret_keys)
    directory = shared_renders().cache.directory
    if directory is None:  # RENDER_CACHE=off: the same round trip through a cache of its own
        directory = tmp_path
        RenderCache(directory).store(key, shared, fingerprint(shared))
    entry = RenderCache(directory).load(key)
    assert entry is not None
    return entry[0]


def test_a_loaded_variant_equals_a_fresh_render(tmp_path: Path) -> None:
    overrides = {"storageClass": "local-path"}
    loaded = loaded_from_disk("development", overrides, tmp_path)
    config, secret_keys = config_with("development", **overrides)
    fresh = shareable(run_stack("development", config=config, secret_keys=secret_keys))
    assert differences(loaded, fresh) == []
    assert fingerprint(loaded) == fingerprint(fresh)
    # Negative controls: the stack file's own storage class is another render; one input
    # changed, or one state value, is seen.
    assert differences(loaded, shareable(run_stack("development")))
    first = loaded.resources[0]
    changed = replace(first, inputs={**first.inputs, "x": 1})
    assert differences(replace(loaded, resources=[changed, *loaded.resources[1:]]), fresh)
    changed = replace(first, state={**first.state, "x": 1})
    assert differences(replace(loaded, resources=[changed, *loaded.resources[1:]]), fresh)


@pytest.mark.parametrize(
    ("read", "stored"),
    [
        (PROJECT_DIR / "Pulumi.yaml", True),
        (PROJECT_DIR / "components" / "addons" / "scripts" / "fields_within_term_limit.lua", True),
        (PROJECT_DIR / "docs" / "offline.md", False),
        (PROJECT_DIR / "tests" / "lookup.py", False),
    ],
)
def test_a_render_that_reads_a_file_the_key_leaves_out_is_not_stored(
    tmp_path: Path, read: Path, stored: bool
) -> None:
    def render() -> StackRun:
        read.read_text()
        return small_run()

    cache = RenderCache(tmp_path)
    if stored:
        run, _ = cache.fetch("key", render)
    else:
        with pytest.warns(UserWarning, match=f"render cache: a render read .*{read.name}"):
            run, _ = cache.fetch("key", render)
    assert run == small_run()  # the session still has its render
    assert (RenderCache(tmp_path).load("key") is not None) == stored
    assert cache.stats.not_stored == (0 if stored else 1)


def test_a_shared_run_keeps_the_settings_and_refuses_live_objects() -> None:
    run = shareable(StackRun("p", "s", [], {"settings": 1, "platform": object(), "__name__": "m"}))
    assert run.namespace["settings"] == 1
    with pytest.raises(KeyError, match="live objects"):
        run.namespace["platform"]
    with pytest.raises(KeyError, match="live objects"):
        run.namespace.get("platform")
    assert run.namespace.get("unknown") is None  # never a global of the program: as a dict
    assert "platform" not in run.namespace


def _damage_garbage(path: Path) -> None:
    path.write_bytes(b"not an entry")


def _damage_truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:20])


def _damage_empty(path: Path) -> None:
    path.write_bytes(b"")


def _damage_tampered(path: Path) -> None:
    # A readable entry whose run no longer matches the fingerprint it was stored with.
    entry = pickle.loads(zlib.decompress(path.read_bytes()))
    entry["run"].resources[0].inputs["tags"]["size"] = 2
    path.write_bytes(zlib.compress(pickle.dumps(entry)))


def _damage_other_key(path: Path) -> None:
    entry = pickle.loads(zlib.decompress(path.read_bytes()))
    entry["key"] = "another render"
    path.write_bytes(zlib.compress(pickle.dumps(entry)))


@pytest.mark.parametrize(
    "damage",
    [
        _damage_garbage,
        _damage_truncated,
        _damage_empty,
        _damage_tampered,
        _damage_other_key,
    ],
)
def test_a_damaged_entry_is_rendered_again(tmp_path: Path, damage: Callable[[Path], None]) -> None:
    render = Counted(small_run())
    cache = RenderCache(tmp_path)
    cache.fetch("key", render)
    (path,) = tmp_path.glob("*.run")
    # Negative control: an intact entry is loaded, not rendered.
    assert RenderCache(tmp_path).fetch("key", render)[0] == small_run() and render.calls == 1
    damage(path)
    again = RenderCache(tmp_path)
    run, digest = again.fetch("key", render)
    assert render.calls == 2 and again.stats.rejected == 1
    assert run == small_run() and digest == fingerprint(small_run())
    assert RenderCache(tmp_path).load("key") is not None  # rewritten whole


def test_an_entry_that_cannot_be_stored_costs_a_render_not_a_failure(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache's directory should be")
    render = Counted(small_run())
    with pytest.warns(UserWarning, match="could not store"):
        run, _ = RenderCache(blocked / "cache").fetch("key", render)
    assert run == small_run() and render.calls == 1


# --- Two processes, one render -------------------------------------------------------------


def _race(directory: str, log: str, barrier: Any, locking: bool, out: str) -> None:
    """One worker asking for the render "key" (forked: no interpreter to start)."""
    cache = RenderCache(Path(directory))
    if not locking:  # the negative control: the lock taken away
        cache.locked = _no_lock  # type: ignore[method-assign]

    # Opened before: a render that opens a file outside the key is not stored.
    written = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def render() -> StackRun:
        os.write(written, f"{os.getpid()}\n".encode())
        time.sleep(1.0)  # long enough for the other process to ask meanwhile
        return small_run()

    barrier.wait(timeout=30)
    run, digest = cache.fetch("key", render)
    assert cache.stats.not_stored == 0
    Path(out).write_text(json.dumps([fingerprint(run), digest]))


@contextlib.contextmanager
def _no_lock(key: str, *, wait: bool) -> Iterator[bool]:
    yield True


@pytest.mark.parametrize("locking", [True, False])
def test_two_processes_asking_for_one_render_make_it_once(tmp_path: Path, locking: bool) -> None:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(2)
    log = tmp_path / "renders.log"
    outs = [tmp_path / f"out-{i}.json" for i in range(2)]
    workers = [
        context.Process(
            target=_race, args=(str(tmp_path / "cache"), str(log), barrier, locking, str(out))
        )
        for out in outs
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    results = [json.loads(out.read_text()) for out in outs]
    expected = fingerprint(small_run())
    assert results == [[expected, expected], [expected, expected]]
    renders = log.read_text().split()
    # With the lock, one renders and the other waits and loads; without it, both render.
    assert len(renders) == (1 if locking else 2)


# --- Lazy base stacks, and different first renders per worker -------------------------------


class FakeStacks:
    """Stacks a, b, c whose renders are recorded, not made; `after` runs after each render."""

    def __init__(self) -> None:
        self.made: list[str] = []
        self.after: Callable[[str], None] = lambda stack: None


@pytest.fixture
def fake_stacks(monkeypatch: pytest.MonkeyPatch) -> FakeStacks:
    fake = FakeStacks()
    monkeypatch.setattr(render_cache, "stack_file_config", lambda stack: ({"stack": stack}, []))

    def renderer(stack: str, config: Any, secret_keys: Any) -> Callable[[], StackRun]:
        def render() -> StackRun:
            fake.made.append(stack)
            fake.after(stack)
            return small_run(stack)

        return render

    monkeypatch.setattr(render_cache, "_renderer", renderer)
    return fake


class OtherWorker:
    """Another process rendering stack a: it holds a's lock (a lock file opened apart
    conflicts even within one process) until `finish`, storing a's entry or not."""

    def __init__(self, directory: Path) -> None:
        self.cache = RenderCache(directory, "env")
        self.key = SharedRenders(self.cache, ("a", "b", "c")).key_of("a", {"stack": "a"}, [])
        self._holding = self.cache.locked(self.key, wait=True)
        assert self._holding.__enter__()

    def finish(self, *, stored: bool) -> None:
        if stored:
            self.cache.store(self.key, small_run("a"), fingerprint(small_run("a")))
        self._holding.__exit__(None, None, None)


def test_a_base_stack_is_rendered_when_first_asked_for(
    tmp_path: Path, fake_stacks: FakeStacks
) -> None:
    renders = SharedRenders(RenderCache(tmp_path, "env"), ("a", "b", "c"), wanted={"a", "b", "c"})
    runs = render_cache.LazyRuns(renders)
    assert fake_stacks.made == [] and list(runs) == ["a", "b", "c"]
    assert runs["b"].resources[0].name == "b" and fake_stacks.made == ["b"]
    assert runs["b"] is runs["b"] and fake_stacks.made == ["b"]
    with pytest.raises(KeyError):
        runs["d"]


@pytest.mark.parametrize(("worker", "first"), [(0, "b"), (1, "b"), (2, "c")])
def test_a_worker_waiting_for_another_renders_a_wanted_stack_meanwhile(
    tmp_path: Path, fake_stacks: FakeStacks, worker: int, first: str
) -> None:
    other = OtherWorker(tmp_path)
    fake_stacks.after = lambda stack: other.finish(stored=True)
    cache = RenderCache(tmp_path, "env")
    renders = SharedRenders(cache, ("a", "b", "c"), worker=worker, wanted={"a", "b", "c"})
    run_a = renders.base("a")
    # Each worker starts at its own place in the stack order (worker 0 at a, being rendered
    # by the other: so b). a itself is loaded from the other's entry, not rendered twice.
    assert fake_stacks.made == [first]
    assert run_a.resources[0].name == "a"
    assert cache.stats.rendered_while_waiting == 1 and cache.stats.loaded == 1
    # Negative control: no one else rendering, nothing rendered besides the stack asked for.
    alone = SharedRenders(RenderCache(tmp_path / "alone", "env"), ("a", "b", "c"), worker=worker)
    alone.wanted = {"a", "b", "c"}
    alone.base("a")
    assert fake_stacks.made == [first, "a"]


def test_a_stack_no_test_asks_for_is_not_rendered_while_waiting(
    tmp_path: Path, fake_stacks: FakeStacks
) -> None:
    other = OtherWorker(tmp_path)
    # The other worker gives up on a (its test failed, say) when this one has rendered c.
    fake_stacks.after = lambda stack: other.finish(stored=False) if stack == "c" else None
    # Worker 1 would start at b, which no collected test asks for: it renders c, then a.
    renders = SharedRenders(
        RenderCache(tmp_path, "env"), ("a", "b", "c"), worker=1, wanted={"a", "c"}
    )
    renders.base("a")
    assert fake_stacks.made == ["c", "a"]


# --- The switch and old generations --------------------------------------------------------


def test_the_switch_turns_the_disk_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(render_cache.SWITCH, "off")
    cache = render_cache.open_cache(tmp_path / "cache")
    assert cache.directory is None
    render = Counted(small_run())
    cache.fetch("key", render)
    cache.fetch("key", render)
    assert render.calls == 2 and not (tmp_path / "cache").exists()
    monkeypatch.setenv(render_cache.SWITCH, "of")
    with pytest.raises(ValueError, match="RENDER_CACHE='of': use on or off"):
        render_cache.switched_off()
    monkeypatch.setenv(render_cache.SWITCH, "on")
    assert not render_cache.switched_off()


def test_old_generations_are_pruned(tmp_path: Path) -> None:
    generations = [tmp_path / f"g{i}" for i in range(5)]
    for age, path in enumerate(generations):
        path.mkdir()
        os.utime(path, (1000 - age, 1000 - age))  # g0 the most recently used
    current = generations[4]
    removed = render_cache.prune(current, keep=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g0", "g1", "g4"]
    assert sorted(p.name for p in removed) == ["g2", "g3"]


def test_a_virtualenv_inside_the_work_tree_is_keyed_by_its_distributions() -> None:
    """`.venv` lies inside the work tree: its files and their bytecode (written on import when
    bytecode is on, as under `make`) are the distributions', keyed by name and version; the
    project's unkeyed files next to it are still reported."""
    site = Path(sysconfig.get_paths()["purelib"])
    bytecode = site / "pulumi_aws" / "acm" / "__pycache__" / "__init__.cpython-311.pyc"
    assert render_cache.unkeyed([str(bytecode)]) == []
    assert render_cache.unkeyed([str(PROJECT_DIR / "tests" / "lookup.py")]) == [
        str(PROJECT_DIR / "tests" / "lookup.py")
    ]


def sdk_variables() -> set[str]:
    """Every environment variable the installed provider SDKs default an input from: the
    names in their `_utilities.get_env*(...)` calls."""
    names: set[str] = set()
    for sdk in ("pulumi_aws", "pulumi_kubernetes", "pulumi_random"):
        root = Path(sysconfig.get_paths()["purelib"]) / sdk
        found = subprocess.run(
            ["grep", "-rhoE", "--include=*.py", r"get_env(_bool|_int|_float)?\([^)]*\)", str(root)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        names |= set(re.findall(r"'([A-Z0-9_]+)'", found))
    return names


def test_every_variable_the_sdks_read_is_keyed() -> None:
    """pulumi_kubernetes copies KUBECONFIG into a provider made without one (the development
    stack's): a render differs with it, so the key holds it, as every variable the SDKs read."""
    names = sdk_variables()
    assert {"KUBECONFIG", "AWS_REGION"} <= names  # the scan finds them
    unkeyed = {
        n
        for n in names
        if not n.startswith(render_cache.KEYED_ENVIRONMENT_PREFIX)
        and n not in render_cache.KEYED_VARIABLES
    }
    assert unkeyed == set()


def test_kubeconfig_changes_the_development_render(monkeypatch: pytest.MonkeyPatch) -> None:
    """Why KUBECONFIG is keyed: the development provider's inputs take it."""
    monkeypatch.setenv("KUBECONFIG", "/home/someone/.kube/other-cluster")
    provider = run_stack("development").one("pulumi:providers:kubernetes")
    assert provider.inputs.get("kubeconfig") == "/home/someone/.kube/other-cluster"


def test_a_render_made_after_a_file_changed_is_not_stored(tmp_path: Path) -> None:
    """A file edited during a session: the key was taken from the files as they were, so the
    render is used but not stored (it would answer that key, stale, once the edit is undone)."""
    project = tmp_path / "project"
    (project / "components").mkdir(parents=True)
    source = project / "components" / "one.py"
    source.write_text("A = 1\n")
    cache = render_cache.open_cache(tmp_path / "cache", project)
    fresh = shareable(run_stack("development"))

    def edited_then_rendered() -> StackRun:
        source.write_text("A = 2\n")
        return fresh

    with pytest.warns(UserWarning, match="changed during the session"):
        cache.render_once("k", edited_then_rendered)
    assert cache.load("k") is None
    # Control: unchanged files, the render is stored.
    unchanged = render_cache.open_cache(tmp_path / "cache2", project)
    unchanged.render_once("k", lambda: fresh)
    assert unchanged.load("k") is not None


def test_a_stack_files_config_is_read_once_and_handed_out_as_a_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[str] = []

    def read(stack: str) -> tuple[dict[str, Any], list[str]]:
        reads.append(stack)
        return {"a:nested": {"list": [1, 2]}}, ["a:secret"]

    monkeypatch.setattr(render_cache, "stack_config", read)
    render_cache._stack_file_config.cache_clear()
    try:
        config, secret_keys = render_cache.stack_file_config("qa")
        config["a:nested"]["list"].append(3)
        secret_keys.append("a:other")
        # A test that changes what it was handed changes no later base render's config.
        assert render_cache.stack_file_config("qa") == (
            {"a:nested": {"list": [1, 2]}},
            ["a:secret"],
        )
        assert reads == ["qa"]
    finally:
        render_cache._stack_file_config.cache_clear()
