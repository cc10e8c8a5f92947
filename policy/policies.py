"""The platform's guardrails as CrossGuard policies: plain validation functions with
pulumi-policy's signatures, so that `pulumi preview --policy-pack policy` runs them against the
engine's view of a deployment and the tests run the very same functions against the offline
render (see `policy/offline.py`).

Everything here depends on `pulumi` and `pulumi-policy` only: the CLI runs the pack in its own
virtualenv, where the program's packages (components, stacks, offline) are not installed.

During `pulumi preview` some properties are not known yet (an id or ARN of a resource still to be
created). pulumi-policy hands the properties over as read-only proxies that raise
`UnknownValueError` when such a value is read; every read below goes through `lookup` or
`elements`, which turn that into `UNKNOWN`, and a check whose input is `UNKNOWN` is skipped for
that value (it runs again, with the value known, on `pulumi up`). Nothing assumes plain dicts or
lists either: the proxies are `Mapping` and `Sequence`, not `dict` and `list`.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

PACK_NAME: Final = "financial-planning"
# Every policy blocks the deployment: these are the platform's floor, not advice.
ENFORCEMENT_LEVEL: Final = EnforcementLevel.MANDATORY
# Stacks whose stateful resources must be protected from `pulumi destroy` and replacement.
PROTECTED_STACKS: Final = frozenset({"production"})

# Resource type tokens (pulumi-aws 7, pulumi-kubernetes 4).
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
RDS_INSTANCE = "aws:rds/instance:Instance"
ELASTICACHE_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
OPENSEARCH_DOMAIN = "aws:opensearch/domain:Domain"
SECRET = "aws:secretsmanager/secret:Secret"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ECR_REPOSITORY = "aws:ecr/repository:Repository"
BACKUP_VAULT = "aws:backup/vault:Vault"
SNS_TOPIC = "aws:sns/topic:Topic"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
EC2_INSTANCE = "aws:ec2/instance:Instance"
EBS_VOLUME = "aws:ebs/volume:Volume"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
KMS_KEY = "aws:kms/key:Key"
VPC = "aws:ec2/vpc:Vpc"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
BUCKET_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
BUCKET_ACL = "aws:s3/bucketAcl:BucketAcl"
BUCKET_ACL_V2 = "aws:s3/bucketAclV2:BucketAclV2"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SECURITY_GROUP_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"

# Where each workload kind keeps its pod spec.
_TEMPLATE_POD = ("spec", "template", "spec")
POD_SPEC_PATHS: Final[Mapping[str, tuple[str, ...]]] = {
    "kubernetes:apps/v1:Deployment": _TEMPLATE_POD,
    "kubernetes:apps/v1:StatefulSet": _TEMPLATE_POD,
    "kubernetes:apps/v1:DaemonSet": _TEMPLATE_POD,
    "kubernetes:apps/v1:ReplicaSet": _TEMPLATE_POD,
    "kubernetes:batch/v1:Job": _TEMPLATE_POD,
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", *_TEMPLATE_POD),
    "kubernetes:core/v1:Pod": ("spec",),
}

# What holds data (or the keys to it) and cannot be re-created without losing it: a replacement
# or a `pulumi destroy` of any of these in production is an incident, so each must be protected.
STATEFUL_TYPES: Final = frozenset(
    {
        RDS_CLUSTER,
        RDS_CLUSTER_INSTANCE,
        ELASTICACHE_GROUP,
        OPENSEARCH_DOMAIN,
        BUCKET,
        KMS_KEY,
        SECRET,
        ECR_REPOSITORY,
        BACKUP_VAULT,
        EKS_CLUSTER,
        VPC,
    }
)

ResourceCheck = Callable[[ResourceValidationArgs, ReportViolation], None]
StackCheck = Callable[[StackValidationArgs, ReportViolation], None]

# --- Reading properties that may be proxies and may hold unknown values ----------------------


class _Unknown:
    """A value the engine does not know yet (preview): checks that need it are skipped."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()
_UNKNOWN_SENTINELS: Final = frozenset(
    {
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_STRING_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_OBJECT_VALUE,
    }
)


