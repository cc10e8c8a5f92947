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
import re
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.shared.helm import release_values
from offline.engine import PROJECT_DIR, StackRun
from offline.pod_security import Level, violations
from offline.synth import kubernetes_objects
from stacks.catalog import cpu_millicores, memory_mib
from tests.lookup import HELM_RELEASE
from tools.chart_facts import FACTS_FORMAT, leaves, value_files, values_digest
from tools.chart_schemas import dotted

FACTS_DIR = Path(__file__).resolve().parent / "chart_facts"
EXPECTED_FAILURES = FACTS_DIR / "expected_failures.yaml"
REFRESH = ".venv/bin/python -m tools.chart_facts --helm <helm 4.x> --chart {chart}"
REFRESH_ALL = ".venv/bin/python -m tools.chart_facts --helm <helm 4.x>"
AMTOOL = PROJECT_DIR / ".tools" / "prometheus" / "usr" / "bin" / "amtool"
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
    # What the provider hands Helm: the Release's value files, its values over them.
    values: dict[str, Any]
    # None when tests/chart_facts has no file for this chart version, or none for this stack.
    facts: dict[str, Any] | None
    # The facts file's layout (FACTS_FORMAT when current) and its validators' data.
    layout: int | None = None
    validators: dict[str, Any] = field(default_factory=dict)

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
        chart_facts = load_chart_facts(inputs["chart"], inputs["version"]) or {}
        found.append(
            ChartRelease(
                stack=run.stack,
                name=resource.name,
                chart=inputs["chart"],
                version=inputs["version"],
                namespace=inputs["namespace"],
                values=release_values(
                    inputs.get("values") or {}, value_files(inputs, f"{run.stack}/{resource.name}")
                ),
                facts=chart_facts.get("stacks", {}).get(run.stack),
                layout=chart_facts.get("format"),
                validators=chart_facts.get("validators") or {},
            )
        )
    return sorted(found, key=lambda r: r.name)


def stale(release: ChartRelease) -> str | None:
    """One line saying how to refresh the facts, when they do not describe this release."""
    if release.facts is None:
        reason = (
            f"none for {release.chart} {release.version}"
            if load_chart_facts(release.chart, release.version) is None
            else f"none for the {release.stack} stack"
        )
    elif release.layout != FACTS_FORMAT:
        reason = f"in an older layout ({release.layout}, now {FACTS_FORMAT})"
    elif release.facts["values_sha256"] != values_digest(release.values):
        reason = "rendered from other values"
    else:
        return None
    return (
        f"{release.where}: chart facts {reason} ({facts_path(release.chart, release.version).name}"
        f"): refresh with `{REFRESH.format(chart=release.chart)}` (every chart: "
        f"`{REFRESH_ALL}`) and review the diff"
    )


def unread_values(release: ChartRelease, facts: Mapping[str, Any] | None = None) -> list[str]:
    """Value paths the program sets that the chart does not use: neither read (a field the
    cluster knows changes with it), nor read by istiod's injector, nor passed through into a
    configuration file. A value that lands only in fields the cluster drops says so."""
    facts = facts if facts is not None else release.facts
    assert facts is not None
    used = set(facts["read"]) | set(facts["read_by_injector"]) | set(facts["passthrough"])
    ignored = set(facts["unknown_field"])
    found = []
    for path, _ in leaves(release.values):
        name = dotted(path)
        if not path or name in used:
            continue
        detail = " (only in fields the cluster drops or refuses)" if name in ignored else ""
        found.append(release.finding("unread value", name + detail))
    return found


@dataclass(frozen=True)
class PassThroughRoot:
    """A values subtree a chart's values.yaml documents as copied into a configuration file."""

    # Where the chart documents it (file:line at the pinned version) and what it says.
    documented: str
    # How the copied document is checked ("" where nothing here can: said why).
    validator: str
    why_unvalidated: str = ""


