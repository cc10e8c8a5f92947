"""Kubernetes conventions shared by every component: labels, Pod Security, security contexts."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

from stacks.catalog import DataStore

PodSecurityLevel = Literal["restricted", "baseline", "privileged"]
PART_OF = "financial-planning"
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
# The node label (and autoscaler node-template tag) naming a node's group; pods select on it.
WORKLOAD_CLASS_LABEL = "workload-class"
# On the nodes of a group's second and later generations: it keeps the cluster autoscaler from
# treating two generations of one class as similar groups and spreading a scale-up over the
# one being drained (it compares every node label but a few of AWS's own, "eks.amazonaws.com/
# nodegroup" among them: kubernetes/autoscaler cluster-autoscaler-1.35.2,
# processors/nodegroupset/compare_nodegroups.go and aws_nodegroups.go).
NODE_GENERATION_LABEL = "node-group-generation"
# Non-root IDs above 10000 stay clear of users that exist on the node.
RUN_AS_ID = 10001
# Where the database bootstrap job runs: the only reader of the master secret.
DATABASE_BOOTSTRAP_NAMESPACE = "database-bootstrap"
# The platform's controllers run on the general group.
CONTROLLER_NODES = {WORKLOAD_CLASS_LABEL: "general"}
# PriorityClasses: under pressure the scheduler evicts lower values first. Platform add-ons
# outrank every service; critical services (banking, API, users) outrank low ones
# (notifications, simulations). Kubernetes' own system-*-critical classes stay above all.
PLATFORM_PRIORITY_CLASS = "platform-critical"
PRIORITY_CLASSES: dict[str, int] = {
    PLATFORM_PRIORITY_CLASS: 1_000_000,
    "service-critical": 100_000,
    "service-standard": 10_000,
    "service-low": 1_000,
}


def service_priority_class(priority: str) -> str:
    """The PriorityClass of a service whose settings say `priority` (critical|standard|low)."""
    return f"service-{priority}"


def standard_labels(name: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
    }


def service_host(name: str, namespace: str) -> str:
    """A Service's name inside the cluster."""
    return f"{name}.{namespace}.svc.cluster.local"


def digest(text: str, length: int = 64) -> str:
    """The first `length` hex digits of the text's SHA-256: a name or label that changes
    exactly when the text does."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def one_at_a_time_budget(
    resource_name: str,
    *,
    name: str,
    namespace: pulumi.Input[str],
    labels: Mapping[str, str],
    selector: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> k8s.policy.v1.PodDisruptionBudget:
    """A PodDisruptionBudget for a Deployment with a replica to spare: a drain or a node's
    replacement takes its pods one at a time."""
    return k8s.policy.v1.PodDisruptionBudget(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace, labels=dict(labels)),
        spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
            max_unavailable=1,
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(selector)),
        ),
        opts=opts,
    )


def selector_labels(name: str) -> dict[str, str]:
    """The immutable subset used by selectors."""
    return {"app.kubernetes.io/name": name}


def pod_security_labels(level: PodSecurityLevel) -> dict[str, str]:
    """Enforce, audit and warn at one Pod Security Standards level."""
    labels: dict[str, str] = {}
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = level
        labels[f"pod-security.kubernetes.io/{mode}-version"] = "latest"
    return labels


# Namespaces that cannot be `restricted`, each with its reason: the only ones. Every other
# namespace the program creates enforces `restricted`.
POD_SECURITY_EXCEPTIONS: dict[str, tuple[PodSecurityLevel, str]] = {
    "istio-cni": (
        "privileged",
        "Istio's CNI node agent writes the node's CNI configuration and binaries (hostPath) "
        "and runs as root with network capabilities, so that sidecars need none",
    ),
    "node-exporter": (
        "privileged",
        "node-exporter reads the host: host network and PID namespaces, and /, /proc and /sys "
        "mounted from the host (hostPath), which baseline and restricted forbid",
    ),
    "logging": (
        "privileged",
        "Fluent Bit reads every container's log files from the node (hostPath /var/log), which "
        "baseline and restricted forbid",
    ),
    "nvidia-device-plugin": (
        "privileged",
        "the NVIDIA device plugin mounts the kubelet's device-plugin socket directory from the "
        "host (hostPath), which baseline and restricted forbid",
    ),
}


def namespace(
    name: str,
    *,
    pod_security: PodSecurityLevel,
    istio_injection: bool | None,
    opts: pulumi.ResourceOptions,
    labels: Mapping[str, str] | None = None,
) -> k8s.core.v1.Namespace:
    """A namespace at a Pod Security level. `istio_injection`: every pod gets a sidecar (True),
    none does (False), or each pod decides by its `sidecar.istio.io/inject` label (None: the
    ingress gateway's pods ask for their proxy so)."""
    allowed = POD_SECURITY_EXCEPTIONS.get(name, ("restricted", ""))[0]
    if pod_security != allowed:
        raise ValueError(
            f"namespace {name}: Pod Security {pod_security!r} is not allowed (allowed: "
            f"{allowed!r}; a looser level needs an entry in POD_SECURITY_EXCEPTIONS)"
        )
    all_labels = {
        **(labels or {}),
        **pod_security_labels(pod_security),
        "app.kubernetes.io/part-of": PART_OF,
    }
    if istio_injection is not None:
        all_labels["istio-injection"] = "enabled" if istio_injection else "disabled"
    return k8s.core.v1.Namespace(
        f"namespace-{name}",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, labels=all_labels),
        opts=opts,
    )


def restricted_pod_security_context(user: int = RUN_AS_ID) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": user,
        "runAsGroup": user,
        "fsGroup": user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_container_security_context(user: int = RUN_AS_ID) -> dict[str, Any]:
    """What the Pod Security Standards' restricted profile requires, plus a read-only root."""
    return {
        "runAsNonRoot": True,
        "runAsUser": user,
        "runAsGroup": user,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


# Where each data store listens (Aurora PostgreSQL, ElastiCache Redis, OpenSearch over HTTPS):
# the services' network policies and the mesh's registered destinations both open these.
STORE_PORTS: dict[DataStore, int] = {"database": 5432, "cache": 6379, "search": 443}


def zone_spread(labels: dict[str, str]) -> list[dict[str, Any]]:
    """Replicas spread over the zones where they can be (a zone's loss leaves the others),
    still scheduled when they cannot."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": dict(labels)},
        }
    ]


def node_group_name(workload_class: str, generation: int) -> str:
    """EKS's name of a class's managed node group in one generation.

    Generation 1 keeps the class's bare name, the one every group was first created with;
    each later generation is a new group beside it, so it needs a name of its own (EKS refuses
    two groups of one name in a cluster). The Auto Scaling group EKS makes for it is named
    `eks-<this name>-<id>`.
    """
    return workload_class if generation == 1 else f"{workload_class}-g{generation}"