def _is_unknown(value: Any) -> bool:
    return value is UNKNOWN or (isinstance(value, str) and value in _UNKNOWN_SENTINELS)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def lookup(value: Any, *path: str | int) -> Any:
    """`value[path[0]][path[1]]...`: None where the path is absent (or crosses something that is
    not a mapping or list), `UNKNOWN` where a value on it is not known yet."""
    current = value
    try:
        for key in path:
            if _is_unknown(current):
                return UNKNOWN
            if isinstance(key, int):
                if not _is_sequence(current) or not -len(current) <= key < len(current):
                    return None
            elif not isinstance(current, Mapping) or key not in current:
                return None
            current = current[key]
    except UnknownValueError:
        return UNKNOWN
    return UNKNOWN if _is_unknown(current) else current


def elements(value: Any) -> list[Any] | None:
    """The items of a list value ([] when absent), each unknown item as `UNKNOWN`; None when the
    list itself is not known yet."""
    if _is_unknown(value):
        return None
    if not _is_sequence(value):
        return []
    return [lookup(value, index) for index in range(len(value))]


def _flag(value: Any) -> bool:
    """A boolean property that is true; pulumi-aws sends a few as the strings "true"/"false"."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _true_or_unknown(value: Any) -> bool:
    return value is UNKNOWN or _flag(value)


def _is_set(value: Any) -> bool:
    """A string property with a value (or not known yet: an ARN of a key still to be created)."""
    return value is UNKNOWN or (isinstance(value, str) and value.strip() != "")


def _report(args: ResourceValidationArgs, report: ReportViolation, found: Iterable[str]) -> None:
    for problem in found:
        report(problem, args.urn)


# --- encryption-at-rest ----------------------------------------------------------------------
# Customer-managed KMS keys wherever the service takes one: key policies decide who can read the
# data, CloudTrail records every use, and rotation and revocation stay in the platform's hands.


def _needs_kms_key(props: Mapping[str, Any], key: str) -> Iterator[str]:
    if not _is_set(lookup(props, key)):
        yield f"{key} is not set: encrypt with a customer-managed KMS key"


def _rds_storage(props: Mapping[str, Any]) -> Iterator[str]:
    if not _true_or_unknown(lookup(props, "storageEncrypted")):
        yield "storageEncrypted is not true: the database's storage and snapshots are plaintext"
    yield from _needs_kms_key(props, "kmsKeyId")


def _elasticache_at_rest(props: Mapping[str, Any]) -> Iterator[str]:
    if not _true_or_unknown(lookup(props, "atRestEncryptionEnabled")):
        yield "atRestEncryptionEnabled is not true: cache data and backups are plaintext on disk"
    if not _true_or_unknown(lookup(props, "transitEncryptionEnabled")):
        yield "transitEncryptionEnabled is not true: sessions cross the network in plaintext"


def _opensearch_at_rest(props: Mapping[str, Any]) -> Iterator[str]:
    if not _true_or_unknown(lookup(props, "encryptAtRest", "enabled")):
        yield "encryptAtRest.enabled is not true: indices and snapshots are plaintext"


def _ecr_kms(props: Mapping[str, Any]) -> Iterator[str]:
    configurations = elements(lookup(props, "encryptionConfigurations"))
    if configurations is None:
        return
    types = [lookup(c, "encryptionType") for c in configurations]
    if UNKNOWN in types:
        return
    if not any(t in ("KMS", "KMS_DSSE") for t in types):
        yield (
            "encryptionConfigurations has no KMS encryptionType: images would be encrypted "
            "with S3-managed AES256 keys, outside KMS key policies"
        )


def _launch_template_volumes(props: Mapping[str, Any]) -> Iterator[str]:
    mappings = elements(lookup(props, "blockDeviceMappings"))
    if mappings is None:
        return
    if not mappings:
        # Without a mapping the root volume's encryption is whatever the AMI and the account's
        # EBS default say: nothing the program controls or states.
        yield "blockDeviceMappings is empty: declare the root volume with ebs.encrypted = true"
    for index, mapping in enumerate(mappings):
        ebs = lookup(mapping, "ebs")
        if ebs is None or ebs is UNKNOWN:
            continue
        device = lookup(mapping, "deviceName")
        where = device if isinstance(device, str) else f"#{index}"
        if not _true_or_unknown(lookup(ebs, "encrypted")):
            yield f'blockDeviceMappings {where}: ebs.encrypted is not "true"'


def _ebs_volume(props: Mapping[str, Any]) -> Iterator[str]:
    if not _true_or_unknown(lookup(props, "encrypted")):
        yield "encrypted is not true: the volume and its snapshots are plaintext"


def _eks_secrets(props: Mapping[str, Any]) -> Iterator[str]:
    config = lookup(props, "encryptionConfig")
    if config is UNKNOWN:
        return
    resources = elements(lookup(config, "resources"))
    if resources is not None and UNKNOWN not in resources and "secrets" not in resources:
        yield "encryptionConfig does not cover secrets: Kubernetes Secrets are plaintext in etcd"
    if not _is_set(lookup(config, "provider", "keyArn")):
        yield "encryptionConfig.provider.keyArn is not set: envelope-encrypt secrets with KMS"


def _ebs_storage_class(props: Mapping[str, Any]) -> Iterator[str]:
    provisioner = lookup(props, "provisioner")
    if provisioner not in ("ebs.csi.aws.com", "kubernetes.io/aws-ebs"):
        return
    if not _true_or_unknown(lookup(props, "parameters", "encrypted")):
        yield 'parameters.encrypted is not "true": volumes provisioned from it are plaintext'


AT_REST_CHECKS: Final[Mapping[str, Callable[[Mapping[str, Any]], Iterator[str]]]] = {
    RDS_CLUSTER: _rds_storage,
    RDS_INSTANCE: _rds_storage,
    ELASTICACHE_GROUP: _elasticache_at_rest,
    OPENSEARCH_DOMAIN: _opensearch_at_rest,
    SECRET: lambda props: _needs_kms_key(props, "kmsKeyId"),
    LOG_GROUP: lambda props: _needs_kms_key(props, "kmsKeyId"),
    ECR_REPOSITORY: _ecr_kms,
    BACKUP_VAULT: lambda props: _needs_kms_key(props, "kmsKeyArn"),
    SNS_TOPIC: lambda props: _needs_kms_key(props, "kmsMasterKeyId"),
    LAUNCH_TEMPLATE: _launch_template_volumes,
    EBS_VOLUME: _ebs_volume,
    EKS_CLUSTER: _eks_secrets,
    STORAGE_CLASS: _ebs_storage_class,
}


def encryption_at_rest(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Data stores, secrets, logs, images, backups, topics and node volumes are encrypted at
    rest, with a customer-managed KMS key where the service takes one (ElastiCache must also
    encrypt in transit: its AUTH token and sessions would otherwise cross the VPC in clear)."""
    check = AT_REST_CHECKS.get(args.resource_type)
    if check is not None:
        _report(args, report_violation, check(args.props))


