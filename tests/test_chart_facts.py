"""Every Helm value the program sets is one the pinned chart reads (a field the cluster keeps
changes with it, istiod's injection templates name it, or it passes into a configuration file
under a root the chart documents, checked where a validator is at hand), and what the charts
really create with those values holds to the program's rules.

The facts (tests/chart_facts/<chart>-<version>.json) are derived by tools/chart_facts.py from
each chart's source at its pinned version with a real `helm template` (the source repository
and commit are in each file); these tests read only them and the program's render. Findings
that other branches fix are listed in tests/chart_facts/expected_failures.yaml.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

import pytest

from offline.engine import StackRun
from offline.pod_security import violations
from stacks.capacity import node_agents
from stacks.environments import ENVIRONMENTS
from tests.chart_checks import (
    FACTS_DIR,
    PASS_THROUGH_ROOTS,
    VALIDATORS,
    ChartRelease,
    admission_pod,
    amtool_problems,
    cpu_limits,
    daemonset_requests,
    expected_failures,
    fail_closed_webhooks,
    for_amtool_0_25,
    namespace_levels,
    pass_through_content,
    pass_through_findings,
    placement,
    pod_security,
    priority_problems,
    proto_problems,
    releases,
    requests,
    schema_findings,
    stale,
    unread_values,
    unserved,
)
from tests.conftest import settings_of
from tools.chart_facts import FACTS_FORMAT, leaves
from tools.chart_schemas import dotted

ALL_STACKS = tuple(ENVIRONMENTS)


def current(run: StackRun) -> list[ChartRelease]:
    """The stack's releases, each with facts that describe it; while any has none, every test
    that reads facts fails with the one line that says how to refresh them."""
    found = releases(run)
    problems = [line for r in found if (line := stale(r)) is not None]
    if problems:
        pytest.fail(problems[0], pytrace=False)
    return found


def fresh(run: StackRun, name: str) -> ChartRelease:
    """One release with facts that describe it (a negative control needs only its own)."""
    [release] = [r for r in releases(run) if r.name == name]
    line = stale(release)
    if line is not None:
        pytest.fail(line, pytrace=False)
    return release


def assert_only_expected(found: list[str], check: str, stack: str) -> None:
    """`found` holds exactly the listed findings of this check and stack: none unlisted, and
    none listed that no longer occurs (then the fix has landed: remove it from the list)."""
    listed = {f for f in expected_failures() if f.startswith(f"{stack}/") and f": {check}: " in f}
    assert sorted(set(found) - listed) == []
    fixed = sorted(listed - set(found))
    assert fixed == [], "fixed: remove these from tests/chart_facts/expected_failures.yaml"


@pytest.fixture(params=ALL_STACKS)
def any_stack(request: pytest.FixtureRequest, runs: dict[str, StackRun]) -> StackRun:
    return runs[request.param]


def test_every_release_of_every_stack_has_current_facts(any_stack: StackRun) -> None:
    assert current(any_stack), "every stack installs charts"


def test_a_chart_version_bump_without_facts_fails_in_one_line(production: StackRun) -> None:
    [release] = [r for r in releases(production) if r.name == "jaeger"]
    bumped = ChartRelease(**{**release.__dict__, "version": "4.99.0", "facts": None})
    line = stale(bumped)
    assert line is not None and "\n" not in line
    assert "none for jaeger 4.99.0" in line
    assert "python -m tools.chart_facts --helm <helm 4.x> --chart jaeger" in line
    facts = {"values_sha256": "", "read": []}
    changed = ChartRelease(**{**release.__dict__, "facts": facts, "layout": FACTS_FORMAT})
    assert "rendered from other values" in (stale(changed) or "")
    older = ChartRelease(**{**release.__dict__, "facts": facts, "layout": 1})
    assert "older layout" in (stale(older) or "")


def unused_facts(kept: set[str], releases_of_stacks: list[ChartRelease]) -> list[str]:
    """Facts files no release of any stack reads (a chart version the stacks moved off)."""
    used = {f"{r.chart}-{r.version}.json" for r in releases_of_stacks}
    return sorted(kept - used)


def test_no_facts_are_kept_for_a_chart_version_no_stack_installs(
    runs: dict[str, StackRun],
) -> None:
    kept = {path.name for path in FACTS_DIR.glob("*.json")}
    installed = [r for stack in ALL_STACKS for r in releases(runs[stack])]
    assert unused_facts(kept, installed) == []
    # Negative control: a file for a version no stack installs is named.
    assert unused_facts(kept | {"jaeger-4.0.0.json"}, installed) == ["jaeger-4.0.0.json"]


def test_every_value_the_program_sets_is_read_by_its_chart(any_stack: StackRun) -> None:
    found = [f for r in current(any_stack) for f in unread_values(r)]
    assert_only_expected(found, "unread value", any_stack.stack)


def test_every_pass_through_lands_under_a_root_its_chart_documents(any_stack: StackRun) -> None:
    assert [f for r in current(any_stack) for f in pass_through_findings(r)] == []


def test_every_passed_through_document_passes_its_validator(any_stack: StackRun) -> None:
    assert [f for r in current(any_stack) for f in pass_through_content(r)] == []


def test_the_cluster_keeps_every_field_of_every_chart_object(any_stack: StackRun) -> None:
    """No rendered object carries a field the cluster would drop or refuse (a misspelt key a
    chart copies with toYaml), and every kind has a schema to tell."""
    assert [f for r in current(any_stack) for f in schema_findings(r)] == []


# --- The checks themselves, on made-up facts (no committed facts needed) -----------------------
def made_up(values: dict[str, Any], chart: str = "gateway", **facts: Any) -> ChartRelease:
    found = {
        "read": [],
        "read_by_injector": [],
        "passthrough": {},
        "unknown_field": [],
        "unread": [],
        "passthrough_documents": {},
        "schema": {"problems": [], "unvalidated": []},
        **facts,
    }
    return ChartRelease(
        stack="production",
        name=chart,
        chart=chart,
        version="0",
        namespace="x",
        values=values,
        facts=found,
        layout=FACTS_FORMAT,
    )


def test_the_value_check_names_what_no_verdict_uses() -> None:
    """Every leaf is judged, list items by index: those neither read, nor read by the
    injector, nor passed through are findings; one that only reached dropped fields says so."""
    values = {
        "service": {"ports": [{"name": "https", "port": 443}]},
        "podDisruptionBudget": {"maxUnavailabel": 1},
        "meshConfig": {"accessLogFile": ""},
        "global": {"proxy": {"resources": {"limits": {"cpu": None}}}},
    }
    release = made_up(
        values,
        read=["service.ports[0].port"],
        read_by_injector=["global.proxy.resources.limits.cpu"],
        passthrough={"meshConfig.accessLogFile": ["ConfigMap/istio-system/istio data[mesh]"]},
        unknown_field=["podDisruptionBudget.maxUnavailabel"],
    )
    assert unread_values(release) == [
        "production/gateway: unread value: service.ports[0].name",
        "production/gateway: unread value: podDisruptionBudget.maxUnavailabel (only in fields "
        "the cluster drops or refuses)",
    ]


def test_a_pass_through_outside_the_charts_documented_roots_is_caught() -> None:
    spot = "ConfigMap/istio-system/istio data[mesh]"
    release = made_up(
        {},
        chart="istiod",
        passthrough={"meshConfig.accessLogFile": [spot], "meshNetworks.x": [spot]},
    )
    assert pass_through_findings(release) == [
        f"production/istiod: undocumented pass-through: meshNetworks.x -> {spot}"
    ]
    other_chart = made_up({}, chart="gateway", passthrough={"meshConfig.accessLogFile": [spot]})
    assert len(pass_through_findings(other_chart)) == 1


def test_every_documented_root_cites_its_chart_and_says_how_it_is_checked() -> None:
    for chart, roots in PASS_THROUGH_ROOTS.items():
        for root, spec in roots.items():
            assert "values.yaml:" in spec.documented, (chart, root)
            assert spec.validator in VALIDATORS or spec.why_unvalidated, (chart, root)


TINY_PROTO = {
    "root": "m.Mesh",
    "messages": {
        "m.Mesh": {
            "outboundTrafficPolicy": {
                "name": "outbound_traffic_policy",
                "type": "m.Policy",
                "repeated": False,
                "map": False,
            },
            "providers": {
                "name": "providers",
                "type": "m.Provider",
                "repeated": True,
                "map": False,
            },
        },
        "m.Policy": {"mode": {"name": "mode", "type": "m.Mode", "repeated": False, "map": False}},
        "m.Provider": {"name": {"name": "name", "type": "string", "repeated": False, "map": False}},
    },
    "enums": {"m.Mode": ["REGISTRY_ONLY", "ALLOW_ANY"]},
}


def test_the_proto_check_names_unknown_keys_and_enum_values() -> None:
    assert proto_problems({"outboundTrafficPolicy": {"mode": "ALLOW_ANY"}}, TINY_PROTO) == []
    # jsonpb takes the proto name too.
    assert proto_problems({"outbound_traffic_policy": {"mode": "ALLOW_ANY"}}, TINY_PROTO) == []
    assert proto_problems(
        {
            "outboundTrafficPolicy": {"mod": "ALLOW_ANY", "mode": "ALLOW_ALL"},
            "providers": [{"name": "a"}, {"nmae": "b"}],
        },
        TINY_PROTO,
    ) == [
        "outboundTrafficPolicy.mod: unknown field",
        "outboundTrafficPolicy.mode: 'ALLOW_ALL' is not a m.Mode",
        "providers[1].nmae: unknown field",
    ]


def test_amtool_refuses_a_misspelt_route_key() -> None:
    good = 'route:\n  receiver: "null"\n  group_interval: 5m\nreceivers:\n- name: "null"\n'
    assert amtool_problems(good) == []
    [problem] = amtool_problems(good.replace("group_interval", "group_intervall"))
    assert "field group_intervall not found" in problem


def test_the_schema_check_reports_dropped_fields_and_kinds_without_a_schema() -> None:
    problem = "Deployment/x/y: spec.template.spec.securityContext.runAsNonRot: unknown field"
    release = made_up({}, schema={"problems": [problem], "unvalidated": ["example.com/v1/Thing"]})
    assert schema_findings(release) == [
        f"production/gateway: schema: {problem}",
        "production/gateway: schema: no schema for example.com/v1/Thing",
    ]


def test_the_crd_check_catches_a_version_no_chart_serves() -> None:
    """external-secrets 0.19.2's CRDs serve only v1 (its deploy/crds/bundle.yaml keeps
    v1beta1 with `served: false`): a v1beta1 ExternalSecret is unserved."""
    served = {"external-secrets.io/ExternalSecret": {"v1"}}
    assert unserved({("external-secrets.io", "v1", "ExternalSecret")}, served) == []
    assert unserved({("external-secrets.io", "v1beta1", "ExternalSecret")}, served) == [
        "external-secrets.io/v1beta1 ExternalSecret"
    ]


# --- Negative controls: deliberate mistakes the tool rendered (the facts' probes) ---------------
def probe(release: ChartRelease, name: str) -> tuple[ChartRelease, dict[str, Any]]:
    """The release as the facts' probe renders it (a deliberate mistake, for a negative
    control): the probe's values, and facts in which the probe's values are judged as the tool
    judged them in the probe's render."""
    assert release.facts is not None
    found = release.facts["probes"][name]
    values = copy.deepcopy(release.values)
    for path in found["removed"]:
        node: Any = values
        for key in path[:-1]:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(path[-1], None)
    for path, value in found["set"]:
        node = values
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    verdicts = found["verdicts"]
    # The probe's render of each document it changed, the base render's of the others.
    documents = copy.deepcopy(release.facts["passthrough_documents"])
    for where, keys in found["documents"].items():
        documents.setdefault(where, {}).update(keys)
    facts = {
        **release.facts,
        "read": [*release.facts["read"], *(n for n, v in verdicts.items() if v == "read")],
        "unknown_field": [
            *release.facts["unknown_field"],
            *(n for n, v in verdicts.items() if v == "unknown_field"),
        ],
        "passthrough": {**release.facts["passthrough"], **found["passthrough"]},
        "passthrough_documents": documents,
        "schema": found["schema"],
    }
    return ChartRelease(**{**release.__dict__, "values": values, "facts": facts}), found


