"""RBAC personas, Pod Security levels (with their one list of exceptions) and the audit trail."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.security.audit import pager_endpoint
from components.shared.conventions import POD_SECURITY_EXCEPTIONS, namespace
from offline.engine import StackRun, run_program, run_stack, secret_placeholder, stack_config
from offline.synth import kubernetes_objects
from stacks import SettingsError

# Kubernetes' built-in aggregated roles, as far as these tests need them: `view` reads neither
# Secrets nor anything under pods/exec; `edit` does both (Kubernetes docs, "Using RBAC
# Authorization", user-facing roles).
BUILT_IN_READS_SECRETS_OR_EXECS = {"view": False, "edit": True, "admin": True}


def bindings(run: StackRun) -> list[dict[str, Any]]:
    return [
        o for o in kubernetes_objects(run) if o["kind"] in ("RoleBinding", "ClusterRoleBinding")
    ]


def custom_roles(run: StackRun) -> dict[str, list[dict[str, Any]]]:
    return {
        o["metadata"]["name"]: o["rules"]
        for o in kubernetes_objects(run)
        if o["kind"] in ("ClusterRole", "Role")
    }


def may_read_secrets_or_exec(role: str, roles: dict[str, list[dict[str, Any]]]) -> bool:
    if role in roles:
        return any(
            ("secrets" in rule.get("resources", []) or "pods/exec" in rule.get("resources", []))
            or "*" in rule.get("resources", [])
            for rule in roles[role]
        )
    return BUILT_IN_READS_SECRETS_OR_EXECS[role]


def test_nobody_is_bound_to_cluster_admin_through_rbac(stack_run: StackRun) -> None:
    # Cluster-admins are exactly the EKS access policy associations (see the cluster tests).
    assert all(b["roleRef"]["name"] != "cluster-admin" for b in bindings(stack_run))


def test_in_production_no_persona_may_read_secrets_or_exec(production: StackRun) -> None:
    roles = custom_roles(production)
    found = bindings(production)
    personas = [b for b in found if all(s["kind"] == "Group" for s in b["subjects"])]
    assert {s["name"] for b in personas for s in b["subjects"]} == {
        "financial-planning:sre",
        "financial-planning:developers",
        "financial-planning:auditors",
    }
    for binding in personas:
        assert not may_read_secrets_or_exec(binding["roleRef"]["name"], roles), binding
    # The one service account bound here: the load balancer controller, which reads the
    # operators' sign-in Secret by name and nothing else.
    [reader] = [b for b in found if b not in personas]
    assert reader["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": "aws-load-balancer-controller",
            "namespace": "edge-system",
        }
    ]
    assert roles[reader["roleRef"]["name"]] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["operator-sso"],
            "verbs": ["get", "list", "watch"],
        }
    ]


def test_staging_developers_may_edit(staging: StackRun) -> None:
    developer = next(
        b for b in bindings(staging) if b["subjects"][0]["name"] == "financial-planning:developers"
    )
    assert developer["roleRef"]["name"] == "edit"
    assert may_read_secrets_or_exec("edit", custom_roles(staging))


def test_sres_restart_scale_and_read_logs_in_the_application_namespace_only(
    production: StackRun,
) -> None:
    rules = custom_roles(production)["financial-planning:sre"]
    granted = {(r, v) for rule in rules for r in rule["resources"] for v in rule["verbs"]}
    assert {
        ("pods/log", "get"),
        ("pods", "delete"),
        ("deployments/scale", "update"),
        ("deployments/scale", "patch"),
    } <= granted
    # Restarts are pod deletions: patching a template (`kubectl rollout restart`) would let
    # an SRE run any image as any service account (tests/security/test_personas.py).
    assert not {("deployments", "patch"), ("deployments", "update")} & granted
    [sre] = [
        b for b in bindings(production) if b["subjects"][0]["name"] == "financial-planning:sre"
    ]
    assert sre["kind"] == "RoleBinding" and sre["metadata"]["namespace"] == "financial-planning"
    [auditor] = [
        b for b in bindings(production) if b["subjects"][0]["name"] == "financial-planning:auditors"
    ]
    assert (auditor["kind"], auditor["roleRef"]["name"]) == ("ClusterRoleBinding", "view")


def test_a_role_that_reads_secrets_is_caught() -> None:
    roles = {"leaky": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}
    assert may_read_secrets_or_exec("leaky", roles)
    assert may_read_secrets_or_exec(
        "exec", {"exec": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}]}
    )


def test_every_namespace_is_restricted_but_the_listed_exceptions(stack_run: StackRun) -> None:
    levels = {
        o["metadata"]["name"]: o["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        for o in kubernetes_objects(stack_run)
        if o["kind"] == "Namespace"
    }
    loose = {name: level for name, level in levels.items() if level != "restricted"}
    assert loose == {name: level for name, (level, _) in POD_SECURITY_EXCEPTIONS.items()}
    assert loose == {
        "nvidia-device-plugin": "privileged",
        "node-exporter": "privileged",
        "istio-cni": "privileged",
        "logging": "privileged",
    }
    assert all(len(reason) > 40 for _, reason in POD_SECURITY_EXCEPTIONS.values())


def test_a_namespace_looser_than_its_listed_level_is_refused() -> None:
    def program() -> None:
        import pulumi

        namespace(
            "team-a", pod_security="baseline", istio_injection=False, opts=pulumi.ResourceOptions()
        )

    with pytest.raises(Exception, match="Pod Security 'baseline' is not allowed"):
        run_program(program, project="p", stack="s")


def test_production_runs_guardduty_on_eks_and_a_validated_encrypted_trail(
    production: StackRun,
) -> None:
    features = {
        f.inputs["name"]: f.inputs
        for f in production.of_type("aws:guardduty/detectorFeature:DetectorFeature")
    }
    assert features["EKS_AUDIT_LOGS"]["status"] == "ENABLED"
    # The stack installs the runtime agent itself (tests/security/test_audit.py).
    assert features["RUNTIME_MONITORING"]["additionalConfigurations"] == [
        {"name": "EKS_ADDON_MANAGEMENT", "status": "DISABLED"}
    ]
    topic = production.one("aws:sns/topic:Topic").inputs
    assert topic["kmsMasterKeyId"].startswith("arn:aws:kms:")
    trail = production.one("aws:cloudtrail/trail:Trail")
    assert trail.inputs["isMultiRegionTrail"] is True
    assert trail.inputs["enableLogFileValidation"] is True
    assert trail.inputs["kmsKeyId"].startswith("arn:aws:kms:")
    assert trail.protect


def test_staging_leaves_the_audit_trail_to_the_organisation(staging: StackRun) -> None:
    assert staging.of_type("aws:guardduty/detector:Detector") == []
    assert staging.of_type("aws:cloudtrail/trail:Trail") == []


FINDINGS_SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"


def test_guardduty_findings_page_through_pagerduty(production: StackRun) -> None:
    [subscription] = production.of_type(FINDINGS_SUBSCRIPTION)
    [topic] = production.of_type("aws:sns/topic:Topic")
    assert subscription.inputs["protocol"] == "https"
    assert subscription.inputs["endpointAutoConfirms"] is True
    # The integration key is in the URL: the endpoint is a secret, never plain.
    assert subscription.inputs["endpoint"] == "[secret]"
    assert subscription.inputs["topic"] == topic.state["arn"]
    # SNS Subscribe: an https endpoint is a URL beginning with https://.
    assert pager_endpoint("abc123").startswith("https://events.pagerduty.com/")
    placeholder = secret_placeholder("financial-planning:securityFindingsPagerdutyKey")
    assert placeholder not in json.dumps([r.to_json() for r in production.resources])


def test_the_findings_key_is_required_exactly_where_guardduty_runs(staging: StackRun) -> None:
    # Staging runs no GuardDuty of its own: no subscriber, and no key asked for.
    assert staging.of_type(FINDINGS_SUBSCRIPTION) == []
    assert "financial-planning:securityFindingsPagerdutyKey" not in stack_config("staging")[0]
    config, secret_keys = stack_config("production")
    del config["financial-planning:securityFindingsPagerdutyKey"]
    with pytest.raises(
        SettingsError, match=r"^securityFindingsPagerdutyKey: required secret is missing"
    ):
        run_stack("production", config=config, secret_keys=secret_keys)
