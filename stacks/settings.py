"""Typed, immutable settings of one stack.

Stack files use camelCase keys (as `pulumi config set` writes them); the models expose snake_case
attributes. Every model forbids unknown keys. Cross-field rules raise `invalid(...)`, which names
the offending key so that the error formatter in `stacks.loader` can print one line per problem:
`nodeGroups.gpu.maxSize: 2 is below minSize 3`.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, date, datetime
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel, to_snake

from stacks.addon_settings import EDGE_ADDONS, REQUEST_PATH_ADDONS, AddonsSettings
from stacks.aws_facts import (
    EKS_KUBERNETES_RELEASES,
    LOG_RETENTION_DAYS,
    REGIONS,
    STANDARD_SUPPORT_WARNING_DAYS,
    ZONE_LETTERS,
    minor_order,
)
from stacks.capacity import (
    PlatformLoad,
    class_capacity,
    platform_load,
    pod_room,
    zone_loss_capacity,
)
from stacks.catalog import (
    SEED_REPLICA_RANGES,
    SERVICE_NAMES,
    ServiceName,
    ServiceSettings,
    cpu_millicores,
    memory_mib,
    request_path_services,
)
from stacks.data_settings import DataSettings
from stacks.delivery_settings import DeliverySettings, account_of
from stacks.edge_settings import OPERATOR_UI_ADDONS, EdgeSettings
from stacks.instance_types import INSTANCE_TYPES
from stacks.rules import PrincipalArn, documentation_range, internet_ranges
from stacks.secrets import check_secret_env
from stacks.settings_base import (
    WORKLOAD_CLASSES,
    Settings,
    WorkloadClass,
    check_one_of,
    invalid,
)
from stacks.version_support import (
    CERT_MANAGER_SUPPORT,
    CHECKED_KUBERNETES_VERSIONS,
    ISTIO_SUPPORT,
    SupportedMinors,
)

# The oldest OpenSearch the log shipper's index works on (StackSettings._check_log_index_engine).
LOG_INDEX_MIN_OPENSEARCH = "OpenSearch_2.19"

NatStrategy = Literal["perAz", "single"]
CapacityType = Literal["ON_DEMAND", "SPOT"]
# Amazon Linux 2023 only: the launch template's root volume mapping (/dev/xvda) is AL2023's.
AmiType = Literal["AL2023_x86_64_STANDARD", "AL2023_x86_64_NVIDIA"]
GPU_AMI_TYPES = frozenset({"AL2023_x86_64_NVIDIA"})
TaintEffect = Literal["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"]
ControlPlaneLogType = Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]

# The Kubernetes minors this program has been checked against (stacks/version_support.py);
# an EKS stack's must also be in EKS standard support on the day it is rendered.
SUPPORTED_KUBERNETES_VERSIONS = CHECKED_KUBERNETES_VERSIONS
# ASCII only, as AWS and Kubernetes are: a regex class like \d would also take Arabic-Indic
# or full-width digits.
REGION_PATTERN = r"^[a-z]{2}-[a-z]+-[0-9]$"
LABEL_KEY_PATTERN = r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$"
# A Kubernetes label value: 63 characters at most, alphanumeric at both ends.
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][A-Za-z0-9._-]{0,61})?[A-Za-z0-9])?$"
LabelValue = Annotated[str, Field(pattern=LABEL_VALUE_PATTERN)]
# AWS tags (Tagging AWS resources, "Tag naming limits and requirements"): keys up to 128 and
# values up to 256 of letters, digits and white space in any language (Unicode letters,
# numbers and separators) and _ . : / = + - @; the `aws:` prefix is AWS's own. The pattern
# is IAM's own (botocore 1.44.8 data/iam/2010-05-08/service-2.json, tagKeyType and
# tagValueType), the strictest of the services that tag this stack's resources.
TAG_PATTERN = r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$"
# A resource carries at most 50 tags; the program adds its own (environment, pulumi-stack,
# Name, workload-class and the autoscaler's), so a stack may set 40.
MAX_STACK_TAGS = 40
# EKS accepts at most 40 public access CIDR blocks (EKS API reference, VpcConfigRequest).
MAX_PUBLIC_ACCESS_CIDRS = 40
# The only ranges a VPC may use (RFC 1918, and the shared address space EKS supports).
VPC_RANGES = tuple(
    ipaddress.IPv4Network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)
# Namespaces that are Kubernetes' own or the platform's: the application may not take one over.
RESERVED_NAMESPACES = frozenset(
    {
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "external-secrets-system",
        "autoscaling-system",
        "nvidia-device-plugin",
        "reloader",
        "database-bootstrap",
        "search-bootstrap",
        "istio-system",
        "istio-ingress",
        "istio-cni",
        "node-exporter",
        "edge-system",
        "cert-manager",
        "logging",
        "monitoring",
        "amazon-guardduty",
    }
)


def render_date(info: ValidationInfo) -> date:
    """The day the stack is rendered (UTC): the loader passes it as validation context."""
    day = (info.context or {}).get("today")
    return day if isinstance(day, date) else datetime.now(UTC).date()


def standard_support_versions(today: date) -> list[str]:
    """The checked minors EKS gives standard support on `today`, oldest first."""
    return sorted(
        (
            version
            for version in SUPPORTED_KUBERNETES_VERSIONS
            if version in EKS_KUBERNETES_RELEASES
            and EKS_KUBERNETES_RELEASES[version].in_standard_support(today)
        ),
        key=minor_order,
    )


def support_warning(version: str, today: date) -> str | None:
    """A warning when `version` leaves EKS standard support within the warning period."""
    release = EKS_KUBERNETES_RELEASES.get(version)
    if release is None:
        return None
    days = (release.end_of_standard_support - today).days
    if days >= STANDARD_SUPPORT_WARNING_DAYS:
        return None
    newer = [v for v in standard_support_versions(today) if minor_order(v) > minor_order(version)]
    step = f"upgrade to {newer[0]}" if newer else "add the next minor and upgrade"
    return (
        f"kubernetesVersion: {version!r} leaves EKS standard support on "
        f"{release.end_of_standard_support} (in {days} days): {step}, one minor at a time "
        '(docs/operations.md, "Kubernetes upgrades")'
    )


def check_supported_by(key: str, version: str, support: SupportedMinors) -> None:
    """Refuse a cluster minor that an enabled add-on's release line does not support."""
    if version not in support.minors:
        raise invalid(
            key,
            version,
            f"Kubernetes {version} is outside what {support.release} supports "
            f"({', '.join(support.minors)}; {support.source})",
        )


