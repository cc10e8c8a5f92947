"""How the local loop runs its commands: for real, or printed only (`--dry-run`)."""

from __future__ import annotations

import shlex
import subprocess
from typing import Protocol


class DevLoopError(Exception):
    """Something the person running the loop can fix: printed as one line, no traceback."""


class Runner(Protocol):
    def run(self, *command: str, stdin: str | None = None) -> None:
        """Run a command that changes something; a failure stops the loop."""

    def query(self, *command: str) -> str | None:
        """Run a command that only looks (its output), or None when it fails."""


def shown(command: tuple[str, ...], stdin: str | None = None) -> str:
    line = shlex.join(command)
    return f"{line} <<'EOF'\n{stdin}EOF" if stdin is not None else line


class Shell:
    """Runs each command, showing it first; missing tools and failures become one line."""

    def run(self, *command: str, stdin: str | None = None) -> None:
        print(f"+ {shlex.join(command)}", flush=True)
        try:
            result = subprocess.run(command, input=stdin, text=True, check=False)
        except FileNotFoundError:
            raise DevLoopError(missing_tool(command[0])) from None
        if result.returncode != 0:
            raise DevLoopError(f"`{shlex.join(command)}` failed (exit {result.returncode})")

    def query(self, *command: str) -> str | None:
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False)
        except FileNotFoundError:
            raise DevLoopError(missing_tool(command[0])) from None
        return result.stdout if result.returncode == 0 else None


class DryRun:
    """Prints what a fresh machine would run (every look finds nothing), runs nothing."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def run(self, *command: str, stdin: str | None = None) -> None:
        self.commands.append(shown(command, stdin))
        print(self.commands[-1])

    def query(self, *command: str) -> str | None:
        return None


def missing_tool(tool: str) -> str:
    return (
        f"{tool} is not installed or not on PATH: the local loop needs Docker, kind, kubectl "
        "and the Pulumi CLI (docs/development.md)"
    )
