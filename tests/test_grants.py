"""What each access-control grant allows, pinned as literals, and one property over all of them.

Tests elsewhere pin who holds a role; a change that widens what a role allows while leaving its
holders alone passes those. Here every grant the program defines is written out: each search
domain (FGAC) role's index patterns and action groups, each Kubernetes Role's rules, each KMS
key policy's principals and actions. And over all of them: no role except the administrators'
covers every index, every namespace or every key. Each property has a negative control.
"""

from __future__ import annotations

import copy
import fnmatch
import json
from typing import Any

import pytest

from components.data.search_access import ADMIN_ROLES
from offline.engine import ACCOUNT_ID, StackRun
from offline.synth import kubernetes_objects
from tests.data.test_search_access import plan_of
from tests.iam_properties import documents
from tests.lookup import KMS_ALIAS, KMS_KEY

REGION = "us-east-1"
EKS_STACKS = ("production", "staging")

# --- The search domain's FGAC roles -------------------------------------------------------
# Action groups are the OpenSearch security plugin's defaults ("Default action groups":
# `crud` = read, write and delete documents; `create_index`; `cluster_composite_ops` = bulk,
# mget, msearch and aliases; `cluster_monitor` = cluster:monitor/*;
# `cluster_manage_index_templates`).
WRITE_AND_MAP = ["crud", "create_index", "indices:admin/mapping/put"]
FGAC_ROLES: dict[str, Any] = {
    "document-search": {
        "cluster_permissions": ["cluster_composite_ops"],
        "index_permissions": [{"allowed_actions": WRITE_AND_MAP, "index_patterns": ["documents*"]}],
    },
    "log-writer": {
        "cluster_permissions": ["cluster_composite_ops", "cluster_monitor"],
        "index_permissions": [{"allowed_actions": WRITE_AND_MAP, "index_patterns": ["logs-*"]}],
    },
    "trace-store": {
        "cluster_permissions": [
            "cluster_composite_ops",
            "cluster_monitor",
            "cluster_manage_index_templates",
        ],
        "index_permissions": [{"allowed_actions": WRITE_AND_MAP, "index_patterns": ["jaeger-*"]}],
    },
}
# Default action groups that grant every action: `unlimited` ("*"), `indices_all`
# ("indices:*"), `cluster_all` ("cluster:*"), and those permissions written out.
EVERY_INDEX_ACTION = {"*", "unlimited", "indices_all", "indices:*"}
EVERY_CLUSTER_ACTION = {"*", "unlimited", "cluster_all", "cluster:*"}
# An index no role names: a pattern that matches it matches every index.
UNCLAIMED_INDEX = "an-index-that-no-role-names"


def fgac_roles(run: StackRun) -> dict[str, Any]:
    return {
        step["path"].rsplit("/", 1)[1]: step["body"]
        for step in plan_of(run)
        if "/_security/api/roles/" in step["path"]
    }


def fgac_mappings(run: StackRun) -> dict[str, list[str]]:
    return {
        step["path"].rsplit("/", 1)[1]: step["body"]["backend_roles"]
        for step in plan_of(run)
        if "/_security/api/rolesmapping/" in step["path"]
    }


def fgac_too_wide(roles: dict[str, Any]) -> list[str]:
    """Roles other than the administrators' that reach every index or every action."""
    found = []
    for name, role in roles.items():
        if name in ADMIN_ROLES:
            continue
        for permission in role["index_permissions"]:
            for pattern in permission["index_patterns"]:
                if fnmatch.fnmatchcase(UNCLAIMED_INDEX, pattern):
                    found.append(f"{name}: index pattern {pattern!r} covers every index")
            for action in set(permission["allowed_actions"]) & EVERY_INDEX_ACTION:
                found.append(f"{name}: {action!r} allows every index action")
        for action in set(role["cluster_permissions"]) & EVERY_CLUSTER_ACTION:
            found.append(f"{name}: {action!r} allows every cluster action")
    return found