class Taint(Settings):
    key: Annotated[str, Field(pattern=LABEL_KEY_PATTERN)]
    value: LabelValue = ""
    effect: TaintEffect

    def kubernetes_effect(self) -> str:
        """The effect as Kubernetes (and the autoscaler's node-template tags) spell it."""
        return {
            "NO_SCHEDULE": "NoSchedule",
            "NO_EXECUTE": "NoExecute",
            "PREFER_NO_SCHEDULE": "PreferNoSchedule",
        }[self.effect]


class PreviousGeneration(Settings):
    """The generation a group is leaving, kept as deployed while its nodes are drained.

    Its number and the inputs EKS cannot change in place (the group is created again when one
    changes: terraform-provider-aws internal/service/eks/node_group.go, ForceNew); each of the
    others is the current generation's. docs/cluster.md, "Node group generations".
    """

    generation: Annotated[int, Field(ge=1, le=99)]
    instance_types: Annotated[list[str], Field(min_length=1)]
    # None: the current generation's.
    disk_size_gib: Annotated[int, Field(ge=20, le=16384)] | None = None
    capacity_type: CapacityType | None = None
    ami_type: AmiType | None = None


class NodeGroupSettings(Settings):
    # Smallest first: the cluster autoscaler plans with the first, the others are fallbacks
    # when it has no capacity (docs/cluster.md, "Node groups").
    instance_types: Annotated[list[str], Field(min_length=1)]
    # The group's node count bounds, which the cluster autoscaler keeps it within.
    min_size: Annotated[int, Field(ge=0, le=1000)]
    max_size: Annotated[int, Field(ge=1, le=1000)]
    # The starting size only: later changes are ignored, the cluster autoscaler owns it.
    desired_size: Annotated[int, Field(ge=0, le=1000)]
    # Each node's root volume (gp3, encrypted).
    disk_size_gib: Annotated[int, Field(ge=20, le=16384)] = 50
    labels: dict[Annotated[str, Field(pattern=LABEL_KEY_PATTERN)], LabelValue] = {}
    taints: list[Taint] = []
    capacity_type: CapacityType = "ON_DEMAND"
    ami_type: AmiType = "AL2023_x86_64_STANDARD"
    # A group whose instance types, AMI type, capacity type (or any other input EKS cannot
    # change in place) change is a new group: a new generation, created beside the old one
    # (docs/cluster.md, "Node group generations"). Generation 1 is the group as first deployed.
    generation: Annotated[int, Field(ge=1, le=99)] = 1
    # The generation being replaced, kept until its nodes are drained (then removed).
    previous_generation: PreviousGeneration | None = None

    @field_validator("instance_types")
    @classmethod
    def _known_and_ordered(cls, types: list[str]) -> list[str]:
        for instance_type in types:
            if instance_type not in INSTANCE_TYPES:
                raise invalid(
                    "instanceTypes",
                    instance_type,
                    f"{instance_type!r} is not a known instance type "
                    f"(allowed: {', '.join(sorted(INSTANCE_TYPES))})",
                )
        if len(set(types)) != len(types):
            raise invalid("instanceTypes", types, f"{types} lists a type twice")
        sizes = [INSTANCE_TYPES[t] for t in types]
        # Each dimension on its own: (vCPU, memory) pairs compared as tuples would let a type
        # with more CPUs and half the memory follow.
        if any(
            b.vcpu < a.vcpu or b.memory_gib < a.memory_gib or b.gpus < a.gpus
            for a, b in pairwise(sizes)
        ):
            # The autoscaler plans with the first type and on-demand groups launch in list order:
            # a later, smaller type would leave scheduled pods without room.
            raise invalid(
                "instanceTypes",
                types,
                f"{types} must be ordered smallest first (the autoscaler models the first type; "
                "later types are larger fallbacks)",
            )
        return types

    @model_validator(mode="after")
    def _consistent(self) -> NodeGroupSettings:
        if self.max_size < self.min_size:
            raise invalid(
                "maxSize", self.max_size, f"{self.max_size} is below minSize {self.min_size}"
            )
        if not self.min_size <= self.desired_size <= self.max_size:
            raise invalid(
                "desiredSize",
                self.desired_size,
                f"{self.desired_size} is outside minSize..maxSize "
                f"({self.min_size}..{self.max_size})",
            )
        gpu_types = [t for t in self.instance_types if INSTANCE_TYPES[t].gpus]
        if self.ami_type in GPU_AMI_TYPES and len(gpu_types) != len(self.instance_types):
            raise invalid(
                "instanceTypes",
                self.instance_types,
                f"{self.instance_types} mixes GPU and non-GPU types "
                f"under a GPU AMI ({self.ami_type})",
            )
        if gpu_types and self.ami_type not in GPU_AMI_TYPES:
            raise invalid(
                "amiType",
                self.ami_type,
                f"{self.ami_type!r} has no NVIDIA driver for {gpu_types} "
                f"(allowed: {', '.join(sorted(GPU_AMI_TYPES))})",
            )
        folded = [key.lower() for key in self.labels]
        if len(set(folded)) != len(folded):
            raise invalid(
                "labels",
                sorted(self.labels),
                "two label keys differ only in case (they would name one Auto Scaling group tag)",
            )
        previous = self.previous_generation
        if previous is not None and previous.generation >= self.generation:
            raise invalid(
                "previousGeneration.generation",
                previous.generation,
                f"{previous.generation} is not older than generation {self.generation} "
                + (
                    f"(allowed: 1 to {self.generation - 1})"
                    if self.generation > 1
                    else "(a group of generation 1 has none: bump generation first)"
                ),
            )
        for own in ("workload-class", "k8s.amazonaws.com/accelerator", "node-group-generation"):
            if own in self.labels:
                raise invalid(
                    "labels",
                    self.labels,
                    f"{own!r} is set by the program (from the group's class, generation and "
                    "GPU type)",
                )
        # Its instance types, AMI and capacity type must make a group of their own (checked
        # last: the current group's own errors name its own keys).
        self.previous_group()
        return self

    @property
    def has_gpus(self) -> bool:
        return self.ami_type in GPU_AMI_TYPES

    def previous_group(self) -> NodeGroupSettings | None:
        """The previous generation as a whole group: its own fixed inputs, a minimum of zero,
        and the current generation's for the rest (maximum and desired size, labels, taints)."""
        previous = self.previous_generation
        if previous is None:
            return None
        fixed = {
            "generation": previous.generation,
            "instance_types": previous.instance_types,
            "disk_size_gib": previous.disk_size_gib or self.disk_size_gib,
            "capacity_type": previous.capacity_type or self.capacity_type,
            "ami_type": previous.ami_type or self.ami_type,
            # No floor: the cluster autoscaler may remove each node it has emptied (pods it can
            # place on the current generation), so the old group drains towards zero by itself.
            "min_size": 0,
        }
        values = {
            **self.model_dump(exclude={"previous_generation"}),
            **fixed,
        }
        try:
            return NodeGroupSettings.model_validate(values)
        except ValidationError as error:
            problem = error.errors()[0]
            raise invalid(
                "previousGeneration",
                previous.instance_types,
                f"is not a group this class could have run: {problem['msg']}",
            ) from None


