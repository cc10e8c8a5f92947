"""What each access-control grant allows, pinned as literals, and one property over all of them.

Tests elsewhere pin who holds a role; a change that widens what a role allows while leaving its
holders alone passes those. Here every grant the program defines is written out: each search
domain (FGAC) role's index patterns and action groups, each Kubernetes Role whole (its rules and
its labels: an aggregation label would lend its rules to a built-in role), each KMS key policy
whole (every statement's effect, principal, action, resource and condition). And over all of
them: no role except the administrators' covers every index, every namespace or every key; no
role lends or borrows rules by aggregation; no statement grants by exclusion (NotAction,
NotResource, NotPrincipal); and the AWS-managed policies attached by ARN, whose documents the
render does not hold, are listed with their reasons. Each property has a negative control.
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
        # No write to anything that carries a pod template (scaling goes through the scale
        # subresource, restarts through pod deletion).
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
SIGN_IN_READER = [
    {
        "apiGroups": [""],
        "resources": ["secrets"],
        "resourceNames": ["operator-sso"],
        "verbs": ["get", "list", "watch"],
    }
]


def labels(component: str, name: str) -> dict[str, str]:
    """The program's labels on a role (components/shared/conventions.py): none of them an
    `rbac.authorization.k8s.io/aggregate-to-*` label, which would merge the role's rules into
    Kubernetes' built-in `view`, `edit` or `admin` (and so into everyone who holds those)."""
    return {
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "financial-planning",
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/managed-by": "pulumi",
    }


SRE_ROLE = {"labels": labels("rbac", "sre"), "rules": SRE_RULES}
SIGN_IN_ROLE = {"labels": labels("edge", "alb-sign-in-reader"), "rules": SIGN_IN_READER}
# (kind, namespace, name) -> everything of the role but its apiVersion and kind: its labels and
# annotations, its rules and (for a ClusterRole) any aggregationRule, per stack.
KUBERNETES_ROLES: dict[str, dict[tuple[str, str | None, str], Any]] = {
    "production": {
        ("ClusterRole", None, "financial-planning:sre"): SRE_ROLE,
        ("Role", "istio-ingress", "alb-sign-in-reader"): SIGN_IN_ROLE,
    },
    "staging": {("ClusterRole", None, "financial-planning:sre"): SRE_ROLE},
    "development": {},
}
# Kubernetes' ClusterRole aggregation (Using RBAC Authorization, "Aggregated ClusterRoles";
# kubernetes plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go: `admin`, `edit` and
# `view` aggregate every ClusterRole labelled rbac.authorization.k8s.io/aggregate-to-<role>).
AGGREGATION_LABEL = "rbac.authorization.k8s.io/aggregate-to-"
# Bindings that reach every namespace, other than the administrators' (who are cluster-admins
# through EKS access policies, not RBAC): the auditors read the whole cluster with Kubernetes'
# built-in `view`, which reads no Secret and cannot exec (components/security/rbac.py).
CLUSTER_WIDE_READERS = {"financial-planning:auditors": "view"}
# The EKS access policy associations: only the administrators' and the deployer's, with
# cluster scope (the stack files' `access.platformAdmins` and `access.deployer`).
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
EKS_ADMINS = {
    # The administrators and each stack's own deploy role (bootstrap/: trusted only for the
    # stack's GitHub environment), which runs `pulumi up` against the cluster.
    "production": {
        f"arn:aws:iam::{ACCOUNT_ID}:role/platform-admin",
        f"arn:aws:iam::{ACCOUNT_ID}:role/financial-planning-github-production-deploy",
    },
    "staging": {f"arn:aws:iam::{ACCOUNT_ID}:role/financial-planning-github-staging-deploy"},
    "development": set(),
}


def kubernetes_roles(run: StackRun) -> dict[tuple[str, str | None, str], Any]:
    return roles_of(kubernetes_objects(run))


def roles_of(objects: list[dict[str, Any]]) -> dict[tuple[str, str | None, str], Any]:
    found = {}
    for o in objects:
        if o["kind"] not in ("Role", "ClusterRole"):
            continue
        meta = o["metadata"]
        unpinned = set(meta) - {"name", "namespace", "labels"}
        assert not unpinned, f"{meta['name']}: metadata {sorted(unpinned)} not pinned here"
        found[(o["kind"], meta.get("namespace"), meta["name"])] = {
            "labels": meta.get("labels") or {},
            **{k: v for k, v in o.items() if k not in ("apiVersion", "kind", "metadata")},
        }
    return found