@pytest.mark.parametrize("stack", ["production", "staging"])
def test_istiods_top_level_priority_class_is_caught(runs: dict[str, StackRun], stack: str) -> None:
    """Negative control: the istiod chart reads `global.priorityClassName`
    (istio-discovery templates/deployment.yaml at 1.30.3); a top-level key is unread, and
    istiod runs without a priority class."""
    istiod = fresh(runs[stack], "istiod")
    probed, found = probe(istiod, "top-level priorityClassName")
    assert found["verdicts"] == {"priorityClassName": "unread"}
    assert f"{stack}/istiod: unread value: priorityClassName" in unread_values(probed)
    assert placement(probed, found["workloads"]) == [
        f"{stack}/istiod: placement: Deployment/istiod has priority class None"
    ]


# Misspelt keys that reach istiod's injector values (it dumps all of `global` and `cni`), which
# no injection template names (istio-discovery files/injection-template.yaml at 1.30.3 reads
# `.Values.global.proxy.resources` and `.Values.global.proxy.seccompProfile` whole, and
# `.Values.pilot.cni.enabled`).
INJECTOR_TYPOS = {
    "global.proxy.resorces": "global.proxy.resorces.limits.memory",
    "global.proxyy.seccompProfile": "global.proxyy.seccompProfile.type",
    "cni.bogus": "cni.bogus",
}


