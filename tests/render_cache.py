"""The suite's shared renders, kept on disk: shared by the test workers of a session and
between sessions.

A render is a pure function of what it reads: the program's files, the installed
distributions, the Python that runs it, and its arguments (stack, config, secret keys, render
date). An entry's key is a digest of all of them, so an entry is reused only for the render it
was made from; anything that changes a file the render may read makes new keys (and the old
entries are pruned after a few such generations). Only the renders the suite memoizes go
through here (`runs`, `run_with`, `run_at` in tests/conftest.py); a test calling `run_stack`
itself renders live, as before.

What an entry holds is what the tests read from a run: its resources (type, name, parent,
options, inputs, aliases, id, state), the outputs components and the root stack (the exports)
register, and of the program's globals the stack's settings. The program's live objects (the
platform component, its Pulumi Outputs) cannot outlive the render's event loop and are not
kept: asking a shared run for one is an error that says so, never a silent None. Renders made
here are reduced the same way, so a test sees the same thing whether its render was loaded or
made.

A render made here is watched (an audit hook on `open`, active only while it runs): one that
opened a file the key does not cover is used for the session but never stored.

Concurrency: one file lock (flock) per key; the worker that holds it renders, another asking
for the same render waits and loads. Entries are written to a temporary file and renamed into
place. An entry that cannot be read, holds another key or no longer matches the fingerprint it
was stored with is rendered again. `RENDER_CACHE=off` bypasses the disk: every render is made
in the process that asks for it, as before the cache.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import functools
import gc
import hashlib
import importlib.metadata
import json
import os
import pickle
import platform
import shutil
import sys
import sysconfig
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath
from typing import Any

from offline.engine import PROJECT_DIR, StackRun, run_stack, stack_config
from stacks import loader

CACHE_ROOT = PROJECT_DIR / "build" / "render-cache"
SWITCH = "RENDER_CACHE"
# Raised when what an entry holds, or how it is keyed, changes: old entries then never match.
FORMAT = 1
# Generations (one per state of the tree and environment) kept on disk: switching between a
# few branches keeps its entries; older ones are removed at a session's start.
GENERATIONS_KEPT = 3

# What the key leaves out of the project directory. Top-level directories a render never
# opens (tests/test_render_cache.py traces the files a render opens and fails if one lies
# here) or that tools write (bytecode, caches, this cache, the virtualenvs and node modules:
# folders of the work tree, or symlinks out of it, keyed by their distributions either way).
UNREAD_TOP_LEVEL = frozenset({"tests", "docs", "README.md"})
GENERATED_TOP_LEVEL = frozenset(
    {
        ".git",
        "build",
        ".hypothesis",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".venv",
        ".venv-checkov",
        "node_modules",
        ".tools",
    }
)
# Two files under tests/ decide how a memoized render is made and what an entry keeps.
KEYED_TEST_FILES = ("tests/conftest.py", "tests/render_cache.py")
# Environment variables a render may consult: the Pulumi SDK's (its config and settings
# fallbacks), and where Python looks for modules besides the distributions.
KEYED_ENVIRONMENT_PREFIX = "PULUMI"
# And the others the provider SDKs default inputs from (`_utilities.get_env(...)` in
# pulumi_kubernetes 4.34.2's provider.py: KUBECONFIG, copied into a provider made without
# one; pulumi_aws 7.51.1's provider.py and config/vars.py: the region).
# tests/test_render_cache.py scans the installed SDKs and fails on a name left out here.
# And where Python looks for modules besides the distributions (PYTHONPATH).
KEYED_VARIABLES = ("KUBECONFIG", "AWS_REGION", "AWS_DEFAULT_REGION", "PYTHONPATH")

# The program's globals a shared run keeps: the settings it was rendered with.
KEPT_GLOBALS = ("settings",)


def is_keyed(relative: PurePath) -> bool:
    """Whether the key covers this path of the project (existing or not)."""
    parts = relative.parts
    if not parts or relative.as_posix() in KEYED_TEST_FILES:
        return bool(parts)
    if parts[0] in UNREAD_TOP_LEVEL | GENERATED_TOP_LEVEL:
        return False
    return "__pycache__" not in parts and relative.suffix != ".pyc"


def keyed_files(project_dir: Path = PROJECT_DIR) -> list[Path]:
    """Every file of the project a render may read: all of it but what the key leaves out."""
    found: list[Path] = []
    # Symlinked directories are not entered (the shared virtualenvs and node modules).
    for root, dirs, files in os.walk(project_dir):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if is_keyed((here / d).relative_to(project_dir)))
        found += [here / name for name in files if is_keyed((here / name).relative_to(project_dir))]
    found += [project_dir / name for name in KEYED_TEST_FILES if (project_dir / name).is_file()]
    return sorted(found)


def files_digest(project_dir: Path = PROJECT_DIR) -> str:
    digest = hashlib.sha256()
    for path in keyed_files(project_dir):
        digest.update(path.relative_to(project_dir).as_posix().encode() + b"\0")
        try:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        except OSError as error:  # a dangling symlink, say: its absence is part of the key
            digest.update(f"unreadable: {type(error).__name__}".encode())
    return digest.hexdigest()


def installed_distributions() -> list[tuple[str, str]]:
    """Every distribution the interpreter can import from, by name and version."""
    return sorted(
        {(str(d.metadata["Name"]), str(d.version)) for d in importlib.metadata.distributions()}
    )


def environment(
    project_dir: Path = PROJECT_DIR,
    distributions: list[tuple[str, str]] | None = None,
    variables: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Everything a render reads besides its arguments."""
    variables = os.environ if variables is None else variables
    return {
        "format": FORMAT,
        "python": [sys.version, sys.implementation.cache_tag, sys.platform, platform.machine()],
        "distributions": installed_distributions() if distributions is None else distributions,
        "variables": sorted(
            (k, v)
            for k, v in variables.items()
            if k.startswith(KEYED_ENVIRONMENT_PREFIX) or k in KEYED_VARIABLES
        ),
        "files": files_digest(project_dir),
    }