class NodeGroupsSettings(Settings):
    """The four workload classes; each stack tunes them, none may be added or removed."""

    general: NodeGroupSettings
    compute: NodeGroupSettings
    memory: NodeGroupSettings
    gpu: NodeGroupSettings

    def items(self) -> list[tuple[WorkloadClass, NodeGroupSettings]]:
        return [(name, getattr(self, name)) for name in WORKLOAD_CLASSES]

    @model_validator(mode="after")
    def _gpu_group_has_gpus(self) -> NodeGroupsSettings:
        if not self.gpu.has_gpus:
            raise invalid(
                "gpu",
                self.gpu.ami_type,
                "the gpu group needs a GPU AMI type and GPU instance types",
            )
        for name, group in self.items():
            if name != "gpu" and group.has_gpus:
                raise invalid(name, group.ami_type, "only the gpu group may run GPU instances")
            previous = group.previous_group()
            if previous is not None and previous.has_gpus != group.has_gpus:
                raise invalid(
                    f"{name}.previousGeneration.amiType",
                    previous.ami_type,
                    f"a {name} group {'needs' if group.has_gpus else 'may not run'} GPUs "
                    "in every generation",
                )
        return self


class ApplicationSettings(Settings):
    namespace: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    log_level: Literal["debug", "info", "warning", "error"]
    # How often External Secrets re-reads Secrets Manager: a rotated secret reaches the
    # Kubernetes Secret within this, and the Reloader then rolls its pods.
    secret_refresh_interval: Annotated[str, Field(pattern=r"^[1-9][0-9]{0,2}(m|h)$")] = "1h"
    # Each becomes a ConfigMap key and environment variable FEATURE_<NAME>.
    feature_flags: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")], bool] = {}

    @field_validator("namespace")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_NAMESPACES or name.startswith("kube-"):
            raise invalid(
                "namespace",
                name,
                f"{name!r} is Kubernetes' or the platform's own (not allowed: "
                f"{', '.join(sorted(RESERVED_NAMESPACES))}, kube-*)",
            )
        return name