@pytest.mark.parametrize("name", sorted(INJECTOR_TYPOS))
def test_a_misspelt_injector_value_is_unread(production: StackRun, name: str) -> None:
    probed, found = probe(fresh(production, "istiod"), name)
    path = INJECTOR_TYPOS[name]
    assert found["verdicts"] == {path: "unread"}
    assert f"production/istiod: unread value: {path}" in unread_values(probed)


def test_a_misspelt_mesh_config_key_is_caught(production: StackRun) -> None:
    """meshConfig is documented as copied into the mesh configuration; istiod reads that file
    ignoring unknown keys (istio 1.30.3 pkg/util/protomarshal/protomarshal.go ApplyJSON), so the
    check validates it against MeshConfig (istio/api at istio's pinned commit)."""
    istiod = fresh(production, "istiod")
    assert pass_through_content(istiod) == []
    probed, found = probe(istiod, "meshConfig.outboundTrafficPolicy.mod")
    assert found["verdicts"] == {"meshConfig.outboundTrafficPolicy.mod": "passthrough"}
    assert pass_through_findings(probed) == []
    assert pass_through_content(probed) == [
        "production/istiod: pass-through: ConfigMap/istio-system/istio data[mesh]: "
        "outboundTrafficPolicy.mod: unknown field"
    ]