# The validators pass_through_content runs, by name.
VALIDATORS = ("istio-mesh-config", "amtool", "priority-expander")
# Per chart, the value roots a value may pass through (tools/chart_facts.py: only ConfigMap or
# Secret data changes with it). Anything else passed through is a finding.
PASS_THROUGH_ROOTS: dict[str, dict[str, PassThroughRoot]] = {
    "istiod": {
        "meshConfig": PassThroughRoot(
            "istio/istio 1.30.3 manifests/charts/istio-control/istio-discovery/values.yaml:220-222"
            ' "meshConfig defines runtime configuration of components, including Istiod and'
            ' istio-agent behavior"',
            "istio-mesh-config",
        )
    },
    # The CNI agent's settings: the chart writes each into the istio-cni-config ConfigMap
    # (templates/configmap-cni.yaml) that its DaemonSet hands the agent whole as environment
    # (templates/daemonset.yaml, envFrom), so they change only ConfigMap data.
    "cni": {
        root: PassThroughRoot(
            f"istio/istio 1.30.3 manifests/charts/istio-cni/values.yaml:{lines} ({variable} in"
            " templates/configmap-cni.yaml, the install-cni container's envFrom)",
            "",
            f"an environment variable whose name the chart writes, not a file of ours: the agent"
            f" reads {variable} (istio 1.30.3 cni/pkg/cmd/root.go, viper.AutomaticEnv with '-'"
            " as '_'), and a misspelt value key would change no data at all (judged unread)",
        )
        for root, lines, variable in (
            ("chained", "46-48", "CHAINED_CNI_PLUGIN"),
            ("excludeNamespaces", "31-32", "EXCLUDE_NAMESPACES"),
        )
    },
    "cluster-autoscaler": {
        "expanderPriorities": PassThroughRoot(
            "kubernetes/autoscaler cluster-autoscaler-chart-9.59.0"
            " charts/cluster-autoscaler/values.yaml:202-206 (the priority expander's"
            " priorities; templates/priority-expander-configmap.yaml writes them into the"
            " cluster-autoscaler-priority-expander ConfigMap, key priorities)",
            "priority-expander",
        )
    },
    "fluent-bit": {
        "config": PassThroughRoot(
            "fluent/helm-charts fluent-bit-0.58.1 charts/fluent-bit/values.yaml:384-425"
            ' "## https://docs.fluentbit.io/manual/administration/configuring-fluent-bit/'
            'classic-mode/configuration-file" over config.service, inputs, filters and outputs'
            " (templates/configmap.yaml writes them into fluent-bit.conf)",
            "",
            "no fluent-bit binary here to load the file; Fluent Bit refuses an unknown property "
            "of a plugin at start (fluent/fluent-bit v5.1.1, the chart's appVersion, "
            'src/flb_config_map.c flb_config_map_properties_check: "unknown configuration '
            'property", -1), so a misspelling is refused loudly, never ignored',
        ),
        # The log shipper's Lua filter (components/addons/log_shipper.py).
        "luaScripts": PassThroughRoot(
            "fluent/helm-charts fluent-bit-0.58.1 charts/fluent-bit/values.yaml:381-382"
            ' "See Lua script configuration example in README.md"'
            " (templates/configmap-luascripts.yaml writes each script into a file)",
            "",
            "a Lua script is code, not configuration: the script's own tests judge it",
        ),
    },
    "jaeger": {
        "userconfig": PassThroughRoot(
            "jaegertracing/helm-charts jaeger-4.11.1 charts/jaeger/values.yaml:67-69"
            ' "User provided config to override the config completely" (written into'
            " user-config.yaml, the file Jaeger runs with)",
            "",
            "no Jaeger binary here to load the file; Jaeger 2.19.0 (the chart's appVersion) "
            "loads it as an OpenTelemetry Collector configuration, which refuses unknown keys "
            'at start (go.opentelemetry.io/collector/confmap: "has invalid keys"), so a '
            "misspelling is refused loudly, never ignored",
        )
    },
    "prometheus-adapter": {
        "rules": PassThroughRoot(
            "prometheus-community/helm-charts prometheus-adapter-5.3.0"
            " charts/prometheus-adapter/values.yaml:135-146 (rules.default and rules.custom,"
            " with an example rule; templates/configmap.yaml writes them into config.yaml)",
            "",
            "the adapter loads config.yaml with yaml.UnmarshalStrict (kubernetes-sigs/"
            "prometheus-adapter pkg/config/loader.go, FromYAML): an unknown key stops it at "
            "start, so a misspelling is refused loudly, never ignored",
        )
    },
    "kube-prometheus-stack": {
        "alertmanager.config": PassThroughRoot(
            "prometheus-community/helm-charts kube-prometheus-stack-88.5.3"
            " charts/kube-prometheus-stack/values.yaml:549-553"
            ' "Alertmanager configuration directives"',
            "amtool",
        ),
        "grafana.grafana.ini": PassThroughRoot(
            "grafana-community/helm-charts grafana-12.11.1 charts/grafana/values.yaml:955-959"
            ' "Grafana\'s primary configuration ... values in map will be converted to ini format"',
            "",
            "Grafana reads any key of grafana.ini and ignores those it does not know; no "
            "validator of its settings is at hand at the pinned Grafana (13.2.0)",
        ),
        "grafana.additionalDataSources": PassThroughRoot(
            "prometheus-community/helm-charts kube-prometheus-stack-88.5.3"
            " charts/kube-prometheus-stack/values.yaml:1623-1625"
            ' "Configure additional grafana datasources (passed through tpl)" (written into'
            " the datasources provisioning file)",
            "",
            "Grafana's datasource provisioning ignores keys it does not know and no validator "
            "of it is at hand (the Jaeger data source's type and url are pinned by "
            "tests/addons/test_jaeger.py)",
        ),
    },
}


