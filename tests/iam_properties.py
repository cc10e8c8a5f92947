"""Least privilege as a property of every IAM document a render holds.

Documents are found, not listed: any resource input that is a JSON policy (a `Statement`) is
one, so a role, key, bucket or domain policy added later is checked without a new test. Each
document is judged by its kind:

- identity (role inline or managed policy), resource (bucket, domain, secret policy):
  no `Action: "*"`, no service-wide `service:*`; a write or permission-management action on
  `Resource: "*"` only under a condition, or if it is on `RESOURCELESS_WRITES`; `iam:PassRole`
  only on named roles; every resource ARN is one of this stack's resources or AWS-managed;
  an `Allow` to `Principal: "*"` never, except in a VPC endpoint policy that denies every
  principal of another account (`account_fenced`);
  resources that others create for the stack (the ALB the load balancer controller makes)
  count as the stack's where the statement's condition pins a tag to this stack's cluster,
  or pins the stack's own subnets or VPC (the network interfaces CodeBuild makes for the
  runner's builds);
  writes the controllers need on what nothing can tag are listed, with their reasons, per role
  in `DELEGATED_WRITES`;
- key (KMS key policy): `kms:*` only for this account's root (the account administers its key;
  `Resource: "*"` there means the key itself); services only under a condition, except the
  grants in `UNCONDITIONED_KEY_GRANTS` (each with the AWS guide that states it so);
- trust (assume-role policy): a web identity trust pins both `sub` (one service account) and
  `aud` (`sts.amazonaws.com`); other trusts name an AWS service, never `*`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from offline.engine import ACCOUNT_ID, StackRun

Kind = Literal["identity", "resource", "key", "trust"]

# Read-only verbs: any resource is fine for them.
READ_VERBS = ("Describe", "Get", "List")
# Write actions that take no resource, so `Resource: "*"` is the only form IAM accepts (each
# with the Service Authorization Reference's word for it). None is needed today.
RESOURCELESS_WRITES: dict[str, str] = {}
# Per role (a fragment of its policy's URN): writes on resources that are neither the stack's
# nor taggable by it, each with why the role needs it unconditioned. Only these roles, only
# these actions.
_LISTENERS = "the ALB's listeners and rules carry no tag IAM can test (upstream iam_policy.json)"
DELEGATED_WRITES: dict[str, dict[str, str]] = {
    "lb-controller-operator-inline": {
        "wafv2:AssociateWebACL": "attaches the edge's web ACL to the ALB it made",
        "wafv2:DisassociateWebACL": "detaches it before deleting that ALB",
        "shield:CreateProtection": "Shield Advanced on the ALB it made",
        "shield:DeleteProtection": "and off again",
        "ec2:CreateSecurityGroup": "the ALB's group; tagged as the cluster's at creation "
        "(ec2:CreateTags is conditioned on that)",
        "ec2:AuthorizeSecurityGroupIngress": "opens the nodes' group to the ALB's (EKS made it)",
        "ec2:RevokeSecurityGroupIngress": "and closes it",
        "elasticloadbalancing:CreateListener": _LISTENERS,
        "elasticloadbalancing:DeleteListener": _LISTENERS,
        "elasticloadbalancing:CreateRule": _LISTENERS,
        "elasticloadbalancing:DeleteRule": _LISTENERS,
        "elasticloadbalancing:SetWebAcl": _LISTENERS,
        "elasticloadbalancing:ModifyListener": _LISTENERS,
        "elasticloadbalancing:AddListenerCertificates": _LISTENERS,
        "elasticloadbalancing:RemoveListenerCertificates": _LISTENERS,
        "elasticloadbalancing:ModifyRule": _LISTENERS,
        "elasticloadbalancing:SetRulePriorities": _LISTENERS,
        "elasticloadbalancing:AddTags": _LISTENERS,
        "elasticloadbalancing:RemoveTags": _LISTENERS,
        "elasticloadbalancing:RegisterTargets": "the gateway pods' addresses in the target "
        "groups it made (TargetGroupBinding semantics: no tag condition upstream)",
        "elasticloadbalancing:DeregisterTargets": "and out again",
    },
    "delivery:DeployRunner$aws:iam/rolePolicy:RolePolicy": {
        "ec2:CreateNetworkInterface": "CodeBuild makes each build's network interface in the "
        "runner's subnets (CodeBuild user guide, VPC service role policy)",
        "ec2:DeleteNetworkInterface": "and deletes it after the build",
    },
}
# ARNs no one owns that reads may name: Route 53's change records (GetChange after a write).
UNOWNED_READABLE = frozenset({"arn:aws:route53:::change/*"})


@dataclass(frozen=True)
class Owned:
    """What a render owns: its resources' ARNs and the tag value its controllers put on what
    they create for it (the cluster's name)."""

    arns: set[str]
    cluster: str


@dataclass(frozen=True)
class Document:
    where: str
    kind: Kind
    body: dict[str, Any]


def _kind(resource_type: str, key: str) -> Kind:
    if key == "assumeRolePolicy":
        return "trust"
    if resource_type == "aws:kms/key:Key":
        return "key"
    if resource_type in ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"):
        return "identity"
    return "resource"


def _policies(value: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _policies(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _policies(item, f"{path}[{index}]")
    elif isinstance(value, str) and value.lstrip().startswith("{") and "Statement" in value:
        body = json.loads(value)
        if isinstance(body, dict) and "Statement" in body:
            yield path, body


def documents(run: StackRun) -> list[Document]:
    found = []
    for resource in run.resources:
        for path, body in _policies(resource.inputs, ""):
            found.append(
                Document(f"{resource.urn} {path}", _kind(resource.type, path.split(".")[0]), body)
            )
    return found


def own_arns(run: StackRun) -> Owned:
    """Every ARN this stack's resources have (the mocks' outputs), secrets included, and the
    hosted zone its settings name (the stack's, though made outside it)."""
    arns: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)
        elif isinstance(value, str) and value.startswith("arn:"):
            arns.add(value)

    for resource in run.resources:
        collect(resource.state.get("arn"))
        collect(resource.state.get("masterUserSecrets"))
        cluster_id = resource.state.get("clusterResourceId")
        if cluster_id:
            # IAM database authentication names the cluster by its resource id.
            region = str(resource.state["arn"]).split(":")[3]
            arns.add(f"arn:aws:rds-db:{region}:{ACCOUNT_ID}:dbuser:{cluster_id}")
    settings = run.namespace["settings"]
    if settings.edge.enabled:
        arns.add(f"arn:aws:route53:::hostedzone/{settings.edge.hosted_zone.id}")
    if settings.delivery is not None:
        # The bootstrap's GitHub connection, which the stack's runner uses.
        arns.add(settings.delivery.github_connection)
    return Owned(arns, f"financial-planning-{run.stack}")


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _is_read(action: str) -> bool:
    verb = action.split(":", 1)[-1]
    return verb.startswith(READ_VERBS)


def _is_own(arn: str, own: Owned) -> bool:
    if arn.startswith("arn:aws:iam::aws:policy/"):
        return True
    base = arn.removesuffix("/*").removesuffix(":*")
    return base in own.arns or any(base.startswith(f"{mine}/") for mine in own.arns)


def _pins_own(condition: Any, own: Owned) -> bool:
    """The condition requires a resource or request tag to be this stack's cluster, or the
    resource to be in this stack's own subnets or VPC."""
    equals = (condition or {}).get("StringEquals", {})
    return any(
        (key.startswith(("aws:ResourceTag/", "aws:RequestTag/")) and value == own.cluster)
        or (
            key in ("ec2:Subnet", "ec2:Vpc")
            and bool(_listed(value))
            and all(_is_own(str(arn), own) for arn in _listed(value))
        )
        for key, value in equals.items()
    )


def _delegated(document: Document, actions: list[str]) -> bool:
    return any(
        fragment in document.where and all(a in allowed for a in actions)
        for fragment, allowed in DELEGATED_WRITES.items()
    )


# Key grants to a service without a condition, each with its source: the only ones allowed.
UNCONDITIONED_KEY_GRANTS: dict[tuple[str, str], str] = {
    # CloudTrail User Guide, "Configure AWS KMS key policies for CloudTrail", "Granting decrypt
    # permissions for trails": the statement a trail needs to be created or updated when its
    # bucket uses an S3 Bucket Key with the key, given there with no condition.
    ("cloudtrail.amazonaws.com", "kms:Decrypt"): "a trail's bucket with an S3 Bucket Key",
}


def _unconditioned_grant_allowed(principal: Any, actions: list[str]) -> bool:
    services = _listed((principal or {}).get("Service")) if isinstance(principal, dict) else []
    return (
        isinstance(principal, dict)
        and set(principal) == {"Service"}
        and bool(actions)
        and all((str(s), a) in UNCONDITIONED_KEY_GRANTS for s in services for a in actions)
    )


def account_fenced(document: Document) -> bool:
    """A VPC endpoint policy that denies everything to principals of other accounts: its
    Allow of everything then reaches this account's principals only, as GuardDuty's
    prerequisite page gives the guardduty-data endpoint's policy (GuardDuty User Guide,
    "Prerequisite - Creating an Amazon VPC endpoint")."""
    if "aws:ec2/vpcEndpoint:VpcEndpoint" not in document.where:
        return False
    return any(
        statement.get("Effect") == "Deny"
        and statement.get("Action") == "*"
        and statement.get("Resource") == "*"
        and statement.get("Principal") == "*"
        and statement.get("Condition") == {"StringNotEquals": {"aws:PrincipalAccount": ACCOUNT_ID}}
        for statement in _listed(document.body.get("Statement"))
    )


def problems(document: Document, own: Owned) -> list[str]:
    if account_fenced(document):
        return []
    found: list[str] = []
    root = f"arn:aws:iam::{ACCOUNT_ID}:root"
    for number, statement in enumerate(_listed(document.body.get("Statement"))):
        where = f"{document.where} statement {number}"
        if statement.get("Effect") == "Deny":
            continue  # a Deny only takes away
        if "NotAction" in statement or "NotResource" in statement:
            found.append(f"{where}: NotAction/NotResource grants everything else")
        actions = [str(a) for a in _listed(statement.get("Action"))]
        resources = [str(r) for r in _listed(statement.get("Resource"))]
        principal = statement.get("Principal")
        condition = statement.get("Condition")
        for action in actions:
            if action == "*":
                found.append(f"{where}: Action '*'")
            elif action.endswith(":*") and not (
                document.kind == "key" and principal == {"AWS": root}
            ):
                found.append(f"{where}: service-wide {action}")
        if document.kind == "trust":
            found.extend(_trust_problems(where, statement))
            continue
        if principal == "*" or principal == {"AWS": "*"}:
            found.append(f"{where}: allows any principal")
        if document.kind == "key":
            if (
                principal != {"AWS": root}
                and condition is None
                and not _unconditioned_grant_allowed(principal, actions)
            ):
                found.append(f"{where}: a key grant to {principal} without a condition")
            continue
        writes = [a for a in actions if not _is_read(a) and a not in RESOURCELESS_WRITES]
        # Delegated writes are the unconditioned ones; a statement with a condition must pin
        # this stack's tag instead.
        delegated = bool(writes) and condition is None and _delegated(document, writes)
        if "*" in resources and writes and condition is None and not delegated:
            found.append(f"{where}: {writes} on Resource '*' without a condition")
        if "iam:PassRole" in actions and any("*" in r for r in resources):
            found.append(f"{where}: iam:PassRole on {resources}")
        if _pins_own(condition, own) or delegated:
            continue
        found.extend(
            f"{where}: {arn} is not this stack's"
            for arn in resources
            if arn != "*" and not _is_own(arn, own) and not (arn in UNOWNED_READABLE and not writes)
        )
    return found


def _trust_problems(where: str, statement: dict[str, Any]) -> list[str]:
    found = []
    principal = statement.get("Principal") or {}
    actions = _listed(statement.get("Action"))
    if "sts:AssumeRoleWithWebIdentity" in actions:
        equals = (statement.get("Condition") or {}).get("StringEquals", {})
        subjects = [v for k, v in equals.items() if k.endswith(":sub")]
        audiences = [v for k, v in equals.items() if k.endswith(":aud")]
        if len(subjects) != 1 or not str(subjects[0]).startswith("system:serviceaccount:"):
            found.append(f"{where}: web identity trust without one pinned sub")
        elif "*" in str(subjects[0]):
            found.append(f"{where}: web identity sub with a wildcard")
        if audiences != ["sts.amazonaws.com"]:
            found.append(f"{where}: web identity trust without aud sts.amazonaws.com")
        if "Federated" not in principal:
            found.append(f"{where}: web identity trust without a federated principal")
    elif set(principal) != {"Service"}:
        found.append(f"{where}: a trust for {principal}, not an AWS service")
    return found