# Misspelt keys the gateway chart copies with toYaml into its PodDisruptionBudget and
# Deployment (gateway 1.30.3 templates/poddisruptionbudget.yaml, templates/deployment.yaml).
GATEWAY_TYPOS = {
    "podDisruptionBudget.maxUnavailabel": (
        "PodDisruptionBudget/istio-ingress/istio-ingressgateway: spec.maxUnavailabel: unknown field"
    ),
    "securityContext.runAsNonRot": (
        "Deployment/istio-ingress/istio-ingressgateway: "
        "spec.template.spec.securityContext.runAsNonRot: unknown field"
    ),
    "resources.limits.memroy": (
        "Deployment/istio-ingress/istio-ingressgateway: "
        "spec.template.spec.containers[0].resources.limits.memroy: invalid resource name"
    ),
}


@pytest.mark.parametrize("name", sorted(GATEWAY_TYPOS))
def test_a_misspelt_key_copied_into_an_object_is_caught(production: StackRun, name: str) -> None:
    gateway = fresh(production, "istio-ingressgateway")
    assert schema_findings(gateway) == []
    probed, found = probe(gateway, name)
    assert found["verdicts"] == {name: "unknown_field"}
    assert (
        f"production/istio-ingressgateway: unread value: {name} (only in fields the cluster "
        "drops or refuses)"
    ) in unread_values(probed)
    assert schema_findings(probed) == [
        f"production/istio-ingressgateway: schema: {GATEWAY_TYPOS[name]}"
    ]


def test_a_misspelt_resource_is_caught_in_external_secrets(production: StackRun) -> None:
    probed, found = probe(fresh(production, "external-secrets"), "resources.limits.memroy")
    assert found["verdicts"] == {"resources.limits.memroy": "unknown_field"}
    assert any("limits.memroy: invalid resource name" in f for f in schema_findings(probed))


def test_a_misspelt_alertmanager_route_key_is_caught(production: StackRun) -> None:
    """alertmanager.config is copied into the Alertmanager's configuration Secret; amtool (the
    Alertmanager's own loader) refuses the unknown key."""
    stack = fresh(production, "kube-prometheus-stack")
    assert pass_through_content(stack) == []
    probed, found = probe(stack, "alertmanager.config.route.group_intervall")
    assert found["verdicts"] == {"alertmanager.config.route.group_intervall": "passthrough"}
    [problem] = pass_through_content(probed)
    assert "field group_intervall not found" in problem


