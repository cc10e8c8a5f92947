"""The node groups' capacity: the kubelet's reservation and the node agents of every node, held to
their sources; every class at its maxima, and at its HPA minima with a zone lost."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from offline.engine import StackRun
from offline.synth import capacity_report
from stacks.capacity import (
    MANAGED_NODE_AGENTS,
    Demand,
    allocatable,
    first_fit_decreasing,
    kube_reserved_cpu_millicores,
    kube_reserved_memory_mib,
    minimum_replicas,
    pod_room,
    surviving_nodes,
)
from stacks.instance_types import INSTANCE_TYPES
from tests.conftest import settings_error, settings_of
from tests.lookup import helm_release

FILED = date(2026, 12, 3)


@pytest.mark.parametrize(
    ("vcpu", "millicores"),
    # nodeadm config.go getCPUMillicoresToReserve: 6% of the first core, 1% of the second,
    # 0.5% of the third and fourth, 0.25% of the rest (worked by hand).
    [(2, 70), (4, 80), (8, 90), (16, 110), (32, 150)],
)
def test_the_kubelet_reserves_cpu_as_the_al2023_bootstrap_does(vcpu: int, millicores: int) -> None:
    assert kube_reserved_cpu_millicores(vcpu) == millicores


@pytest.mark.parametrize(
    ("instance_type", "max_pods"),
    # nodeadm instance-info.jsonl (v20260724): ENIs x (IPv4 per ENI - 1) + 2; p3.2xlarge from
    # the AL2 AMI's eni-max-pods.txt.
    [
        ("m5.large", 29),
        ("m5.xlarge", 58),
        ("c5.4xlarge", 234),
        ("g4dn.xlarge", 29),
        ("p3.2xlarge", 58),
    ],
)
def test_max_pods_and_the_kubelets_memory_follow_the_enis(
    instance_type: str, max_pods: int
) -> None:
    assert INSTANCE_TYPES[instance_type].max_pods == max_pods
    # nodeadm getMemoryMebibytesToReserve: 11 MiB per pod plus 255 MiB.
    assert kube_reserved_memory_mib(max_pods) == 11 * max_pods + 255


def test_a_node_leaves_pods_its_allocatable() -> None:
    # m5.large: 2000m less 70m; 8 GiB less 7.5% (the kernel's share, Karpenter's default),
    # the kubelet's 574Mi and the 100Mi eviction threshold; 29 pods.
    assert allocatable(INSTANCE_TYPES["m5.large"]) == Demand(1930, 6903, 0, 29)


def test_the_managed_add_ons_agents_request_what_their_manifests_say() -> None:
    found = {agent.name: agent.requests for agent in MANAGED_NODE_AGENTS}
    assert found == {
        # amazon-vpc-cni-k8s v1.23.0 aws-k8s-cni.yaml: aws-node 25m + aws-eks-nodeagent 25m.
        "aws-node": Demand(50, 0, 0, 1),
        # EKS's kube-proxy DaemonSet (eksctl testdata): 100m CPU.
        "kube-proxy": Demand(100, 0, 0, 1),
        # eks-pod-identity-agent chart: no resources.
        "eks-pod-identity-agent": Demand(0, 0, 0, 1),
        # aws-ebs-csi-driver chart 2.64.0: 10m/40Mi + 2 x 10m/32Mi.
        "ebs-csi-node": Demand(30, 104, 0, 1),
    }


def agents_of(run: StackRun, workload_class: str) -> dict[str, Demand]:
    load = run.namespace["settings"].platform_load()
    return {agent.name: agent.requests for agent in load.agents[workload_class]}


def test_guardduty_s_agent_is_counted_where_runtime_monitoring_runs(stack_run: StackRun) -> None:
    # Production's own GuardDuty, staging's organisation's: both put the agent on every node.
    assert stack_run.namespace["settings"].security.guard_duty_agent
    for workload_class in ("general", "compute", "memory", "gpu"):
        agents = agents_of(stack_run, workload_class)
        if stack_run.namespace["settings"].security.guard_duty_agent:
            # GuardDuty User Guide, "Configure EKS add-on parameters": default requests.
            assert agents["aws-guardduty-agent"] == Demand(200, 256, 0, 1)
        else:
            assert "aws-guardduty-agent" not in agents
        assert ("nvidia-device-plugin" in agents) == (workload_class == "gpu")


@pytest.mark.parametrize(
    ("agent", "chart"),
    [
        ("istio-cni", "cni"),
        ("fluent-bit", "fluent-bit"),
        ("node-exporter", "prometheus-node-exporter"),
        ("nvidia-device-plugin", "nvidia-device-plugin"),
    ],
)
def test_the_rendered_daemonsets_request_what_capacity_counts(
    stack_run: StackRun, agent: str, chart: str
) -> None:
    values: Any = helm_release(stack_run, chart).inputs["values"]
    requests = values["resources"]["requests"]
    counted = agents_of(stack_run, "gpu")[agent]
    from stacks.catalog import cpu_millicores, memory_mib

    assert Demand(cpu_millicores(requests["cpu"]), memory_mib(requests["memory"]), 0, 1) == (
        counted
    )


def test_the_old_reserve_was_too_small_for_the_general_group_on_large_nodes() -> None:
    # The numbers: the agents alone request about 455m before the kubelet's 70m; 20
    # m5.large nodes then leave about 28.6 cores against the general class's 32.
    message = settings_error(
        "production",
        FILED,
        nodeGroups={"general": {"instanceTypes": ["m5.large", "m5.xlarge", "m5.2xlarge"]}},
        services={"financial-planning-api": {"verticalScaling": {"maxAllowed": {"cpu": "1"}}}},
    )
    assert message == (
        "nodeGroups.general.maxSize: cannot hold its workloads at their maximum (general: "
        "demand 32260m CPU, 115064Mi memory, 136 pods; capacity 20 x m5.large at 1430m CPU, "
        "6383Mi memory, 21 pods each = 28600m CPU, 127660Mi memory, 420 pods; its pods pack "
        "into 25 nodes)"
    )


def test_a_pod_must_fit_a_node_beside_the_agents_and_its_sidecar(production: StackRun) -> None:
    settings = production.namespace["settings"]
    load = settings.platform_load()
    room = pod_room(INSTANCE_TYPES["c5.large"], load.agents["compute"]) - load.sidecar
    assert room.memory_mib == 2466
    # simulation's VPA sizes memory (Recreate) up to 2560Mi: more than a c5.large leaves it.
    message = settings_error(
        "production", FILED, nodeGroups={"compute": {"instanceTypes": ["c5.large", "c5.xlarge"]}}
    )
    assert message.startswith(
        "services.simulation-service.verticalScaling.maxAllowed.memory: 2560Mi does not fit "
        "c5.large, the first type of the compute group (at most 2466Mi"
    )
    # An Off VPA only recommends: ml-service's maxAllowed of 3500m is above a g4dn.xlarge's
    # room (3320m) but never applied, and its requests (2 CPUs) fit.
    gpu_room = pod_room(INSTANCE_TYPES["g4dn.xlarge"], load.agents["gpu"]) - load.sidecar
    ml = settings.services["ml-service"]
    assert ml.vertical_scaling.update_mode == "Off"
    assert gpu_room.cpu_millicores == 3320 < 3500


@pytest.mark.parametrize(("max_nodes", "left"), [(20, 13), (30, 20), (5, 3), (2, 1), (1, 0)])
def test_a_lost_zone_takes_its_even_share_of_the_group(max_nodes: int, left: int) -> None:
    assert surviving_nodes(max_nodes, 3) == left


def test_the_minima_must_fit_the_other_zones() -> None:
    # Staging's general group: 4 m5.xlarge hold the maxima, and with one zone lost 2 remain;
    # the API at ten replicas no longer packs into them.
    minima = {"financial-planning-api": {"autoscaling": {"minReplicas": 10, "maxReplicas": 10}}}
    message = settings_error("staging", FILED, services=minima)
    assert message.startswith(
        "nodeGroups.general.maxSize: with one of 3 zones lost, 2 nodes cannot hold the "
        "services' minimum replicas (general: demand"
    ), message
    assert message.endswith("its pods pack into 3 nodes)"), message
    # Negative control: two nodes more (4 left of 6) hold the same minima.
    settings_of("staging", FILED, services=minima, nodeGroups={"general": {"maxSize": 6}})


def test_a_service_scaled_by_hand_counts_with_a_zone_lost() -> None:
    # ml-service runs one GPU pod by hand (no HPA): with one GPU node at most, losing its zone
    # leaves none (staging's maximum of two leaves one).
    message = settings_error("staging", FILED, nodeGroups={"gpu": {"maxSize": 1}})
    assert message.startswith(
        "nodeGroups.gpu.maxSize: with one of 3 zones lost, 0 nodes cannot hold the services' "
        "minimum replicas (gpu: demand 2050m CPU, 8320Mi memory, 1 GPU, 1 pods;"
    ), message
    assert minimum_replicas(settings_of("staging", FILED).services["ml-service"]) == 1


# Staging's general group as first deployed (generation 1): six m5.large.
STAGING_LARGE = {
    "general": {
        "instanceTypes": ["m5.large", "m5.xlarge"],
        "maxSize": 6,
        "generation": 1,
        "previousGeneration": None,
    }
}


def test_pods_must_fit_whole_on_nodes_not_only_in_sum() -> None:
    # The review's case: on six m5.large the general class's requests leave 730m in sum, but
    # every pod goes on one node. notification-service's requests raised to 450m leave 30m in
    # sum (8550m of 8580m), and first-fit-decreasing needs a seventh node.
    heavier = {"notification-service": {"resources": {"requests": {"cpu": "450m"}}}}
    message = settings_error("staging", FILED, nodeGroups=STAGING_LARGE, services=heavier)
    assert message == (
        "nodeGroups.general.maxSize: cannot hold its workloads at their maximum (general: "
        "demand 8550m CPU, 29208Mi memory, 45 pods; capacity 6 x m5.large at 1430m CPU, "
        "6383Mi memory, 21 pods each = 8580m CPU, 38298Mi memory, 126 pods; its pods pack "
        "into 7 nodes)"
    )
    # Negative control: as requested today, the same six nodes hold the class.
    settings_of("staging", FILED, nodeGroups=STAGING_LARGE)


def test_first_fit_decreasing_by_hand() -> None:
    room = Demand(1000, 4000, 0, 10)
    # Sums fit (2700m of 3000m), but no two 900m pods share a node: three nodes.
    assert first_fit_decreasing([Demand(900, 100, 0, 1)] * 3, room) == 3
    # Largest first: 600 and 400 share a node, 500 and 500 another.
    assert first_fit_decreasing([Demand(c, 0, 0, 1) for c in (400, 500, 600, 500)], room) == 2
    # Memory binds as well as CPU, and so does the node's pod count.
    assert first_fit_decreasing([Demand(100, 3000, 0, 1)] * 2, room) == 2
    assert first_fit_decreasing([Demand(1, 1, 0, 1)] * 11, room) == 2
    # A pod larger than an empty node fits nowhere.
    assert first_fit_decreasing([Demand(1200, 0, 0, 1)], room) is None
    assert first_fit_decreasing([], room) == 0


def test_make_synth_reports_each_class_s_headroom(stack_run: StackRun) -> None:
    text = capacity_report(stack_run.namespace["settings"])
    assert "EKS standard support until 2027-03-27" in text
    for workload_class in ("general", "compute", "memory", "gpu"):
        assert text.count(f"    {workload_class} ") == 2
    assert "one of 3 zones lost" in text
    # Every headroom is positive: a negative one would have refused the stack.
    figures = [line.split("headroom")[1] for line in text.splitlines() if "headroom" in line]
    assert len(figures) == 8 and not any("-" in figure for figure in figures)
