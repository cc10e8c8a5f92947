"""`make bench`: how long the offline render takes per stack, and how big each stack is.

Timings live here, never in tests: they vary with the machine and would make tests flaky.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from offline.engine import PROJECT_DIR, run_stack
from offline.synth import kubernetes_objects, write_build
from stacks.environments import ENVIRONMENTS

STACKS = ENVIRONMENTS
ROUNDS = 5


def main() -> int:
    results = {}
    for stack in STACKS:
        seconds = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            run = run_stack(stack)
            with tempfile.TemporaryDirectory() as scratch:
                write_build(run, Path(scratch))
            seconds.append(time.perf_counter() - started)
        custom = sum(1 for r in run.resources if r.custom)
        results[stack] = {
            "registered": len(run.resources),
            "resources": custom,
            "components": len(run.resources) - custom,
            "kubernetesObjects": len(kubernetes_objects(run)),
            "renderSecondsMedian": round(statistics.median(seconds), 3),
            "renderSecondsMin": round(min(seconds), 3),
        }
        print(
            f"{stack:<11} {len(run.resources):>4} registered ({custom} resources), "
            f"{results[stack]['kubernetesObjects']} Kubernetes objects, "
            f"render+write median {results[stack]['renderSecondsMedian']:.3f}s "
            f"over {ROUNDS} rounds"
        )
    report = PROJECT_DIR / "build" / "bench.json"
    report.parent.mkdir(exist_ok=True)
    report.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