def test_amtool_checks_the_heartbeat_with_its_url_inline() -> None:
    """Debian's amtool 0.25 predates `url_file`: it is shown the URL inline, and only there."""
    text = (
        "receivers:\n- name: heartbeat\n  webhook_configs:\n"
        "  - url_file: /etc/alertmanager/secrets/heartbeat-url\n    send_resolved: false\n"
        "route:\n  receiver: heartbeat\n"
    )
    assert "url_file" in amtool_problems(text)[0]
    assert amtool_problems(for_amtool_0_25(text)) == []
    assert "url_file" not in for_amtool_0_25(text)


def test_the_autoscalers_priorities_are_checked_as_it_parses_them(production: StackRun) -> None:
    """The priority expander's ConfigMap passes its validator; a key that is not an integer or
    a pattern that does not compile is named (negative controls)."""
    autoscaler = fresh(production, "cluster-autoscaler")
    assert autoscaler.facts is not None and autoscaler.facts["passthrough"]
    assert pass_through_content(autoscaler) == []
    assert priority_problems("10:\n- .*general.*\nten:\n- '[unclosed'\n") == [
        "priority 'ten' is not an integer",
        "priority 'ten': pattern '[unclosed': unterminated character set at position 0",
    ]


def test_a_misspelt_grafana_section_is_recorded_as_passed_through(production: StackRun) -> None:
    """grafana.ini is copied into Grafana's ConfigMap: the tool no longer counts a key of it
    read because the file changed; it is a documented pass-through, which no validator here
    checks (PASS_THROUGH_ROOTS says why)."""
    probed, found = probe(fresh(production, "kube-prometheus-stack"), "grafana.ini sever")
    assert found["verdicts"] == {"grafana.grafana.ini.sever.root_url": "passthrough"}
    assert pass_through_findings(probed) == []


@pytest.mark.parametrize("stack", ["production", "staging"])
def test_external_secrets_controller_only_placement_is_caught(
    runs: dict[str, StackRun], stack: str
) -> None:
    """Negative control: chart 0.19.2 places its webhook and cert controller by
    `webhook.*` and `certController.*` (templates/webhook-deployment.yaml,
    cert-controller-deployment.yaml); the controller's values alone leave both unplaced."""
    eso = fresh(runs[stack], "external-secrets")
    probed, found = probe(eso, "controller-only placement")
    where = f"{stack}/external-secrets"
    caught = placement(probed, found["workloads"])
    for deployment in ("external-secrets-webhook", "external-secrets-cert-controller"):
        assert f"{where}: placement: Deployment/{deployment} has no node selector of ours" in caught
        assert f"{where}: placement: Deployment/{deployment} has priority class None" in caught
    assert len(requests(probed, found["workloads"])) == 2


def test_every_long_running_pod_gets_the_placement_the_program_gives_its_release(
    any_stack: StackRun,
) -> None:
    found = [f for r in current(any_stack) for f in placement(r)]
    assert_only_expected(found, "placement", any_stack.stack)


def test_every_container_of_a_long_running_pod_requests_cpu_and_memory(
    any_stack: StackRun,
) -> None:
    found = [f for r in current(any_stack) for f in requests(r)]
    assert_only_expected(found, "requests", any_stack.stack)


def test_no_chart_adds_a_cpu_limit_the_program_did_not_set(any_stack: StackRun) -> None:
    found = [f for r in current(any_stack) for f in cpu_limits(r)]
    assert_only_expected(found, "cpu limit", any_stack.stack)


def test_the_cpu_limit_check_catches_the_charts_defaults(production: StackRun) -> None:
    gateway = fresh(production, "istio-ingressgateway")
    assert gateway.facts is not None
    facts = copy.deepcopy(gateway.facts)
    # The gateway chart's default (values.yaml at 1.30.3: resources.limits.cpu 2000m).
    facts["workloads"][0]["containers"][0]["resources"]["limits"]["cpu"] = "2000m"
    assert cpu_limits(ChartRelease(**{**gateway.__dict__, "facts": facts})) == [
        "production/istio-ingressgateway: cpu limit: "
        "Deployment/istio-ingressgateway/istio-proxy is limited to 2000m CPU"
    ]


def test_pods_behind_a_fail_closed_webhook_have_a_spare_where_the_release_has(
    any_stack: StackRun,
) -> None:
    found = [f for r in current(any_stack) for f in fail_closed_webhooks(r)]
    assert_only_expected(found, "fail-closed webhook", any_stack.stack)


