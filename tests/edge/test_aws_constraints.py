"""What AWS would refuse in the edge, search access and logs, which mocks accept: with sources."""

from __future__ import annotations

import ipaddress
import json
import re
from collections import defaultdict

from offline.engine import StackRun
from tests.lookup import key_by_alias, objects, policy

# IAM quotas: a role's inline policies together at most 10,240 characters, whitespace not
# counted (IAM User Guide, "IAM and AWS STS quotas").
ROLE_INLINE_LIMIT = 10_240
# ACM RequestCertificate, KeyAlgorithm: what may be requested (the others are import-only).
REQUESTABLE_KEY_ALGORITHMS = {"RSA_2048", "EC_prime256v1", "EC_secp384r1"}
# AWS WAF API reference: entity names 1-128 of word characters and hyphens; descriptions at
# most 256 characters.
WAF_NAME = r"[\w-]{1,128}"


def test_every_roles_inline_policies_fit_iams_quota(stack_run: StackRun) -> None:
    total: dict[str, int] = defaultdict(int)
    for inline in stack_run.of_type("aws:iam/rolePolicy:RolePolicy"):
        total[inline.inputs["role"]] += len(json.dumps(policy(inline), separators=(",", ":")))
    assert total and max(total.values()) <= ROLE_INLINE_LIMIT, max(total.values())


def test_the_waf_log_key_lets_cloudwatch_logs_use_it_for_that_log_group_only(
    stack_run: StackRun,
) -> None:
    [group] = [
        g
        for g in stack_run.of_type("aws:cloudwatch/logGroup:LogGroup")
        if g.inputs["name"].startswith("aws-waf-logs-")
    ]
    key = key_by_alias(stack_run, group.inputs["name"])
    assert group.inputs["kmsKeyId"] == key.state["arn"]
    [logs] = [
        s
        for s in json.loads(key.inputs["policy"])["Statement"]
        if s.get("Principal") == {"Service": "logs.us-east-1.amazonaws.com"}
    ]
    # CloudWatch Logs encrypts with a key only where its key policy names the logs service
    # (CloudWatch Logs User Guide, "Encrypt log data using AWS KMS").
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"].endswith(
        f":log-group:{group.inputs['name']}"
    )


def test_the_certificate_is_one_acm_issues(stack_run: StackRun) -> None:
    certificate = stack_run.one("aws:acm/certificate:Certificate").inputs
    assert certificate["keyAlgorithm"] in REQUESTABLE_KEY_ALGORITHMS
    assert certificate["options"] == {"certificateTransparencyLoggingPreference": "ENABLED"}


def test_waf_names_and_addresses_are_what_its_api_takes(stack_run: StackRun) -> None:
    for resource in (
        *stack_run.of_type("aws:wafv2/webAcl:WebAcl"),
        *stack_run.of_type("aws:wafv2/ipSet:IpSet"),
    ):
        assert re.fullmatch(WAF_NAME, resource.inputs["name"]), resource.inputs["name"]
        assert len(resource.inputs.get("description", "")) <= 256
    for ip_set in stack_run.of_type("aws:wafv2/ipSet:IpSet"):
        for cidr in ip_set.inputs["addresses"]:
            # IPSet.Addresses: CIDR notation, any prefix but /0 (AWS WAF API reference).
            assert 1 <= ipaddress.ip_network(cidr).prefixlen <= 32, cidr


def test_the_ingress_group_name_is_one_the_controller_takes(stack_run: StackRun) -> None:
    # alb.ingress.kubernetes.io/group.name: lowercase alphanumerics, "-" and ".", at most 63.
    for ingress in objects(stack_run, "Ingress").values():
        group = ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/group.name"]
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]{0,62}", group), group


def test_the_pod_identity_associations_name_the_stacks_cluster(stack_run: StackRun) -> None:
    associations = stack_run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    # The search bootstrap's and the database bootstrap's.
    assert len(associations) == 2
    cluster = stack_run.one("aws:eks/cluster:Cluster")
    for association in associations:
        assert association.inputs["clusterName"] == cluster.state["name"]