# --- encryption-in-transit -------------------------------------------------------------------


def encryption_in_transit(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """OpenSearch encrypts node-to-node traffic and serves HTTPS only: the search index holds
    the same financial data as the database."""
    if args.resource_type != OPENSEARCH_DOMAIN:
        return
    found = []
    if not _true_or_unknown(lookup(args.props, "nodeToNodeEncryption", "enabled")):
        found.append("nodeToNodeEncryption.enabled is not true")
    if not _true_or_unknown(lookup(args.props, "domainEndpointOptions", "enforceHttps")):
        found.append("domainEndpointOptions.enforceHttps is not true: plain HTTP is accepted")
    _report(args, report_violation, found)


# --- S3: encryption and no public access (stack policies) -------------------------------------


def _of_type(resources: Sequence[PolicyResource], type_: str) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type == type_]


def applies_to(config: PolicyResource, bucket: PolicyResource, key: str = "bucket") -> bool:
    """Whether `config` (an S3 sub-resource) names `bucket` in its `key` property.

    The engine tells which resources each property was computed from; that settles it even
    while ids are unknown. Without it the value is compared with the bucket's id and name; a
    value that is not known yet gives the configuration the benefit of the doubt.
    """
    sources = config.property_dependencies.get(key)
    if sources:
        return any(source.urn == bucket.urn for source in sources)
    value = lookup(config.props, key)
    if value is UNKNOWN:
        return True
    names = (lookup(bucket.props, "id"), lookup(bucket.props, "bucket"))
    return isinstance(value, str) and value in names