def under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


@functools.cache
def _python_and_distributions() -> list[Path]:
    """Where the interpreter's own files and the installed distributions lie: keyed by the
    Python version and by each distribution's name and version."""
    roots = {sys.base_prefix, sys.prefix, *sysconfig.get_paths().values()}
    roots |= {entry for entry in sys.path if "site-packages" in entry}
    return [Path(root).resolve() for root in roots if root]


def unkeyed(paths: Collection[str], project_dir: Path = PROJECT_DIR) -> list[str]:
    """The paths a render read (or tried to) that its key does not cover."""
    project = project_dir.resolve()
    # The interpreter's and the distributions' folders (a virtualenv may lie inside the work
    # tree, as .venv does): keyed by version, whatever lies there, bytecode included. Never a
    # folder that holds the project itself (an interpreter run without a virtualenv from it).
    outside = [root for root in _python_and_distributions() if not under(project, root)]
    found = []
    for text in paths:
        path = Path(text).resolve()
        # The root: the import system lists it for packages (what it imports is traced too).
        if text == os.devnull or path == project:
            continue
        if any(under(path, root) for root in outside):
            continue
        # A distribution's metadata (entry points, say) wherever its path entry lies (a
        # PYTHONPATH folder): keyed by its name and version too.
        if not under(path, project) and any(
            part.endswith((".dist-info", ".egg-info")) for part in path.parts
        ):
            continue
        if under(path, project):
            relative = path.relative_to(project)
            if is_keyed(relative):
                continue
            # Bytecode: the compiled form of a keyed source, checked against it on import;
            # and the bytecode folders the import system lists.
            if path.parent.name == "__pycache__" and path.suffix == ".pyc":
                source = relative.parent.parent / f"{path.name.split('.')[0]}.py"
                if is_keyed(source):
                    continue
            if path.name == "__pycache__" and is_keyed(relative.parent):
                continue
        found.append(text)
    return sorted(set(found))


