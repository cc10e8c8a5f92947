"""What the pinned Helm charts really do with the program's values, judged from committed facts.

tools/chart_facts.py renders each chart from its source at the pinned version with each stack's
values (and again with each value changed or removed) and writes what it found to
tests/chart_facts/<chart>-<version>.json. The checks here read only those files and the
program's render, so they run offline. Each returns findings, one line each,
`<stack>/<release>: <check>: <detail>`; tests/test_chart_facts.py holds them to none, but for
the findings other branches fix (tests/chart_facts/expected_failures.yaml).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from offline.engine import StackRun
from offline.pod_security import Level, violations
from offline.synth import kubernetes_objects
from stacks.catalog import cpu_millicores, memory_mib
from tests.lookup import HELM_RELEASE

FACTS_DIR = Path(__file__).resolve().parent / "chart_facts"
EXPECTED_FAILURES = FACTS_DIR / "expected_failures.yaml"
REFRESH = ".venv/bin/python -m tools.chart_facts --helm <helm 4.x> --chart {chart}"
# Pod templates of long-running pods, and the custom resources an operator runs as such.
LONG_RUNNING = ("Deployment", "StatefulSet", "DaemonSet", "Prometheus", "Alertmanager")


@dataclass(frozen=True)
class ChartRelease:
    """One Helm release of a stack, with the facts of its chart at that stack's values."""

    stack: str
    name: str
    chart: str
    version: str
    namespace: str
    values: dict[str, Any]
    # None when tests/chart_facts has no file for this chart version, or none for this stack.
    facts: dict[str, Any] | None

    @property
    def where(self) -> str:
        return f"{self.stack}/{self.name}"

    def finding(self, check: str, detail: str) -> str:
        return f"{self.where}: {check}: {detail}"


def facts_path(chart: str, version: str) -> Path:
    return FACTS_DIR / f"{chart}-{version}.json"


def load_chart_facts(chart: str, version: str) -> dict[str, Any] | None:
    path = facts_path(chart, version)
    if not path.exists():
        return None
    found: dict[str, Any] = json.loads(path.read_text())
    return found


def releases(run: StackRun) -> list[ChartRelease]:
    found = []
    for resource in run.of_type(HELM_RELEASE):
        inputs = resource.inputs
        chart_facts = load_chart_facts(inputs["chart"], inputs["version"])
        found.append(
            ChartRelease(
                stack=run.stack,
                name=resource.name,
                chart=inputs["chart"],
                version=inputs["version"],
                namespace=inputs["namespace"],
                values=inputs.get("values", {}),
                facts=(chart_facts or {}).get("stacks", {}).get(run.stack),
            )
        )
    return sorted(found, key=lambda r: r.name)


def values_digest(values: Any) -> str:
    """As tools/chart_facts.py computes it."""
    import hashlib

    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def stale(release: ChartRelease) -> str | None:
    """One line saying how to refresh the facts, when they do not describe this release."""
    if release.facts is None:
        reason = (
            f"none for {release.chart} {release.version}"
            if load_chart_facts(release.chart, release.version) is None
            else f"none for the {release.stack} stack"
        )
    elif release.facts["values_sha256"] != values_digest(release.values):
        reason = "rendered from other values"
    else:
        return None
    return (
        f"{release.where}: chart facts {reason} ({facts_path(release.chart, release.version).name}"
        f"): refresh with `{REFRESH.format(chart=release.chart)}` and review the diff"
    )