@pytest.mark.parametrize("stack", EKS_STACKS)
def test_each_fgac_role_allows_exactly_its_indices_and_actions(
    runs: dict[str, StackRun], stack: str
) -> None:
    assert fgac_roles(runs[stack]) == FGAC_ROLES


@pytest.mark.parametrize("stack", EKS_STACKS)
def test_only_the_administrators_fgac_roles_cover_every_index(
    runs: dict[str, StackRun], stack: str
) -> None:
    run = runs[stack]
    assert fgac_too_wide(fgac_roles(run)) == []
    # The roles that do (OpenSearch's all_access and security_manager) are held by the
    # domain's master role and the stack's administrator only.
    settings = run.namespace["settings"]
    domain = run.one("aws:opensearch/domain:Domain").inputs
    master = domain["advancedSecurityOptions"]["masterUserOptions"]["masterUserArn"]
    administrators = sorted([settings.data.search.administrator_arn, master])
    mappings = fgac_mappings(run)
    assert {role: mappings[role] for role in ADMIN_ROLES} == dict.fromkeys(
        ADMIN_ROLES, administrators
    )


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda r: r["index_permissions"][0].update(index_patterns=["*"]), "covers every index"),
        (lambda r: r["index_permissions"][0].update(index_patterns=["*-*"]), "covers every index"),
        (lambda r: r["index_permissions"][0]["allowed_actions"].append("indices_all"), "every"),
        (lambda r: r["cluster_permissions"].append("cluster_all"), "every cluster action"),
    ],
)
def test_a_widened_fgac_role_is_caught(production: StackRun, change: Any, needle: str) -> None:
    roles = copy.deepcopy(fgac_roles(production))
    change(roles["document-search"])
    found = fgac_too_wide(roles)
    assert found and all(needle in f for f in found), found
    # The administrators' roles may (they are not in the plan's role definitions at all).
    assert fgac_too_wide({"all_access": roles["document-search"]}) == []


