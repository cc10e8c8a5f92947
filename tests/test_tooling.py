"""The promtool and amtool the tests run are the versions the Makefile pins, wherever `make test`
runs: Debian 12's package files, fetched by exact name and checked by SHA-256, never whatever
the machine's apt would pick (an Ubuntu runner's archive carries other versions)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from offline.engine import PROJECT_DIR

MAKEFILE = (PROJECT_DIR / "Makefile").read_text()
TOOLS = PROJECT_DIR / ".tools" / "prometheus" / "usr" / "bin"


def variable(name: str) -> str:
    match = re.search(rf"^{name} := (\S+)$", MAKEFILE, flags=re.MULTILINE)
    assert match, name
    return match[1]


def debian_version(deb: str, package: str) -> str:
    """A Debian package file is <package>_<version>_<architecture>.deb."""
    match = re.fullmatch(rf"{re.escape(package)}_(.+)_amd64\.deb", deb)
    assert match, deb
    return match[1]


@pytest.mark.parametrize(
    ("tool", "deb", "package", "override"),
    [
        ("promtool", "PROMETHEUS_DEB", "prometheus", "PROMTOOL"),
        ("amtool", "ALERTMANAGER_DEB", "prometheus-alertmanager", "AMTOOL"),
    ],
)
def test_the_tools_the_tests_run_are_the_pinned_debian_builds(
    tool: str, deb: str, package: str, override: str
) -> None:
    version = debian_version(variable(deb), package)
    upstream = version.split("-")[0]
    binary = Path(os.environ.get(override, TOOLS / tool))
    result = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=True, timeout=30
    )
    first = (result.stdout or result.stderr).splitlines()[0]
    # e.g. "promtool, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0+ds-5+deb12u1)"
    assert first.startswith(f"{tool}, version {upstream}"), first
    assert first.endswith(f"revision: {version})"), first


def test_the_luajit_the_tests_run_is_the_pinned_debian_build() -> None:
    """The log shipper's Lua filter runs in the tests on LuaJIT 2.1, as in Fluent Bit."""
    from tests.addons.fluent_bit_lua import LUAJIT

    version = debian_version(variable("LUAJIT_DEB"), "luajit")
    assert variable("LIBLUAJIT_DEB") == f"libluajit-5.1-2_{version}_amd64.deb"
    result = subprocess.run(
        [str(LUAJIT), "-v"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        env={
            **os.environ,
            "LD_LIBRARY_PATH": str(LUAJIT.parent.parent / "lib" / "x86_64-linux-gnu"),
        },
    )
    # e.g. "LuaJIT 2.1.0-beta3 -- Copyright (C) 2005-2022 Mike Pall. https://luajit.org/"
    upstream = version.split("~")[0] + "-" + version.split("~")[1].split("+")[0]
    assert result.stdout.startswith(f"LuaJIT {upstream} "), result.stdout


def test_each_package_file_is_checked_by_its_sha256_and_apt_is_not_asked() -> None:
    for name in (
        "PROMETHEUS_DEB_SHA256",
        "ALERTMANAGER_DEB_SHA256",
        "LUAJIT_DEB_SHA256",
        "LIBLUAJIT_DEB_SHA256",
    ):
        assert re.fullmatch(r"[0-9a-f]{64}", variable(name)), name
    for stamp in ("$(PROM_STAMP):", "$(LUAJIT_STAMP):"):
        recipe = MAKEFILE[MAKEFILE.index(stamp) :].split("\n\n")[0]
        assert "sha256sum --check --strict" in recipe, stamp
        assert "apt-get" not in recipe, stamp
    assert "$(LUAJIT_STAMP)" in MAKEFILE[MAKEFILE.index("checkers:") :].splitlines()[0]
    # The stamp names the checksums: a new pin fetches again.
    assert "$(PROMETHEUS_DEB_SHA256)" in variable("PROM_STAMP")


@pytest.mark.parametrize(
    ("extra", "environment", "stacks"),
    [
        ([], {}, ""),
        (["STACK=staging"], {}, " --stack staging"),
        ([], {"STACK": "staging"}, " --stack staging"),
    ],
)
def test_make_diff_covers_every_stack_unless_one_is_named(
    extra: list[str], environment: dict[str, str], stacks: str
) -> None:
    """`make diff` used to pass the Makefile's default STACK (production) along: the pull
    request's comment never showed staging or development."""
    env = {k: v for k, v in os.environ.items() if k != "STACK"} | environment
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "diff", "BASE=origin/main", *extra],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    command = result.stdout.strip().splitlines()[-1]
    assert command.rstrip() == f".venv/bin/python -m offline.diff --base origin/main{stacks}"
