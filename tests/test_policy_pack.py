"""The CrossGuard policy pack (policy/): what `pulumi preview --policy-pack policy` enforces.

The policies are plain functions, so they run here against each rendered stack exactly as the
analyzer would run them (policy/offline.py builds pulumi-policy's own argument objects, with its
unknown-checking proxies). Every policy must pass both stacks; each must also reject at least one
deliberately broken copy of a real resource, or it checks nothing. Last, the pack is started the
way the CLI starts it and questioned over gRPC, so the entry point, the enforcement levels and
the stack name the protect policy reads are those of a real run.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import json
import os
import select
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from offline.engine import RecordedResource, StackRun
from policy import policies as p
from policy.offline import RENDERED_UNKNOWN, Render, Violation, evaluate, pack_policies

POLICY_DIR = Path(__file__).resolve().parent.parent / "policy"

# The pack's policies, stated as literals: one dropping out (or a new one without tests) fails.
RESOURCE_POLICIES = [
    "encryption-at-rest",
    "encryption-in-transit",
    "s3-no-public-policy",
    "no-world-ingress",
    "imdsv2-required",
    "eks-endpoint-access",
    "workload-pod-security",
    "workload-resources",
    "workload-immutable-images",
]
STACK_POLICIES = ["s3-bucket-encryption", "s3-public-access-block", "protect-stateful-resources"]
ALL_POLICIES = sorted(RESOURCE_POLICIES + STACK_POLICIES)


def test_the_pack_lists_exactly_these_policies_all_mandatory() -> None:
    policies = pack_policies(StackRun("financial-planning", "production", []))
    assert sorted(policy.name for policy in policies) == ALL_POLICIES
    assert len({policy.name for policy in policies}) == len(policies)
    assert {x.name for x in policies if isinstance(x, ResourceValidationPolicy)} == set(
        RESOURCE_POLICIES
    )
    assert {x.name for x in policies if isinstance(x, StackValidationPolicy)} == set(STACK_POLICIES)
    assert all(policy.enforcement_level is EnforcementLevel.MANDATORY for policy in policies)
    assert p.ENFORCEMENT_LEVEL is EnforcementLevel.MANDATORY
    assert all(policy.description for policy in policies)


def test_the_pack_imports_only_what_its_virtualenv_has() -> None:
    """The CLI runs the pack in its own virtualenv (policy/requirements.txt: pulumi-policy and
    with it pulumi); an import of the program's packages would work here and fail there."""
    allowed = {"pulumi", "pulumi_policy", "policy", *sys.stdlib_module_names}
    for name in ("__main__.py", "policies.py"):
        tree = ast.parse((POLICY_DIR / name).read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert {module.split(".")[0] for module in imported} <= allowed, (name, imported)


def test_every_policy_passes_on_the_rendered_stack(stack_run: StackRun) -> None:
    violations = evaluate(stack_run)
    assert violations == [], "\n".join(f"{v.policy} {v.urn}: {v.message}" for v in violations)


def test_the_development_stack_passes_the_pack_too(runs: dict[str, StackRun]) -> None:
    # Its Kubernetes objects meet the same rules (pinned images, pod security, ...).
    violations = evaluate(runs["development"])
    assert violations == [], "\n".join(f"{v.policy} {v.urn}: {v.message}" for v in violations)


def test_the_stack_policies_find_what_they_check(stack_run: StackRun) -> None:
    """The S3 stack policies link each bucket to its configurations; a render without any
    would pass them vacuously."""
    stack = Render(stack_run).stack_args()
    buckets = [r for r in stack.resources if r.resource_type == p.BUCKET]
    assert buckets
    for bucket in buckets:
        for type_ in (p.BUCKET_ENCRYPTION, p.BUCKET_PUBLIC_ACCESS_BLOCK):
            linked = [
                r for r in stack.resources if r.resource_type == type_ and p.applies_to(r, bucket)
            ]
            assert len(linked) == 1, (bucket.urn, type_)
            assert [d.urn for d in linked[0].property_dependencies["bucket"]] == [bucket.urn]


# --- Negative controls: a broken copy of a real resource (or a minimal new one) per breach ----

Breaker = Callable[[StackRun], tuple[StackRun, str]]
Change = Callable[[dict[str, Any]], None]
POD = ("spec", "template", "spec")
CONTAINER = (*POD, "containers", 0)
CONTAINER_CONTEXT = (*CONTAINER, "securityContext")
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def _parent(inputs: Any, path: tuple[str | int, ...]) -> Any:
    for key in path[:-1]:
        inputs = inputs[key]
    return inputs


def put(*path: str | int, value: Any) -> Change:
    def change(inputs: dict[str, Any]) -> None:
        _parent(inputs, path)[path[-1]] = value

    return change


def drop(*path: str | int) -> Change:
    def change(inputs: dict[str, Any]) -> None:
        del _parent(inputs, path)[path[-1]]

    return change


def both(*changes: Change) -> Change:
    def change(inputs: dict[str, Any]) -> None:
        for each in changes:
            each(inputs)

    return change


def first(run: StackRun, type_: str) -> RecordedResource:
    found = run.of_type(type_)
    assert found, f"the render has no {type_} to break"
    return found[0]


def replaced(run: StackRun, old: RecordedResource | None, new: RecordedResource | None) -> StackRun:
    resources = [r for r in run.resources if r is not old]
    return dataclasses.replace(run, resources=resources + ([new] if new else []))


def edit(
    type_: str, change: Change, as_type: str | None = None, flagged: str | None = None
) -> Breaker:
    """The first `type_` resource of the render with `change` made to a copy of its inputs
    (and, with `as_type`, re-registered as that type: a StatefulSet from a Deployment). The
    changed resource must be reported, or with `flagged`, the first resource of that type."""

    def breaker(run: StackRun) -> tuple[StackRun, str]:
        original = first(run, type_)
        inputs, state = copy.deepcopy(original.inputs), copy.deepcopy(original.state)
        change(inputs)
        if state:  # the outputs (what stack policies see): the inputs plus computed values
            change(state)
        broken = dataclasses.replace(original, inputs=inputs, state=state)
        if as_type:
            kind = as_type.rsplit(":", 1)[1]
            inputs["kind"] = state["kind"] = kind
            broken = dataclasses.replace(
                broken, type=as_type, urn=original.urn.replace(type_, as_type)
            )
        return replaced(run, original, broken), first(run, flagged).urn if flagged else broken.urn

    return breaker


def add(type_: str, inputs: dict[str, Any]) -> Breaker:
    """A new, minimal resource of a type the program does not use (yet)."""

    def breaker(run: StackRun) -> tuple[StackRun, str]:
        name = "negative-control"
        urn = f"urn:pulumi:{run.stack}::{run.project}::{type_}::{name}"
        new = RecordedResource(
            urn, type_, name, "", True, False, "", [], [], inputs, id=f"{name}-id"
        )
        return replaced(run, None, new), urn

    return breaker


def without(type_: str, flagged: str) -> Breaker:
    """The render minus its first `type_` resource; the first `flagged` one must be reported."""

    def breaker(run: StackRun) -> tuple[StackRun, str]:
        return replaced(run, first(run, type_), None), first(run, flagged).urn

    return breaker


def extra_bucket(run: StackRun) -> tuple[StackRun, str]:
    """A second bucket with neither encryption configuration nor public access block."""
    original = first(run, p.BUCKET)
    new = dataclasses.replace(
        original,
        urn=original.urn + "-extra",
        name=original.name + "-extra",
        id=original.id + "-extra",
        inputs={"bucket": "financial-planning-extra"},
        state={"bucket": "financial-planning-extra"},
    )
    return replaced(run, None, new), new.urn


def unprotected(type_: str) -> Breaker:
    def breaker(run: StackRun) -> tuple[StackRun, str]:
        original = first(run, type_)
        assert original.protect
        broken = dataclasses.replace(original, protect=False)
        return replaced(run, original, broken), broken.urn

    return breaker


def with_statement(statement: dict[str, Any]) -> Change:
    def change(inputs: dict[str, Any]) -> None:
        document = json.loads(inputs["policy"])
        document["Statement"].append(statement)
        inputs["policy"] = json.dumps(document)

    return change


def as_cron_job(change: Change) -> Change:
    """A Deployment's pod template moved into a CronJob's job template, then `change`d."""

    def convert(inputs: dict[str, Any]) -> None:
        template = inputs["spec"]["template"]
        inputs["spec"] = {
            "schedule": "0 3 * * *",
            "jobTemplate": {"spec": {"template": template}},
        }
        change(inputs)

    return convert


CRON_CONTAINER = ("spec", "jobTemplate", "spec", "template", "spec", "containers", 0)
SHA = "0" * 64
WORLD_STATEMENT = {"Sid": "Public", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}

BREACHES: list[tuple[str, str, Breaker]] = [
    # encryption-at-rest
    (
        "encryption-at-rest",
        "rds-storage",
        edit(p.RDS_CLUSTER, put("storageEncrypted", value=False)),
    ),
    ("encryption-at-rest", "rds-key", edit(p.RDS_CLUSTER, drop("kmsKeyId"))),
    ("encryption-at-rest", "rds-instance", add(p.RDS_INSTANCE, {"storageEncrypted": False})),
    (
        "encryption-at-rest",
        "redis-at-rest",
        edit(p.ELASTICACHE_GROUP, put("atRestEncryptionEnabled", value=False)),
    ),
    (
        "encryption-at-rest",
        "redis-in-transit",
        edit(p.ELASTICACHE_GROUP, put("transitEncryptionEnabled", value=False)),
    ),
    (
        "encryption-at-rest",
        "opensearch",
        edit(p.OPENSEARCH_DOMAIN, put("encryptAtRest", "enabled", value=False)),
    ),
    ("encryption-at-rest", "secret", edit(p.SECRET, drop("kmsKeyId"))),
    ("encryption-at-rest", "log-group", edit(p.LOG_GROUP, drop("kmsKeyId"))),
    (
        "encryption-at-rest",
        "ecr-aes256",
        edit(
            p.ECR_REPOSITORY, put("encryptionConfigurations", value=[{"encryptionType": "AES256"}])
        ),
    ),
    ("encryption-at-rest", "ecr-default", edit(p.ECR_REPOSITORY, drop("encryptionConfigurations"))),
    ("encryption-at-rest", "backup-vault", edit(p.BACKUP_VAULT, drop("kmsKeyArn"))),
    ("encryption-at-rest", "sns-topic", add(p.SNS_TOPIC, {"name": "alerts"})),
    (
        "encryption-at-rest",
        "node-volume",
        edit(p.LAUNCH_TEMPLATE, put("blockDeviceMappings", 0, "ebs", "encrypted", value="false")),
    ),
    ("encryption-at-rest", "node-no-volume", edit(p.LAUNCH_TEMPLATE, drop("blockDeviceMappings"))),
    ("encryption-at-rest", "ebs-volume", add(p.EBS_VOLUME, {"size": 10})),
    ("encryption-at-rest", "eks-secrets", edit(p.EKS_CLUSTER, drop("encryptionConfig"))),
    (
        "encryption-at-rest",
        "storage-class",
        edit(p.STORAGE_CLASS, put("parameters", "encrypted", value="false")),
    ),
    # encryption-in-transit
    (
        "encryption-in-transit",
        "node-to-node",
        edit(p.OPENSEARCH_DOMAIN, put("nodeToNodeEncryption", "enabled", value=False)),
    ),
    (
        "encryption-in-transit",
        "plain-http",
        edit(p.OPENSEARCH_DOMAIN, put("domainEndpointOptions", "enforceHttps", value=False)),
    ),
    # s3-bucket-encryption
    ("s3-bucket-encryption", "no-config", without(p.BUCKET_ENCRYPTION, flagged=p.BUCKET)),
    (
        "s3-bucket-encryption",
        "config-of-another-bucket",
        edit(p.BUCKET_ENCRYPTION, put("bucket", value="another-bucket"), flagged=p.BUCKET),
    ),
    (
        "s3-bucket-encryption",
        "sse-s3",
        edit(
            p.BUCKET_ENCRYPTION,
            put("rules", 0, "applyServerSideEncryptionByDefault", value={"sseAlgorithm": "AES256"}),
            flagged=p.BUCKET,
        ),
    ),
    ("s3-bucket-encryption", "second-bucket", extra_bucket),
    # s3-public-access-block
    ("s3-public-access-block", "none", without(p.BUCKET_PUBLIC_ACCESS_BLOCK, flagged=p.BUCKET)),
    (
        "s3-public-access-block",
        "flag-off",
        edit(
            p.BUCKET_PUBLIC_ACCESS_BLOCK,
            put("restrictPublicBuckets", value=False),
            flagged=p.BUCKET,
        ),
    ),
    ("s3-public-access-block", "second-bucket", extra_bucket),
    # s3-no-public-policy
    (
        "s3-no-public-policy",
        "principal-star",
        edit(p.BUCKET_POLICY, with_statement(WORLD_STATEMENT)),
    ),
    (
        "s3-no-public-policy",
        "principal-aws-star",
        edit(p.BUCKET_POLICY, with_statement({**WORLD_STATEMENT, "Principal": {"AWS": ["*"]}})),
    ),
    ("s3-no-public-policy", "public-acl", edit(p.BUCKET, put("acl", value="public-read"))),
    ("s3-no-public-policy", "bucket-acl", add(p.BUCKET_ACL, {"acl": "public-read-write"})),
    # no-world-ingress
    (
        "no-world-ingress",
        "ingress-rule-ipv4",
        edit(
            p.SECURITY_GROUP_INGRESS_RULE,
            both(drop("referencedSecurityGroupId"), put("cidrIpv4", value="0.0.0.0/0")),
        ),
    ),
    (
        "no-world-ingress",
        "ingress-rule-ipv6",
        edit(
            p.SECURITY_GROUP_INGRESS_RULE,
            both(drop("referencedSecurityGroupId"), put("cidrIpv6", value="::/0")),
        ),
    ),
    (
        "no-world-ingress",
        "inline-ingress",
        edit(
            p.SECURITY_GROUP,
            put(
                "ingress",
                value=[
                    {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}
                ],
            ),
        ),
    ),
    (
        "no-world-ingress",
        "default-group",
        edit(
            p.DEFAULT_SECURITY_GROUP,
            put("ingress", value=[{"protocol": "-1", "ipv6CidrBlocks": ["::/0"]}]),
        ),
    ),
    (
        "no-world-ingress",
        "group-rule",
        add(
            p.SECURITY_GROUP_RULE,
            {"type": "ingress", "protocol": "tcp", "fromPort": 443, "cidrBlocks": ["0.0.0.0/0"]},
        ),
    ),
    # imdsv2-required
    (
        "imdsv2-required",
        "tokens-optional",
        edit(p.LAUNCH_TEMPLATE, put("metadataOptions", "httpTokens", value="optional")),
    ),
    (
        "imdsv2-required",
        "hop-limit",
        edit(p.LAUNCH_TEMPLATE, put("metadataOptions", "httpPutResponseHopLimit", value=3)),
    ),
    ("imdsv2-required", "no-options", edit(p.LAUNCH_TEMPLATE, drop("metadataOptions"))),
    # eks-endpoint-access
    (
        "eks-endpoint-access",
        "no-private",
        edit(p.EKS_CLUSTER, put("vpcConfig", "endpointPrivateAccess", value=False)),
    ),
    # Production's committed stack file lists no public ranges (its endpoint is private, with
    # endpointPublicAccess false and no publicAccessCidrs): each breaker opens it first.
    (
        "eks-endpoint-access",
        "world-cidr",
        edit(
            p.EKS_CLUSTER,
            both(
                put("vpcConfig", "endpointPublicAccess", value=True),
                put("vpcConfig", "publicAccessCidrs", value=["0.0.0.0/0"]),
            ),
        ),
    ),
    (
        "eks-endpoint-access",
        "no-cidrs",
        edit(p.EKS_CLUSTER, put("vpcConfig", "endpointPublicAccess", value=True)),
    ),
    (
        "eks-endpoint-access",
        "public-by-default",
        edit(p.EKS_CLUSTER, drop("vpcConfig", "endpointPublicAccess")),
    ),
    # workload-pod-security
    (
        "workload-pod-security",
        "privileged",
        edit(DEPLOYMENT, put(*CONTAINER_CONTEXT, "privileged", value=True)),
    ),
    (
        "workload-pod-security",
        "escalation",
        edit(DEPLOYMENT, put(*CONTAINER_CONTEXT, "allowPrivilegeEscalation", value=True)),
    ),
    (
        "workload-pod-security",
        "escalation-unset",
        edit(DEPLOYMENT, drop(*CONTAINER_CONTEXT, "allowPrivilegeEscalation")),
    ),
    (
        "workload-pod-security",
        "host-network",
        edit(DEPLOYMENT, put(*POD, "hostNetwork", value=True)),
    ),
    ("workload-pod-security", "host-pid", edit(DEPLOYMENT, put(*POD, "hostPID", value=True))),
    ("workload-pod-security", "host-ipc", edit(DEPLOYMENT, put(*POD, "hostIPC", value=True))),
    (
        "workload-pod-security",
        "host-path",
        edit(DEPLOYMENT, put(*POD, "volumes", 0, "hostPath", value={"path": "/var/run"})),
    ),
    (
        "workload-pod-security",
        "capability-added",
        edit(DEPLOYMENT, put(*CONTAINER_CONTEXT, "capabilities", "add", value=["NET_ADMIN"])),
    ),
    (
        "workload-pod-security",
        "capabilities-kept",
        edit(DEPLOYMENT, put(*CONTAINER_CONTEXT, "capabilities", "drop", value=["NET_RAW"])),
    ),
    (
        "workload-pod-security",
        "root-container",
        edit(DEPLOYMENT, put(*CONTAINER_CONTEXT, "runAsNonRoot", value=False)),
    ),
    (
        "workload-pod-security",
        "root-unset",
        edit(
            DEPLOYMENT,
            both(
                drop(*CONTAINER_CONTEXT, "runAsNonRoot"),
                drop(*POD, "securityContext", "runAsNonRoot"),
            ),
        ),
    ),
    (
        "workload-pod-security",
        "user-0",
        edit(DEPLOYMENT, put(*CONTAINER_CONTEXT, "runAsUser", value=0)),
    ),
    (
        "workload-pod-security",
        "seccomp-unconfined",
        edit(DEPLOYMENT, put(*CONTAINER_CONTEXT, "seccompProfile", value={"type": "Unconfined"})),
    ),
    (
        "workload-pod-security",
        "seccomp-unset",
        edit(
            DEPLOYMENT,
            both(
                drop(*CONTAINER_CONTEXT, "seccompProfile"),
                drop(*POD, "securityContext", "seccompProfile"),
            ),
        ),
    ),
    (
        "workload-pod-security",
        "init-container",
        edit(
            DEPLOYMENT,
            put(*POD, "initContainers", value=[{"name": "init", "image": "busybox:1.36"}]),
        ),
    ),
    (
        "workload-pod-security",
        "stateful-set",
        edit(
            DEPLOYMENT,
            put(*CONTAINER_CONTEXT, "privileged", value=True),
            as_type="kubernetes:apps/v1:StatefulSet",
        ),
    ),
    (
        "workload-pod-security",
        "daemon-set",
        edit(DEPLOYMENT, put(*POD, "hostNetwork", value=True), "kubernetes:apps/v1:DaemonSet"),
    ),
    (
        "workload-pod-security",
        "job",
        edit(DEPLOYMENT, put(*POD, "hostPID", value=True), "kubernetes:batch/v1:Job"),
    ),
    (
        "workload-pod-security",
        "cron-job",
        edit(
            DEPLOYMENT,
            as_cron_job(put(*CRON_CONTAINER, "securityContext", "privileged", value=True)),
            "kubernetes:batch/v1:CronJob",
        ),
    ),
    # workload-resources
    (
        "workload-resources",
        "no-memory-limit",
        edit(DEPLOYMENT, drop(*CONTAINER, "resources", "limits", "memory")),
    ),
    (
        "workload-resources",
        "no-cpu-request",
        edit(DEPLOYMENT, drop(*CONTAINER, "resources", "requests", "cpu")),
    ),
    (
        "workload-resources",
        "no-memory-request",
        edit(DEPLOYMENT, drop(*CONTAINER, "resources", "requests", "memory")),
    ),
    ("workload-resources", "no-resources", edit(DEPLOYMENT, drop(*CONTAINER, "resources"))),
    (
        "workload-resources",
        "cron-job",
        edit(
            DEPLOYMENT,
            as_cron_job(drop(*CRON_CONTAINER, "resources")),
            "kubernetes:batch/v1:CronJob",
        ),
    ),
    # workload-immutable-images
    (
        "workload-immutable-images",
        "latest",
        edit(DEPLOYMENT, put(*CONTAINER, "image", value="api:latest")),
    ),
    (
        "workload-immutable-images",
        "no-tag",
        edit(DEPLOYMENT, put(*CONTAINER, "image", value="123456789012.dkr.ecr.x/api")),
    ),
    (
        "workload-immutable-images",
        "port-no-tag",
        edit(DEPLOYMENT, put(*CONTAINER, "image", value="registry.local:5000/api")),
    ),
    (
        "workload-immutable-images",
        "bad-digest",
        edit(DEPLOYMENT, put(*CONTAINER, "image", value="api@sha256:1234")),
    ),
    (
        "workload-immutable-images",
        "cron-job",
        edit(
            DEPLOYMENT,
            as_cron_job(put(*CRON_CONTAINER, "image", value="api")),
            "kubernetes:batch/v1:CronJob",
        ),
    ),
    # protect-stateful-resources: one per stateful type, all present in production
    *[
        ("protect-stateful-resources", type_.split(":")[1], unprotected(type_))
        for type_ in sorted(p.STATEFUL_TYPES)
    ],
]


def policy_named(run: StackRun, name: str) -> list[Any]:
    return [policy for policy in pack_policies(run) if policy.name == name]


@pytest.fixture(scope="module")
def production_violations(production: StackRun) -> list[Violation]:
    """What the whole pack reports on the production render, evaluated once for every
    negative control's baseline: each policy is a function of the render alone, so its part
    of this is what it reports by itself."""
    return evaluate(production)


@pytest.mark.parametrize(
    ("policy", "breaker"),
    [(policy, breaker) for policy, _, breaker in BREACHES],
    ids=[f"{policy}:{label}" for policy, label, _ in BREACHES],
)
def test_each_policy_rejects_a_broken_resource(
    production: StackRun, production_violations: list[Violation], policy: str, breaker: Breaker
) -> None:
    broken, urn = breaker(production)
    before = [v for v in production_violations if v.policy == policy]
    assert not [v for v in before if v.urn == urn], before
    found = evaluate(broken, policy_named(broken, policy))
    assert [v for v in found if v.urn == urn], f"{policy} let {urn} through: {found}"


def test_what_a_policy_changes_no_other_policy_and_no_render_sees(production: StackRun) -> None:
    """Each policy gets arguments of its own (the analyzer deserializes the request per
    policy), though `evaluate` converts each resource's properties once."""
    deployments = {r.urn for r in production.of_type(DEPLOYMENT)}
    seen: list[Any] = []

    def change(args: Any, report: Any) -> None:
        if args.urn in deployments:
            args.props["spec"]["replicas"] = -1
            args.props["extra"] = "changed"

    def look(args: Any, report: Any) -> None:
        if args.urn in deployments:
            seen.append((args.props["spec"].get("replicas"), args.props.get("extra")))

    policies = [
        ResourceValidationPolicy(name, "negative control", validate, EnforcementLevel.MANDATORY)
        for name, validate in (("change", change), ("look", look), ("change-again", change))
    ]
    before = copy.deepcopy([r.inputs for r in production.resources])
    assert evaluate(production, policies * 2) == []
    assert len(seen) == 2 * len(deployments) > 0
    assert all(replicas != -1 and extra is None for replicas, extra in seen), seen
    assert [r.inputs for r in production.resources] == before


def test_every_policy_has_negative_controls() -> None:
    assert sorted({policy for policy, _, _ in BREACHES}) == ALL_POLICIES


def test_protection_is_required_in_production_only(production: StackRun) -> None:
    """Staging's resources are unprotected on purpose (it is torn down and rebuilt); the same
    unprotected resources as a production stack are reported."""
    bare = [dataclasses.replace(r, protect=False) for r in production.resources]
    as_staging = dataclasses.replace(production, stack="staging", resources=bare)
    as_production = dataclasses.replace(production, resources=bare)
    protect = "protect-stateful-resources"
    assert evaluate(as_staging, policy_named(as_staging, protect)) == []
    flagged = {v.urn for v in evaluate(as_production, policy_named(as_production, protect))}
    assert flagged == {r.urn for r in production.resources if r.type in p.STATEFUL_TYPES}


@pytest.mark.parametrize(
    ("image", "mutable"),
    [
        ("registry.local:5000/team/api:1.4.2", False),
        (f"api@sha256:{SHA}", False),
        (f"api:1.4.2@sha256:{SHA}", False),
        ("api:LATEST", True),
        ("api:", True),
        ("registry.local:5000/api", True),
    ],
)
def test_image_pinning(image: str, mutable: bool) -> None:
    assert (p.mutable_image_reason(image) is not None) is mutable


# --- Unknown values (preview): skipped, never a crash or a false violation --------------------


def unknown_everywhere(run: StackRun) -> StackRun:
    """The render with the values a preview may not know replaced by unknowns."""
    unknowns: dict[str, list[tuple[str | int, ...]]] = {
        DEPLOYMENT: [
            (*CONTAINER, "image"),
            (*CONTAINER, "securityContext"),
            (*CONTAINER, "resources", "requests"),
            (*POD, "securityContext"),
        ],
        p.LAUNCH_TEMPLATE: [("metadataOptions",), ("blockDeviceMappings", 0, "ebs", "encrypted")],
        p.EKS_CLUSTER: [("vpcConfig", "publicAccessCidrs"), ("encryptionConfig", "provider")],
        p.RDS_CLUSTER: [("kmsKeyId",), ("storageEncrypted",)],
        p.BUCKET_POLICY: [("policy",)],
        p.BUCKET_ENCRYPTION: [("bucket",)],
        p.BUCKET_PUBLIC_ACCESS_BLOCK: [("bucket",)],
        p.ECR_REPOSITORY: [("encryptionConfigurations",)],
        p.SECURITY_GROUP_INGRESS_RULE: [("referencedSecurityGroupId",)],
    }
    resources = []
    for resource in run.resources:
        inputs = copy.deepcopy(resource.inputs)
        for path in unknowns.get(resource.type, []):
            put(*path, value=RENDERED_UNKNOWN)(inputs)
        resources.append(dataclasses.replace(resource, inputs=inputs, state=inputs))
    return dataclasses.replace(run, resources=resources)


@pytest.fixture(scope="module")
def production_preview(production: StackRun) -> StackRun:
    """`unknown_everywhere` of production, made once for the offline and the served check
    (both only read it)."""
    return unknown_everywhere(production)


def test_unknown_values_are_skipped_offline(production_preview: StackRun) -> None:
    preview = production_preview
    props = Render(preview).resource_args(first(preview, DEPLOYMENT)).props
    with pytest.raises(UnknownValueError):
        lookup_directly = props["spec"]["template"]["spec"]["containers"][0]["image"]
        pytest.fail(f"the image should be unknown, not {lookup_directly}")
    assert evaluate(preview) == []


# --- The pack as the CLI runs it ---------------------------------------------------------------


@pytest.fixture(scope="module")
def analyzer() -> Iterator[Any]:
    """The pack started as `pulumi preview --policy-pack policy` starts it (the analyzer plugin
    runs `python -m pulumi.policy <engine> .` in the pack's directory), for stack production."""
    environment = {
        **os.environ,
        "PULUMI_PROJECT": "financial-planning",
        "PULUMI_STACK": "production",
        "PULUMI_DRY_RUN": "true",
    }
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."],
        cwd=POLICY_DIR,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    channel = None
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 60)
        port = process.stdout.readline().strip() if ready else ""
        if not port.isdigit():
            process.kill()
            _, errors = process.communicate(timeout=10)
            pytest.fail(f"the policy pack did not start: {port!r}\n{errors}")
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        if channel is not None:
            channel.close()
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