def test_pod_security_admission_admits_every_chart_pod(any_stack: StackRun) -> None:
    levels = namespace_levels(any_stack)
    found = [f for r in current(any_stack) for f in pod_security(r, levels)]
    assert_only_expected(found, "pod security", any_stack.stack)
    restricted = {
        r.name
        for r in current(any_stack)
        if r.facts and any(levels.get(w["namespace"]) == "restricted" for w in r.facts["workloads"])
    }
    assert restricted == RESTRICTED_RELEASES[any_stack.stack]


# Releases with pods in a namespace that enforces `restricted` (the program's Namespace labels).
RESTRICTED_RELEASES = {
    stack: {
        "aws-load-balancer-controller",
        "cert-manager",
        "cluster-autoscaler",
        "external-dns",
        "external-secrets",
        "istio-ingressgateway",
        "istiod",
        "jaeger",
        "kube-prometheus-stack",
        "metrics-server",
        "prometheus-adapter",
        "reloader",
        "vertical-pod-autoscaler",
    }
    for stack in ("production", "staging")
} | {"development": {"cloudnative-pg", "opensearch", "valkey"}}

# Which of our values keep each chart's pods within `restricted`: without any one of them (and
# the mappings it leaves empty) the chart's defaults would be refused (tools/chart_facts.py
# drops each security value in turn, renders and runs the admission checks). A change that
# drops one changes the values, so the facts must be refreshed, and the refreshed facts then
# fail the admission test above. Values needed only together (a seccomp profile set both for
# the pod and for its container) are not listed: either alone suffices.
# A value inside a list item is dropped with its item (`capabilities.drop[0]`: the one "ALL").
ESCALATION_AND_DROP = {"allowPrivilegeEscalation", "capabilities.drop[0]"}
SECURITY_CARRIERS: dict[str, set[str]] = {
    # Chart defaults: no capabilities dropped.
    "aws-load-balancer-controller": {"securityContext.capabilities.drop[0]"},
    # Chart defaults: privilege escalation not forbidden, no capabilities dropped.
    "cluster-autoscaler": {f"containerSecurityContext.{k}" for k in ESCALATION_AND_DROP},
    "jaeger": {f"jaeger.securityContext.{k}" for k in ESCALATION_AND_DROP},
    "reloader": {f"reloader.deployment.containerSecurityContext.{k}" for k in ESCALATION_AND_DROP},
    "vertical-pod-autoscaler": {f"containerSecurityContext.{k}" for k in ESCALATION_AND_DROP},
    # Chart defaults: no seccomp profile (the gateway's pod, istiod's).
    "istio-ingressgateway": {"securityContext.seccompProfile.type"},
    "istiod": {"seccompProfile.type"},
    # Development: the chart's default allows privilege escalation.
    "opensearch": {"securityContext.allowPrivilegeEscalation"},
}


def test_the_values_that_keep_charts_restricted_are_named(any_stack: StackRun) -> None:
    for release in current(any_stack):
        assert release.facts is not None
        carriers = set(release.facts["pod_security"]["carried_by"])
        assert carriers == SECURITY_CARRIERS.get(release.name, set()), release.name
        set_paths = {dotted(path) for path, _ in leaves(release.values)}
        for carrier in carriers:
            assert any(p == carrier or p.startswith(f"{carrier}.") for p in set_paths), carrier


def test_the_admission_check_refuses_a_pod_without_its_seccomp_profile(
    production: StackRun,
) -> None:
    [jaeger] = [r for r in current(production) if r.name == "jaeger"]
    assert jaeger.facts is not None
    workload = copy.deepcopy(jaeger.facts["workloads"][0])
    assert violations(admission_pod(workload), "restricted") == []
    del workload["pod"]["securityContext"]["seccompProfile"]
    del workload["containers"][0]["securityContext"]["seccompProfile"]
    assert violations(admission_pod(workload), "restricted") == [
        "seccompProfile_restricted: jaeger: seccompProfile unset (pod's too)"
    ]


