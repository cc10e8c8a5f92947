"""Runs checkov's Kubernetes checks over several directories in one process.

Run with checkov's own interpreter (`.venv-checkov/bin/python tools/checkov_runs.py DIR...`).
Each directory is its own run, as `checkov --framework kubernetes --directory DIR` makes it
(graph checks such as CKV2_K8S_6 look only inside that directory), but checkov is imported
once: its start-up costs several times what its checks over a stack do. Prints one JSON object:
{directory: {"summary": {...}, "failed": [[check_id, resource], ...]}}.
"""

from __future__ import annotations

import json
import os
import sys

# No call to checkov's platform for its mappings (offline); set before checkov is imported.
os.environ["BC_SKIP_MAPPING"] = "TRUE"

from checkov.kubernetes.runner import Runner
from checkov.runner_filter import RunnerFilter


def main(directories: list[str]) -> None:
    results = {}
    for directory in directories:
        reports = Runner().run(
            root_folder=directory, runner_filter=RunnerFilter(framework=["kubernetes"])
        )
        # A runner may return one report or a list of them (one per framework it ran).
        if isinstance(reports, list):
            if len(reports) != 1:
                raise SystemExit(f"{directory}: expected one Kubernetes report, got {len(reports)}")
            reports = reports[0]
        report = reports.get_dict()
        results[directory] = {
            "summary": report["summary"],
            "failed": [
                [check["check_id"], check["resource"]]
                for check in report["results"]["failed_checks"]
            ],
        }
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
