"""Least privilege over every IAM document of every stack, with a negative control per rule."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from offline.engine import StackRun
from tests.iam_properties import Document, documents, own_arns, problems
from tests.lookup import irsa_role, service_role


def test_every_document_of_the_render_is_least_privilege(stack_run: StackRun) -> None:
    found = documents(stack_run)
    kinds = {d.kind for d in found}
    assert kinds == {"identity", "resource", "key", "trust"}
    assert len(found) >= 20
    own = own_arns(stack_run)
    assert [p for d in found for p in problems(d, own)] == []


def document_of(run: StackRun, urn_part: str, kind: str) -> Document:
    return next(d for d in documents(run) if urn_part in d.where and d.kind == kind)


def role_inline(run: StackRun, role_urn_name: str) -> Document:
    return document_of(run, f"aws:iam/rolePolicy:RolePolicy::{role_urn_name}", "identity")


def widened(document: Document, change: Any) -> Document:
    body = copy.deepcopy(document.body)
    change(body["Statement"])
    return Document(document.where, document.kind, body)


def assert_caught(run: StackRun, document: Document, change: Any, needle: str) -> None:
    own = own_arns(run)
    assert problems(document, own) == []
    found = problems(widened(document, change), own)
    assert found and all(needle in p for p in found), found


def set_resource(index: int, value: Any) -> Any:
    def change(statements: list[dict[str, Any]]) -> None:
        statements[index]["Resource"] = value

    return change


def test_an_irsa_role_with_its_s3_object_actions_widened_is_caught(production: StackRun) -> None:
    role = irsa_role(production, "financial-planning", "document-service")
    document = role_inline(production, role.name)
    objects = next(
        i for i, s in enumerate(document.body["Statement"]) if "s3:PutObject" in s["Action"]
    )
    assert_caught(production, document, set_resource(objects, "*"), "on Resource '*'")


def test_kms_decrypt_widened_to_every_key_is_caught(production: StackRun) -> None:
    role = irsa_role(production, "financial-planning", "document-service")
    document = role_inline(production, role.name)
    kms = next(i for i, s in enumerate(document.body["Statement"]) if "kms:Decrypt" in s["Action"])
    assert_caught(production, document, set_resource(kms, "*"), "on Resource '*'")


def test_the_cluster_roles_kms_policy_widened_is_caught(production: StackRun) -> None:
    role = service_role(production, "eks.amazonaws.com")
    document = role_inline(production, f"{role.name}-kms")
    assert_caught(production, document, set_resource(0, "*"), "on Resource '*'")


def test_action_star_and_service_wide_actions_are_caught(production: StackRun) -> None:
    role = service_role(production, "vpc-flow-logs.amazonaws.com")
    document = role_inline(production, role.name)

    def star(statements: list[dict[str, Any]]) -> None:
        statements[0]["Action"] = "*"

    def service_wide(statements: list[dict[str, Any]]) -> None:
        statements[0]["Action"] = ["logs:*"]

    assert_caught(production, document, star, "Action '*'")
    assert_caught(production, document, service_wide, "service-wide logs:*")


def test_a_foreign_arn_is_caught(production: StackRun) -> None:
    role = irsa_role(production, "external-secrets-system", "external-secrets")
    document = role_inline(production, role.name)
    foreign = "arn:aws:secretsmanager:us-east-1:999999999999:secret:someone-else-AbCdEf"

    def add(statements: list[dict[str, Any]]) -> None:
        statements[0]["Resource"] = [*statements[0]["Resource"], foreign]

    assert_caught(production, document, add, "is not this stack's")


def test_pass_role_on_any_role_is_caught(production: StackRun) -> None:
    role = irsa_role(production, "autoscaling-system", "cluster-autoscaler")
    document = role_inline(production, role.name)

    def pass_any(statements: list[dict[str, Any]]) -> None:
        statements.append({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"})

    assert_caught(production, document, pass_any, "iam:PassRole")


def test_the_autoscalers_writes_without_their_tag_condition_are_caught(
    production: StackRun,
) -> None:
    role = irsa_role(production, "autoscaling-system", "cluster-autoscaler")
    document = role_inline(production, role.name)

    def unconditioned(statements: list[dict[str, Any]]) -> None:
        del statements[1]["Condition"]

    assert_caught(production, document, unconditioned, "on Resource '*' without a condition")


@pytest.mark.parametrize("claim", [":aud", ":sub"])
def test_a_web_identity_trust_missing_sub_or_aud_is_caught(
    production: StackRun, claim: str
) -> None:
    role = irsa_role(production, "autoscaling-system", "cluster-autoscaler")
    document = Document(role.urn, "trust", json.loads(role.inputs["assumeRolePolicy"]))

    def drop(statements: list[dict[str, Any]]) -> None:
        equals = statements[0]["Condition"]["StringEquals"]
        for key in [k for k in equals if k.endswith(claim)]:
            del equals[key]

    assert_caught(production, document, drop, "web identity trust without")


def test_a_resource_policy_open_to_anyone_is_caught(production: StackRun) -> None:
    document = document_of(production, "aws:opensearch/domain:Domain", "resource")

    def anyone(statements: list[dict[str, Any]]) -> None:
        statements[0]["Principal"] = {"AWS": "*"}

    assert_caught(production, document, anyone, "allows any principal")


def test_a_key_policy_granting_a_service_without_condition_is_caught(
    production: StackRun,
) -> None:
    document = document_of(production, "aws:kms/key:Key", "key")

    def unconditioned(statements: list[dict[str, Any]]) -> None:
        for statement in statements:
            statement.pop("Condition", None)

    assert_caught(production, document, unconditioned, "without a condition")


def statement_index(document: Document, sid: str) -> int:
    return next(i for i, s in enumerate(document.body["Statement"]) if s.get("Sid") == sid)


def test_the_load_balancer_controller_changes_only_what_carries_this_clusters_tag(
    production: StackRun,
) -> None:
    role = irsa_role(production, "edge-system", "aws-load-balancer-controller")
    document = role_inline(production, role.name)
    retag = statement_index(document, "RetagOwnLoadBalancers")

    def another_cluster(statements: list[dict[str, Any]]) -> None:
        equals = statements[retag]["Condition"]["StringEquals"]
        for key in equals:
            equals[key] = "financial-planning-staging"

    assert_caught(production, document, another_cluster, "is not this stack's")


def test_a_controllers_delegated_write_is_refused_to_any_other_role(production: StackRun) -> None:
    role = irsa_role(production, "autoscaling-system", "cluster-autoscaler")
    document = role_inline(production, role.name)

    def register_anywhere(statements: list[dict[str, Any]]) -> None:
        statements.append(
            {"Effect": "Allow", "Action": "elasticloadbalancing:RegisterTargets", "Resource": "*"}
        )

    assert_caught(production, document, register_anywhere, "without a condition")


def test_route53_writes_stay_in_the_stacks_zone(production: StackRun) -> None:
    role = irsa_role(production, "cert-manager", "cert-manager")
    document = role_inline(production, role.name)
    changes = statement_index(document, "ChangeStatus")

    def write_changes(statements: list[dict[str, Any]]) -> None:
        statements[changes]["Action"] = "route53:ChangeResourceRecordSets"

    def another_zone(statements: list[dict[str, Any]]) -> None:
        statements[0]["Resource"] = "arn:aws:route53:::hostedzone/ZSOMEONEELSE"

    assert_caught(production, document, write_changes, "is not this stack's")
    assert_caught(production, document, another_zone, "is not this stack's")