def aggregated_roles(objects: list[dict[str, Any]]) -> list[str]:
    """Roles that lend their rules to others' (an aggregation label) or take others' rules (an
    aggregationRule): either widens a grant without its rules changing."""
    found = []
    for o in objects:
        if o["kind"] not in ("Role", "ClusterRole"):
            continue
        name = o["metadata"]["name"]
        found += [
            f"{name}: label {label}"
            for label in sorted(o["metadata"].get("labels") or {})
            if label.startswith(AGGREGATION_LABEL)
        ]
        if "aggregationRule" in o:
            found.append(f"{name}: aggregationRule")
    return found


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
def test_no_role_lends_or_borrows_rules_by_aggregation(
    runs: dict[str, StackRun], stack: str
) -> None:
    assert aggregated_roles(kubernetes_objects(runs[stack])) == []


def test_an_aggregation_label_or_rule_is_caught(production: StackRun) -> None:
    """Negative control: the SRE role labelled into `view` would hand its pod deletes and
    scale writes to every holder of `view` (the auditors, cluster-wide)."""
    objects = copy.deepcopy(kubernetes_objects(production))
    [sre] = [o for o in objects if o["kind"] == "ClusterRole"]
    sre["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] = "true"
    sre["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {"team": "sre"}}]}
    assert aggregated_roles(objects) == [
        "financial-planning:sre: label rbac.authorization.k8s.io/aggregate-to-view",
        "financial-planning:sre: aggregationRule",
    ]
    # The pinned literals no longer match either: the label and the rule each differ.
    found = roles_of(objects)[("ClusterRole", None, "financial-planning:sre")]
    assert found != SRE_ROLE
    assert {k: v for k, v in found.items() if k != "aggregationRule"} != SRE_ROLE
    del found["labels"]["rbac.authorization.k8s.io/aggregate-to-view"]
    assert found != SRE_ROLE


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
ADMINISTRATION = {
    "Sid": "AccountAdministration",
    "Effect": "Allow",
    "Principal": ROOT,
    "Action": "kms:*",
    "Resource": "*",
}


def logs_may_use(log_group: str) -> dict[str, Any]:
    """CloudWatch Logs encrypting one log group: the encryption context CloudWatch Logs
    sends names the log group's ARN (CloudWatch Logs User Guide, "Encrypt log data in
    CloudWatch Logs using AWS KMS", the kms:EncryptionContext:aws:logs:arn condition)."""
    return {
        "Sid": "ControlPlaneLogs",
        "Effect": "Allow",
        "Principal": {"Service": f"logs.{REGION}.amazonaws.com"},
        "Action": [
            "kms:Encrypt*",
            "kms:Decrypt*",
            "kms:ReEncrypt*",
            "kms:GenerateDataKey*",
            "kms:Describe*",
        ],
        "Resource": "*",
        "Condition": {
            "ArnLike": {
                "kms:EncryptionContext:aws:logs:arn": (
                    f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{log_group}"
                )
            }
        },
    }


def key_policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def log_key(log_group: str) -> dict[str, Any]:
    return key_policy(ADMINISTRATION, logs_may_use(log_group))


def trail_key(stack: str) -> dict[str, Any]:
    """CloudTrail's three sections for a trail (CloudTrail User Guide, "Configure AWS KMS key
    policies for CloudTrail"): encrypt log files of this account's trails for this trail only
    (the cloudtrail encryption context and aws:SourceArn); kms:Decrypt, which creating or
    updating a trail needs when its bucket uses an S3 Bucket Key, as the guide gives it (no
    condition); DescribeKey for this trail only, under no encryption-context condition
    (DescribeKey carries none, so such a condition would never match)."""
    this_trail = {
        "aws:SourceArn": (
            f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:trail/financial-planning-{stack}-audit"
        )
    }
    return key_policy(
        ADMINISTRATION,
        {
            "Sid": "AllowCloudTrailEncryptLogs",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:GenerateDataKey*",
            "Resource": "*",
            "Condition": {
                "StringEquals": this_trail,
                "StringLike": {
                    "kms:EncryptionContext:aws:cloudtrail:arn": (
                        f"arn:aws:cloudtrail:*:{ACCOUNT_ID}:trail/*"
                    )
                },
            },
        },
        {
            "Sid": "AllowCloudTrailDecryptTrail",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:Decrypt",
            "Resource": "*",
        },
        {
            "Sid": "AllowCloudTrailAccess",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:DescribeKey",
            "Resource": "*",
            "Condition": {"StringEquals": this_trail},
        },
    )


FINDINGS_KEY = key_policy(
    ADMINISTRATION,
    {
        "Sid": "EventBridgePublishes",
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}},
    },
)
# Per stack, alias -> the whole key policy (every statement's Sid, Effect, Principal, Action,
# Resource and Condition), or None for AWS's default key policy (the account administers the
# key; IAM policies grant its use).
KEY_POLICIES: dict[str, dict[str, Any]] = {
    "production": {
        "financial-planning-production-secrets": None,
        "financial-planning-production-redis": None,
        "financial-planning-production-postgres": None,
        "financial-planning-production-database-recovery": None,
        "financial-planning-production-documents": None,
        "fp-production-search": None,
        "financial-planning-production-volumes": None,
        "aws-waf-logs-financial-planning-production-edge": log_key(
            "aws-waf-logs-financial-planning-production-edge"
        ),
        "financial-planning-production-eks": log_key(
            "/aws/eks/financial-planning-production/cluster"
        ),
        "financial-planning-production-flow-logs": log_key(
            "/aws/vpc/financial-planning-production/flow-logs"
        ),
        "financial-planning-production-security-findings": FINDINGS_KEY,
        "financial-planning-production-audit": trail_key("production"),
        # The search domain's four log groups (audit, application, index and search slow logs),
        # all under its own prefix; the deploy runner's CodeBuild log group.
        "fp-production-search-logs": log_key("/aws/opensearch/domains/fp-production-search/*"),
        "financial-planning-production-runner-logs": log_key(
            "/aws/codebuild/financial-planning-production-runner"
        ),
    },
    "staging": {
        "financial-planning-staging-secrets": None,
        "financial-planning-staging-redis": None,
        "financial-planning-staging-postgres": None,
        "financial-planning-staging-documents": None,
        "fp-staging-search": None,
        "financial-planning-staging-volumes": None,
        "aws-waf-logs-financial-planning-staging-edge": log_key(
            "aws-waf-logs-financial-planning-staging-edge"
        ),
        "financial-planning-staging-eks": log_key("/aws/eks/financial-planning-staging/cluster"),
        "financial-planning-staging-flow-logs": log_key(
            "/aws/vpc/financial-planning-staging/flow-logs"
        ),
        "fp-staging-search-logs": log_key("/aws/opensearch/domains/fp-staging-search/*"),
        "financial-planning-staging-runner-logs": log_key(
            "/aws/codebuild/financial-planning-staging-runner"
        ),
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
        found[alias] = None if policy is None else json.loads(policy)
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
def test_each_key_policy_is_exactly_its_statements(runs: dict[str, StackRun], stack: str) -> None:
    assert key_policies(runs[stack]) == KEY_POLICIES[stack]


@pytest.mark.parametrize(
    "widen",
    [
        # Any log group of the account, not the cluster's.
        lambda s: s["Condition"]["ArnLike"].update(
            {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:*"}
        ),
        lambda s: s.pop("Condition"),
        lambda s: s.update(Resource=["*", "arn:aws:kms:*:*:key/*"]),
        lambda s: s.update(Effect="Deny"),
    ],
)
def test_a_changed_condition_resource_or_effect_fails_the_pin(
    production: StackRun, widen: Any
) -> None:
    """Negative control: the pin compares whole statements, not only who and what."""
    policies = copy.deepcopy(key_policies(production))
    policy = policies["financial-planning-production-eks"]
    widen(policy["Statement"][1])
    assert policies != KEY_POLICIES["production"]


# Statements that grant by exclusion (everything but the listed actions, resources or
# principals) widen silently whenever AWS adds an action or the account a resource.
NEGATED = ("NotAction", "NotResource", "NotPrincipal")


def negated_statements(docs: list[Any]) -> list[str]:
    return [
        f"{document.where}: {key}"
        for document in docs
        for statement in document.body["Statement"]
        for key in NEGATED
        if key in statement
    ]


@pytest.mark.parametrize("stack", ["production", "staging", "development"])
def test_no_policy_grants_by_exclusion(runs: dict[str, StackRun], stack: str) -> None:
    assert negated_statements(documents(runs[stack])) == []


def test_a_not_action_statement_is_caught(production: StackRun) -> None:
    docs = copy.deepcopy(documents(production))
    identity = next(d for d in docs if d.kind == "identity")
    identity.body["Statement"][0]["NotAction"] = identity.body["Statement"][0].pop("Action")
    assert negated_statements(docs) == [f"{identity.where}: NotAction"]


# AWS-managed policies the program attaches by ARN: their documents are AWS's, not in the
# render, so the properties above cannot judge them. Each is listed with who gets it and why
# it is the documented way; any other managed policy ARN in a render is a finding.
MANAGED_POLICY = "arn:aws:iam::aws:policy/"
MANAGED_POLICIES = {
    f"{MANAGED_POLICY}AmazonEKSClusterPolicy": "the EKS cluster role: the permissions EKS "
    "requires of it (EKS User Guide, Amazon EKS cluster IAM role)",
    f"{MANAGED_POLICY}AmazonEKSWorkerNodePolicy": "the node roles: kubelet's EC2 and EKS "
    "describes (EKS User Guide, Amazon EKS node IAM role)",
    f"{MANAGED_POLICY}AmazonEC2ContainerRegistryPullOnly": "the node roles: image pulls from "
    "ECR, read-only (EKS User Guide, Amazon EKS node IAM role)",
    f"{MANAGED_POLICY}AmazonEKS_CNI_Policy": "the VPC CNI's service account (IRSA): "
    "the ENIs and addresses it manages (EKS User Guide, Amazon VPC CNI IAM role)",
    f"{MANAGED_POLICY}service-role/AmazonEBSCSIDriverPolicy": "the EBS CSI driver's service "
    "account (IRSA): volumes and snapshots (EKS User Guide, Amazon EBS CSI driver)",
    f"{MANAGED_POLICY}service-role/AWSBackupServiceRolePolicyForBackup": "the AWS Backup "
    "service role: taking the database's backups (AWS Backup Developer Guide, default "
    "service role)",
    f"{MANAGED_POLICY}service-role/AWSBackupServiceRolePolicyForRestores": "the AWS Backup "
    "service role: restoring them",
}


def managed_policy_arns(inputs_by_resource: list[tuple[str, Any]]) -> dict[str, set[str]]:
    """Every AWS-managed policy ARN any resource input names, with the resources naming it."""
    found: dict[str, set[str]] = {}

    def collect(where: str, value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                collect(where, item)
        elif isinstance(value, list):
            for item in value:
                collect(where, item)
        elif isinstance(value, str) and value.startswith(MANAGED_POLICY):
            found.setdefault(value, set()).add(where)

    for where, inputs in inputs_by_resource:
        collect(where, inputs)
    return found


def unlisted_managed_policies(inputs_by_resource: list[tuple[str, Any]]) -> list[str]:
    return [
        f"{arn} attached by {sorted(where)}"
        for arn, where in sorted(managed_policy_arns(inputs_by_resource).items())
        if arn not in MANAGED_POLICIES
    ]


def test_every_aws_managed_policy_attached_is_listed_with_its_reason(
    runs: dict[str, StackRun],
) -> None:
    attached: set[str] = set()
    for run in runs.values():
        inputs = [(r.urn, r.inputs) for r in run.resources]
        assert unlisted_managed_policies(inputs) == [], run.stack
        attached |= set(managed_policy_arns(inputs))
    # No listed exemption outlives its attachment.
    assert attached == set(MANAGED_POLICIES)


def test_an_unlisted_managed_policy_is_caught() -> None:
    admin = f"{MANAGED_POLICY}AdministratorAccess"
    inputs = [("urn:x", {"role": "r", "policyArn": admin}), ("urn:y", {"managedPolicyArns": []})]
    assert unlisted_managed_policies(inputs) == [f"{admin} attached by ['urn:x']"]


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
