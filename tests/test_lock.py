"""The lock files install what pyproject.toml and checkov's requirements pin.

`make venv` and `make checkers` install under a lock file (`-c`), uv and pip alike, so indirect
dependencies do not float between a developer's machine and CI. A pin changed in pyproject.toml
without `make lock` would be refused by the installer as a conflict, or worse, leave the lock
describing something else: this test says so first, in one line.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from offline.engine import PROJECT_DIR

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        match = PIN.match(line.strip())
        if match:
            found[canonical(match.group(1))] = match.group(2)
    return found


def lock_pins(path: Path) -> dict[str, str]:
    return pins(path.read_text().splitlines())


def direct_pins() -> dict[str, str]:
    project = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["project"]
    return pins(project["dependencies"] + project["optional-dependencies"]["dev"])


def stale(direct: dict[str, str], locked: dict[str, str]) -> list[str]:
    return [
        f"{name}: pinned {version}, locked {locked.get(name)} (run `make lock`)"
        for name, version in sorted(direct.items())
        if locked.get(name) != version
    ]


def test_every_direct_pin_is_the_locked_version() -> None:
    direct = direct_pins()
    assert len(direct) > 15  # the parse found the pins
    assert stale(direct, lock_pins(PROJECT_DIR / "requirements-lock.txt")) == []


def test_checkov_is_the_locked_version() -> None:
    direct = pins((PROJECT_DIR / "tools" / "checkov-requirements.txt").read_text().splitlines())
    assert "checkov" in direct
    locked = lock_pins(PROJECT_DIR / "tools" / "checkov-requirements-lock.txt")
    assert stale(direct, locked) == []


def test_every_locked_requirement_is_exact() -> None:
    for lock in ("requirements-lock.txt", "tools/checkov-requirements-lock.txt"):
        requirements = [
            line
            for line in (PROJECT_DIR / lock).read_text().splitlines()
            if line and not line.startswith((" ", "#"))
        ]
        assert requirements, lock
        assert [line for line in requirements if not PIN.match(line)] == [], lock


def test_a_pin_moved_without_make_lock_is_named() -> None:
    locked = lock_pins(PROJECT_DIR / "requirements-lock.txt")
    moved = {**direct_pins(), "pulumi-aws": "0.0.1"}
    assert stale(moved, locked) == [
        f"pulumi-aws: pinned 0.0.1, locked {locked['pulumi-aws']} (run `make lock`)"
    ]