def digest_of(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def render_key(
    environment_digest: str,
    stack: str,
    config: Mapping[str, Any],
    secret_keys: Collection[str],
    rendered_on: str,
) -> str:
    """One render: its environment and arguments. The config keeps its order (the program
    sees its mappings in that order)."""
    return json.dumps(
        [environment_digest, stack, rendered_on, config, sorted(secret_keys)], default=_no_json
    )


def _no_json(value: Any) -> Any:
    raise TypeError(f"a render key holds JSON values only, not {type(value).__name__}")


class SharedNamespace(dict[str, Any]):
    """The program's globals a shared run keeps. Asking for one it dropped (a live Pulumi
    object) fails with the reason, also through `.get()`, instead of answering None."""

    def __init__(self, kept: Mapping[str, Any], dropped: Collection[str]) -> None:
        super().__init__(kept)
        self.dropped = frozenset(dropped)

    def _refuse(self, key: str) -> KeyError:
        return KeyError(
            f"{key!r}: a shared render keeps only {sorted(self)} of the program's globals "
            "(tests/render_cache.py); render the stack with run_stack to read live objects"
        )

    def __missing__(self, key: str) -> Any:
        raise self._refuse(key) if key in self.dropped else KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        if key in self:
            return self[key]
        if key in self.dropped:
            raise self._refuse(key)
        return default


def shareable(run: StackRun) -> StackRun:
    """`run` as a shared render holds it: the same resources and outputs, its settings."""
    names = [name for name in run.namespace if not name.startswith("__")]
    kept = {name: run.namespace[name] for name in KEPT_GLOBALS if name in run.namespace}
    return replace(run, namespace=SharedNamespace(kept, set(names) - set(kept)))


def _canonical(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):  # iteration order differs between processes
        return sorted(value, key=repr)
    return str(value)


def fingerprint(run: StackRun) -> str:
    """A digest of everything a test reads from a run: its resources with their inputs, ids
    and state, the outputs components and the root stack register, and the settings the
    program kept."""
    namespace = {
        name: value.model_dump() if hasattr(value, "model_dump") else value
        for name, value in run.namespace.items()
        if name in KEPT_GLOBALS
    }
    payload = {
        "project": run.project,
        "stack": run.stack,
        "resources": [[r.to_json(), r.id, r.state, r.delete_before_replace] for r in run.resources],
        "outputs": run.outputs,
        "namespace": namespace,
    }
    text = json.dumps(payload, sort_keys=True, default=_canonical)
    return hashlib.sha256(text.encode()).hexdigest()


# A file created exclusively (O_CREAT|O_EXCL: the tempfile module's probe of the temporary
# directory, which some imports make) held nothing before: not something a render reads.
CREATED = os.O_CREAT | os.O_EXCL


class _ReadWatch:
    """The files opened while a shared render runs in this process (an audit hook, added
    once, that records only while `active`)."""

    def __init__(self) -> None:
        self.active = False
        self.hooked = False
        self.paths: list[str] = []

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if event != "open" or not self.active or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
        if flags & CREATED != CREATED:
            self.paths.append(os.path.abspath(os.fsdecode(args[0])))

    @contextlib.contextmanager
    def watching(self) -> Iterator[list[str]]:
        if not self.hooked:
            sys.addaudithook(self)
            self.hooked = True
        self.active, self.paths = True, []
        try:
            yield self.paths
        finally:
            self.active = False


_READS = _ReadWatch()


@dataclass
class Stats:
    loaded: int = 0
    rendered: int = 0
    # Base stacks rendered while another worker rendered the one asked for.
    rendered_while_waiting: int = 0
    # Entries found unreadable, holding another key or not matching their fingerprint (then
    # rendered again).
    rejected: int = 0
    # Renders that read a file the key does not cover (kept for the session, never stored).
    not_stored: int = 0
    # Seconds spent waiting for another process's render.
    waited: float = 0.0


@dataclass
class RenderCache:
    """Entries of one generation (one state of the tree and environment) in `directory`;
    `directory=None` is the cache switched off."""

    directory: Path | None
    # Part of every key (entries of another generation never match, wherever they lie).
    environment_digest: str = ""
    # The project's files as the key saw them (files_digest), and where they lie: a render
    # made after one of them changed (an edit during the session) is used, never stored
    # under the key of the files as they were.
    files: str = ""
    project_dir: Path = PROJECT_DIR
    stats: Stats = field(default_factory=Stats)
    _rejected: set[str] = field(default_factory=set)

    def _reject(self, key: str) -> None:
        if key not in self._rejected:  # asked again under the lock: counted once
            self._rejected.add(key)
            self.stats.rejected += 1

    def _path(self, key: str, suffix: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()}{suffix}"

    def read(self, key: str, suffix: str = ".run") -> bytes | None:
        """The stored bytes for `key`, or None (none stored, or unreadable)."""
        if self.directory is None:
            return None
        try:
            return self._path(key, suffix).read_bytes()
        except FileNotFoundError:
            return None
        except OSError:
            self._reject(key)
            return None

    def write(self, key: str, blob: bytes, suffix: str = ".run") -> None:
        """Store `blob` for `key` atomically (a temporary file renamed into place): a reader
        sees the old entry or the new one, whole. A failure costs a later render, no more."""
        if self.directory is None:
            return
        temporary = ""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
            with os.fdopen(handle, "wb") as out:
                out.write(blob)
            os.replace(temporary, self._path(key, suffix))
        except OSError as error:
            warnings.warn(f"render cache: could not store an entry: {error}", stacklevel=3)
            with contextlib.suppress(OSError):
                if temporary:
                    os.unlink(temporary)

    def load(self, key: str) -> tuple[StackRun, str] | None:
        """The run stored for `key` with its fingerprint, or None when there is none or it
        cannot be trusted (unreadable, another key's, changed since it was stored)."""
        blob = self.read(key)
        if blob is None:
            return None
        try:
            entry = pickle.loads(zlib.decompress(blob))
            run, stored = entry["run"], entry["fingerprint"]
            if entry["key"] != key or not isinstance(run, StackRun) or fingerprint(run) != stored:
                raise ValueError("the entry is not the render it claims to be")
        except Exception:  # anything a damaged file can raise: render again
            self._reject(key)
            return None
        self.stats.loaded += 1
        return run, str(stored)

    def store(self, key: str, run: StackRun, digest: str) -> None:
        entry = {"key": key, "fingerprint": digest, "run": run}
        self.write(key, zlib.compress(pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL), 1))

    @contextlib.contextmanager
    def locked(self, key: str, *, wait: bool) -> Iterator[bool]:
        """Hold `key`'s lock (wait for it, or not): yields whether it is held. With the cache
        off, or a lock file that cannot be made, it is held: there is no one to share with."""
        if self.directory is None:
            yield True
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle = os.open(self._path(key, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            yield True
            return
        try:
            started = time.perf_counter()
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            self.stats.waited += time.perf_counter() - started
            yield True
        finally:
            os.close(handle)  # releases the lock

    def render_once(self, key: str, render: Callable[[], StackRun]) -> tuple[StackRun, str]:
        """Under `key`'s lock (held by the caller): the entry if another process stored it
        meanwhile, else a render of ours, stored."""
        found = self.load(key)
        if found is not None:
            return found
        with _READS.watching() as opened:
            run = shareable(render())
        digest = fingerprint(run)
        self.stats.rendered += 1
        outside = unkeyed(opened)
        if self.files and files_digest(self.project_dir) != self.files:
            self.stats.not_stored += 1
            warnings.warn(
                "render cache: the project's files changed during the session: not stored",
                stacklevel=2,
            )
        elif outside:  # the key would not see those files change: never reuse this render
            self.stats.not_stored += 1
            warnings.warn(
                f"render cache: a render read {outside[:5]}, which the key does not cover "
                "(tests/render_cache.py): not stored",
                stacklevel=2,
            )
        else:
            self.store(key, run, digest)
        return run, digest

    def fetch(self, key: str, render: Callable[[], StackRun]) -> tuple[StackRun, str]:
        """The render for `key`: loaded, or made once however many processes ask at once."""
        found = self.load(key)
        if found is not None:
            return found
        with self.locked(key, wait=True):
            return self.render_once(key, render)


def generation_directory(environment_digest: str, root: Path = CACHE_ROOT) -> Path:
    return root / environment_digest[:32]


def prune(current: Path, keep: int = GENERATIONS_KEPT) -> list[Path]:
    """Mark `current` as used and remove all but the `keep` most recently used generations."""
    with contextlib.suppress(OSError):
        current.mkdir(parents=True, exist_ok=True)
        os.utime(current)
    try:
        others = [p for p in current.parent.iterdir() if p.is_dir() and p != current]
    except OSError:
        return []

    def used(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0

    removed = sorted(others, key=used, reverse=True)[keep - 1 :]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def switched_off(variables: Mapping[str, str] | None = None) -> bool:
    value = (os.environ if variables is None else variables).get(SWITCH, "on").strip().lower()
    if value not in {"on", "off", ""}:
        raise ValueError(f"{SWITCH}={value!r}: use on or off")
    return value == "off"


def open_cache(root: Path = CACHE_ROOT, project_dir: Path = PROJECT_DIR) -> RenderCache:
    """The cache of this tree and environment, or the cache switched off (`RENDER_CACHE=off`)."""
    if switched_off():
        return RenderCache(None)
    found = environment(project_dir)
    digest = digest_of(found)
    return RenderCache(
        generation_directory(digest, root),
        environment_digest=digest,
        files=found["files"],
        project_dir=project_dir,
    )


@dataclass
class SharedRenders:
    """The renders of one test process, each made or loaded once and shared by every test
    that asks for it. A base stack (its stack file as it is) is rendered when a test first asks
    for it; a worker that would wait for another worker's render of it meanwhile renders a base
    stack that this session's tests ask for and nobody renders yet (starting at its own place
    in the stack order, so two workers start on different stacks)."""

    cache: RenderCache
    stacks: tuple[str, ...]
    worker: int = 0
    # The base stacks the collected tests ask for (rendered while waiting, if at all).
    wanted: set[str] = field(default_factory=set)
    # Called with each shared run, its label and fingerprint (the session-end check).
    on_shared: Callable[[str, StackRun, str], None] = lambda label, run, digest: None
    _runs: dict[str, StackRun] = field(default_factory=dict)

    def key_of(self, stack: str, config: Mapping[str, Any], secret_keys: Collection[str]) -> str:
        """The key of `stack`'s render with `config` as of the render date in force (run_at
        changes it)."""
        rendered_on = loader.render_date().isoformat()
        return render_key(self.cache.environment_digest, stack, config, secret_keys, rendered_on)

    def _keep(self, key: str, label: str, found: tuple[StackRun, str]) -> StackRun:
        run, digest = found
        self._runs[key] = run
        self.on_shared(label, run, digest)
        return run

    def render(
        self,
        stack: str,
        config: dict[str, Any],
        secret_keys: list[str],
        label: str,
        *,
        base: bool = False,
    ) -> StackRun:
        key = self.key_of(stack, config, secret_keys)
        if key in self._runs:
            return self._runs[key]
        render = _renderer(stack, config, secret_keys)
        found = self.cache.load(key)
        while found is None and base:
            with self.cache.locked(key, wait=False) as held:
                if held:
                    found = self.cache.render_once(key, render)
            if found is None and not self._render_another(stack):
                break
        if found is None:
            found = self.cache.fetch(key, render)
        return self._keep(key, label, found)

    def base(self, stack: str) -> StackRun:
        """`stack` rendered from its stack file as it is."""
        config, secret_keys = stack_file_config(stack)
        return self.render(stack, config, secret_keys, stack, base=True)

    def _render_another(self, busy: str) -> bool:
        """While another process renders `busy`: load or render one more wanted base stack
        that nobody is rendering. False when there is none left to do."""
        start = self.worker % len(self.stacks) if self.stacks else 0
        for stack in self.stacks[start:] + self.stacks[:start]:
            if stack == busy or stack not in self.wanted:
                continue
            config, secret_keys = stack_file_config(stack)
            key = self.key_of(stack, config, secret_keys)
            if key in self._runs:
                continue
            found = self.cache.load(key)
            if found is not None:
                self._keep(key, stack, found)
                continue
            with self.cache.locked(key, wait=False) as held:
                if not held:
                    continue
                rendered = self.cache.stats.rendered
                found = self.cache.render_once(key, _renderer(stack, config, secret_keys))
                self.cache.stats.rendered_while_waiting += self.cache.stats.rendered - rendered
            self._keep(key, stack, found)
            return True
        return False


@functools.cache
def _stack_file_config(stack: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    config, secret_keys = stack_config(stack)
    return config, tuple(secret_keys)


def stack_file_config(stack: str) -> tuple[dict[str, Any], list[str]]:
    """`stack_config(stack)`, the project's stack file read once per process (a copy each
    time, free to change): every test asking for a base stack's render needs its key, and
    reading the stack file (position-tracking YAML) took about 0.05 s a time, a good part of a
    warm run's worker time. A stack file edited during the session is not seen again; renders
    made after such an edit are not stored (`RenderCache.render_once`), so nothing stale is
    kept."""
    config, secret_keys = _stack_file_config(stack)
    return copy.deepcopy(config), list(secret_keys)


def _renderer(stack: str, config: dict[str, Any], secret_keys: list[str]) -> Callable[[], StackRun]:
    def render() -> StackRun:
        # No automatic collections while the render runs: they would walk its growing heap
        # again and again (about a tenth of a render's time); its garbage is collected when
        # the run is shared (tests/conftest.py, `_settle`). Peak memory is unchanged (six
        # renders in one process: 335-338 MB with and without).
        collecting = gc.isenabled()
        gc.disable()
        try:
            return run_stack(stack, config=config, secret_keys=secret_keys)
        finally:
            if collecting:
                gc.enable()

    return render


class LazyRuns(Mapping[str, StackRun]):
    """The base stacks' renders by stack, each made (or loaded) when first asked for."""

    def __init__(self, renders: SharedRenders) -> None:
        self._renders = renders

    def __getitem__(self, stack: str) -> StackRun:
        if stack not in self._renders.stacks:
            raise KeyError(stack)
        return self._renders.base(stack)

    def __iter__(self) -> Iterator[str]:
        return iter(self._renders.stacks)

    def __len__(self) -> int:
        return len(self._renders.stacks)