def under_root(name: str, root: str) -> bool:
    return name == root or name.startswith((f"{root}.", f"{root}["))


def pass_through_findings(
    release: ChartRelease, facts: Mapping[str, Any] | None = None
) -> list[str]:
    """Values passed through into a configuration file under no root the chart documents."""
    facts = facts if facts is not None else release.facts
    assert facts is not None
    roots = PASS_THROUGH_ROOTS.get(release.chart, {})
    return [
        release.finding("undocumented pass-through", f"{name} -> {', '.join(spots)}")
        for name, spots in facts["passthrough"].items()
        if not any(under_root(name, root) for root in roots)
    ]


def proto_problems(
    document: Any, schema: Mapping[str, Any], message: str | None = None, where: str = ""
) -> list[str]:
    """Keys of a protobuf message's JSON/YAML form that the message does not have, and enum
    values it does not know (tools/proto_schema.py gives the messages)."""
    message = message or schema["root"]
    if not isinstance(document, dict):
        return [f"{where or '<document>'}: not a mapping"]
    fields = schema["messages"][message]
    by_name = {**{f["name"]: f for f in fields.values()}, **fields}
    found = []
    for key, value in document.items():
        path = f"{where}.{key}" if where else str(key)
        spec = by_name.get(key)
        if spec is None:
            found.append(f"{path}: unknown field")
            continue
        if spec["map"]:
            items = list((value or {}).items()) if isinstance(value, dict) else [("", value)]
            entries = [(f"{path}.{k}" if k else path, v) for k, v in items]
        elif spec["repeated"] and isinstance(value, list):
            entries = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
        else:
            entries = [(path, value)]
        for entry_path, entry in entries:
            if spec["type"] in schema["messages"] and entry is not None:
                found += proto_problems(entry, schema, spec["type"], entry_path)
            elif (
                spec["type"] in schema["enums"]
                and isinstance(entry, str)
                and entry not in schema["enums"][spec["type"]]
            ):
                found.append(f"{entry_path}: {entry!r} is not a {spec['type']}")
    return found


def amtool_problems(text: str) -> list[str]:
    """What `amtool check-config` refuses in an Alertmanager configuration."""
    assert AMTOOL.exists(), f"{AMTOOL} missing: run `make checkers`"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as handle:
        handle.write(text)
        handle.flush()
        result = subprocess.run(
            [str(AMTOOL), "check-config", handle.name], capture_output=True, text=True
        )
    if result.returncode == 0:
        return []
    lines = (result.stdout + result.stderr).splitlines()
    return [" / ".join(line.strip() for line in lines if line.strip())]