def _kms_encrypted(config: PolicyResource) -> bool:
    rules = elements(lookup(config.props, "rules"))
    if rules is None:
        return True
    algorithms = [lookup(r, "applyServerSideEncryptionByDefault", "sseAlgorithm") for r in rules]
    return UNKNOWN in algorithms or any(a in ("aws:kms", "aws:kms:dsse") for a in algorithms)


def s3_bucket_encryption(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Every bucket has a server-side encryption configuration of its own, with SSE-KMS: the
    bucket resource alone (pulumi-aws 7) no longer declares its encryption."""
    configs = _of_type(args.resources, BUCKET_ENCRYPTION)
    for bucket in _of_type(args.resources, BUCKET):
        mine = [c for c in configs if applies_to(c, bucket)]
        if not mine:
            report_violation(
                f"bucket {bucket.name} has no BucketServerSideEncryptionConfiguration",
                bucket.urn,
            )
        elif not any(_kms_encrypted(c) for c in mine):
            report_violation(
                f"bucket {bucket.name}: its encryption configuration does not use aws:kms",
                bucket.urn,
            )


PUBLIC_ACCESS_FLAGS: Final = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)


def s3_public_access_block(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Every bucket has a public access block with all four flags on, so that neither an ACL nor
    a bucket policy written later can make it public."""
    blocks = _of_type(args.resources, BUCKET_PUBLIC_ACCESS_BLOCK)
    for bucket in _of_type(args.resources, BUCKET):
        mine = [b for b in blocks if applies_to(b, bucket)]
        if not mine:
            report_violation(f"bucket {bucket.name} has no BucketPublicAccessBlock", bucket.urn)
            continue
        complete = [b for b in mine if all(_true_or_unknown(v) for v in _flags(b).values())]
        if not complete:
            off = sorted({f for b in mine for f, v in _flags(b).items() if not _flag(v)})
            report_violation(
                f"bucket {bucket.name}: public access block leaves {', '.join(off)} off",
                bucket.urn,
            )


def _flags(block: PolicyResource) -> dict[str, Any]:
    return {flag: lookup(block.props, flag) for flag in PUBLIC_ACCESS_FLAGS}


PUBLIC_ACLS: Final = frozenset({"public-read", "public-read-write", "authenticated-read"})


def _is_everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any(_is_everyone(value) for value in principal.values())
    if _is_sequence(principal):
        return any(_is_everyone(value) for value in principal)
    return False


def public_statements(document: Any) -> list[str]:
    """The Sids (or positions) of the statements of an IAM policy document (JSON text or
    object) that Allow everyone: Principal "*" (or {"AWS": "*"}), or any NotPrincipal."""
    if isinstance(document, str):
        document = json.loads(document)
    statements = document.get("Statement", []) if isinstance(document, Mapping) else []
    if isinstance(statements, Mapping):
        statements = [statements]
    found = []
    for index, statement in enumerate(statements):
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        if _is_everyone(statement.get("Principal")) or "NotPrincipal" in statement:
            found.append(str(statement.get("Sid", f"#{index}")))
    return found


def _policy_problems(document: Any, where: str) -> Iterator[str]:
    if document is None or document is UNKNOWN or document == "":
        return
    try:
        found = public_statements(document if isinstance(document, str) else _plain(document))
    except ValueError:
        yield f"{where} is not a JSON policy document: cannot tell whether it is public"
        return
    if found:
        yield f'{where} allows everyone (Principal "*"): statements {", ".join(found)}'


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(lookup(value, k)) for k in value}
    if _is_sequence(value):
        return [_plain(v) for v in elements(value) or []]
    return None if value is UNKNOWN else value