# --- Kubernetes Roles and bindings ---------------------------------------------------------
SRE_RULES = [
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
        "verbs": ["get", "list", "watch", "patch"],
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
SIGN_IN_READER = [
    {
        "apiGroups": [""],
        "resources": ["secrets"],
        "resourceNames": ["operator-sso"],
        "verbs": ["get", "list", "watch"],
    }
]
# (kind, namespace, name) -> rules, per stack.
KUBERNETES_ROLES: dict[str, dict[tuple[str, str | None, str], Any]] = {
    "production": {
        ("ClusterRole", None, "financial-planning:sre"): SRE_RULES,
        ("Role", "istio-ingress", "alb-sign-in-reader"): SIGN_IN_READER,
    },
    "staging": {("ClusterRole", None, "financial-planning:sre"): SRE_RULES},
    "development": {},
}
# Bindings that reach every namespace, other than the administrators' (who are cluster-admins
# through EKS access policies, not RBAC): the auditors read the whole cluster with Kubernetes'
# built-in `view`, which reads no Secret and cannot exec (components/security/rbac.py).
CLUSTER_WIDE_READERS = {"financial-planning:auditors": "view"}
# The EKS access policy associations: only the administrators' and the deployer's, with
# cluster scope (the stack files' `access.platformAdmins` and `access.deployer`).
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
EKS_ADMINS = {
    "production": {
        f"arn:aws:iam::{ACCOUNT_ID}:role/platform-admin",
        f"arn:aws:iam::{ACCOUNT_ID}:role/platform-deployer",
    },
    "staging": {f"arn:aws:iam::{ACCOUNT_ID}:role/platform-deployer"},
    "development": set(),
}


def kubernetes_roles(run: StackRun) -> dict[tuple[str, str | None, str], Any]:
    return {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o["rules"]
        for o in kubernetes_objects(run)
        if o["kind"] in ("Role", "ClusterRole")
    }


def every_namespace_grants(objects: list[dict[str, Any]]) -> list[str]:
    """Grants that reach every namespace: ClusterRoleBindings (other than the listed
    readers'), and rules with a wildcard."""
    found = []
    for o in objects:
        if o["kind"] == "ClusterRoleBinding":
            for subject in o["subjects"]:
                if CLUSTER_WIDE_READERS.get(subject["name"]) != o["roleRef"]["name"]:
                    found.append(
                        f"{o['metadata']['name']}: {subject['kind']} {subject['name']} holds "
                        f"{o['roleRef']['name']} in every namespace"
                    )
        if o["kind"] in ("Role", "ClusterRole"):
            for rule in o["rules"]:
                for key in ("apiGroups", "resources", "verbs"):
                    if "*" in rule.get(key, []):
                        found.append(f"{o['metadata']['name']}: {key} '*'")
    return found


@pytest.mark.parametrize("stack", ["production", "staging", "development"])
def test_each_kubernetes_role_allows_exactly_its_rules(
    runs: dict[str, StackRun], stack: str
) -> None:
    assert kubernetes_roles(runs[stack]) == KUBERNETES_ROLES[stack]


@pytest.mark.parametrize("stack", ["production", "staging", "development"])
def test_no_role_but_the_administrators_reaches_every_namespace(
    runs: dict[str, StackRun], stack: str
) -> None:
    run = runs[stack]
    assert every_namespace_grants(kubernetes_objects(run)) == []
    associations = run.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert {a.inputs["principalArn"] for a in associations} == EKS_ADMINS[stack]
    for association in associations:
        assert association.inputs["policyArn"] == CLUSTER_ADMIN_POLICY
        assert association.inputs["accessScope"] == {"type": "cluster"}


def test_a_persona_bound_cluster_wide_or_a_wildcard_rule_is_caught(production: StackRun) -> None:
    objects = copy.deepcopy(kubernetes_objects(production))
    [sre] = [
        o
        for o in objects
        if o["kind"] == "RoleBinding" and o["metadata"]["name"] == "financial-planning:sre"
    ]
    sre["kind"] = "ClusterRoleBinding"
    [role] = [o for o in objects if o["metadata"]["name"] == "alb-sign-in-reader" and "rules" in o]
    role["rules"][0]["resources"] = ["*"]
    assert every_namespace_grants(objects) == [
        "alb-sign-in-reader: resources '*'",
        "financial-planning:sre: Group financial-planning:sre holds financial-planning:sre in "
        "every namespace",
    ]


# --- KMS key policies ----------------------------------------------------------------------
ROOT = {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}
ADMINISTRATION = ("AccountAdministration", ROOT, "kms:*")
LOGS = (
    "ControlPlaneLogs",
    {"Service": f"logs.{REGION}.amazonaws.com"},
    ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
)
# Per stack, alias -> the (Sid, Principal, Action) of each statement of its key policy, or
# None for AWS's default key policy (the account administers the key; IAM policies grant use).
KEY_POLICIES: dict[str, dict[str, Any]] = {
    "production": {
        "financial-planning-production-secrets": None,
        "financial-planning-production-redis": None,
        "financial-planning-production-postgres": None,
        "financial-planning-production-database-recovery": None,
        "financial-planning-production-documents": None,
        "fp-production-search": None,
        "financial-planning-production-volumes": None,
        "aws-waf-logs-financial-planning-production-edge": [ADMINISTRATION, LOGS],
        "financial-planning-production-eks": [ADMINISTRATION, LOGS],
        "financial-planning-production-flow-logs": [ADMINISTRATION, LOGS],
        "financial-planning-production-security-findings": [
            ADMINISTRATION,
            (
                "EventBridgePublishes",
                {"Service": "events.amazonaws.com"},
                ["kms:GenerateDataKey*", "kms:Decrypt"],
            ),
        ],
        "financial-planning-production-audit": [
            ADMINISTRATION,
            (
                "CloudTrailEncryptsThisTrail",
                {"Service": "cloudtrail.amazonaws.com"},
                ["kms:GenerateDataKey*", "kms:DescribeKey"],
            ),
        ],
    },
    "staging": {
        "financial-planning-staging-secrets": None,
        "financial-planning-staging-redis": None,
        "financial-planning-staging-postgres": None,
        "financial-planning-staging-documents": None,
        "fp-staging-search": None,
        "financial-planning-staging-volumes": None,
        "aws-waf-logs-financial-planning-staging-edge": [ADMINISTRATION, LOGS],
        "financial-planning-staging-eks": [ADMINISTRATION, LOGS],
        "financial-planning-staging-flow-logs": [ADMINISTRATION, LOGS],
    },
    "development": {},
}
# A key no policy names: a resource pattern that matches it matches every key.
UNCLAIMED_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/0000-a-key-that-no-policy-names"


def key_policies(run: StackRun) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key in run.of_type(KMS_KEY):
        [alias] = [
            a.inputs["name"].removeprefix("alias/")
            for a in run.of_type(KMS_ALIAS)
            if a.inputs["targetKeyId"] == key.id
        ]
        policy = key.inputs.get("policy")
        found[alias] = (
            None
            if policy is None
            else [(s["Sid"], s["Principal"], s["Action"]) for s in json.loads(policy)["Statement"]]
        )
    return found


def covers_every_key(resource: str) -> bool:
    """IAM matches `*` and `?` in a resource ARN as wildcards."""
    return fnmatch.fnmatchcase(UNCLAIMED_KEY, resource)


def every_key_grants(docs: list[Any]) -> list[str]:
    """IAM identity statements granting a KMS action on every key; key policies where anyone
    but the account (its administrators) holds `kms:*`."""
    found = []
    for document in docs:
        for statement in document.body["Statement"]:
            actions = statement.get("Action", [])
            actions = [actions] if isinstance(actions, str) else actions
            kms = [a for a in actions if a.startswith("kms:") or a == "*"]
            if not kms or statement.get("Effect") != "Allow":
                continue
            if document.kind == "identity":
                resources = statement.get("Resource", [])
                resources = [resources] if isinstance(resources, str) else resources
                found += [
                    f"{document.where}: {kms} on {r}" for r in resources if covers_every_key(r)
                ]
            if document.kind == "key" and "kms:*" in kms and statement.get("Principal") != ROOT:
                found.append(f"{document.where}: kms:* for {statement.get('Principal')}")
    return found


@pytest.mark.parametrize("stack", ["production", "staging", "development"])
def test_each_key_policy_names_exactly_its_principals_and_actions(
    runs: dict[str, StackRun], stack: str
) -> None:
    assert key_policies(runs[stack]) == KEY_POLICIES[stack]


@pytest.mark.parametrize("stack", ["production", "staging", "development"])
def test_no_role_but_the_accounts_administrators_covers_every_key(
    runs: dict[str, StackRun], stack: str
) -> None:
    docs = documents(runs[stack])
    assert every_key_grants(docs) == []


def test_a_role_or_key_policy_reaching_every_key_is_caught(production: StackRun) -> None:
    docs = copy.deepcopy(documents(production))
    identity = next(
        d
        for d in docs
        if d.kind == "identity"
        and any("kms:Decrypt" in json.dumps(s.get("Action")) for s in d.body["Statement"])
    )
    key = next(d for d in docs if d.kind == "key")
    for statement in identity.body["Statement"]:
        if "kms:Decrypt" in json.dumps(statement.get("Action")):
            statement["Resource"] = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/*"
    key.body["Statement"][1]["Action"] = "kms:*"
    found = every_key_grants([identity, key])
    assert len(found) == 2, found
    assert "key/*" in found[0] and "kms:* for" in found[1]