# --- Images ----------------------------------------------------------------------------------
# Registries the charts' images come from (an image without a host is Docker Hub's). These are
# the hosts the nodes must reach to start the platform.
EKS_REGISTRIES = {
    "cr.fluentbit.io",  # Fluent Bit
    "docker.io",  # Istio, Grafana, Jaeger
    "ghcr.io",  # Reloader, the kube-prometheus-stack webhook's certificate job
    "nvcr.io",  # the NVIDIA device plugin
    "oci.external-secrets.io",  # External Secrets
    "public.ecr.aws",  # the AWS Load Balancer Controller
    "quay.io",  # cert-manager, Prometheus, Alertmanager, the operator, Grafana's sidecars
    "registry.k8s.io",  # autoscalers, VPA, metrics-server, external-dns, kube-state-metrics
}
REGISTRIES: dict[str, set[str]] = {
    "production": EKS_REGISTRIES,
    "staging": EKS_REGISTRIES,
    # CloudNativePG from ghcr.io; OpenSearch and Valkey from Docker Hub.
    "development": {"docker.io", "ghcr.io"},
}
DOCKER_HUB = "docker.io"


def registry(image: str) -> str:
    first = image.split("/", 1)[0]
    return first if "/" in image and ("." in first or ":" in first) else DOCKER_HUB


def pulled_images(release: ChartRelease, injected: str | None) -> set[str]:
    """The images a release's pods pull; `auto` (the gateway chart's) is istiod's proxy."""
    assert release.facts is not None
    images = set(release.facts["images"]) | {
        c["image"]
        for w in release.facts["operated"]
        for c in [*w["initContainers"], *w["containers"]]
    }
    if "auto" in images:
        assert injected is not None
        images = (images - {"auto"}) | {injected}
    if "injected_proxy" in release.facts:
        images.add(release.facts["injected_proxy"]["image"])
    return images


def stack_images(run: StackRun) -> set[str]:
    found = current(run)
    injected = next(
        (
            r.facts["injected_proxy"]["image"]
            for r in found
            if r.facts and "injected_proxy" in r.facts
        ),
        None,
    )
    return {image for r in found for image in pulled_images(r, injected)}


def test_every_image_comes_from_a_listed_registry_at_a_fixed_tag(any_stack: StackRun) -> None:
    images = stack_images(any_stack)
    assert {registry(i) for i in images} == REGISTRIES[any_stack.stack]
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name and "/" not in tag and tag not in ("", "latest"), image


