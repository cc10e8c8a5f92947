"""`make help`: every target a person can run has one line of help, from its `##` comment.

The targets are taken from make's own database (`make -p`), not from a pattern over the
Makefile's text, so a target the help's pattern misses is still found.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

from offline import suite_bench
from offline.engine import PROJECT_DIR

MAKEFILE = PROJECT_DIR / "Makefile"


def make(makefile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-f", str(makefile), *args],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )


def targets(makefile: Path) -> set[str]:
    """The targets one runs by name: make's rules, less special targets (`.PHONY`), files that
    are only prerequisites ("Not a target") and the internal stamp files (paths)."""
    # -p prints the database, -q runs nothing; -R -r: no built-in rules or variables.
    database = make(makefile, "-pRrq", ":").stdout
    files = database.split("\n# Files\n", 1)[1].split("\n# Finished Make data base", 1)[0]
    found = set()
    for entry in files.split("\n\n"):
        lines = [line for line in entry.strip().splitlines() if line]
        if not lines or lines[0] == "# Not a target:":
            continue
        rule = re.match(r"^([^\s:#=]+):(?!=)", lines[0])
        if rule and not rule.group(1).startswith(".") and "/" not in rule.group(1):
            found.add(rule.group(1))
    return found


def help_lines(makefile: Path) -> dict[str, str]:
    shown = make(makefile, "help")
    assert shown.returncode == 0, shown.stderr
    lines = [re.match(r"^  (\S+)\s+(\S.*)$", line) for line in shown.stdout.splitlines()]
    assert all(lines), shown.stdout
    return {m.group(1): m.group(2) for m in lines if m}


def missing_help(makefile: Path) -> set[str]:
    return targets(makefile) - set(help_lines(makefile))


def test_every_target_has_a_help_line() -> None:
    found = targets(MAKEFILE)
    # The database is really read: the targets the docs name are among what it found.
    assert {"synth", "diff", "test", "dev-up", "help"} <= found
    helped = help_lines(MAKEFILE)
    assert missing_help(MAKEFILE) == set()
    # And no help line for a target that does not exist.
    assert set(helped) == found
    assert all(len(text) <= 100 for text in helped.values()), helped


def test_a_target_without_help_is_found(tmp_path: Path) -> None:
    # Negative control: a target with no `##` comment, and one the help's pattern cannot see.
    copy = tmp_path / "Makefile"
    copy.write_text(
        MAKEFILE.read_text() + "\nundocumented:\n\t@true\n\nUpper_Case: ## x\n\t@true\n"
    )
    assert missing_help(copy) == {"undocumented", "Upper_Case"}


def test_the_default_goal_is_still_the_virtualenv() -> None:
    # Plain `make` sets up .venv, as before `make help` existed.
    database = make(MAKEFILE, "-pRrq", ":").stdout
    assert re.search(r"^\.DEFAULT_GOAL := \.venv/\.installed$", database, re.MULTILINE)


def test_every_phony_target_is_a_target() -> None:
    phony = re.search(r"^\.PHONY: ((?:.*\\\n)*.*)$", MAKEFILE.read_text(), re.MULTILINE)
    assert phony is not None
    names = set(phony.group(1).replace("\\\n", " ").split())
    assert names == targets(MAKEFILE)


def recipe(target: str) -> tuple[list[str], list[str]]:
    """`target`'s prerequisites and recipe lines, from make's database."""
    database = make(MAKEFILE, "-pRrq", ":").stdout
    entry = re.search(rf"^{re.escape(target)}:(.*)\n((?:.*\n)*?)\n", database, re.MULTILINE)
    assert entry, f"no rule for {target}"
    prerequisites = entry.group(1).split()
    lines = [line.strip() for line in entry.group(2).splitlines() if line.startswith("\t")]
    return prerequisites, lines


def test_make_test_runs_lint_every_checker_and_every_test() -> None:
    """What CI runs (`.ci/run` is `make test`): ruff and mypy over the whole tree beside every
    checker installed and pytest with nothing selected away (a sub-make runs both targets)."""
    assert (PROJECT_DIR / ".ci" / "run").read_text().strip().endswith("make test")
    assert recipe("test")[1] == ["@$(MAKE) --no-print-directory -j2 lint pytest"]
    prerequisites, lines = recipe("pytest")
    assert {"checkers"} <= set(prerequisites)
    assert recipe("lint")[1] == ["$(VENV)/bin/ruff check .", "$(VENV)/bin/mypy ."]
    checkers = recipe("checkers")[0]
    for stamp in (".venv-checkov/", "node_modules/", ".tools/prometheus/", ".tools/luajit/"):
        assert any(p.startswith(stamp) for p in checkers), (stamp, checkers)
    # Only how to run (in parallel), never what: no -k, -m, paths, --deselect, -x, no
    # PYTEST_ADDOPTS, no leading `-` (make would ignore a failure): the whole recipe, exactly.
    assert lines == [
        "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL $(PY) -m pytest -n auto --dist worksteal"
    ]
    # `make bench-suite` times the same command.
    assert suite_bench.PYTEST[1:] == ["-m", "pytest", "-n", "auto", "--dist", "worksteal"]
    addopts = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["tool"]["pytest"][
        "ini_options"
    ]["addopts"].split()
    assert addopts == ["-q", "-p", "no:cacheprovider"]


def bytecode_setting_in_recipes(makefile: Path) -> str:
    """What a recipe of `makefile` sees of PYTHONDONTWRITEBYTECODE when the shell sets it."""
    probe = 'probe: ; @echo "[$$PYTHONDONTWRITEBYTECODE]"'
    return subprocess.run(
        ["make", "--no-print-directory", "-f", str(makefile), "--eval", probe, "probe"],
        cwd=PROJECT_DIR,
        env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_recipes_write_bytecode_whatever_the_shell_says(tmp_path: Path) -> None:
    """A shell with PYTHONDONTWRITEBYTECODE set (this machine's does) would make every process
    under `make` compile the SDKs from source again; the Makefile stops passing it on."""
    assert bytecode_setting_in_recipes(MAKEFILE) == "[]"
    # Negative control: a Makefile without the line passes the setting on.
    plain = tmp_path / "Makefile"
    plain.write_text("all: ; @true\n")
    assert bytecode_setting_in_recipes(plain) == "[1]"
