"""The autoscaling add-ons: cluster autoscaler, metrics-server, NVIDIA device plugin, VPA."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from offline.engine import StackRun
from stacks.version_support import AUTOSCALER_RELEASES, autoscaler_release_problems
from tests.conftest import run_at, run_with
from tests.lookup import helm_release, inline_policy, irsa_role, objects

# The documented pinned chart versions (docs/cluster.md), stated here so that a bump must
# change this test too.
PINNED_CHARTS = {
    "external-secrets": "0.19.2",
    "metrics-server": "3.13.0",
    # The chart of the cluster's minor (1.35: 9.59.0; 1.34 keeps 9.53.0).
    "cluster-autoscaler": "9.59.0",
    "nvidia-device-plugin": "0.17.4",
    "vertical-pod-autoscaler": "0.11.0",
    "reloader": "2.2.16",
    "prometheus-adapter": "5.3.0",
    "kube-prometheus-stack": "88.5.3",
    "prometheus-node-exporter": "4.56.1",
    # Istio: one version for its three charts.
    "base": "1.30.3",
    "cni": "1.30.3",
    "istiod": "1.30.3",
    "gateway": "1.30.3",
    # The edge.
    "aws-load-balancer-controller": "3.5.0",
    "cert-manager": "v1.20.3",
    "external-dns": "1.21.1",
    # Logs.
    "fluent-bit": "0.58.1",
    # Traces (Jaeger v2's chart; the image is pinned apart, see addons/jaeger.py).
    "jaeger": "4.11.1",
}


def values(run: StackRun, chart: str) -> Any:
    return helm_release(run, chart).inputs["values"]


def test_every_chart_is_pinned_to_the_documented_version(stack_run: StackRun) -> None:
    releases = {
        r.inputs["chart"]: r.inputs for r in stack_run.of_type("kubernetes:helm.sh/v3:Release")
    }
    assert {chart: r["version"] for chart, r in releases.items()} == PINNED_CHARTS


def test_the_autoscaler_discovers_this_clusters_groups_with_an_image_of_its_minor(
    stack_run: StackRun,
) -> None:
    found = values(stack_run, "cluster-autoscaler")
    assert found["autoDiscovery"] == {"clusterName": f"financial-planning-{stack_run.stack}"}
    assert found["cloudProvider"] == "aws" and found["awsRegion"] == "us-east-1"
    # Kubernetes 1.35 in both stacks: the autoscaler release for 1.35.
    assert found["image"] == {"tag": "v1.35.2"}
    args = found["extraArgs"]
    assert args["balance-similar-node-groups"] is True
    assert args["expander"] == "priority,least-waste"
    assert args["skip-nodes-with-local-storage"] is False


def test_the_autoscaler_follows_the_cluster_to_another_minor() -> None:
    # 1.34 was in EKS standard support until 2026-12-02: render as of a day before. The
    # image and the chart both follow the minor.
    run = run_at(date(2026, 11, 1), "staging", kubernetesVersion="1.34")
    assert values(run, "cluster-autoscaler")["image"] == {"tag": "v1.34.5"}
    assert helm_release(run, "cluster-autoscaler").inputs["version"] == "9.53.0"


# What kubernetes/autoscaler says at the pinned tags (read with git show <tag>:<path>):
# - cluster-autoscaler/charts/cluster-autoscaler/Chart.yaml: appVersion 1.34.2 at
#   cluster-autoscaler-chart-9.53.0, 1.35.0 at cluster-autoscaler-chart-9.59.0;
# - templates/clusterrole.yaml: no resource.k8s.io rule at 9.53.0; at 9.59.0 (since 9.54.0)
#   get/list/watch on resourceslices, deviceclasses, resourceclaims;
# - cluster-autoscaler/config/flags/flags.go: enable-dynamic-resource-allocation defaults to
#   false at cluster-autoscaler-1.34.5, to true ("locked to true") at cluster-autoscaler-1.35.2,
#   whose main.go:291 then waits for those informers' caches before it scales anything.
UPSTREAM = {
    "1.34": {"image": "v1.34.5", "chart": "9.53.0", "app": "1.34.2", "dra": (False, False)},
    "1.35": {"image": "v1.35.2", "chart": "9.59.0", "app": "1.35.0", "dra": (True, True)},
}


@pytest.mark.parametrize("minor", sorted(UPSTREAM))
def test_each_minor_pairs_the_autoscaler_image_with_a_chart_written_for_it(minor: str) -> None:
    release, facts = AUTOSCALER_RELEASES[minor], UPSTREAM[minor]
    assert (release.image, release.chart, release.chart_app_version) == (
        facts["image"],
        facts["chart"],
        facts["app"],
    )
    assert (release.chart_reads_dra, release.image_requires_dra) == facts["dra"]
    # The chart's appVersion is of the image's minor, and its ClusterRole grants what the
    # image waits for.
    assert autoscaler_release_problems(minor, release) == []
    assert set(AUTOSCALER_RELEASES) == set(UPSTREAM)


def test_the_1_35_image_with_the_1_34_chart_is_the_pairing_that_never_scales() -> None:
    # The review's finding, as a negative control: v1.35.2 installed by chart 9.53.0.
    mixed = replace(
        AUTOSCALER_RELEASES["1.35"],
        chart="9.53.0",
        chart_app_version=str(UPSTREAM["1.34"]["app"]),
        chart_reads_dra=False,
    )
    problems = autoscaler_release_problems("1.35", mixed)
    assert problems == [
        "chart 9.53.0 is written for 1.34.2, not Kubernetes 1.35",
        "image v1.35.2 waits for resource.k8s.io informers that chart 9.53.0's ClusterRole "
        "does not let it list",
    ]


def test_the_expander_tries_the_cheapest_group_first(stack_run: StackRun) -> None:
    priorities = values(stack_run, "cluster-autoscaler")["expanderPriorities"]
    ranked = [priorities[k] for k in sorted(priorities, key=int, reverse=True)]
    # Production: r5.large < c5.xlarge < m5.xlarge < g4dn.xlarge per hour; staging:
    # r5.large < c5.xlarge < m5.xlarge < g4dn.xlarge as well, now that its general and compute
    # groups are xlarge. The expressions match the Auto Scaling groups EKS names
    # eks-<node group name>-<id>: the current generations (general-g2, compute-g2) first, then
    # the kept generation 1 of general and compute, then a catch-all.
    order = ["memory", "compute-g2", "general-g2", "gpu"]
    assert ranked == [
        *([f"^eks-{name}-"] for name in order),
        ["^eks-compute-", "^eks-general-"],
        [".*"],
    ]


def test_the_expander_prefers_the_new_generation_over_the_one_being_drained(
    stack_run: StackRun,
) -> None:
    # The priority expander keeps the options matching the highest priority any of them
    # matches (kubernetes/autoscaler cluster-autoscaler-1.35.2 expander/priority/priority.go,
    # BestOptions). EKS names Auto Scaling groups eks-<node group name>-<id>: both generations
    # are discovered (EKS tags both), each is matched, and generation 2 wins.
    priorities = {
        int(k): v for k, v in values(stack_run, "cluster-autoscaler")["expanderPriorities"].items()
    }

    def best(asg_names: list[str]) -> list[str]:
        found: dict[str, int] = {}
        for name in asg_names:
            matched = [
                p for p, patterns in priorities.items() if any(re.match(x, name) for x in patterns)
            ]
            found[name] = max(matched)
        top = max(found.values())
        return [name for name, priority in found.items() if priority == top]

    old, new = "eks-general-4ec6a8f0-1b2c", "eks-general-g2-9a8b7c6d-3e4f"
    assert best([old, new]) == [new]
    # The drained generation still takes a pod no current group can (it stays matched).
    assert best([old]) == [old] and max(p for p, x in priorities.items() if ".*" not in x) > 1
    # Step 2 (no previous generation): nothing but the current groups and the catch-all.
    run = run_with(
        "staging",
        nodeGroups={
            "general": {"previousGeneration": None},
            "compute": {"previousGeneration": None},
        },
    )
    assert "5" not in values(run, "cluster-autoscaler")["expanderPriorities"]


@pytest.mark.parametrize(
    ("stack", "unneeded", "after_add"), [("production", "10m", "10m"), ("staging", "5m", "5m")]
)
def test_scale_down_timings_per_environment(
    runs: dict[str, StackRun], stack: str, unneeded: str, after_add: str
) -> None:
    args = values(runs[stack], "cluster-autoscaler")["extraArgs"]
    assert (args["scale-down-unneeded-time"], args["scale-down-delay-after-add"]) == (
        unneeded,
        after_add,
    )
    assert args["scale-down-utilization-threshold"] == 0.5


def test_the_autoscaler_runs_critical_and_restricted_on_the_general_group(
    stack_run: StackRun,
) -> None:
    found = values(stack_run, "cluster-autoscaler")
    assert found["nodeSelector"] == {"workload-class": "general"}
    assert found["priorityClassName"] == "system-cluster-critical"
    assert found["podDisruptionBudget"] == {"maxUnavailable": 1}
    assert found["securityContext"]["runAsNonRoot"] is True
    assert found["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = found["containerSecurityContext"]
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}


def test_the_autoscaler_may_change_only_this_clusters_auto_scaling_groups(
    stack_run: StackRun,
) -> None:
    role = irsa_role(stack_run, "autoscaling-system", "cluster-autoscaler")
    annotations = values(stack_run, "cluster-autoscaler")["rbac"]["serviceAccount"]["annotations"]
    assert annotations["eks.amazonaws.com/role-arn"].endswith(role.id)
    read, write = inline_policy(stack_run, role)
    assert all(":Describe" in a or ":Get" in a for a in read["Action"])
    assert write["Action"] == [
        "autoscaling:SetDesiredCapacity",
        "autoscaling:TerminateInstanceInAutoScalingGroup",
        "autoscaling:UpdateAutoScalingGroup",
    ]
    assert write["Condition"] == {
        "StringEquals": {
            f"aws:ResourceTag/k8s.io/cluster-autoscaler/financial-planning-{stack_run.stack}": (
                "owned"
            ),
            "aws:ResourceTag/k8s.io/cluster-autoscaler/enabled": "true",
        }
    }


@pytest.mark.parametrize(("stack", "replicas"), [("production", 2), ("staging", 1)])
def test_metrics_server_is_highly_available_in_production(
    runs: dict[str, StackRun], stack: str, replicas: int
) -> None:
    found = values(runs[stack], "metrics-server")
    assert found["replicas"] == replicas
    # A budget with a replica to spare; none (and no bound the chart would ignore) without.
    budget = {"enabled": True, "maxUnavailable": 1} if replicas > 1 else {"enabled": False}
    assert found["podDisruptionBudget"] == budget
    assert found["nodeSelector"] == {"workload-class": "general"}


def test_the_device_plugin_runs_on_gpu_nodes_only_and_tolerates_their_taint(
    stack_run: StackRun,
) -> None:
    found = values(stack_run, "nvidia-device-plugin")
    assert found["nodeSelector"] == {"workload-class": "gpu"}
    terms = found["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms == {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "workload-class", "operator": "In", "values": ["gpu"]}]}
        ]
    }
    assert found["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
    ]
    # The GPU group is the only one with that taint, and the only one the plugin selects.
    groups = {
        g.inputs["labels"]["workload-class"]: g
        for g in stack_run.of_type("aws:eks/nodeGroup:NodeGroup")
    }
    assert groups["gpu"].inputs["labels"]["workload-class"] == "gpu"


def test_only_the_node_agents_namespaces_are_privileged(
    stack_run: StackRun,
) -> None:
    levels = {
        name: ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        for name, ns in objects(stack_run, "Namespace").items()
    }
    assert levels.pop("nvidia-device-plugin") == "privileged"
    assert levels.pop("node-exporter") == "privileged"
    assert levels.pop("istio-cni") == "privileged"
    assert levels.pop("logging") == "privileged"
    assert helm_release(stack_run, "fluent-bit").inputs["namespace"] == "logging"
    assert helm_release(stack_run, "prometheus-node-exporter").inputs["namespace"] == (
        "node-exporter"
    )
    assert set(levels.values()) == {"restricted"}
    assert helm_release(stack_run, "nvidia-device-plugin").inputs["namespace"] == (
        "nvidia-device-plugin"
    )


def test_the_vpa_updates_pods_because_some_services_let_it(stack_run: StackRun) -> None:
    found = values(stack_run, "vertical-pod-autoscaler")
    assert found["recommender"]["enabled"] is True
    assert found["updater"]["enabled"] is True
    assert found["admissionController"]["enabled"] is True
    assert found["podSecurityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert found["containerSecurityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_with_every_vpa_off_only_the_recommender_runs() -> None:
    off = {
        "updateMode": "Off",
    }
    services = {
        name: {"verticalScaling": off}
        for name in (
            "simulation-service",
            "user-service",
            "banking-service",
            "notification-service",
            "document-service",
            "graphql-gateway",
        )
    }
    found = values(run_with("staging", services=services), "vertical-pod-autoscaler")
    assert found["recommender"]["enabled"] is True
    assert found["updater"]["enabled"] is False
    assert found["admissionController"]["enabled"] is False