def version_of(tag: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", tag.split("@")[0])[:3])


def image_overrides(release: ChartRelease) -> list[str]:
    """Each image whose tag differs from the chart's own (the render without our `image`
    values) must be an upstream release (its tag found in the project's repository) on the
    major line of the chart's image."""
    assert release.facts is not None
    defaults = dict(i.rpartition(":")[::2] for i in release.facts["default_images"])
    found = []
    for image in release.facts["images"]:
        repository, _, tag = image.rpartition(":")
        if repository not in defaults or defaults[repository] == tag:
            continue
        if image not in release.facts["image_releases"]:
            found.append(f"{release.where}: {image}: no upstream release of that tag")
        if version_of(tag)[0] != version_of(defaults[repository])[0]:
            found.append(f"{release.where}: {image}: off the chart's {defaults[repository]} line")
    return found


def test_each_image_tag_the_program_overrides_is_released_on_the_charts_line(
    any_stack: StackRun,
) -> None:
    releases_of = current(any_stack)
    assert [f for r in releases_of for f in image_overrides(r)] == []
    overridden = {image for r in releases_of if r.facts for image in r.facts["image_releases"]}
    assert overridden == IMAGE_OVERRIDES[any_stack.stack]


# The image tags the program sets, and the upstream release tag of each (kubernetes/autoscaler
# tags cluster-autoscaler-1.35.2, the image of the stacks' Kubernetes 1.35 in
# stacks/version_support.py; jaegertracing/jaeger tags v2.20.0).
IMAGE_OVERRIDES = {
    stack: {
        "registry.k8s.io/autoscaling/cluster-autoscaler:v1.35.2",
        "jaegertracing/jaeger:2.20.0",
    }
    for stack in ("production", "staging")
} | {"development": set()}


def test_an_override_without_a_release_or_off_the_line_is_caught(production: StackRun) -> None:
    [jaeger] = [r for r in current(production) if r.name == "jaeger"]
    assert jaeger.facts is not None
    facts = copy.deepcopy(jaeger.facts)
    facts["images"] = ["jaegertracing/jaeger:2.99.0", "jaegertracing/jaeger:1.76.0"]
    facts["image_releases"]["jaegertracing/jaeger:1.76.0"] = {"ref": "v1.76.0"}
    assert image_overrides(ChartRelease(**{**jaeger.__dict__, "facts": facts})) == [
        "production/jaeger: jaegertracing/jaeger:2.99.0: no upstream release of that tag",
        "production/jaeger: jaegertracing/jaeger:1.76.0: off the chart's 2.19.0 line",
    ]


# --- Custom resources --------------------------------------------------------------------------
BUILT_IN_GROUPS = (
    "core",
    "apps",
    "batch",
    "policy",
    "autoscaling",
    "rbac.authorization.k8s.io",
    "networking.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "helm.sh",
)


def custom_resource_versions(run: StackRun) -> set[tuple[str, str, str]]:
    """(group, version, kind) of every custom resource the program creates."""
    found = set()
    for resource in run.resources:
        if not resource.type.startswith("kubernetes:"):
            continue
        _, api, kind = resource.type.split(":")
        group, _, version = api.rpartition("/")
        if group and group not in BUILT_IN_GROUPS:
            found.add((group, version, kind))
    return found


def served(run: StackRun) -> dict[str, set[str]]:
    """group/Kind -> the versions the CRDs of the stack's charts serve."""
    found: dict[str, set[str]] = {}
    for release in current(run):
        assert release.facts is not None
        for name, versions in release.facts["crds"].items():
            found.setdefault(name, set()).update(versions)
    return found


def test_every_custom_resource_is_served_by_a_crd_of_the_stacks_charts(
    any_stack: StackRun,
) -> None:
    assert unserved(custom_resource_versions(any_stack), served(any_stack)) == []


def test_external_secrets_crds_serve_v1_only(production: StackRun) -> None:
    """The facts of chart 0.19.2: v1beta1 is defined but no longer served."""
    facts = fresh(production, "external-secrets").facts
    assert facts is not None
    assert facts["crds"]["external-secrets.io/ExternalSecret"] == ["v1"]


# --- DaemonSets: what runs on every node, for the capacity model ------------------------------
# Per stack, each chart DaemonSet's request per pod (millicores, MiB) and where it runs.
LINUX = {"kubernetes.io/os": "linux"}
GPU = {"workload-class": "gpu"}
EKS_DAEMONSETS: dict[str, tuple[int, int, Mapping[str, str]]] = {
    "fluent-bit": (50, 64, {}),
    "istio-cni-node": (50, 64, LINUX),
    "prometheus-node-exporter": (20, 32, LINUX),
    "nvidia-device-plugin": (50, 64, GPU),
    # Only on GPU nodes labelled MPS-capable (a label MPS sharing sets; the program sets up none).
    "nvidia-device-plugin-mps-control-daemon": (
        50,
        64,
        {"nvidia.com/mps.capable": "true", **GPU},
    ),
}
DAEMONSETS: dict[str, dict[str, tuple[int, int, Mapping[str, str]]]] = {
    "production": EKS_DAEMONSETS,
    "staging": EKS_DAEMONSETS,
    "development": {},
}


def test_the_chart_daemonsets_requests_are_pinned_for_the_capacity_model(
    any_stack: StackRun,
) -> None:
    """What each chart DaemonSet's pod requests on the nodes it runs on, as the charts render
    it with our values: the figures a capacity model must count per node (beside the managed
    add-ons' and GuardDuty's agents, which no chart of ours renders)."""
    assert daemonset_requests(current(any_stack)) == DAEMONSETS[any_stack.stack]


# The capacity model's name for each chart DaemonSet it counts (stacks/capacity.py node_agents).
COUNTED_AS = {
    "istio-cni-node": "istio-cni",
    "fluent-bit": "fluent-bit",
    "prometheus-node-exporter": "node-exporter",
    "nvidia-device-plugin": "nvidia-device-plugin",
}


@pytest.mark.parametrize("stack", ["production", "staging"])
def test_the_capacity_model_counts_what_the_chart_daemonsets_request(
    runs: dict[str, StackRun], stack: str
) -> None:
    """The capacity model takes the charts' DaemonSets from the settings' figures; the charts
    must render those same requests (the MPS control daemon runs on no node of ours: the
    program sets up no MPS sharing, so nothing labels a node for it)."""
    rendered = daemonset_requests(current(runs[stack]))
    counted = {
        agent.name: (agent.requests.cpu_millicores, agent.requests.memory_mib)
        for agent in node_agents(settings_of(stack).addons, False, gpu_nodes=True)
    }
    assert set(rendered) - set(COUNTED_AS) == {"nvidia-device-plugin-mps-control-daemon"}
    for daemonset, name in COUNTED_AS.items():
        cpu, memory, _ = rendered[daemonset]
        assert counted[name] == (cpu, memory), daemonset
