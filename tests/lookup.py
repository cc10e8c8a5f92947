"""Finding resources in a render by what they are and do, never by rebuilding logical names."""

from __future__ import annotations

import json
from typing import Any

from offline.engine import RecordedResource, StackRun
from offline.synth import kubernetes_objects

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
KMS_KEY = "aws:kms/key:Key"
KMS_ALIAS = "aws:kms/alias:Alias"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


def policy(resource: RecordedResource, key: str = "policy") -> Any:
    return json.loads(resource.inputs[key])


def children_of(run: StackRun, component: RecordedResource) -> list[RecordedResource]:
    return [r for r in run.resources if r.parent == component.urn]


def descendants_of(run: StackRun, component: RecordedResource) -> list[RecordedResource]:
    found = children_of(run, component)
    for child in list(found):
        if not child.custom:
            found.extend(descendants_of(run, child))
    return found


def irsa_role(run: StackRun, namespace: str, service_account: str) -> RecordedResource:
    """The one role that `namespace/service_account` may assume through the cluster's OIDC."""
    subject = f"system:serviceaccount:{namespace}:{service_account}"
    found = []
    for role in run.of_type(ROLE):
        for statement in policy(role, "assumeRolePolicy")["Statement"]:
            condition = statement.get("Condition", {}).get("StringEquals", {})
            if subject in condition.values():
                found.append(role)
    assert len(found) == 1, f"{len(found)} roles trust {subject}"
    return found[0]


def service_role(run: StackRun, service: str) -> RecordedResource:
    """The role a service principal (`eks.amazonaws.com`, `vpc-flow-logs.amazonaws.com`) assumes."""
    found = [
        role
        for role in run.of_type(ROLE)
        if any(
            s.get("Principal", {}).get("Service") == service
            for s in policy(role, "assumeRolePolicy")["Statement"]
        )
    ]
    assert len(found) == 1, f"{len(found)} roles trust {service}"
    return found[0]


def inline_policies(run: StackRun, role: RecordedResource) -> list[RecordedResource]:
    return [p for p in run.of_type(ROLE_POLICY) if p.inputs["role"] == role.id]


def inline_policy(run: StackRun, role: RecordedResource) -> Any:
    """The statements of the role's one inline policy."""
    [found] = inline_policies(run, role)
    return policy(found)["Statement"]


def key_by_alias(run: StackRun, alias: str) -> RecordedResource:
    """The KMS key that `alias/<alias>` points at."""
    [target] = [
        a.inputs["targetKeyId"]
        for a in run.of_type(KMS_ALIAS)
        if a.inputs["name"] == f"alias/{alias}"
    ]
    [key] = [k for k in run.of_type(KMS_KEY) if k.id == target]
    return key


def helm_release(run: StackRun, chart: str) -> RecordedResource:
    [release] = [r for r in run.of_type(HELM_RELEASE) if r.inputs["chart"] == chart]
    return release


def objects(run: StackRun, kind: str) -> dict[str, dict[str, Any]]:
    """The rendered Kubernetes objects of one kind, by name."""
    return {o["metadata"]["name"]: o for o in kubernetes_objects(run) if o["kind"] == kind}


def app_objects(run: StackRun, kind: str) -> dict[str, dict[str, Any]]:
    """The rendered objects of one kind in the application namespace (the services'), by name:
    platform workloads such as the rate limiter live elsewhere."""
    namespace = app_namespace(run)
    return {
        name: o
        for name, o in objects(run, kind).items()
        if o["metadata"].get("namespace") == namespace
    }


def app_deployments(run: StackRun) -> list[RecordedResource]:
    """The services' Deployment resources (the application namespace's)."""
    namespace = app_namespace(run)
    return [
        d
        for d in run.of_type("kubernetes:apps/v1:Deployment")
        if d.inputs["metadata"]["namespace"] == namespace
    ]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def app_namespace(run: StackRun) -> str:
    """The application namespace of the run's stack, from its settings."""
    return str(run.namespace["settings"].application.namespace)


def waits_for(run: StackRun, urn: str) -> set[str]:
    """Everything `pulumi up` creates before `urn`: its dependencies, and theirs."""
    by_urn = {r.urn: r for r in run.resources}
    seen: set[str] = set()
    todo = list(by_urn[urn].dependencies)
    while todo:
        found = todo.pop()
        if found not in seen:
            seen.add(found)
            todo.extend(by_urn[found].dependencies if found in by_urn else [])
    return seen


def signs_operators_in(run: StackRun) -> bool:
    """Whether the run's stack signs operators in at the load balancer (OIDC), which adds the
    sign-in client's secret (Secrets Manager, External Secrets) to what it keeps."""
    return run.namespace["settings"].edge.operator_login is not None
