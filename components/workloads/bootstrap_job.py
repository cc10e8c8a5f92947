"""One shape for the platform's bootstrap Jobs (database users, search access): a run-once,
retried, deadline-bound Job of one restricted container on the controller nodes, named after a
digest of what it applies so that it runs again exactly when that changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.shared.conventions import (
    CONTROLLER_NODES,
    PLATFORM_PRIORITY_CLASS,
    restricted_container_security_context,
    restricted_pod_security_context,
)

# Retries of a failed run, and the longest a run may take, before `pulumi up` reports it.
BACKOFF_LIMIT = 4
DEADLINE_SECONDS = 900
# How long `pulumi up` waits for the Job to complete: beyond its own deadline (the Job then
# fails by itself, and `up` reports that failure rather than a timeout), with room for its pod
# to be scheduled. pulumi-kubernetes gives up on a Job after 10 minutes unless told
# (provider/pkg/await/job.go, DefaultJobTimeoutMins = 10; a resource's customTimeouts replace
# it: metadata.TimeoutDuration in provider/pkg/metadata/overrides.go).
WAIT_MINUTES = DEADLINE_SECONDS // 60 + 5


def bootstrap_job(
    resource_name: str,
    *,
    name: pulumi.Input[str],
    namespace: pulumi.Input[str],
    labels: Mapping[str, str],
    container: Mapping[str, Any],
    volumes: Sequence[Mapping[str, Any]],
    opts: pulumi.ResourceOptions,
    service_account: str | None = None,
    init_container: Mapping[str, Any] | None = None,
) -> k8s.batch.v1.Job:
    """The Job; `container` gives its name, image, command, env and mounts (a writable /tmp
    is added), and runs restricted with small, capped resources; so does `init_container`,
    which runs to completion first."""

    def restricted(given: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **given,
            "imagePullPolicy": "Always",
            "resources": {
                "requests": {"cpu": "50m", "memory": "64Mi"},
                "limits": {"cpu": "200m", "memory": "128Mi"},
            },
            "securityContext": restricted_container_security_context(),
            "volumeMounts": [
                *given.get("volumeMounts", []),
                {"name": "tmp", "mountPath": "/tmp"},
            ],
        }

    spec: Any = {
        "backoffLimit": BACKOFF_LIMIT,
        "activeDeadlineSeconds": DEADLINE_SECONDS,
        "template": {
            "metadata": {"labels": dict(labels)},
            "spec": {
                # A failed run is a new pod, never a restarted container: the init container
                # (the database bootstrap's reader of the master secret) runs again and fetches
                # the secret as it is then, into a fresh emptyDir. With OnFailure the kubelet
                # restarts only the failed container, which would reuse what the init container
                # wrote before (Kubernetes docs, "Jobs": Pod failure, restartPolicy; "Init
                # containers": they rerun only when the Pod restarts). backoffLimit counts the
                # failed pods the same way.
                "restartPolicy": "Never",
                **({"serviceAccountName": service_account} if service_account else {}),
                # No API token: a bootstrap talks to its store, never to Kubernetes.
                "automountServiceAccountToken": False,
                "priorityClassName": PLATFORM_PRIORITY_CLASS,
                "nodeSelector": CONTROLLER_NODES,
                "securityContext": restricted_pod_security_context(),
                **({"initContainers": [restricted(init_container)]} if init_container else {}),
                "containers": [restricted(container)],
                "volumes": [*volumes, {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
            },
        },
    }
    wait = f"{WAIT_MINUTES}m"
    return k8s.batch.v1.Job(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace, labels=dict(labels)),
        spec=spec,
        opts=pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(custom_timeouts=pulumi.CustomTimeouts(create=wait, update=wait)),
        ),
    )