def s3_no_public_policy(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """No bucket policy Allows everyone and no bucket or bucket ACL grants a public canned ACL:
    documents are the clients' financial records."""
    found: list[str] = []
    if args.resource_type == BUCKET_POLICY:
        found.extend(_policy_problems(lookup(args.props, "policy"), "policy"))
    if args.resource_type == BUCKET:
        found.extend(_policy_problems(lookup(args.props, "policy"), "inline policy"))
    if args.resource_type in (BUCKET, BUCKET_ACL, BUCKET_ACL_V2):
        acl = lookup(args.props, "acl")
        if isinstance(acl, str) and acl in PUBLIC_ACLS:
            found.append(f"acl {acl} makes the bucket's objects public")
    _report(args, report_violation, found)


# --- no-world-ingress ------------------------------------------------------------------------


def _is_world(cidr: Any) -> bool:
    if not isinstance(cidr, str):
        return False
    try:
        return ipaddress.ip_network(cidr.strip(), strict=False).prefixlen == 0
    except ValueError:
        return False


def _world_cidrs(rule: Any, *keys: str) -> list[str]:
    found: list[str] = []
    for key in keys:
        value = lookup(rule, key)
        candidates = elements(value) if _is_sequence(value) else [value]
        found.extend(c for c in candidates or [] if _is_world(c))
    return found


def no_world_ingress(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """No security group admits traffic from anywhere (0.0.0.0/0 or ::/0): the platform's only
    way in is the EKS API's allow-list, and everything else is reached from inside the VPC."""
    props = args.props
    found: list[str] = []
    if args.resource_type == SECURITY_GROUP_INGRESS_RULE:
        found = _world_cidrs(props, "cidrIpv4", "cidrIpv6")
    elif args.resource_type == SECURITY_GROUP_RULE:
        if lookup(props, "type") == "ingress":
            found = _world_cidrs(props, "cidrBlocks", "ipv6CidrBlocks")
    elif args.resource_type in (SECURITY_GROUP, DEFAULT_SECURITY_GROUP):
        for rule in elements(lookup(props, "ingress")) or []:
            found.extend(_world_cidrs(rule, "cidrBlocks", "ipv6CidrBlocks"))
    for cidr in found:
        report_violation(f"ingress from {cidr} admits the whole internet", args.urn)


# --- imdsv2-required -------------------------------------------------------------------------
# IMDSv2 needs a PUT for a session token first, which SSRF through an application cannot do.
# The hop limit is the token response's IP TTL: 1 keeps it on the node's own network stack, 2
# also reaches pods on their own network namespace (AWS's guidance for container hosts), and
# each further hop lets it travel through another forwarding layer. The program sets 1 (pods
# get AWS credentials from IRSA, not from the node's role); the policy's ceiling is 2, so that
# a node group whose add-ons need IMDS from a pod is not blocked.
MAX_HOP_LIMIT: Final = 2


def imdsv2_required(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Launch templates (and instances) require IMDSv2 session tokens, with a hop limit of at
    most 2."""
    if args.resource_type not in (LAUNCH_TEMPLATE, EC2_INSTANCE):
        return
    options = lookup(args.props, "metadataOptions")
    if options is UNKNOWN:
        return
    found = []
    if lookup(options, "httpEndpoint") == "disabled":
        return
    tokens = lookup(options, "httpTokens")
    if tokens is not UNKNOWN and tokens != "required":
        stated = "not set" if tokens is None else repr(tokens)
        found.append(f'metadataOptions.httpTokens is {stated}, not "required": IMDSv1 is open')
    hops = lookup(options, "httpPutResponseHopLimit")
    if isinstance(hops, int | float) and not isinstance(hops, bool) and hops > MAX_HOP_LIMIT:
        found.append(f"metadataOptions.httpPutResponseHopLimit is {hops}, above {MAX_HOP_LIMIT}")
    _report(args, report_violation, found)


# --- eks-endpoint-access ---------------------------------------------------------------------


def eks_endpoint_access(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """The EKS API endpoint is reachable privately, and publicly (if at all) only from an
    allow-list that is not the whole internet. AWS turns public access on when it is unset."""
    if args.resource_type != EKS_CLUSTER:
        return
    vpc = lookup(args.props, "vpcConfig")
    if vpc is UNKNOWN:
        return
    found = []
    if not _true_or_unknown(lookup(vpc, "endpointPrivateAccess")):
        found.append("vpcConfig.endpointPrivateAccess is not true: nodes reach the API publicly")
    public = lookup(vpc, "endpointPublicAccess")
    if public is None or _flag(public):
        cidrs = elements(lookup(vpc, "publicAccessCidrs"))
        if cidrs is not None and not cidrs:
            found.append("the public endpoint has no publicAccessCidrs: AWS opens it to 0.0.0.0/0")
        for cidr in cidrs or []:
            if _is_world(cidr):
                found.append(f"vpcConfig.publicAccessCidrs includes {cidr}")
    _report(args, report_violation, found)


# --- Kubernetes workloads --------------------------------------------------------------------


def pod_spec(args: ResourceValidationArgs) -> Any:
    """The pod spec of a workload resource: None for other types, `UNKNOWN` if not known."""
    path = POD_SPEC_PATHS.get(args.resource_type)
    return None if path is None else lookup(args.props, *path)


def containers(pod: Any) -> list[tuple[str, Any]]:
    """(name, container) for the pod's init and app containers (unknown ones left out)."""
    found = []
    for key in ("initContainers", "containers"):
        for index, container in enumerate(elements(lookup(pod, key)) or []):
            if container is UNKNOWN or not isinstance(container, Mapping):
                continue
            name = lookup(container, "name")
            found.append((name if isinstance(name, str) else f"{key}[{index}]", container))
    return found


def _effective(container_context: Any, pod_context: Any, *path: str) -> Any:
    """A security setting as the kubelet applies it: the container's, else the pod's."""
    value = lookup(container_context, *path)
    return lookup(pod_context, *path) if value is None else value


HOST_NAMESPACES: Final = ("hostNetwork", "hostPID", "hostIPC")


def pod_security_problems(pod: Any) -> list[str]:
    """Where a pod spec breaks the Kubernetes "restricted" Pod Security profile's core."""
    found = [f"{key} is true" for key in HOST_NAMESPACES if lookup(pod, key) is True]
    for index, volume in enumerate(elements(lookup(pod, "volumes")) or []):
        if lookup(volume, "hostPath") not in (None, UNKNOWN):
            found.append(f"volume {lookup(volume, 'name') or index} mounts a hostPath")
    pod_context = lookup(pod, "securityContext")
    for name, container in containers(pod):
        context = lookup(container, "securityContext")
        if lookup(context, "privileged") is True:
            found.append(f"{name}: privileged")
        escalation = lookup(context, "allowPrivilegeEscalation")
        if escalation is not UNKNOWN and escalation is not False:
            found.append(f"{name}: allowPrivilegeEscalation is not false")
        added = [
            c for c in elements(lookup(context, "capabilities", "add")) or [] if c is not UNKNOWN
        ]
        if added:
            found.append(f"{name}: adds capabilities {', '.join(map(str, added))}")
        dropped = elements(lookup(context, "capabilities", "drop"))
        if dropped is not None and UNKNOWN not in dropped and "ALL" not in dropped:
            found.append(f"{name}: does not drop ALL capabilities")
        non_root = _effective(context, pod_context, "runAsNonRoot")
        if non_root is not UNKNOWN and non_root is not True:
            found.append(f"{name}: runAsNonRoot is not true (pod or container)")
        if _effective(context, pod_context, "runAsUser") == 0:
            found.append(f"{name}: runs as user 0")
        seccomp = _effective(context, pod_context, "seccompProfile", "type")
        if seccomp is not UNKNOWN and seccomp != "RuntimeDefault":
            found.append(f"{name}: seccompProfile is {seccomp!r}, not RuntimeDefault")
    return found


def workload_pod_security(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Workloads keep the restricted contract: no host namespaces or hostPath, no privileged
    container or privilege escalation, ALL capabilities dropped and none added, non-root, and
    the RuntimeDefault seccomp profile (pod- or container-level)."""
    pod = pod_spec(args)
    if pod is None or pod is UNKNOWN:
        return
    _report(args, report_violation, pod_security_problems(pod))


def _quantity(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, bool):
        return False
    return isinstance(value, int | float) or (isinstance(value, str) and value.strip() != "")


REQUIRED_RESOURCES: Final = (("limits", "memory"), ("requests", "cpu"), ("requests", "memory"))


def workload_resources(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every container requests CPU and memory (the scheduler and the autoscalers size nodes
    from requests) and has a memory limit (one leaking pod must not evict its neighbours)."""
    pod = pod_spec(args)
    if pod is None or pod is UNKNOWN:
        return
    found = []
    for name, container in containers(pod):
        resources = lookup(container, "resources")
        if resources is UNKNOWN:
            continue
        missing = [
            ".".join(path) for path in REQUIRED_RESOURCES if not _quantity(lookup(resources, *path))
        ]
        if missing:
            found.append(f"{name}: resources {', '.join(missing)} not set")
    _report(args, report_violation, found)


_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def mutable_image_reason(image: str) -> str | None:
    """Why `image` may resolve to different content tomorrow, or None if it cannot."""
    if _DIGEST.search(image):
        return None
    if "@" in image:
        return "its digest is not a sha256 digest"
    # A colon before the last slash belongs to the registry's port, not to a tag.
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "it has no tag (the runtime pulls :latest)"
    tag = last.rsplit(":", 1)[1]
    if not tag:
        return "its tag is empty"
    if tag.lower() == "latest":
        return "its tag is latest"
    return None


def workload_immutable_images(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    """Every container image is pinned: an explicit tag other than latest (the registry's
    repositories are tag-immutable) or a sha256 digest, so a rollout runs what was reviewed."""
    pod = pod_spec(args)
    if pod is None or pod is UNKNOWN:
        return
    found = []
    for name, container in containers(pod):
        image = lookup(container, "image")
        if image is UNKNOWN:
            continue
        if not isinstance(image, str) or not image.strip():
            found.append(f"{name}: no image")
        elif (reason := mutable_image_reason(image.strip())) is not None:
            found.append(f"{name}: image {image} is mutable: {reason}")
    _report(args, report_violation, found)


# --- protect-stateful-resources (stack policy) -----------------------------------------------


def protect_stateful_resources(stack_name: Callable[[], str]) -> StackCheck:
    """The stack validation that requires `protect` on every stateful resource when the stack
    (as `stack_name()` tells at validation time) is a production one.

    A factory: the pack passes `pulumi.get_stack` (the CLI gives the policy process the stack in
    PULUMI_STACK); offline, the caller passes the rendered stack's name.
    """

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        if stack_name() not in PROTECTED_STACKS:
            return
        for resource in args.resources:
            if resource.resource_type in STATEFUL_TYPES and not resource.opts.protect:
                report_violation(
                    f"{resource.resource_type} {resource.name} is not protected: set "
                    "protect=True so that destroy or a replacement cannot delete it",
                    resource.urn,
                )

    return validate


# --- the pack ----------------------------------------------------------------------------------


def _resource(name: str, validate: ResourceCheck) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=name,
        description=_summary(validate),
        validate=validate,
        enforcement_level=ENFORCEMENT_LEVEL,
    )


def _stack(name: str, validate: StackCheck, doc: str = "") -> StackValidationPolicy:
    return StackValidationPolicy(
        name=name,
        description=doc or _summary(validate),
        validate=validate,
        enforcement_level=ENFORCEMENT_LEVEL,
    )


def _summary(function: Callable[..., Any]) -> str:
    """A policy's description: its function's docstring, on one line."""
    return " ".join((function.__doc__ or function.__name__).split())


def build_policies(stack_name: Callable[[], str]) -> list[Policy]:
    """Every policy of the pack, in the order the CLI reports them."""
    return [
        _resource("encryption-at-rest", encryption_at_rest),
        _resource("encryption-in-transit", encryption_in_transit),
        _stack("s3-bucket-encryption", s3_bucket_encryption),
        _stack("s3-public-access-block", s3_public_access_block),
        _resource("s3-no-public-policy", s3_no_public_policy),
        _resource("no-world-ingress", no_world_ingress),
        _resource("imdsv2-required", imdsv2_required),
        _resource("eks-endpoint-access", eks_endpoint_access),
        _resource("workload-pod-security", workload_pod_security),
        _resource("workload-resources", workload_resources),
        _resource("workload-immutable-images", workload_immutable_images),
        _stack(
            "protect-stateful-resources",
            protect_stateful_resources(stack_name),
            "In production, every stateful resource (databases, caches, search, buckets, KMS "
            "keys, secrets, image repositories, backup vaults, the EKS cluster, the VPC) is "
            "protected against deletion.",
        ),
    ]