# The heartbeat's webhook reads its URL from a file (`url_file`, Alertmanager 0.26 and later;
# kube-prometheus-stack 88.5.3 runs v0.34.0). The amtool here is Debian 12's 0.25, which predates
# the field: it checks the configuration with that URL inline (as tests/addons/test_monitoring.py
# does); everything else is checked as rendered.
AMTOOL_0_25_URL = "https://heartbeat.invalid/ping"


def for_amtool_0_25(text: str) -> str:
    config = yaml.safe_load(text)
    for receiver in config.get("receivers") or []:
        for webhook in receiver.get("webhook_configs") or []:
            if "url_file" in webhook:
                del webhook["url_file"]
                webhook["url"] = AMTOOL_0_25_URL
    return yaml.safe_dump(config)


def priority_problems(text: str) -> list[str]:
    """What the cluster autoscaler refuses in its priority expander's configuration: it reads
    a map of integer priorities to lists of node-group name regular expressions, and drops the
    whole configuration when a key is not an integer or a pattern does not compile
    (kubernetes/autoscaler cluster-autoscaler-1.35.2 expander/priority/priority.go,
    parsePrioritiesYAMLString: `map[int][]string`, regexp.Compile)."""
    config = yaml.safe_load(text)
    if not isinstance(config, dict) or not config:
        return ["not a mapping of priorities"]
    problems = []
    for priority, patterns in config.items():
        if not isinstance(priority, int) or isinstance(priority, bool):
            problems.append(f"priority {priority!r} is not an integer")
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            problems.append(f"priority {priority!r}: not a list of patterns")
            continue
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as error:
                problems.append(f"priority {priority!r}: pattern {pattern!r}: {error}")
    return problems


def pass_through_content(
    release: ChartRelease, facts: Mapping[str, Any] | None = None
) -> list[str]:
    """Each document a documented root's values pass into, checked by that root's validator."""
    facts = facts if facts is not None else release.facts
    assert facts is not None
    documents = facts.get("passthrough_documents") or facts.get("documents") or {}
    found = []
    for root, spec in PASS_THROUGH_ROOTS.get(release.chart, {}).items():
        spots = {
            spot
            for name, landed in facts["passthrough"].items()
            if under_root(name, root)
            for spot in landed
        }
        for spot in sorted(spots):
            where, _, rest = spot.partition(" ")
            key = rest.partition("[")[2].removesuffix("]")
            text = documents.get(where, {}).get(key)
            if text is None:
                found.append(release.finding("pass-through", f"{spot}: not rendered"))
                continue
            if spec.validator == "istio-mesh-config":
                problems = proto_problems(yaml.safe_load(text), release.validators["meshConfig"])
            elif spec.validator == "amtool":
                problems = amtool_problems(for_amtool_0_25(text))
            elif spec.validator == "priority-expander":
                problems = priority_problems(text)
            else:
                problems = []
            found += [release.finding("pass-through", f"{spot}: {p}") for p in problems]
    return found


def schema_findings(release: ChartRelease, facts: Mapping[str, Any] | None = None) -> list[str]:
    """Fields of the chart's objects the cluster would drop or refuse, and kinds without a
    schema to tell (tools/chart_schemas.py)."""
    facts = facts if facts is not None else release.facts
    assert facts is not None
    return [release.finding("schema", p) for p in facts["schema"]["problems"]] + [
        release.finding("schema", f"no schema for {kind}")
        for kind in facts["schema"]["unvalidated"]
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


def unserved(
    custom_resources: set[tuple[str, str, str]], served: Mapping[str, set[str]]
) -> list[str]:
    """(group, version, kind) of each custom resource the program creates that no CRD of the
    stack's charts serves (`served`: group/Kind -> served versions)."""
    return [
        f"{group}/{version} {kind}"
        for group, version, kind in sorted(custom_resources)
        if version not in served.get(f"{group}/{kind}", set())
    ]
