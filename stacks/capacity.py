"""Can each node group hold its workloads at their maximum? The settings refuse a stack that cannot.

The cluster autoscaler plans a group as `maxSize` nodes of its first instance type. Each node
keeps room for the kubelet, the OS and the DaemonSets on every node (VPC CNI, kube-proxy, EBS
CSI node, pod identity agent, and the log and metric agents); the rest is what pods can request.
A class's demand is, for each of its services, the maximum replicas times the larger of the
request and the VPA's `maxAllowed` for a resource the VPA may raise; the platform's controllers
run on the general group and add theirs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from stacks.addon_settings import AddonSettings, ControllerSettings
from stacks.catalog import ServiceSettings, cpu_millicores, memory_mib
from stacks.instance_types import INSTANCE_TYPES, InstanceCapacity
from stacks.settings_base import WorkloadClass

# Room a node keeps for the kubelet, the OS and the platform's DaemonSets: a pod gets the rest.
SYSTEM_RESERVED_CPU_MILLICORES = 400
SYSTEM_RESERVED_MEMORY_FRACTION = 0.15
SYSTEM_RESERVED_MEMORY_MIB = 800
# The platform's controllers (autoscaler, metrics-server, External Secrets, ...) run here.
CONTROLLER_CLASS: WorkloadClass = "general"


def schedulable(capacity: InstanceCapacity) -> tuple[int, int]:
    """(millicores, MiB) pods can request on an otherwise empty node of this capacity."""
    memory = capacity.memory_gib * 1024 * (1 - SYSTEM_RESERVED_MEMORY_FRACTION)
    return (
        capacity.vcpu * 1000 - SYSTEM_RESERVED_CPU_MILLICORES,
        int(memory) - SYSTEM_RESERVED_MEMORY_MIB,
    )


@dataclass(frozen=True)
class Demand:
    cpu_millicores: int = 0
    memory_mib: int = 0
    gpus: int = 0

    def __add__(self, other: Demand) -> Demand:
        return Demand(
            self.cpu_millicores + other.cpu_millicores,
            self.memory_mib + other.memory_mib,
            self.gpus + other.gpus,
        )

    def describe(self) -> str:
        text = f"{self.cpu_millicores}m CPU, {self.memory_mib}Mi memory"
        return text + (f", {self.gpus} GPU" if self.gpus else "")


def service_demand(service: ServiceSettings, sidecar: Demand = Demand()) -> Demand:
    """What the service may request at its maximum replicas, VPA raises and each pod's
    sidecar included."""
    requests = service.resources.requests
    cpu, memory = cpu_millicores(requests.cpu), memory_mib(requests.memory)
    vpa = service.vertical_scaling
    if vpa.update_mode != "Off":
        if "cpu" in vpa.controlled_resources:
            cpu = max(cpu, cpu_millicores(vpa.max_allowed.cpu))
        if "memory" in vpa.controlled_resources:
            memory = max(memory, memory_mib(vpa.max_allowed.memory))
    replicas = service.max_replicas
    cpu, memory = cpu + sidecar.cpu_millicores, memory + sidecar.memory_mib
    return Demand(cpu * replicas, memory * replicas, service.gpus * replicas)


def controller_demand(controllers: Iterable[tuple[AddonSettings, int]]) -> Demand:
    """What enabled controllers request; each entry is (settings, Deployments it runs)."""
    total = Demand()
    for addon, deployments in controllers:
        if addon.enabled and isinstance(addon, ControllerSettings):
            requests = addon.resources.requests
            pods = addon.replicas * deployments
            total += Demand(cpu_millicores(requests.cpu) * pods, memory_mib(requests.memory) * pods)
    return total


@dataclass(frozen=True)
class ClassCapacity:
    workload_class: WorkloadClass
    instance_type: str
    max_nodes: int
    demand: Demand
    capacity: Demand

    @property
    def fits(self) -> bool:
        return (
            self.demand.cpu_millicores <= self.capacity.cpu_millicores
            and self.demand.memory_mib <= self.capacity.memory_mib
            and self.demand.gpus <= self.capacity.gpus
        )

    def describe(self) -> str:
        return (
            f"{self.workload_class}: demand at maximum {self.demand.describe()}; capacity "
            f"{self.max_nodes} x {self.instance_type} = {self.capacity.describe()}"
        )


def class_capacity(
    groups: Mapping[WorkloadClass, tuple[str, int]],
    services: Iterable[ServiceSettings],
    controllers: Iterable[tuple[AddonSettings, int]],
    sidecar: Demand = Demand(),
) -> list[ClassCapacity]:
    """Demand and capacity per workload class; `groups` maps a class to (first type, maxSize);
    `sidecar` is what each service pod's mesh sidecar requests (nothing without a mesh)."""
    services, controllers = list(services), list(controllers)
    report = []
    for workload_class, (first_type, max_nodes) in groups.items():
        demand = Demand()
        for service in services:
            if service.workload_class == workload_class:
                demand += service_demand(service, sidecar)
        if workload_class == CONTROLLER_CLASS:
            demand += controller_demand(controllers)
        node = INSTANCE_TYPES[first_type]
        cpu, memory = schedulable(node)
        capacity = Demand(cpu * max_nodes, memory * max_nodes, node.gpus * max_nodes)
        report.append(ClassCapacity(workload_class, first_type, max_nodes, demand, capacity))
    return report