def struct(properties: dict[str, Any]) -> struct_pb2.Struct:
    engine_values = json.loads(
        json.dumps(properties).replace(f'"{RENDERED_UNKNOWN}"', f'"{UNKNOWN_STRING_VALUE}"')
    )
    return json_format.ParseDict(engine_values, struct_pb2.Struct())


def options(resource: RecordedResource) -> analyzer_pb2.AnalyzerResourceOptions:
    return analyzer_pb2.AnalyzerResourceOptions(
        protect=resource.protect, ignoreChanges=resource.ignore_changes, parent=resource.parent
    )


def analyze(analyzer: Any, resource: RecordedResource) -> list[Violation]:
    request = analyzer_pb2.AnalyzeRequest(
        type=resource.type,
        properties=struct(resource.inputs),
        urn=resource.urn,
        name=resource.name,
        options=options(resource),
    )
    return diagnostics(analyzer.Analyze(request), resource.urn)


def analyze_stack(analyzer: Any, run: StackRun) -> list[Violation]:
    render = Render(run)
    request = analyzer_pb2.AnalyzeStackRequest(
        resources=[
            analyzer_pb2.AnalyzerResource(
                urn=r.urn,
                type=r.type,
                name=r.name,
                properties=struct(render.outputs(r)),
                options=options(r),
                parent=r.parent,
                dependencies=r.dependencies,
                propertyDependencies={
                    key: analyzer_pb2.AnalyzerPropertyDependencies(urns=[d.urn for d in sources])
                    for key, sources in render.property_dependencies(r).items()
                },
            )
            for r in run.resources
        ]
    )
    return diagnostics(analyzer.AnalyzeStack(request))


