"""Can each node group hold its workloads? The settings refuse a stack that cannot.

The cluster autoscaler plans a group as nodes of its first instance type. On each node, pods get
what the kubelet leaves them (its allocatable, from the AL2023 bootstrap's reservation) less what
runs on every node of the group: the node agents (the managed add-ons' DaemonSets, GuardDuty's
runtime agent, the charts' DaemonSets). Pods are whole: each must fit on one node, so a class
fits when its pods, placed first-fit-decreasing (largest first, each on the first node with room
for it in every resource), need no more nodes than the group has. Two checks per workload class:

- at the maxima: each service at its maximum replicas, each pod at its requests or the VPA's
  `maxAllowed` where the VPA may raise them, plus its mesh sidecar; on the general group also the
  platform's controllers, pod by pod. Within `maxSize` nodes.
- with one zone lost: each service at its minimum (an HPA's `minReplicas`, or the `replicas` of
  a service scaled by hand), and the controllers, within the nodes the other zones hold when the
  group's `maxSize` is spread evenly over its zones (the Auto Scaling group balances its
  instances across them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from stacks.addon_settings import (
    ISTIO_CNI_RESOURCES,
    NODE_EXPORTER_RESOURCES,
    AddonResources,
    AddonSettings,
    AddonsSettings,
)
from stacks.catalog import ServiceSettings, cpu_millicores, memory_mib
from stacks.instance_types import INSTANCE_TYPES, InstanceCapacity
from stacks.settings_base import WorkloadClass

# The platform's controllers (autoscaler, metrics-server, External Secrets, ...) run here.
CONTROLLER_CLASS: WorkloadClass = "general"

# What the kubelet keeps, as the AL2023 bootstrap configures it (awslabs/amazon-eks-ami
# v20260724, nodeadm/internal/kubelet/config.go): kubeReserved CPU of 6% of the first core, 1%
# of the second, 0.5% of the third and fourth and 0.25% of the rest; kubeReserved memory of
# 11 MiB per pod of maxPods plus 255 MiB; evictionHard memory.available of 100Mi. No
# systemReserved is set.
KUBE_RESERVED_CPU_STEPS = ((1000, 600), (2000, 100), (4000, 50))
KUBE_RESERVED_CPU_REST = 25
EVICTION_HARD_MEMORY_MIB = 100
# The kernel reports less memory than the instance type's nominal size: Karpenter plans with
# 7.5% less (its VM_MEMORY_OVERHEAD_PERCENT default, karpenter.sh settings reference).
VM_MEMORY_OVERHEAD = 0.075


@dataclass(frozen=True)
class Demand:
    cpu_millicores: int = 0
    memory_mib: int = 0
    gpus: int = 0
    pods: int = 0

    def __add__(self, other: Demand) -> Demand:
        return Demand(
            self.cpu_millicores + other.cpu_millicores,
            self.memory_mib + other.memory_mib,
            self.gpus + other.gpus,
            self.pods + other.pods,
        )

    def __sub__(self, other: Demand) -> Demand:
        return Demand(
            self.cpu_millicores - other.cpu_millicores,
            self.memory_mib - other.memory_mib,
            self.gpus - other.gpus,
            self.pods - other.pods,
        )

    def times(self, count: int) -> Demand:
        return Demand(
            self.cpu_millicores * count,
            self.memory_mib * count,
            self.gpus * count,
            self.pods * count,
        )

    def within(self, room: Demand) -> bool:
        return (
            self.cpu_millicores <= room.cpu_millicores
            and self.memory_mib <= room.memory_mib
            and self.gpus <= room.gpus
            and self.pods <= room.pods
        )

    def describe(self) -> str:
        text = f"{self.cpu_millicores}m CPU, {self.memory_mib}Mi memory"
        text += f", {self.gpus} GPU" if self.gpus else ""
        return text + (f", {self.pods} pods" if self.pods else "")


def requests_of(resources: AddonResources, pods: int = 1) -> Demand:
    """What `pods` pods of these resources request."""
    requests = resources.requests
    return Demand(cpu_millicores(requests.cpu), memory_mib(requests.memory), 0, 1).times(pods)


@dataclass(frozen=True)
class NodeAgent:
    """A pod on every node of a group (a DaemonSet's), with what it requests."""

    name: str
    requests: Demand
    # Where its requests were read.
    source: str


# The managed add-ons' DaemonSets, on every node (each tolerates every taint).
MANAGED_NODE_AGENTS = (
    # aws-node: the aws-node and aws-eks-nodeagent containers request 25m CPU each (its init
    # container's 25m runs before them); no memory.
    NodeAgent(
        "aws-node",
        Demand(50, 0, 0, 1),
        "aws/amazon-vpc-cni-k8s v1.23.0 config/master/aws-k8s-cni.yaml",
    ),
    NodeAgent(
        "kube-proxy",
        Demand(100, 0, 0, 1),
        "EKS's kube-proxy DaemonSet (eksctl pkg/addons/default/testdata/sample-1.25.json)",
    ),
    # The chart sets no resources.
    NodeAgent(
        "eks-pod-identity-agent",
        Demand(0, 0, 0, 1),
        "aws/eks-pod-identity-agent v0.1.37 charts/eks-pod-identity-agent/values.yaml",
    ),
    # ebs-plugin 10m/40Mi; node-driver-registrar and liveness-probe 10m/32Mi each (the
    # template's defaults where the values give none).
    NodeAgent(
        "ebs-csi-node",
        Demand(30, 104, 0, 1),
        "kubernetes-sigs/aws-ebs-csi-driver helm-chart 2.64.0 values.yaml, templates/_node.tpl",
    ),
)
# GuardDuty's runtime agent, wherever runtime monitoring covers the cluster (this stack's
# GuardDuty or the organisation's): its default requests.
GUARDDUTY_AGENT = NodeAgent(
    "aws-guardduty-agent",
    Demand(200, 256, 0, 1),
    "GuardDuty User Guide, Configure GuardDuty security agent (add-on) parameters for Amazon EKS",
)
# The managed add-ons' Deployments' pods, on any untainted node: counted on the general group.
# CoreDNS runs 2 x 100m/70Mi (EKS's coredns Deployment, eksctl testdata sample-1.25.json); the
# EBS CSI controller 2 x (ebs-plugin 10m/40Mi + liveness-probe 10m/32Mi) (chart 2.64.0).
MANAGED_CONTROLLER_PODS = (*[Demand(100, 70, 0, 1)] * 2, *[Demand(20, 72, 0, 1)] * 2)


def kube_reserved_cpu_millicores(vcpu: int) -> int:
    total, reserved, start = vcpu * 1000, 0, 0
    for end, hundredths_percent in KUBE_RESERVED_CPU_STEPS:
        reserved += (min(total, end) - start) * hundredths_percent // 10000 if total > start else 0
        start = end
    if total > start:
        reserved += (total - start) * KUBE_RESERVED_CPU_REST // 10000
    return reserved


def kube_reserved_memory_mib(max_pods: int) -> int:
    return 11 * max_pods + 255


def allocatable(capacity: InstanceCapacity) -> Demand:
    """What the kubelet of a node of this type lets pods request."""
    memory = int(capacity.memory_gib * 1024 * (1 - VM_MEMORY_OVERHEAD))
    return Demand(
        capacity.vcpu * 1000 - kube_reserved_cpu_millicores(capacity.vcpu),
        memory - kube_reserved_memory_mib(capacity.max_pods) - EVICTION_HARD_MEMORY_MIB,
        capacity.gpus,
        capacity.max_pods,
    )


def node_agents(
    addons: AddonsSettings, guard_duty_agent: bool, gpu_nodes: bool
) -> tuple[NodeAgent, ...]:
    """Every pod a node runs before any workload: the managed add-ons', GuardDuty's and the
    enabled charts' DaemonSets (Istio's CNI agent, Fluent Bit and node-exporter tolerate every
    taint; the NVIDIA device plugin runs on GPU nodes only)."""
    agents = list(MANAGED_NODE_AGENTS)
    if guard_duty_agent:
        agents.append(GUARDDUTY_AGENT)
    rendered: list[tuple[str, bool, AddonResources]] = [
        ("istio-cni", addons.mesh.enabled, ISTIO_CNI_RESOURCES),
        ("fluent-bit", addons.log_shipper.enabled, addons.log_shipper.resources),
        ("node-exporter", addons.monitoring.enabled, NODE_EXPORTER_RESOURCES),
        (
            "nvidia-device-plugin",
            gpu_nodes and addons.nvidia_device_plugin.enabled,
            addons.nvidia_device_plugin.resources,
        ),
    ]
    agents += [
        NodeAgent(name, requests_of(resources), "this program's chart values")
        for name, enabled, resources in rendered
        if enabled
    ]
    return tuple(agents)


def pod_room(capacity: InstanceCapacity, agents: Iterable[NodeAgent]) -> Demand:
    """What pods can request on a node of this type once its node agents run."""
    room = allocatable(capacity)
    for agent in agents:
        room -= agent.requests
    return room


def service_pod(service: ServiceSettings, sidecar: Demand = Demand()) -> Demand:
    """One pod of the service: its requests, or the VPA's maxAllowed where the VPA may raise
    them, its GPUs, and its mesh sidecar."""
    requests = service.resources.requests
    cpu, memory = cpu_millicores(requests.cpu), memory_mib(requests.memory)
    vpa = service.vertical_scaling
    if vpa.update_mode != "Off":
        if "cpu" in vpa.controlled_resources:
            cpu = max(cpu, cpu_millicores(vpa.max_allowed.cpu))
        if "memory" in vpa.controlled_resources:
            memory = max(memory, memory_mib(vpa.max_allowed.memory))
    return Demand(cpu, memory, service.gpus, 1) + Demand(sidecar.cpu_millicores, sidecar.memory_mib)


def service_demand(service: ServiceSettings, sidecar: Demand = Demand()) -> Demand:
    """What the service may request at its maximum replicas."""
    return service_pod(service, sidecar).times(service.max_replicas)


def controller_pods(controllers: Iterable[tuple[AddonSettings, int]]) -> tuple[Demand, ...]:
    """Each pod of the enabled controllers; each entry is (settings, pods it runs with them)."""
    pods: list[Demand] = []
    for addon, count in controllers:
        if addon.enabled and count:
            pods += [requests_of(addon.resources)] * count
    return tuple(pods)


def total(pods: Iterable[Demand]) -> Demand:
    found = Demand()
    for pod in pods:
        found += pod
    return found


@dataclass(frozen=True)
class PlatformLoad:
    """What the platform adds to the services: node agents per class, the controllers' pods on
    the general group (with the managed add-ons' Deployments), and each service pod's sidecar."""

    agents: Mapping[WorkloadClass, tuple[NodeAgent, ...]]
    controllers: tuple[Demand, ...]
    sidecar: Demand = field(default_factory=Demand)


def platform_load(
    addons: AddonsSettings, guard_duty_agent: bool, first_types: Mapping[WorkloadClass, str]
) -> PlatformLoad:
    mesh = addons.mesh
    sidecar = requests_of(mesh.sidecar) - Demand(pods=1) if mesh.enabled else Demand()
    return PlatformLoad(
        agents={
            workload_class: node_agents(
                addons, guard_duty_agent, gpu_nodes=INSTANCE_TYPES[first_type].gpus > 0
            )
            for workload_class, first_type in first_types.items()
        },
        controllers=controller_pods(addons.controllers()) + MANAGED_CONTROLLER_PODS,
        sidecar=sidecar,
    )


def _largest_share(pod: Demand, room: Demand) -> float:
    """The pod's largest share of a node, over the resources the node has."""
    shares = [
        pod.cpu_millicores / room.cpu_millicores if room.cpu_millicores > 0 else 0.0,
        pod.memory_mib / room.memory_mib if room.memory_mib > 0 else 0.0,
        pod.gpus / room.gpus if room.gpus > 0 else float(pod.gpus > 0),
        pod.pods / room.pods if room.pods > 0 else 1.0,
    ]
    return max(shares)


def first_fit_decreasing(pods: Iterable[Demand], room: Demand) -> int | None:
    """The nodes of `room` each that hold `pods` when each pod, largest first, goes on the
    first node with room for it (None: a pod larger than an empty node)."""
    nodes: list[Demand] = []
    for pod in sorted(
        pods,
        key=lambda p: (_largest_share(p, room), p.cpu_millicores, p.memory_mib),
        reverse=True,
    ):
        if not pod.within(room):
            return None
        for index, free in enumerate(nodes):
            if pod.within(free):
                nodes[index] = free - pod
                break
        else:
            nodes.append(room - pod)
    return len(nodes)


@dataclass(frozen=True)
class ClassCapacity:
    workload_class: WorkloadClass
    instance_type: str
    nodes: int
    # What each node leaves pods, after the kubelet and the node agents.
    per_node: Demand
    # Every pod the class must hold, each with its sidecar.
    pods: tuple[Demand, ...]

    @property
    def demand(self) -> Demand:
        return total(self.pods)

    @property
    def capacity(self) -> Demand:
        return self.per_node.times(self.nodes)

    @property
    def nodes_needed(self) -> int | None:
        """The nodes first-fit-decreasing packs the pods into (None: a pod fits no node)."""
        return first_fit_decreasing(self.pods, self.per_node)

    @property
    def fits(self) -> bool:
        needed = self.nodes_needed
        return needed is not None and needed <= self.nodes

    @property
    def headroom(self) -> Demand:
        return self.capacity - self.demand

    def describe(self) -> str:
        needed = self.nodes_needed
        packing = (
            "a pod is larger than a node's room"
            if needed is None
            else f"its pods pack into {needed} nodes"
        )
        return (
            f"{self.workload_class}: demand {self.demand.describe()}; capacity "
            f"{self.nodes} x {self.instance_type} at {self.per_node.describe()} each = "
            f"{self.capacity.describe()}; {packing}"
        )


def _pods(
    workload_class: WorkloadClass,
    services: Iterable[ServiceSettings],
    load: PlatformLoad,
    replicas_of: Callable[[ServiceSettings], int],
) -> tuple[Demand, ...]:
    pods: list[Demand] = []
    for service in services:
        if service.workload_class == workload_class:
            pods += [service_pod(service, load.sidecar)] * replicas_of(service)
    if workload_class == CONTROLLER_CLASS:
        pods += load.controllers
    return tuple(pods)


def class_capacity(
    groups: Mapping[WorkloadClass, tuple[str, int]],
    services: Iterable[ServiceSettings],
    load: PlatformLoad,
) -> list[ClassCapacity]:
    """Pods at the maxima and `maxSize` nodes, per class; `groups` maps a class to (first
    instance type, maxSize)."""
    services = list(services)
    return [
        ClassCapacity(
            workload_class,
            first_type,
            max_nodes,
            pod_room(INSTANCE_TYPES[first_type], load.agents[workload_class]),
            _pods(workload_class, services, load, lambda s: s.max_replicas),
        )
        for workload_class, (first_type, max_nodes) in groups.items()
    ]


def minimum_replicas(service: ServiceSettings) -> int:
    """What a service runs at the least: its HPA's minimum, or its replicas if scaled by hand."""
    return service.min_replicas


def surviving_nodes(max_nodes: int, zones: int) -> int:
    """The nodes the other zones hold of `max_nodes` spread evenly over `zones`, when the
    zone with the largest share is lost."""
    return max_nodes - math.ceil(max_nodes / zones)


def zone_loss_capacity(
    groups: Mapping[WorkloadClass, tuple[str, int]],
    services: Iterable[ServiceSettings],
    load: PlatformLoad,
    zones: int,
) -> list[ClassCapacity]:
    """Pods at the minima and the nodes left with one of `zones` lost, per class."""
    services = list(services)
    return [
        ClassCapacity(
            workload_class,
            first_type,
            surviving_nodes(max_nodes, zones),
            pod_room(INSTANCE_TYPES[first_type], load.agents[workload_class]),
            _pods(workload_class, services, load, minimum_replicas),
        )
        for workload_class, (first_type, max_nodes) in groups.items()
    ]
