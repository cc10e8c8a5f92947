"""tools/chart_facts.py's judgement, on made-up charts (Python functions standing in for `helm
template`, so no helm binary or chart source is needed): what counts as read, passed through,
dropped by the cluster, read by istiod's injector, or unread.

The made-up charts do what the real ones do with the values the review found misjudged: copy a
map with toYaml into a pod's security context, a container's resources and a
PodDisruptionBudget's spec (gateway 1.30.3 templates/deployment.yaml,
templates/poddisruptionbudget.yaml), copy meshConfig into a ConfigMap (istio-discovery 1.30.3
templates/configmap.yaml), and dump values for the sidecar injector, whose templates name some
paths (istio-discovery 1.30.3 templates/istiod-injector-configmap.yaml,
files/injection-template.yaml).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.shared.helm import merge_maps
from tools.chart_facts import (
    PLACEHOLDER,
    Release,
    Render,
    Renderer,
    classify,
    dropped,
    installed,
    item_path,
    leaves,
)
from tools.chart_schemas import Schemas, dotted

Chart = Callable[[Mapping[str, Any]], list[dict[str, Any]]]
NAMESPACE = "istio-ingress"


class MadeUpRenderer(Renderer):
    def __init__(self, chart_name: str, chart: Chart) -> None:
        release = Release(
            stack="production",
            name=chart_name,
            chart=chart_name,
            version="0",
            repository="",
            namespace=NAMESPACE,
            values={},
            kube_version="1.35",
            api_versions=(),
        )
        super().__init__("helm", Path("."), release)
        self.chart = chart

    def __call__(
        self, values: Mapping[str, Any], *, schema: bool = False, crds: bool = False
    ) -> Render:
        return Render(self.chart(values))


def meta(kind: str, name: str, api: str = "v1") -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": NAMESPACE}}


# The gateway chart's defaults that matter here (gateway 1.30.3 values.yaml).
GATEWAY_DEFAULTS = {"resources": {"limits": {"cpu": "2000m", "memory": "1024Mi"}}}


def gateway(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    merged = merge_maps(GATEWAY_DEFAULTS, values)
    resources = {
        kind: {k: v for k, v in (merged["resources"].get(kind) or {}).items() if v is not None}
        for kind in ("limits", "requests")
    }
    pod = {
        "securityContext": dict(merged.get("securityContext") or {}),
        "containers": [{"name": "istio-proxy", "image": "auto", "resources": resources}],
    }
    config = yaml.safe_dump(merged.get("meshConfig") or {})
    objects = [
        {
            **meta("Deployment", "gw", "apps/v1"),
            "spec": {
                "selector": {"matchLabels": {"app": "gw"}},
                "template": {
                    "metadata": {
                        "labels": {"app": "gw"},
                        "annotations": {"checksum/config": str(hash(config))},
                    },
                    "spec": pod,
                },
            },
        },
        {**meta("ConfigMap", "config"), "data": {"mesh": config}},
    ]
    if merged.get("podDisruptionBudget"):
        objects.append(
            {
                **meta("PodDisruptionBudget", "gw", "policy/v1"),
                "spec": {
                    "selector": {"matchLabels": {"app": "gw"}},
                    **merged["podDisruptionBudget"],
                },
            }
        )
    return objects


INJECTION_TEMPLATE = """
{{- if .Values.pilot.cni.enabled }}
{{ toYaml (omitNil .Values.global.proxy.resources) | indent 6 }}
{{- if eq (.Values.pilot.env).ENABLE_CLUSTER_TRUST_BUNDLE_API true }}
"""


def injector_chart(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    dump = {"global": values.get("global", {}), "pilot": {"cni": values.get("cni", {})}}
    dump["pilot"]["env"] = values.get("env", {})
    return [
        {
            **meta("ConfigMap", "istio-sidecar-injector"),
            "data": {"values": json.dumps(dump, sort_keys=True), "config": INJECTION_TEMPLATE},
        },
        {**meta("ConfigMap", "values"), "data": {"original-values": json.dumps(values)}},
    ]


@pytest.fixture(scope="module")
def schemas() -> Schemas:
    return Schemas("1.35")


def verdicts(
    chart_name: str, chart: Chart, values: dict[str, Any], schemas: Schemas
) -> dict[str, tuple[str, ...]]:
    renders = MadeUpRenderer(chart_name, chart)
    found = {}
    for path, value in leaves(values):
        verdict = classify(renders, schemas, values, path, value, set())
        found[dotted(path)] = (verdict.kind, *verdict.landings)
    return found


def test_a_key_copied_into_an_object_is_read_only_if_the_cluster_knows_the_field(
    schemas: Schemas,
) -> None:
    values = {
        "securityContext": {"runAsNonRoot": True, "runAsNonRot": True},
        "resources": {"limits": {"memory": "1Gi", "memroy": "1Gi", "cpu": None}},
        "podDisruptionBudget": {"maxUnavailabel": 1},
        "unused": {"key": "value"},
    }
    assert verdicts("gateway", gateway, values, schemas) == {
        "securityContext.runAsNonRoot": ("read",),
        "securityContext.runAsNonRot": ("unknown_field",),
        "resources.limits.memory": ("read",),
        "resources.limits.memroy": ("unknown_field",),
        # The null deletes the chart's 2-CPU default: without it the limit comes back.
        "resources.limits.cpu": ("read",),
        # Its removal would empty the budget's map and drop the budget, which says nothing
        # about the key: a placeholder stands in for it.
        "podDisruptionBudget.maxUnavailabel": ("unknown_field",),
        "unused.key": ("unread",),
    }
    correct = {"podDisruptionBudget": {"maxUnavailable": 1}}
    assert verdicts("gateway", gateway, correct, schemas) == {
        "podDisruptionBudget.maxUnavailable": ("read",)
    }


def test_a_value_copied_into_a_configuration_file_is_passed_through(schemas: Schemas) -> None:
    """The checksum annotation a chart derives from the file changes too: it is not a field of
    its own."""
    values = {"meshConfig": {"outboundTrafficPolicy": {"mod": "REGISTRY_ONLY"}}}
    assert verdicts("gateway", gateway, values, schemas) == {
        "meshConfig.outboundTrafficPolicy.mod": (
            "passthrough",
            f"ConfigMap/{NAMESPACE}/config data[mesh]",
        )
    }


def scripts_chart(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each script a file of its own in one ConfigMap (fluent-bit 0.58.1
    templates/configmap-luascripts.yaml does so with luaScripts)."""
    return [{**meta("ConfigMap", "scripts"), "data": dict(values.get("luaScripts") or {})}]