def diagnostics(response: Any, default_urn: str = "") -> list[Violation]:
    """The response's diagnostics; any advisory one (a policy that could not run) fails."""
    found = []
    for diagnostic in response.diagnostics:
        assert diagnostic.enforcementLevel == analyzer_pb2.MANDATORY, diagnostic.message
        found.append(
            Violation(diagnostic.policyName, diagnostic.urn or default_urn, diagnostic.message)
        )
    return found


def test_the_served_pack_lists_every_policy_as_mandatory(analyzer: Any) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == p.PACK_NAME
    assert sorted(policy.name for policy in info.policies) == ALL_POLICIES
    assert {policy.enforcementLevel for policy in info.policies} == {analyzer_pb2.MANDATORY}


def test_the_served_pack_passes_production_and_catches_breaches(
    analyzer: Any, production: StackRun
) -> None:
    assert [v for r in production.resources for v in analyze(analyzer, r)] == []
    assert analyze_stack(analyzer, production) == []

    broken, urn = edit(p.RDS_CLUSTER, put("storageEncrypted", value=False))(production)
    [cluster] = [r for r in broken.resources if r.urn == urn]
    assert {(v.policy, v.urn) for v in analyze(analyzer, cluster)} == {("encryption-at-rest", urn)}

    # The protect policy reads the stack from PULUMI_STACK through pulumi.get_stack().
    broken, urn = unprotected(p.RDS_CLUSTER)(production)
    assert {(v.policy, v.urn) for v in analyze_stack(analyzer, broken)} == {
        ("protect-stateful-resources", urn)
    }
    broken, urn = without(p.BUCKET_PUBLIC_ACCESS_BLOCK, flagged=p.BUCKET)(production)
    assert {(v.policy, v.urn) for v in analyze_stack(analyzer, broken)} == {
        ("s3-public-access-block", urn)
    }


def test_the_served_pack_skips_unknown_values(analyzer: Any, production_preview: StackRun) -> None:
    preview = production_preview
    assert [v for r in preview.resources for v in analyze(analyzer, r)] == []
    assert analyze_stack(analyzer, preview) == []