class SecuritySettings(Settings):
    # GuardDuty with EKS audit-log and runtime monitoring (one detector per account and region:
    # turn off where the organisation already runs one, and enable EKS protection there).
    guard_duty: bool
    # GuardDuty's runtime agent runs on the nodes (a DaemonSet requesting 200m and 256Mi on
    # each, counted by the capacity check): installed by this stack where `guardDuty`, or by
    # the organisation's GuardDuty (automated agent configuration) where it covers the stack.
    # False only where neither runs runtime monitoring on this cluster.
    guard_duty_agent: bool = True
    # A multi-region CloudTrail trail of this stack's own, for accounts without an
    # organisation trail.
    cloud_trail: bool
    trail_retention_days: Annotated[int, Field(ge=90, le=3650)] = 365

    @model_validator(mode="after")
    def _agent_where_guardduty_runs(self) -> SecuritySettings:
        if self.guard_duty and not self.guard_duty_agent:
            raise invalid(
                "guardDutyAgent",
                False,
                "this stack's GuardDuty installs its runtime agent on every node (allowed: "
                "true, or guardDuty: false)",
            )
        return self


class RetentionSettings(Settings):
    # Days a deleted Secrets Manager secret can still be restored.
    secret_recovery_window_days: Annotated[int, Field(ge=7, le=30)]
    # Days an overwritten or deleted document version is kept.
    document_version_days: Annotated[int, Field(ge=1, le=3650)]


Persona = Literal["platformAdmin", "deployer", "sre", "developer", "auditor"]
# Each persona's key under `access` (the deployer is one principal, the others lists).
PERSONA_KEYS: dict[Persona, str] = {
    "platformAdmin": "platformAdmins",
    "deployer": "deployer",
    "sre": "sres",
    "developer": "developers",
    "auditor": "auditors",
}


class AccessSettings(Settings):
    """Who may use the cluster, as personas; each principal gets one EKS access entry.

    Platform admins and the deployer are cluster-admins. SREs restart and scale workloads and
    read logs in the application namespaces; developers read there (no Secrets, no exec unless
    `developersMayEdit`); auditors read the whole cluster without Secrets.
    """

    platform_admins: list[PrincipalArn] = []
    # The principal `pulumi up` runs as: it creates CRDs, cluster roles, webhooks and
    # namespaces, so nothing less than cluster-admin will do.
    deployer: PrincipalArn
    sres: list[PrincipalArn] = []
    developers: list[PrincipalArn] = []
    auditors: list[PrincipalArn] = []
    # Staging lets developers change workloads, exec and read Secrets; production never.
    developers_may_edit: bool = False

    def entries(self) -> list[tuple[str, Persona]]:
        """Every principal with its persona, in a fixed order (admins, deployer, SREs,
        developers, auditors)."""
        return [
            *((arn, "platformAdmin") for arn in self.platform_admins),
            (self.deployer, "deployer"),
            *((arn, "sre") for arn in self.sres),
            *((arn, "developer") for arn in self.developers),
            *((arn, "auditor") for arn in self.auditors),
        ]

    def keyed_entries(self) -> list[tuple[str, Persona, str]]:
        """`entries()` with the key path of each principal (`sres[1]`, `deployer`)."""
        keyed = []
        for persona, key in PERSONA_KEYS.items():
            value = getattr(self, to_snake(key))
            arns = value if isinstance(value, list) else [value]
            for index, arn in enumerate(arns):
                where = f"{key}[{index}]" if isinstance(value, list) else key
                keyed.append((arn, persona, where))
        return keyed

    @model_validator(mode="after")
    def _one_persona_each(self) -> AccessSettings:
        seen: dict[str, str] = {}
        for arn, _, where in self.keyed_entries():
            if arn in seen:
                raise invalid(
                    where,
                    arn,
                    f"{arn} is already access.{seen[arn]} (EKS allows one access entry per "
                    "principal)",
                )
            seen[arn] = where
        return self