def test_a_removed_files_placeholder_is_not_where_the_value_lands(schemas: Schemas) -> None:
    values = {"luaScripts": {"filter.lua": "return 1"}}
    assert verdicts("fluent-bit", scripts_chart, values, schemas) == {
        "luaScripts.filter.lua": ("passthrough", f"ConfigMap/{NAMESPACE}/scripts data[filter.lua]")
    }


def ingress_class_list(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An IngressClass inside a v1 List (aws-load-balancer-controller 3.5.0
    templates/ingressclass.yaml renders its IngressClass and IngressClassParams so)."""
    item = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": "alb"},
        "spec": dict(values.get("spec") or {}),
    }
    return installed([{"apiVersion": "v1", "kind": "List", "items": [item]}])


def test_a_lists_items_are_judged_as_the_objects_helm_creates(schemas: Schemas) -> None:
    values = {"spec": {"controller": "ingress.k8s.aws/alb", "controler": "x"}}
    assert verdicts("aws-load-balancer-controller", ingress_class_list, values, schemas) == {
        "spec.controller": ("read",),
        "spec.controler": ("unknown_field",),
    }
    config_map = {**meta("ConfigMap", "c"), "data": {}}
    nested = {"apiVersion": "v1", "kind": "List", "items": [config_map, None]}
    assert installed([{"apiVersion": "v1", "kind": "List", "items": [nested]}]) == [config_map]


def test_list_items_are_judged_by_index(schemas: Schemas) -> None:
    values = {"securityContext": {"sysctls": [{"name": "net.ipv4.ping_group_range", "valu": "0"}]}}
    assert verdicts("gateway", gateway, values, schemas) == {
        "securityContext.sysctls[0].name": ("read",),
        "securityContext.sysctls[0].valu": ("unknown_field",),
    }


def test_istiods_injector_reads_only_the_paths_its_templates_name(schemas: Schemas) -> None:
    values = {
        "cni": {"enabled": True, "bogus": True},
        "env": {"ENABLE_CLUSTER_TRUST_BUNDLE_API": True, "OTHER": "x"},
        "global": {
            "proxy": {
                "resources": {"limits": {"memory": "1Gi"}},
                "resorces": {"limits": {"memory": "1Gi"}},
            },
            "typo": 1,
        },
        # Only in the values dump that has no effect.
        "priorityClassName": "platform-critical",
    }
    assert verdicts("istiod", injector_chart, values, schemas) == {
        "cni.enabled": ("read_by_injector",),
        "cni.bogus": ("unread",),
        # `(.Values.pilot.env).ENABLE_CLUSTER_TRUST_BUNDLE_API` names it too.
        "env.ENABLE_CLUSTER_TRUST_BUNDLE_API": ("read_by_injector",),
        "env.OTHER": ("unread",),
        # In a subtree the template copies whole.
        "global.proxy.resources.limits.memory": ("read_by_injector",),
        "global.proxy.resorces.limits.memory": ("unread",),
        "global.typo": ("unread",),
        "priorityClassName": ("unread",),
    }


def test_the_istiod_dumps_are_judged_so_in_the_istiod_chart_only(schemas: Schemas) -> None:
    """Another chart's ConfigMap named `values` or `istio-sidecar-injector` is a file like any
    other: what lands there is passed through."""
    values = {"cni": {"enabled": True}}
    found = verdicts("other", injector_chart, values, schemas)
    assert found["cni.enabled"][0] == "passthrough"


def test_a_security_value_in_a_list_item_is_dropped_with_its_item() -> None:
    values = {
        "securityContext": {
            "capabilities": {"drop": ["ALL"]},
            "sysctls": [{"name": "a", "value": "0"}],
        }
    }
    assert item_path(("securityContext", "sysctls", 0, "value")) == (
        "securityContext",
        "sysctls",
        0,
    )
    assert dropped(values, item_path(("securityContext", "sysctls", 0, "value"))) == {
        "securityContext": {"capabilities": {"drop": ["ALL"]}}
    }
    assert dropped(values, ("securityContext", "capabilities", "drop", 0)) == {
        "securityContext": {"sysctls": [{"name": "a", "value": "0"}]}
    }
    assert PLACEHOLDER not in json.dumps(dropped(values, ("securityContext", "sysctls", 0)))


def test_a_kind_looked_up_before_its_crd_arrives_is_validated_after() -> None:
    """The tool asks which kinds lack a schema, then adds the CRDs of other charts for them:
    a kind first found unknown must be judged by the CRD added later."""
    schemas = Schemas("1.35")
    monitor = {
        "apiVersion": "example.com/v1",
        "kind": "Monitor",
        "metadata": {"name": "m"},
        "spec": {"intervall": "30s"},
    }
    assert not schemas.known(monitor)
    crd = {
        "spec": {
            "group": "example.com",
            "names": {"kind": "Monitor"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"interval": {"type": "string"}},
                                }
                            },
                        }
                    },
                }
            ],
        }
    }
    schemas.add_crds([crd])
    assert schemas.known(monitor)
    assert [(dotted(p.path), p.reason) for p in schemas.problems(monitor)] == [
        ("spec.intervall", "unknown field")
    ]