def leaves(values: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every value path set, as tools/chart_facts.py walks them: a non-empty mapping is walked,
    anything else (a scalar, a list, an empty mapping) is a leaf."""
    if isinstance(values, dict) and values:
        for key, item in values.items():
            yield from leaves(item, (*path, key))
    else:
        yield path, values


def dotted(path: Sequence[str]) -> str:
    return ".".join(path)


def unread_values(release: ChartRelease, facts: Mapping[str, Any] | None = None) -> list[str]:
    """Value paths the program sets that the chart (or istiod's injector) does not read."""
    facts = facts if facts is not None else release.facts
    assert facts is not None
    read = set(facts["read"]) | set(facts["read_by_injector"])
    return [
        release.finding("unread value", dotted(path))
        for path, _ in leaves(release.values)
        if path and dotted(path) not in read
    ]


def values_at(values: Any, key: str) -> Iterator[Any]:
    """Every value set under `key`, at any depth of the release's values."""
    if isinstance(values, dict):
        for name, item in values.items():
            if name == key:
                yield item
            yield from values_at(item, key)
    elif isinstance(values, list):
        for item in values:
            yield from values_at(item, key)


def pods(facts: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The chart's workloads, and the pods its operator runs from its custom resources."""
    return [*facts["workloads"], *facts.get("operated", [])]


def long_running(workloads: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [w for w in workloads if w["kind"] in LONG_RUNNING and "hook" not in w]


def placement(
    release: ChartRelease, workloads: Sequence[Mapping[str, Any]] | None = None
) -> list[str]:
    """Where the program places a release (a node selector, a priority class anywhere in its
    values), every long-running pod of it goes: a chart that reads the placement for one of
    its Deployments only leaves the others wherever the scheduler puts them."""
    assert release.facts is not None
    workloads = workloads if workloads is not None else pods(release.facts)
    selectors = [s for s in values_at(release.values, "nodeSelector") if s]
    priority = {p for p in values_at(release.values, "priorityClassName") if p}
    found = []
    for workload in long_running(workloads):
        name = f"{workload['kind']}/{workload['name']}"
        if (
            selectors
            and workload["kind"] != "DaemonSet"
            and not any(s.items() <= workload["nodeSelector"].items() for s in selectors)
        ):
            found.append(release.finding("placement", f"{name} has no node selector of ours"))
        if priority and workload["priorityClassName"] not in priority:
            found.append(
                release.finding(
                    "placement", f"{name} has priority class {workload['priorityClassName']}"
                )
            )
    return found


def containers(workload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [*workload["initContainers"], *workload["containers"]]


def running(workload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The containers that run for the pod's life: its containers and native sidecars (init
    containers with `restartPolicy: Always`). A pod's request is the larger of its largest
    init container's and the sum of these (Kubernetes, "Resource sharing within containers"),
    so an init container that ends adds nothing to what the pod holds."""
    return [
        *(c for c in workload["initContainers"] if c.get("restartPolicy") == "Always"),
        *workload["containers"],
    ]


def requests(
    release: ChartRelease, workloads: Sequence[Mapping[str, Any]] | None = None
) -> list[str]:
    """Every container that runs for a long-running pod's life requests CPU and memory: what
    requests nothing is invisible to the scheduler's fit and to the capacity model."""
    assert release.facts is not None
    workloads = workloads if workloads is not None else pods(release.facts)
    found = []
    for workload in long_running(workloads):
        for container in running(workload):
            asked = (container["resources"] or {}).get("requests") or {}
            missing = [r for r in ("cpu", "memory") if not asked.get(r)]
            if missing:
                found.append(
                    release.finding(
                        "requests",
                        f"{workload['kind']}/{workload['name']}/{container['name']} requests "
                        f"no {' or '.join(missing)}",
                    )
                )
    return found


def cpu_limits(release: ChartRelease) -> list[str]:
    """No container gets a CPU limit the program did not ask for (the add-ons' limits are
    memory-only: a throttled controller or proxy falls behind), injected proxies included; no
    resource quantity renders as null."""
    assert release.facts is not None
    asked = any(
        isinstance(limits, dict) and limits.get("cpu") is not None
        for limits in values_at(release.values, "limits")
    )
    found = []
    subjects = [
        (f"{w['kind']}/{w['name']}/{c['name']}", c["resources"])
        for w in pods(release.facts)
        for c in containers(w)
    ]
    if "injected_proxy" in release.facts:
        subjects.append(("injected istio-proxy", release.facts["injected_proxy"]["resources"]))
    for name, resources in subjects:
        for kind in ("limits", "requests"):
            for resource, quantity in (resources.get(kind) or {}).items():
                if quantity is None:
                    found.append(release.finding("cpu limit", f"{name} {kind}.{resource}: null"))
        cpu = (resources.get("limits") or {}).get("cpu")
        if cpu is not None and not asked:
            found.append(release.finding("cpu limit", f"{name} is limited to {cpu} CPU"))
    return found


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def fail_closed_webhooks(release: ChartRelease) -> list[str]:
    """Where the program runs a release's controllers with spares (a replica count above one
    anywhere in its values), the pods behind a webhook that refuses requests when unreachable
    (`failurePolicy: Fail`) have a spare and a disruption budget too."""
    assert release.facts is not None
    counts = [
        n
        for key in ("replicaCount", "replicas")
        for n in values_at(release.values, key)
        if isinstance(n, int)
    ]
    if not counts or max(counts) < 2:
        return []
    facts = release.facts
    found = []
    for hook in facts["webhooks"]:
        if hook["failurePolicy"] != "Fail" or hook["service"] not in facts["services"]:
            continue
        selector = facts["services"][hook["service"]]
        for workload in long_running(facts["workloads"]):
            if not selects(selector, workload["labels"]):
                continue
            name = f"{workload['kind']}/{workload['name']}"
            if (workload["replicas"] or 0) < 2:
                found.append(
                    release.finding(
                        "fail-closed webhook",
                        f"{name} serves {hook['name']} with {workload['replicas']} replica",
                    )
                )
            if not any(
                selects(b["selector"], workload["labels"]) for b in facts["disruption_budgets"]
            ):
                found.append(
                    release.finding("fail-closed webhook", f"{name} has no disruption budget")
                )
    return sorted(set(found))


def namespace_levels(run: StackRun) -> dict[str, str]:
    return {
        o["metadata"]["name"]: o["metadata"]
        .get("labels", {})
        .get("pod-security.kubernetes.io/enforce", "privileged")
        for o in kubernetes_objects(run)
        if o["kind"] == "Namespace"
    }


def admission_pod(workload: Mapping[str, Any]) -> dict[str, Any]:
    """The pod spec admission sees, from a workload's facts (as tools/chart_facts.py does)."""
    return {
        **workload["pod"],
        "volumes": [
            {"name": v["name"], **{source: {} for source in v["sources"]}}
            for v in workload["volumes"]
        ],
        "initContainers": workload["initContainers"],
        "containers": workload["containers"],
    }


def pod_security(release: ChartRelease, levels: Mapping[str, str]) -> list[str]:
    """Pod Security admission at each pod's namespace level (the program's Namespace labels;
    a namespace the program does not make is `privileged` to this check) admits the pod."""
    assert release.facts is not None
    found = []
    for workload in release.facts["workloads"]:
        level: Level = levels.get(workload["namespace"], "privileged")  # type: ignore[assignment]
        for problem in violations(admission_pod(workload), level, workload["podAnnotations"]):
            found.append(
                release.finding(
                    "pod security",
                    f"{workload['kind']}/{workload['name']} in {workload['namespace']} "
                    f"({level}): {problem}",
                )
            )
    return found


def daemonset_requests(
    chart_releases: Sequence[ChartRelease],
) -> dict[str, tuple[int, int, dict[str, str]]]:
    """Chart DaemonSet name -> (millicores, MiB) one pod requests, and its node selector: the
    node agents a capacity model counts per node."""
    found = {}
    for release in chart_releases:
        assert release.facts is not None
        for workload in release.facts["workloads"]:
            if workload["kind"] != "DaemonSet":
                continue
            cpu = memory = 0
            for container in workload["containers"]:
                asked = (container["resources"] or {}).get("requests") or {}
                cpu += cpu_millicores(str(asked.get("cpu", "0")))
                memory += memory_mib(str(asked.get("memory", "0Mi")))
            found[workload["name"]] = (cpu, memory, workload["nodeSelector"])
    return found


def expected_failures() -> set[str]:
    listed = yaml.safe_load(EXPECTED_FAILURES.read_text()) or []
    return {str(item) for item in listed}
