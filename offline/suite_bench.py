"""`make bench-suite`: what each stage of `make test` costs, and where pytest spends its time.

Warm (default): the work tree's virtualenvs and caches as they are; each stage of `make test`
is run and timed (wall and CPU seconds) one after another, to tell their costs apart, and
pytest's slowest tests are listed. `make test` itself runs lint beside pytest, so its wall time
is about the larger of the two (with some contention for the cores), not their sum, which is
reported as such. With `--cold`, the committed tree is cloned into a temporary folder first and
its set-up is timed too (virtualenvs, checkers), then the same stages run there with no cache
at all.
Timings live here, never in tests; the report is also written to build/bench-suite.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from offline.engine import PROJECT_DIR

PYTEST = [".venv/bin/python", "-m", "pytest", "-n", "auto", "--dist", "worksteal"]
SLOWEST = 15
MAKE_VARIABLES = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")


@dataclass(frozen=True)
class Stage:
    name: str
    wall_seconds: float
    cpu_seconds: float
    ok: bool


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(name: str, command: list[str], cwd: Path) -> tuple[Stage, str]:
    print(f"-- {name}: {' '.join(command)}", flush=True)
    cpu, started = children_cpu(), time.perf_counter()
    # As `make pytest` runs it: without the variables of the make that started this bench.
    environment = {k: v for k, v in os.environ.items() if k not in MAKE_VARIABLES}
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=environment)
    stage = Stage(
        name,
        round(time.perf_counter() - started, 1),
        round(children_cpu() - cpu, 1),
        result.returncode == 0,
    )
    if not stage.ok:
        print(result.stdout[-3000:], result.stderr[-3000:], sep="\n")
    return stage, result.stdout


def slowest(pytest_output: str) -> list[str]:
    lines = pytest_output.splitlines()
    marker = next((i for i, line in enumerate(lines) if "slowest" in line), None)
    if marker is None:
        return []
    return [line for line in lines[marker + 1 :] if line[:1].isdigit()][:SLOWEST]


@dataclass(frozen=True)
class Report:
    cold: bool
    cores: int | None
    stages: list[Stage]
    slowest_tests: list[str]

    @property
    def make_test_seconds(self) -> float:
        """The stages of `make test` (lint, type check, pytest; checkers present) one after
        another: what it would take run in sequence; `make test` overlaps lint with pytest."""
        return round(sum(s.wall_seconds for s in self.stages if not s.name.startswith("make ")), 1)

    @property
    def total_seconds(self) -> float:
        """Every stage: on a fresh clone, what `make test` costs from nothing (set-up included)."""
        return round(sum(s.wall_seconds for s in self.stages), 1)


def run(tree: Path, cold: bool) -> Report:
    stages: list[Stage] = []
    if cold:
        for target in ("venv", "checkers"):
            stage, _ = timed(f"make {target}", ["make", "--no-print-directory", target], tree)
            stages.append(stage)
    for name, command in (
        ("ruff", [".venv/bin/ruff", "check", "."]),
        ("mypy", [".venv/bin/mypy", "."]),
    ):
        stage, _ = timed(name, command, tree)
        stages.append(stage)
    stage, output = timed("pytest", [*PYTEST, f"--durations={SLOWEST}"], tree)
    stages.append(stage)
    return Report(cold, os.cpu_count(), stages, slowest(output))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="time a fresh clone's set-up too")
    args = parser.parse_args(argv)
    if args.cold:
        with tempfile.TemporaryDirectory() as scratch:
            tree = Path(scratch) / "clone"
            subprocess.run(["git", "clone", "--quiet", str(PROJECT_DIR), str(tree)], check=True)
            report = run(tree, cold=True)
    else:
        report = run(PROJECT_DIR, cold=False)
    print(f"\n{'stage':<15}{'wall s':>8}{'cpu s':>8}")
    for stage in report.stages:
        mark = "" if stage.ok else "  FAILED"
        print(f"{stage.name:<15}{stage.wall_seconds:>8}{stage.cpu_seconds:>8}{mark}")
    print(f"{'in sequence':<15}{report.make_test_seconds:>8}  (make test runs lint beside pytest)")
    if report.cold:
        print(f"{'with set-up':<15}{report.total_seconds:>8}")
    print(f"\nslowest tests ({report.cores} cores):")
    print("\n".join(report.slowest_tests))
    out = PROJECT_DIR / "build" / "bench-suite.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                **asdict(report),
                "stagesInSequenceSeconds": report.make_test_seconds,
                "totalSeconds": report.total_seconds,
            },
            indent=2,
        )
        + "\n"
    )
    return 0 if all(s.ok for s in report.stages) else 1


if __name__ == "__main__":
    sys.exit(main())
