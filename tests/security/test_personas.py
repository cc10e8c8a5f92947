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
RBAC = "rbac.authorization.k8s.io"
BECOME = {
    ("", "pods/exec"): {"create", "get"},
    ("", "pods/attach"): {"create", "get"},
    ("", "pods/ephemeralcontainers"): {"update", "patch"},
    ("", "serviceaccounts/token"): {"create"},
    # Impersonation of any identity (Kubernetes docs, "Authenticating", User impersonation:
    # the `impersonate` verb on users, groups, serviceaccounts, and userextras/uids in
    # authentication.k8s.io).
    ("", "serviceaccounts"): {"impersonate"},
    ("", "users"): {"impersonate"},
    ("", "groups"): {"impersonate"},
    ("authentication.k8s.io", "userextras"): {"impersonate"},
    ("authentication.k8s.io", "uids"): {"impersonate"},
    # Granting oneself more: `bind` and `escalate` on roles skip RBAC's escalation check, and
    # writing a (Cluster)RoleBinding binds any role one may bind (Kubernetes docs, "Using RBAC
    # Authorization", Privilege escalation prevention and bootstrapping; "RBAC Good
    # Practices", Escalate verb, Bind verb).
    (RBAC, "roles"): {"bind", "escalate"},
    (RBAC, "clusterroles"): {"bind", "escalate"},
    (RBAC, "rolebindings"): {"create", "update", "patch"},
    (RBAC, "clusterrolebindings"): {"create", "update", "patch"},
    # Approving a certificate signing request mints a client certificate for any name
    # ("RBAC Good Practices", Certificate signing requests; "Certificates and Certificate
    # Signing Requests", Authorization: update on certificatesigningrequests/approval and
    # approve on the signer).
    ("certificates.k8s.io", "certificatesigningrequests/approval"): {"update", "patch"},
    ("certificates.k8s.io", "signers"): {"approve"},
    # The kubelet's API through the API server: exec in any pod on the node ("RBAC Good
    # Practices", Escalation paths: nodes/proxy).
    ("", "nodes/proxy"): {"get", "create"},
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


AGGREGATE_LABEL = "rbac.authorization.k8s.io/aggregate-to-"
# view gathers what is labelled aggregate-to-view; edit what is labelled aggregate-to-edit and,
# since view itself carries that label, aggregate-to-view too (tests/security/kubernetes_roles.py).
AGGREGATED_INTO = {"view": ("view",), "edit": ("view", "edit"), "admin": ("view", "edit", "admin")}


def aggregated(objects: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    """The rules rendered ClusterRoles add to a built-in aggregated role by their labels. The
    charts' own ClusterRoles (helm.v3.Release) are not rendered offline: what they aggregate
    into view/edit is not resolved here (docs/security.md)."""
    rules: list[dict[str, Any]] = []
    for o in objects:
        if o["kind"] != "ClusterRole":
            continue
        labels = o["metadata"].get("labels") or {}
        if any(labels.get(f"{AGGREGATE_LABEL}{into}") == "true" for into in AGGREGATED_INTO[role]):
            rules += o.get("rules") or []
    return rules


def persona_rules(run: StackRun) -> dict[str, list[dict[str, Any]]]:
    """Each persona's rules: the roles its group is bound to, this program's or built-in (with
    what rendered ClusterRoles aggregate into those)."""
    objects = kubernetes_objects(run)
    roles = {o["metadata"]["name"]: o["rules"] for o in objects if o["kind"] == "ClusterRole"}
    for role in AGGREGATED_INTO:
        roles.pop(role, None)
    groups = {group: persona for persona, group in PERSONA_GROUPS.items()}
    found: dict[str, list[dict[str, Any]]] = {persona: [] for persona in PERSONA_GROUPS}
    for binding in objects:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        for subject in binding["subjects"]:
            if subject["kind"] == "Group" and subject["name"] in groups:
                role = binding["roleRef"]["name"]
                if role in AGGREGATED_INTO:
                    found[groups[subject["name"]]] += [
                        *BUILT_IN_ROLES[role],
                        *aggregated(objects, role),
                    ]
                else:
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
        (
            {"apiGroups": [RBAC], "resources": ["clusterroles"], "verbs": ["escalate"]},
            f"escalate {RBAC}/clusterroles",
        ),
        (
            {"apiGroups": [RBAC], "resources": ["roles"], "verbs": ["bind"]},
            f"bind {RBAC}/roles",
        ),
        (
            {"apiGroups": [RBAC], "resources": ["rolebindings"], "verbs": ["create"]},
            f"create {RBAC}/rolebindings",
        ),
        (
            {"apiGroups": [""], "resources": ["users", "groups"], "verbs": ["impersonate"]},
            "impersonate core/users",
        ),
        (
            {
                "apiGroups": ["certificates.k8s.io"],
                "resources": ["certificatesigningrequests/approval"],
                "verbs": ["update"],
            },
            "update certificates.k8s.io/certificatesigningrequests/approval",
        ),
        (
            {"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]},
            "get core/nodes/proxy",
        ),
    ],
)
def test_each_way_to_become_a_service_is_caught(rule: dict[str, Any], caught: str) -> None:
    assert caught in problems([rule])


def test_kubernetes_view_is_safe_and_edit_is_not() -> None:
    # The built-in roles, from their bootstrap definitions.
    assert problems(BUILT_IN_ROLES["view"]) == []
    assert "update apps/deployments" in problems(BUILT_IN_ROLES["edit"])


def test_a_rendered_role_aggregated_into_view_reaches_the_personas_bound_to_view(
    production: StackRun,
) -> None:
    # Kubernetes docs, "Using RBAC Authorization", Aggregated ClusterRoles: the controller
    # adds the rules of every ClusterRole matching view's aggregationRule (label
    # rbac.authorization.k8s.io/aggregate-to-view: "true") to view. A rendered role with that
    # label and a dangerous rule must show up in the developers' (view) rules.
    objects = kubernetes_objects(production)
    sneaky = {
        "kind": "ClusterRole",
        "metadata": {
            "name": "sneaky",
            "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"},
        },
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
    }
    assert "get secrets" in problems(
        [*BUILT_IN_ROLES["view"], *aggregated([*objects, sneaky], "view")]
    )
    # And into edit, which gathers view's too; not into view from an edit-only label.
    assert aggregated([sneaky], "edit") == sneaky["rules"]
    edit_only = {**sneaky, "metadata": {"name": "e", "labels": {f"{AGGREGATE_LABEL}edit": "true"}}}
    assert aggregated([edit_only], "view") == []
