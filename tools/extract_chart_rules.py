"""Extract the node rules kube-prometheus-stack ships, as the release renders them, into data.

Reads the chart's rule templates at its release tag from a clone of
prometheus-community/helm-charts (the search tool's `fetch` brings one) and writes each rule's
name, expression, `for` and severity to tests/observability/chart_rules.json, with the chart's
name, version and source paths. The chart itself is not copied: only the rules' text, with the
few template expressions inside them resolved from the chart's values.yaml at the same tag (the
release sets none of them: components/addons/monitoring.py):

- {{ $.Values.defaultRules.node.fsSelector }}                       -> values.yaml's value
- {{ range $.Values.defaultRules.additionalAggregationLabels }}...  -> its list (empty: nothing)
- {{ $kubeStateMetricsJob }}  -> "kube-state-metrics" (templates/_helpers.tpl,
  kube-prometheus-stack-kube-state-metrics.name, without a nameOverride)
- {{ dig "<rule>" "for"|"severity" "<default>" .Values.customRules }} -> the default

Any other template expression left in an expression is an error: the script is then out of date.

    python tools/extract_chart_rules.py --git-dir <clone of prometheus-community/helm-charts>
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

CHART = "kube-prometheus-stack"
VERSION = "88.5.3"
RULES_DIR = f"charts/{CHART}/templates/prometheus/rules-1.14"
# The node rule files: node-exporter's alerts, its recording rules, and the node recording
# rules that join pods to nodes.
FILES = ("node-exporter.yaml", "node-exporter.rules.yaml", "node.rules.yaml")
OUTPUT = Path(__file__).resolve().parent.parent / "tests" / "observability" / "chart_rules.json"

# A rule is an item of a group's `rules` list: "- alert: X", "- record: X" or "- expr: ..."
# (the recording rules name their record after the expression).
ITEM = re.compile(r"^    - (alert|record|expr):")
NAME = re.compile(r"^\s*-? ?(alert|record): '?([^'\s]+)'?\s*$")
EXPR = re.compile(r"^(\s*)expr: ?(\|-|\|)?\s*(.*)$")
DIG = re.compile(r'\{\{ dig "[^"]+" "(for|severity)" "([^"]*)" \.Values\.customRules \}\}')
AGGREGATION = re.compile(
    r"\{\{ range \$\.Values\.defaultRules\.additionalAggregationLabels \}\}"
    r"\{\{ \. \}\},\{\{ end \}\}"
)


def git_show(git_dir: str, path: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", git_dir, "show", f"{CHART}-{VERSION}:{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def resolve(text: str, values: dict[str, Any]) -> str:
    rules = values["defaultRules"]
    text = text.replace("{{ $.Values.defaultRules.node.fsSelector }}", rules["node"]["fsSelector"])
    labels = "".join(f"{label}," for label in rules["additionalAggregationLabels"])
    text = AGGREGATION.sub(labels, text)
    text = text.replace("{{ $kubeStateMetricsJob }}", "kube-state-metrics")
    if "{{" in text:
        raise SystemExit(f"unresolved template expression in: {text}")
    return text


def rules_of(template: str, values: dict[str, Any], source: str) -> list[dict[str, Any]]:
    lines = template.splitlines()
    starts = [i for i, line in enumerate(lines) if ITEM.match(line)] + [len(lines)]
    rules: list[dict[str, Any]] = []
    for first, after in itertools.pairwise(starts):
        rule: dict[str, Any] = {}
        item = [lines[first].replace("- ", "  ", 1), *lines[first + 1 : after]]
        i = 0
        while i < len(item):
            line = item[i]
            name = NAME.match(line)
            expr = EXPR.match(line)
            if name:
                rule[name[1]] = name[2]
            elif expr and "expr" not in rule:
                indent, block, inline = expr[1], expr[2], expr[3]
                if block:
                    body = []
                    i += 1
                    while i < len(item) and (
                        not item[i].strip() or len(item[i]) - len(item[i].lstrip()) > len(indent)
                    ):
                        body.append(item[i].strip())
                        i += 1
                    rule["expr"] = resolve("\n".join(body).strip(), values)
                    continue
                rule["expr"] = resolve(inline, values)
            for field, default in DIG.findall(line):
                rule[field] = default
            i += 1
        rule["source"] = source
        rules.append(rule)
    return rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--git-dir", required=True, help="a clone of prometheus-community/helm-charts"
    )
    args = parser.parse_args()
    values = yaml.safe_load(git_show(args.git_dir, f"charts/{CHART}/values.yaml"))
    rules = []
    for name in FILES:
        source = f"{RULES_DIR}/{name}"
        rules += rules_of(git_show(args.git_dir, source), values, source)
    data = {
        "chart": CHART,
        "version": VERSION,
        "repository": "prometheus-community/helm-charts",
        "tag": f"{CHART}-{VERSION}",
        "sources": [f"{RULES_DIR}/{name}" for name in FILES],
        "extracted_by": "tools/extract_chart_rules.py",
        "rules": rules,
    }
    OUTPUT.write_text(json.dumps(data, indent=2) + "\n")
    print(f"{len(rules)} rules -> {OUTPUT}")


if __name__ == "__main__":
    main()
