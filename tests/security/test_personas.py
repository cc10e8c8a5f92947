"""No persona can become a service: none may write an object that carries a pod template (or a
pod spec), run commands in a pod, or mint or borrow a service account's identity, and none may
read a Secret. The one exception is opt-in and never production: `developersMayEdit` binds
staging's developers to Kubernetes' `edit`.

Each persona's rules are resolved from the render (this program's roles and bindings) and, for
Kubernetes' built-in roles, from their bootstrap definitions (tests/security/kubernetes_roles.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from components.foundation.cluster import PERSONA_GROUPS
from offline.engine import StackRun
from offline.synth import kubernetes_objects
from tests.security.kubernetes_roles import BUILT_IN_ROLES

# What lets a principal run code as another identity in a namespace: a pod template or pod spec
# (Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs, CronJobs, ReplicationControllers,
# Pods), a shell in a running pod, an ephemeral container, a service account's token or its
# impersonation (Kubernetes docs, "RBAC Good Practices": workload creation, escalation paths).
TEMPLATE_CARRIERS = {
    ("", "pods"),
    ("", "replicationcontrollers"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("extensions", "deployments"),
    ("extensions", "replicasets"),
    ("extensions", "daemonsets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
}
TEMPLATE_WRITES = {"create", "update", "patch"}
BECOME = {
    ("", "pods/exec"): {"create", "get"},
    ("", "pods/attach"): {"create", "get"},
    ("", "pods/ephemeralcontainers"): {"update", "patch"},
    ("", "serviceaccounts/token"): {"create"},
    ("", "serviceaccounts"): {"impersonate"},
}
SECRET_READS = {"get", "list", "watch"}


def grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(API group, resource, verb) for every combination the rules allow; a wildcard is kept
    as "*" and matches everything below."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


def allows(granted: set[tuple[str, str, str]], group: str, resource: str, verb: str) -> bool:
    return any(
        g in (group, "*") and r in (resource, "*") and v in (verb, "*") for g, r, v in granted
    )


def problems(rules: list[dict[str, Any]]) -> list[str]:
    granted = grants(rules)
    found = [
        f"{verb} {group or 'core'}/{resource}"
        for group, resource in sorted(TEMPLATE_CARRIERS)
        for verb in sorted(TEMPLATE_WRITES)
        if allows(granted, group, resource, verb)
    ]
    found += [
        f"{verb} {group or 'core'}/{resource}"
        for (group, resource), verbs in sorted(BECOME.items())
        for verb in sorted(verbs)
        if allows(granted, group, resource, verb)
    ]
    found += [
        f"{verb} secrets" for verb in sorted(SECRET_READS) if allows(granted, "", "secrets", verb)
    ]
    return found


def persona_rules(run: StackRun) -> dict[str, list[dict[str, Any]]]:
    """Each persona's rules: the roles its group is bound to, this program's or built-in."""
    objects = kubernetes_objects(run)
    roles = {o["metadata"]["name"]: o["rules"] for o in objects if o["kind"] == "ClusterRole"}
    groups = {group: persona for persona, group in PERSONA_GROUPS.items()}
    found: dict[str, list[dict[str, Any]]] = {persona: [] for persona in PERSONA_GROUPS}
    for binding in objects:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        for subject in binding["subjects"]:
            if subject["kind"] == "Group" and subject["name"] in groups:
                role = binding["roleRef"]["name"]
                found[groups[subject["name"]]] += roles.get(role) or BUILT_IN_ROLES[role]
    return found


def test_no_persona_can_become_a_service_or_read_a_secret(stack_run: StackRun) -> None:
    developers_may_edit = stack_run.namespace["settings"].access.developers_may_edit
    for persona, rules in persona_rules(stack_run).items():
        assert rules, persona
        if persona == "developer" and developers_may_edit:
            continue  # the documented opt-in below
        assert problems(rules) == [], persona


def test_staging_s_opt_in_is_the_only_exception_and_production_refuses_it(
    production: StackRun, staging: StackRun
) -> None:
    assert not production.namespace["settings"].access.developers_may_edit
    assert staging.namespace["settings"].access.developers_may_edit
    # With `edit`, staging's developers may change workloads, exec and read Secrets: what the
    # opt-in says (docs/security.md); production's settings refuse it (tests/test_settings.py).
    found = problems(persona_rules(staging)["developer"])
    assert {"patch apps/deployments", "create core/pods/exec", "get secrets"} <= set(found)


def test_the_sre_role_keeps_scaling_and_restarts(production: StackRun) -> None:
    granted = grants(persona_rules(production)["sre"])
    assert allows(granted, "apps", "deployments/scale", "patch")
    assert allows(granted, "", "pods", "delete")
    assert allows(granted, "", "pods/log", "get")


@pytest.mark.parametrize(
    ("rule", "caught"),
    [
        # The SRE role before this change: patch on Deployments.
        (
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]},
            "patch apps/deployments",
        ),
        (
            {"apiGroups": ["batch"], "resources": ["*"], "verbs": ["create"]},
            "create batch/cronjobs",
        ),
        ({"apiGroups": ["*"], "resources": ["pods"], "verbs": ["*"]}, "create core/pods"),
        (
            {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
            "create core/serviceaccounts/token",
        ),
        ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}, "list secrets"),
    ],
)
def test_each_way_to_become_a_service_is_caught(rule: dict[str, Any], caught: str) -> None:
    assert caught in problems([rule])


def test_kubernetes_view_is_safe_and_edit_is_not() -> None:
    # The built-in roles, from their bootstrap definitions.
    assert problems(BUILT_IN_ROLES["view"]) == []
    assert "update apps/deployments" in problems(BUILT_IN_ROLES["edit"])
