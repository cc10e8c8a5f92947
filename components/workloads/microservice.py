"""One microservice of the catalog: ServiceAccount, Deployment, Service, PDB and its volume."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.addons.reloader import RELOAD_ANNOTATION
from components.shared.conventions import (
    IRSA_ANNOTATION,
    WORKLOAD_CLASS_LABEL,
    restricted_container_security_context,
    restricted_pod_security_context,
    selector_labels,
    standard_labels,
)
from components.shared.observability_contract import (
    METRICS_PORT,
    METRICS_PORT_NAME,
    METRICS_SERVICE_PORT,
)
from stacks.catalog import ServiceSettings, database_user
from stacks.settings import Taint
from stacks.settings_base import WorkloadClass

HEALTH_PATH = "/health"
CONTAINER_PORT_NAME = "http"
# Long enough for in-flight requests to finish after the pod leaves the Service's endpoints.
TERMINATION_GRACE_SECONDS = 45
PRE_STOP_SLEEP_SECONDS = 10
GPU_RESOURCE = "nvidia.com/gpu"


def service_port_name(port: int) -> str:
    # Istio picks the protocol from the "http-" prefix.
    return f"http-{port}"


def tolerations_for(taints: Sequence[Taint]) -> list[dict[str, str]]:
    return [
        {"key": t.key, "operator": "Equal", "value": t.value, "effect": t.kubernetes_effect()}
        for t in taints
    ]


def container_resources(service: ServiceSettings) -> dict[str, dict[str, str]]:
    requests = {"cpu": service.resources.requests.cpu, "memory": service.resources.requests.memory}
    limits = {"cpu": service.resources.limits.cpu, "memory": service.resources.limits.memory}
    if service.gpus:
        # Extended resources must be requested and limited alike.
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(service.gpus)
    return {"requests": requests, "limits": limits}


def probe(period_seconds: int, failure_threshold: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": HEALTH_PATH, "port": CONTAINER_PORT_NAME},
        "periodSeconds": period_seconds,
        "timeoutSeconds": 3,
        "failureThreshold": failure_threshold,
    }


@dataclass(frozen=True)
class Placement:
    """Where a service's pods run: its workload class's node group (selected, its taints
    tolerated) spread over zones, or, on a cluster without node groups, any node."""

    node_class: WorkloadClass | None
    taints: Sequence[Taint] = ()
    # Nodes carry topology.kubernetes.io/zone (a local cluster's do not, and a strict zone
    # spread would then leave every pod Pending).
    zones: bool = True
    # The most nodes its group may hold (its maxSize).
    max_nodes: int = 1


ANY_NODE = Placement(node_class=None, zones=False)


def spread_constraints(name: str, zones: bool = True) -> list[dict[str, Any]]:
    """Spread replicas over zones (strictly) and hosts (as far as capacity allows)."""
    selector = {"matchLabels": selector_labels(name)}
    by_zone = {
        "maxSkew": 1,
        "topologyKey": "topology.kubernetes.io/zone",
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": selector,
    }
    return [
        *([by_zone] if zones else []),
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": selector,
        },
    ]


@dataclass(frozen=True)
class MicroserviceArgs:
    namespace: pulumi.Input[str]
    service: ServiceSettings
    image: pulumi.Input[str]
    config_map: pulumi.Input[str]
    placement: Placement
    # None: the cluster's default StorageClass.
    storage_class: str | None
    priority_class: str
    # Its node group starts at zero nodes: the first pod waits for the autoscaler to add one
    # (and, on the GPU group, for the device plugin), longer than the default 10 minutes.
    scale_from_zero: bool = False
    iam_role_arn: pulumi.Input[str] | None = None
    # The Secret (key "password") of its database user when it signs in with a password.
    database_password_secret: str | None = None


class Microservice(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: MicroserviceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:workloads:Microservice", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        service = args.service
        labels = standard_labels(name, "microservice")
        metadata = k8s.meta.v1.ObjectMetaArgs(name=name, namespace=args.namespace, labels=labels)

        account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=name,
                namespace=args.namespace,
                labels=labels,
                annotations=(
                    {IRSA_ANNOTATION: args.iam_role_arn} if args.iam_role_arn is not None else None
                ),
            ),
            automount_service_account_token=service.kubernetes_api,
            opts=child,
        )

        volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}]
        mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
        if service.cache_volume is not None:
            # A generic ephemeral volume: one claim per pod, made where the pod is scheduled
            # (the storage classes bind WaitForFirstConsumer) and deleted with it, so that no
            # volume pins the pod to a zone (stacks/catalog.py, CacheVolume).
            claim_spec: Any = {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": f"{service.cache_volume.size_gib}Gi"}},
            }
            if args.storage_class is not None:
                claim_spec["storageClassName"] = args.storage_class
            volumes.append(
                {
                    "name": "cache",
                    "ephemeral": {
                        "volumeClaimTemplate": {"metadata": {"labels": labels}, "spec": claim_spec}
                    },
                }
            )
            mounts.append({"name": "cache", "mountPath": service.cache_volume.mount_path})

        env: list[dict[str, Any]] = [
            {"name": "SERVICE_NAME", "value": name},
            # Its spans' service name (OpenTelemetry SDKs).
            {"name": "OTEL_SERVICE_NAME", "value": name},
            {"name": "PORT", "value": str(service.port)},
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
        ]
        if "database" in service.data_stores:
            # Its own PostgreSQL user; the password is an IAM token its role may request.
            env.append({"name": "DATABASE_USER", "value": database_user(name)})
            if args.database_password_secret is not None:
                env.append(
                    {
                        "name": "DATABASE_PASSWORD",
                        "valueFrom": {
                            "secretKeyRef": {
                                "name": args.database_password_secret,
                                "key": "password",
                            }
                        },
                    }
                )
        for variable, reference in sorted(service.secret_env.items()):
            secret, key = reference.split("/", 1)
            env.append(
                {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
            )

        # Specs are plain manifest dicts (typed `Any`): the test suite validates every rendered
        # object strictly against the Kubernetes OpenAPI schema instead.
        container: Any = {
            "name": name,
            "image": args.image,
            "imagePullPolicy": "Always",
            "ports": [
                {"name": CONTAINER_PORT_NAME, "containerPort": service.port, "protocol": "TCP"},
                {"name": METRICS_PORT_NAME, "containerPort": METRICS_PORT, "protocol": "TCP"},
            ],
            "envFrom": [{"configMapRef": {"name": args.config_map}}],
            "env": env,
            "resources": container_resources(service),
            "securityContext": restricted_container_security_context(),
            # Up to 150 s to start; readiness gates traffic; liveness restarts a hung process.
            "startupProbe": probe(period_seconds=5, failure_threshold=30),
            "readinessProbe": probe(period_seconds=10, failure_threshold=3),
            "livenessProbe": probe(period_seconds=20, failure_threshold=3),
            "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SLEEP_SECONDS}}},
            "volumeMounts": mounts,
        }
        # Rolled one surge pod at a time, the old pod serving until the new one is ready (its
        # model cache is a per-pod ephemeral volume, so the two never share a disk). A GPU
        # service whose group can hold one node only has nowhere to start the surge pod: its
        # pod is replaced instead, down for the whole model download.
        strategy: Any = (
            {"type": "Recreate"}
            if service.gpus > 0 and args.placement.max_nodes < 2
            else {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
        )
        deployment: Any = {
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector_labels(name)},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": account.metadata.name,
                    "priorityClassName": args.priority_class,
                    "automountServiceAccountToken": service.kubernetes_api,
                    "securityContext": restricted_pod_security_context(),
                    "tolerations": tolerations_for(args.placement.taints),
                    "topologySpreadConstraints": spread_constraints(name, args.placement.zones),
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        }
        if args.placement.node_class is not None:
            pod_spec = deployment["template"]["spec"]
            pod_spec["nodeSelector"] = {WORKLOAD_CLASS_LABEL: args.placement.node_class}
        if service.autoscaling is None:
            deployment["replicas"] = service.replicas
        # Else its HPA owns the replica count: leaving it out means `pulumi up` never resets it.
        waits = (
            pulumi.ResourceOptions(
                custom_timeouts=pulumi.CustomTimeouts(create="25m", update="25m")
            )
            if args.scale_from_zero
            else None
        )
        k8s.apps.v1.Deployment(
            name,
            # Rolled when a Secret or ConfigMap it reads changes (a rotated credential).
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=name,
                namespace=args.namespace,
                labels=labels,
                annotations={RELOAD_ANNOTATION: "true"},
            ),
            spec=deployment,
            opts=pulumi.ResourceOptions.merge(child, waits),
        )
        service_spec: Any = {
            "type": "ClusterIP",
            "selector": selector_labels(name),
            "ports": [
                {
                    "name": service_port_name(service.port),
                    "port": service.port,
                    "targetPort": CONTAINER_PORT_NAME,
                    "protocol": "TCP",
                    "appProtocol": "http",
                },
                {
                    "name": METRICS_SERVICE_PORT,
                    "port": METRICS_PORT,
                    "targetPort": METRICS_PORT_NAME,
                    "protocol": "TCP",
                    "appProtocol": "http",
                },
            ],
        }
        k8s.core.v1.Service(name, metadata=metadata, spec=service_spec, opts=child)
        if service.min_replicas > 1:
            budget: Any = {
                "maxUnavailable": 1,
                "selector": {"matchLabels": selector_labels(name)},
                # Crash-looping pods must not block node drains.
                "unhealthyPodEvictionPolicy": "AlwaysAllow",
            }
            k8s.policy.v1.PodDisruptionBudget(name, metadata=metadata, spec=budget, opts=child)
        self.register_outputs({"name": name})