class StackSettings(Settings):
    # One of stacks.environments.ENVIRONMENTS (the loader refuses any other before this model).
    environment: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")]
    # The AWS region: one of those stacks/aws_facts.py lists.
    region: Annotated[str, Field(pattern=REGION_PATTERN)]
    # Three zones of the region: subnets, node groups and the stores span them.
    availability_zones: list[str]
    # The VPC's range: /16 to /20, inside the private ranges.
    vpc_cidr: str
    # One NAT gateway per zone, or a single one for the whole VPC.
    nat_gateways: NatStrategy
    # The cluster's Kubernetes minor: in EKS standard support on the day of the render and
    # supported by the version-bound add-ons (docs/operations.md, "Kubernetes upgrades").
    kubernetes_version: str
    # Ranges that may reach the API endpoint from outside the VPC (at most 40); empty: the
    # endpoint is private only.
    endpoint_public_access_cidrs: list[str] = []
    # The first `up` of a stack whose cluster was created in the private subnets (before the
    # control plane had subnets of its own): webhook ports also admit the private subnets
    # while EKS moves its network interfaces. Off again once none is left there
    # (docs/cluster.md, "Cluster": the two-step move).
    webhooks_from_private_subnets: bool = False
    # The control plane's log types sent to CloudWatch Logs, and the days each log group keeps
    # (a retention CloudWatch offers).
    control_plane_log_types: Annotated[list[ControlPlaneLogType], Field(min_length=1)]
    control_plane_log_retention_days: int
    flow_log_retention_days: int
    access: AccessSettings
    node_groups: NodeGroupsSettings
    application: ApplicationSettings
    services: dict[ServiceName, ServiceSettings]
    addons: AddonsSettings
    security: SecuritySettings
    retention: RetentionSettings
    data: DataSettings
    # The public entrance: domain, hosts, certificates, firewall, operator UI access.
    edge: EdgeSettings
    # Pulumi's `protect` on the stateful resources and deletion protection where AWS has it
    # (docs/security.md, "Protection").
    protect: bool
    # The name of the IAM policy every role of the stack carries as its permissions boundary:
    # the one `python -m bootstrap` creates (`<prefix>-workload-boundary`). The deploy role may
    # create and change roles only with it attached, so there is no stack without one.
    iam_permissions_boundary: Annotated[str, Field(pattern=r"^[A-Za-z0-9+=,.@_-]{1,128}$")]
    # How the workflows deliver the stack: its account, preview role, state bucket, repository
    # and runner (stacks/delivery_settings.py). A stack without it is deployed by hand only.
    delivery: DeliverySettings | None = None
    # Tags on every AWS resource (no `aws:` prefix, AWS's characters and lengths); a change
    # reaches every node group's launch template and rolls its nodes.
    tags: dict[
        Annotated[str, Field(min_length=1, max_length=128, pattern=TAG_PATTERN)],
        Annotated[str, Field(max_length=256, pattern=TAG_PATTERN)],
    ] = {}
    # What the stack may cost a month on demand at its usual (desired) size, in USD: a render
    # whose estimate (offline/cost.py) is above it fails. None: no budget.
    monthly_budget_usd: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None

    @field_validator("tags")
    @classmethod
    def _aws_tags(cls, tags: dict[str, str]) -> dict[str, str]:
        for key in tags:
            if key.lower().startswith("aws:"):
                raise invalid("tags", key, f"{key!r} uses the prefix aws:, which is AWS's own")
        if len(tags) > MAX_STACK_TAGS:
            raise invalid(
                "tags",
                len(tags),
                f"{len(tags)} tags leave no room for the program's own (allowed: at most "
                f"{MAX_STACK_TAGS})",
            )
        return tags

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        check_one_of("region", region, REGIONS, "commercial AWS region")
        return region

    @field_validator("kubernetes_version")
    @classmethod
    def _supported_version(cls, version: str, info: ValidationInfo) -> str:
        today = render_date(info)
        allowed = standard_support_versions(today)
        if version not in SUPPORTED_KUBERNETES_VERSIONS:
            raise invalid(
                "kubernetesVersion",
                version,
                f"{version!r} is not supported (allowed on {today}: {', '.join(allowed)})",
            )
        release = EKS_KUBERNETES_RELEASES.get(version)
        if release is None or not release.in_standard_support(today):
            ended = (
                f"left EKS standard support on {release.end_of_standard_support}"
                if release is not None and today >= release.end_of_standard_support
                else "is not in EKS standard support"
            )
            raise invalid(
                "kubernetesVersion",
                version,
                f"{version!r} {ended}: EKS upgrades such a cluster itself and refuses to go "
                f"back (allowed on {today}: {', '.join(allowed) or 'none: add a newer minor'})",
            )
        return version

    @field_validator("vpc_cidr")
    @classmethod
    def _private_vpc_cidr(cls, cidr: str) -> str:
        try:
            network = ipaddress.IPv4Network(cidr)
        except ValueError:
            raise invalid("vpcCidr", cidr, f"{cidr!r} is not an IPv4 network") from None
        if not any(network.subnet_of(r) for r in VPC_RANGES) or not 16 <= network.prefixlen <= 20:
            raise invalid(
                "vpcCidr",
                cidr,
                f"{cidr!r} must be a /16 to /20 inside {', '.join(str(r) for r in VPC_RANGES)}",
            )
        return cidr

    @field_validator("endpoint_public_access_cidrs")
    @classmethod
    def _no_open_endpoint(cls, cidrs: list[str]) -> list[str]:
        unique = internet_ranges(cidrs)
        if len(unique) > MAX_PUBLIC_ACCESS_CIDRS:
            raise invalid(
                "endpointPublicAccessCidrs",
                len(unique),
                f"{len(unique)} ranges: EKS accepts at most {MAX_PUBLIC_ACCESS_CIDRS}",
            )
        return unique

    @field_validator("control_plane_log_retention_days", "flow_log_retention_days")
    @classmethod
    def _cloudwatch_retention(cls, days: int, info: ValidationInfo) -> int:
        if days not in LOG_RETENTION_DAYS:
            allowed = ", ".join(map(str, sorted(LOG_RETENTION_DAYS)))
            raise invalid(
                to_camel(info.field_name or ""),
                days,
                f"{days} is not a CloudWatch Logs retention (allowed: {allowed})",
            )
        return days

    @model_validator(mode="after")
    def _consistent(self) -> StackSettings:
        zones = self.availability_zones
        if len(zones) != 3 or len(set(zones)) != 3:
            raise invalid("availabilityZones", zones, f"{zones} must name three distinct zones")
        for zone in zones:
            if zone[:-1] != self.region or zone[-1:] not in ZONE_LETTERS:
                raise invalid(
                    "availabilityZones", zone, f"{zone!r} is not a zone of region {self.region!r}"
                )
        if self.environment == "production" and self.access.developers_may_edit:
            raise invalid(
                "access.developersMayEdit",
                True,
                "production developers read only: no Secrets, no exec (allowed: false)",
            )
        missing = [name for name in SERVICE_NAMES if name not in self.services]
        if missing:
            raise invalid("services", missing, f"{', '.join(missing)} missing from the catalog")
        for name, service in self.services.items():
            self._check_service(name, service)
            if name in service.calls:
                raise invalid(f"services.{name}.calls", name, "a service does not call itself")
        self._check_scaling()
        self._check_disaster_recovery()
        traffic = self.addons.mesh.traffic
        unclassed = sorted(set(self.services) - set(traffic.service_classes))
        if self.addons.mesh.enabled and unclassed:
            raise invalid(
                "addons.mesh.traffic.serviceClasses",
                unclassed,
                f"{unclassed} have no traffic class (every service is in exactly one)",
            )
        if self.addons.mesh.enabled:
            self._check_outbound()
        if self.addons.log_shipper.enabled:
            self._check_log_index_engine()
        if self.environment == "production":
            self._check_production_ranges()
            self._check_production_data()
            self._check_production_monitoring()
            self._check_production_request_path()
        if self.edge.enabled:
            self._check_edge()
        if self.delivery is not None:
            self._check_delivery(self.delivery)
        return self

    def _check_delivery(self, delivery: DeliverySettings) -> None:
        """The workflows deploy as access.deployer and preview as delivery.previewRole, both in
        the stack's account; the preview role reads the cluster as an auditor (never writes:
        a server-side dry run is authorized like the write it simulates); the runner's
        GitHub connection is the one the bootstrap made in the stack's region."""
        deployer = self.access.deployer
        if account_of(deployer) != delivery.account_id:
            raise invalid(
                "access.deployer",
                deployer,
                f"{deployer} is in account {account_of(deployer)}, not delivery.accountId "
                f"{delivery.account_id} (the workflows deploy the stack as this role)",
            )
        if delivery.preview_role not in self.access.auditors:
            raise invalid(
                "delivery.previewRole",
                delivery.preview_role,
                f"{delivery.preview_role} is not among access.auditors (pull requests preview "
                "the cluster read-only: list it there)",
            )
        if delivery.connection_region() != self.region:
            raise invalid(
                "delivery.githubConnection",
                delivery.github_connection,
                f"the connection is in {delivery.connection_region()}, the stack in "
                f"{self.region} (allowed: the bootstrap's connection of the stack's region)",
            )

    def _check_outbound(self) -> None:
        """Internet hosts only for services whose network policy lets them out; with the
        registry only, every such service names its hosts (or it would reach nothing)."""
        outbound = self.addons.mesh.outbound
        where = "addons.mesh.outbound.externalHosts"
        for name, hosts in outbound.external_hosts.items():
            if not self.services[name].internet_https:
                raise invalid(
                    f"{where}.{name}",
                    hosts,
                    f"{name} has no internetHttps: its network policy lets it reach no "
                    f"internet host (allowed: [] or services.{name}.internetHttps: true)",
                )
        if outbound.registry_only:
            for name, service in self.services.items():
                if service.internet_https and not outbound.external_hosts.get(name):
                    raise invalid(
                        f"{where}.{name}",
                        [],
                        f"{name} calls the internet, but with registryOnly it would reach "
                        "none of it: list its hosts",
                    )

    def _check_edge(self) -> None:
        """The edge's controllers run, its gateway is the mesh's, each UI's add-on runs."""
        addons = self.addons
        for key in EDGE_ADDONS:
            if not getattr(addons, to_snake(key)).enabled:
                raise invalid(
                    f"addons.{key}.enabled",
                    False,
                    "the edge needs it (allowed: true, or edge.enabled: false)",
                )
        if not addons.mesh.enabled:
            raise invalid(
                "addons.mesh.enabled",
                False,
                "the edge's gateway is the mesh's (allowed: true, or edge.enabled: false)",
            )
        tokens = self.edge.user_tokens
        keys = self.services.get(tokens.jwks_service)
        if keys is None:
            raise invalid(
                "edge.userTokens.jwksService",
                tokens.jwks_service,
                f"{tokens.jwks_service} is not among the stack's services (allowed: "
                f"{', '.join(sorted(self.services))})",
            )
        if tokens.keys_port(keys.port) != keys.port:
            raise invalid(
                "edge.userTokens.jwksPort",
                tokens.jwks_port,
                f"{tokens.jwks_service} serves on port {keys.port} only: its Service, network "
                f"policy and authorization policy open no other (allowed: {keys.port}, or unset)",
            )
        for ui in self.edge.operator_uis:
            addon = OPERATOR_UI_ADDONS[ui]
            if not getattr(addons, addon).enabled:
                raise invalid(
                    "edge.operatorUis",
                    self.edge.operator_uis,
                    f"{ui} is the {addon} add-on's UI (enable addons.{addon}, or leave {ui} "
                    "out of operatorUis)",
                )

    def _check_scaling(self) -> None:
        """HPAs have their metrics served, the autoscaler matches the cluster, and every node
        group can hold its workloads at their maximum."""
        addons = self.addons
        hpas = {name: s.autoscaling for name, s in self.services.items() if s.autoscaling}
        for name, hpa in hpas.items():
            where = f"services.{name}.autoscaling"
            if hpa.resources and not addons.metrics_server.enabled:
                metric = "cpuUtilization" if "cpu" in hpa.resources else "memoryUtilization"
                raise invalid(
                    f"{where}.{metric}",
                    hpa.resources,
                    "resource metrics need addons.metricsServer.enabled",
                )
            if hpa.requests_per_second is not None and not addons.prometheus_adapter.enabled:
                raise invalid(
                    f"{where}.requestsPerSecond",
                    hpa.requests_per_second,
                    "nothing serves it: enable addons.prometheusAdapter (with Prometheus)",
                )
            if self.environment == "production" and hpa.min_replicas < 2:
                raise invalid(
                    f"{where}.minReplicas",
                    hpa.min_replicas,
                    f"{hpa.min_replicas} is below production's 2: with one replica its "
                    "PodDisruptionBudget lets a node drain take the service down",
                )
        users = sorted(name for name, hpa in hpas.items() if hpa.requests_per_second is not None)
        if addons.prometheus_adapter.enabled and not users:
            raise invalid(
                "addons.prometheusAdapter.enabled",
                True,
                "no HPA scales on requestsPerSecond, the only metric it serves (allowed: false, "
                "or give a service's autoscaling a requestsPerSecond)",
            )
        autoscaler = addons.cluster_autoscaler
        if autoscaler.image_tag is not None:
            minor = ".".join(autoscaler.image_tag.removeprefix("v").split(".")[:2])
            if minor != self.kubernetes_version:
                raise invalid(
                    "addons.clusterAutoscaler.imageTag",
                    autoscaler.image_tag,
                    f"{autoscaler.image_tag} is for Kubernetes {minor}, the cluster runs "
                    f"{self.kubernetes_version} (allowed: v{self.kubernetes_version}.x)",
                )
        if addons.cert_manager.enabled:
            check_supported_by("addons.certManager", self.kubernetes_version, CERT_MANAGER_SUPPORT)
        if addons.mesh.enabled:
            check_supported_by("addons.mesh", self.kubernetes_version, ISTIO_SUPPORT)
        if not autoscaler.enabled and any(
            g.min_size < g.max_size for _, g in self.node_groups.items()
        ):
            raise invalid(
                "addons.clusterAutoscaler.enabled",
                False,
                "node groups with minSize below maxSize need the cluster autoscaler",
            )
        load = self.platform_load()
        groups = self.group_plans()
        for report in class_capacity(groups, self.services.values(), load):
            if not report.fits:
                raise invalid(
                    f"nodeGroups.{report.workload_class}.maxSize",
                    report.nodes,
                    f"cannot hold its workloads at their maximum ({report.describe()})",
                )
        zones = len(self.availability_zones)
        for report in zone_loss_capacity(groups, self.services.values(), load, zones):
            if not report.fits:
                group = getattr(self.node_groups, report.workload_class)
                raise invalid(
                    f"nodeGroups.{report.workload_class}.maxSize",
                    group.max_size,
                    f"with one of {zones} zones lost, {report.nodes} nodes cannot hold the "
                    f"services' minimum replicas ({report.describe()})",
                )

    def group_plans(self) -> dict[WorkloadClass, tuple[str, int]]:
        """Each class's group as the autoscaler plans it: (first instance type, maxSize)."""
        return {c: (g.instance_types[0], g.max_size) for c, g in self.node_groups.items()}

    def platform_load(self) -> PlatformLoad:
        """What the platform runs beside the services (node agents, controllers, sidecars)."""
        return platform_load(
            self.addons,
            self.security.guard_duty_agent,
            {c: first for c, (first, _) in self.group_plans().items()},
        )

    def _check_disaster_recovery(self) -> None:
        recovery = self.data.database.disaster_recovery
        if recovery is not None and recovery.region == self.region:
            raise invalid(
                "data.database.disasterRecovery.region",
                recovery.region,
                f"{recovery.region} is the stack's own region (allowed: another region)",
            )
        if (
            recovery is not None
            and recovery.retention_days < self.data.database.backup_retention_days
        ):
            raise invalid(
                "data.database.disasterRecovery.retentionDays",
                recovery.retention_days,
                f"{recovery.retention_days} keeps copies for less than the backups' own "
                f"{self.data.database.backup_retention_days} days",
            )

    def _check_production_monitoring(self) -> None:
        """Production's monitoring survives the loss of a node: two Prometheus replicas and
        an Alertmanager cluster (the seed: full, highly available)."""
        monitoring = self.addons.monitoring
        if not monitoring.enabled:
            raise invalid(
                "addons.monitoring.enabled", False, "production is monitored (allowed: true)"
            )
        for key, replicas in (
            ("replicas", monitoring.replicas),
            ("alertmanagerReplicas", monitoring.alertmanager_replicas),
        ):
            if replicas < 2:
                raise invalid(
                    f"addons.monitoring.{key}",
                    replicas,
                    f"{replicas} is below production's 2 (one node's loss would blind it)",
                )

    def _check_production_ranges(self) -> None:
        """Production's allow-lists hold real ranges: an RFC 5737 documentation range (the
        example files' stand-in) admits nobody."""
        operator = self.edge.operator_access if self.edge.enabled else None
        lists = {
            "endpointPublicAccessCidrs": self.endpoint_public_access_cidrs,
            "edge.operatorAccess.allowedCidrs": (operator.allowed_cidrs if operator else None)
            or [],
        }
        for key, cidrs in lists.items():
            for cidr in cidrs:
                documentation = documentation_range(cidr)
                if documentation is not None:
                    raise invalid(
                        key,
                        cidr,
                        f"{cidr!r} is a documentation range (RFC 5737, {documentation}): no "
                        "request comes from it; replace the example with the real egress range "
                        "(allowed in production: public ranges)",
                    )

    def _check_production_request_path(self) -> None:
        """The seed's production is highly available (seed, "Environment-Specific Values":
        "Production ...: High availability"): every component a request passes through (or
        that the edge needs to keep serving) runs twice or more, and the services the seed
        gives a replica range stay inside it."""
        for name in request_path_services(self.services):
            service = self.services[name]
            if service.replicas is not None and service.replicas < 2:
                raise invalid(
                    f"services.{name}.replicas",
                    service.replicas,
                    f"{service.replicas} is below production's 2: {name} is on the request "
                    "path, and with fewer than two replicas one pod's loss stops it (allowed: "
                    "2 or more, or autoscaling; production does not park a service)",
                )
        for name, (low, high) in SEED_REPLICA_RANGES.items():
            service = self.services[name]
            key = "autoscaling.minReplicas" if service.autoscaling else "replicas"
            if service.min_replicas < low:
                raise invalid(
                    f"services.{name}.{key}",
                    service.min_replicas,
                    f"{service.min_replicas} is below the seed's range for {name} "
                    f"({low}-{high} replicas; allowed in production: {low} or more)",
                )
            key = "autoscaling.maxReplicas" if service.autoscaling else "replicas"
            if service.max_replicas > high:
                raise invalid(
                    f"services.{name}.{key}",
                    service.max_replicas,
                    f"{service.max_replicas} is above the seed's range for {name} "
                    f"({low}-{high} replicas; allowed in production: {high} or fewer)",
                )
        for key in REQUEST_PATH_ADDONS:
            addon = getattr(self.addons, to_snake(key))
            if addon.enabled and addon.replicas < 2:
                raise invalid(
                    f"addons.{key}.replicas",
                    addon.replicas,
                    f"{addon.replicas} is below production's 2: a request-path component with "
                    "one replica is a single point of failure (allowed: 2 or more)",
                )

    def _check_log_index_engine(self) -> None:
        """The log shipper's index (a flat_object per record's JSON) and its filter that keeps
        each indexed term within Lucene's limit are derived from OpenSearch 2.19's mapper
        (components/addons/log_shipper.py); 2.13 also has a flat_object bug with long field
        names (opensearch-project/OpenSearch#13184, fixed in 2.14)."""
        version = self.data.search.engine_version
        if minor_order(version.removeprefix("OpenSearch_")) < minor_order(
            LOG_INDEX_MIN_OPENSEARCH.removeprefix("OpenSearch_")
        ):
            raise invalid(
                "data.search.engineVersion",
                version,
                f"{version} is older than {LOG_INDEX_MIN_OPENSEARCH}, which the log shipper's "
                f"index is built for (allowed: {LOG_INDEX_MIN_OPENSEARCH} or later, or "
                "addons.logShipper.enabled false)",
            )

    def _check_production_data(self) -> None:
        """Production's data tier survives the loss of a node or a zone."""
        data = self.data
        if data.database.instances < 3:
            raise invalid(
                "data.database.instances",
                data.database.instances,
                f"{data.database.instances} is below production's 3 (a writer and two readers, "
                "one per zone)",
            )
        if data.database.disaster_recovery is None:
            raise invalid(
                "data.database.disasterRecovery",
                None,
                "production copies its database backups to a second region (set region, "
                "everyHours, retentionDays)",
            )
        if not data.cache.high_availability:
            raise invalid(
                "data.cache.nodes",
                data.cache.nodes,
                f"{data.cache.nodes} is below production's minimum of 2 (failover)",
            )
        if data.search.zone_count < 2 or data.search.dedicated_master_type is None:
            raise invalid(
                "data.search",
                data.search.instance_count,
                "production needs zone awareness (instanceCount of 2 or more) and "
                "dedicated masters (dedicatedMasterType)",
            )

    def _check_service(self, name: str, service: ServiceSettings) -> None:
        """A service must fit the instance type the autoscaler plans its node group with."""
        group = getattr(self.node_groups, service.workload_class)
        first_type = group.instance_types[0]
        capacity = INSTANCE_TYPES[first_type]
        load = self.platform_load()
        # What one node leaves a pod once the kubelet, the node agents and the pod's own
        # sidecar have theirs.
        node_room = pod_room(capacity, load.agents[service.workload_class]) - load.sidecar
        cpu_room, memory_room = node_room.cpu_millicores, node_room.memory_mib
        where = f"services.{name}"
        vpa = service.vertical_scaling
        # Its requests, and the most its VPA may raise them to (what it controls, where it
        # acts: an `Off` VPA only recommends), fit one node.
        for key, bounds in (
            ("resources.requests", service.resources.requests),
            ("verticalScaling.maxAllowed", vpa.max_allowed),
        ):
            for resource, quantity, requested, room, unit in (
                ("cpu", bounds.cpu, cpu_millicores(bounds.cpu), cpu_room, "m"),
                ("memory", bounds.memory, memory_mib(bounds.memory), memory_room, "Mi"),
            ):
                applied = vpa.update_mode != "Off" and resource in vpa.controlled_resources
                if key == "verticalScaling.maxAllowed" and not applied:
                    continue
                if requested > room:
                    raise invalid(
                        f"{where}.{key}.{resource}",
                        quantity,
                        f"{quantity} does not fit {first_type}, the first type of the "
                        f"{service.workload_class} group (at most {room}{unit} beside the "
                        "node agents and its sidecar)",
                    )
        if service.gpus > capacity.gpus:
            raise invalid(
                f"{where}.gpus",
                service.gpus,
                f"{service.gpus} exceeds the {capacity.gpus} GPU(s) of {first_type}",
            )
        check_secret_env(where, service.secret_env)
