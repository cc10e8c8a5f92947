"""Kubernetes RBAC for the personas that are not cluster-admins (see foundation/cluster.py for
their EKS access entries and Kubernetes groups).

- SREs: restart (delete pods) and scale (the scale subresource) workloads and read logs, in the
  application namespaces only; never write anything that carries a pod template;
- developers: read there (Kubernetes' built-in `view`: no Secrets, no exec), or change things
  (`edit`) where `developersMayEdit` (never in production);
- auditors: read the whole cluster without Secrets (`view`, bound cluster-wide).
No persona here can read a Secret or exec into a pod unless developers may edit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.foundation.cluster import PERSONA_GROUPS
from components.shared.conventions import standard_labels
from stacks.settings import Persona

SRE_ROLE = "financial-planning:sre"
# What an on-call SRE needs: see workloads and their logs, restart (delete a pod: its
# controller makes a new one) and scale (the scale subresource). Nothing that carries a pod
# template or a pod spec is writable: whoever may patch a Deployment may run any image as any
# of the namespace's service accounts (and so as its IAM role), then read the result in logs.
SRE_RULES: list[Any] = [
    {
        "apiGroups": [""],
        "resources": ["pods", "services", "endpoints", "events", "configmaps"],
        "verbs": ["get", "list", "watch"],
    },
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]},
    {
        "apiGroups": ["apps"],
        "resources": ["deployments", "replicasets", "statefulsets"],
        "verbs": ["get", "list", "watch"],
    },
    {
        "apiGroups": ["apps"],
        "resources": ["deployments/scale", "statefulsets/scale"],
        "verbs": ["get", "patch", "update"],
    },
    {
        "apiGroups": ["autoscaling"],
        "resources": ["horizontalpodautoscalers"],
        "verbs": ["get", "list", "watch"],
    },
    {
        "apiGroups": ["policy"],
        "resources": ["poddisruptionbudgets"],
        "verbs": ["get", "list", "watch"],
    },
]


@dataclass(frozen=True)
class PersonasArgs:
    app_namespaces: Sequence[pulumi.Input[str]]
    developers_may_edit: bool


class Personas(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: PersonasArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:security:Personas", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        k8s.rbac.v1.ClusterRole(
            f"{name}-sre",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=SRE_ROLE, labels=standard_labels("sre", "rbac")
            ),
            rules=SRE_RULES,
            opts=child,
        )
        developer_role = "edit" if args.developers_may_edit else "view"
        for index, namespace_name in enumerate(args.app_namespaces):
            bindings: tuple[tuple[Persona, str], ...] = (
                ("sre", SRE_ROLE),
                ("developer", developer_role),
            )
            for persona, role in bindings:
                k8s.rbac.v1.RoleBinding(
                    f"{name}-{persona}-{index}",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=f"financial-planning:{persona}",
                        namespace=namespace_name,
                        labels=standard_labels(persona, "rbac"),
                    ),
                    role_ref=k8s.rbac.v1.RoleRefArgs(
                        api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=role
                    ),
                    subjects=[
                        k8s.rbac.v1.SubjectArgs(
                            api_group="rbac.authorization.k8s.io",
                            kind="Group",
                            name=PERSONA_GROUPS[persona],
                        )
                    ],
                    opts=child,
                )
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-auditor",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="financial-planning:auditor", labels=standard_labels("auditor", "rbac")
            ),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="view"
            ),
            subjects=[
                k8s.rbac.v1.SubjectArgs(
                    api_group="rbac.authorization.k8s.io",
                    kind="Group",
                    name=PERSONA_GROUPS["auditor"],
                )
            ],
            opts=child,
        )
        self.register_outputs({})
