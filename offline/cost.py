"""`make cost STACK=<stack>`: what a stack costs a month on demand, read from its render.

    python -m offline.cost --stack production [--prices]

The estimate reads the resources the program registers (offline/engine.py's recorded resources,
or a rendered inventory.json), never the settings: what is priced is what `pulumi up` would
create. Each line is a resource kind at the node groups' minimum, desired and maximum sizes
(everything but the node groups costs the same at all three); node groups have a line per
workload class, so a group replaced under a new EKS name stays on its line. Prices are
stacks/aws_prices.py's, each with its page and where it was read; a line priced with an
estimated figure is marked `~`. What depends on traffic or data (requests, I/O, capacity
units, most transfer) is listed under "Not estimated", never counted as zero; so is anything
the render asks AWS to create that the table cannot price (a Service of type LoadBalancer,
UltraWarm nodes). Where a price needs a quantity the render does not hold (a database's size, a
log group's volume), the quantity is an assumption, printed with the estimate; the lines built
on whole copies of it (backup copies and their transfer, log storage) are upper bounds.

`make synth` prints the total at desired size, `make diff` its change; a stack whose settings
state `monthlyBudgetUsd` fails its render when the total at desired size is above it.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from components.shared.conventions import WORKLOAD_CLASS_LABEL
from stacks.aws_prices import (
    AURORA_IO_OPTIMIZED_INSTANCE_FACTOR,
    HOURS_PER_MONTH,
    Price,
    UnknownPrice,
    price,
)
from stacks.instance_types import INSTANCE_TYPES

__all__ = ["UnknownPrice"]

Size = Literal["min", "desired", "max"]
SIZES: tuple[Size, ...] = ("min", "desired", "max")
# The exit status of a render (make synth, make cost) over its stack's budget.
OVER_BUDGET = 3

# Quantities the render does not hold, for the prices that need them. Change them here; they
# are printed with every estimate.
ASSUMED_DATABASE_GIB = 100
ASSUMED_LOG_GIB_PER_DAY = 1.0
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
# EKS's default root volume of a managed node group without a launch template (EKS API
# reference, CreateNodegroup, diskSize: 20 GiB for Linux), gp2 then.
EKS_DEFAULT_DISK_GIB = 20

# A mock resource id is the resource's name and 8 hex digits (offline/engine.py, PlatformMocks).
_MOCK_ID = re.compile(r"^(?P<name>.+)-[0-9a-f]{8}$")
# AWS Backup schedules: cron(minutes hours day-of-month month day-of-week year), or rate(...).
_CRON = re.compile(r"^cron\((?P<fields>[^)]*)\)$")
_RATE = re.compile(r"^rate\((?P<count>[0-9]+) (?P<unit>minute|hour|day)s?\)$")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# AWS managed rule groups with a subscription or per-request fee of their own (WAF pricing
# page): anything else in AWS's managed set is priced as a rule of the web ACL.
_PAID_RULE_GROUPS = (
    "AWSManagedRulesBotControlRuleSet",
    "AWSManagedRulesATPRuleSet",
    "AWSManagedRulesACFPRuleSet",
    "AWSManagedRulesAntiDDoSRuleSet",
)


# AWS resource types the estimate prices or names under "Not estimated" (above, by kind).
PRICED_TYPES = frozenset(
    {
        "aws:eks/cluster:Cluster",
        "aws:eks/nodeGroup:NodeGroup",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/eip:Eip",
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        "aws:rds/cluster:Cluster",
        "aws:rds/clusterInstance:ClusterInstance",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "aws:opensearch/domain:Domain",
        "aws:kms/key:Key",
        "aws:secretsmanager/secret:Secret",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:wafv2/webAcl:WebAcl",
        "aws:guardduty/detector:Detector",
        "aws:guardduty/detectorFeature:DetectorFeature",
        "aws:backup/plan:Plan",
        "aws:backup/selection:Selection",
        "aws:s3/bucket:Bucket",
        "aws:ecr/repository:Repository",
        "aws:cloudtrail/trail:Trail",
        "aws:sns/topic:Topic",
        "aws:route53/record:Record",
    }
)
# AWS resource types with no charge of their own (configuration of something priced, or free
# on AWS's pricing pages: IAM, VPC plumbing, EKS access and add-ons, KMS aliases, ACM public
# certificates, EventBridge rules on AWS service events). Any AWS type in neither set is listed
# as "not known to the estimate": a new kind of resource is never silently free.
NO_CHARGE_TYPES = frozenset(
    {
        "aws:acm/certificate:Certificate",
        "aws:acm/certificateValidation:CertificateValidation",
        "aws:autoscaling/tag:Tag",
        "aws:backup/vault:Vault",
        "aws:cloudwatch/eventRule:EventRule",
        "aws:cloudwatch/eventTarget:EventTarget",
        "aws:cloudwatch/logResourcePolicy:LogResourcePolicy",
        "aws:codebuild/webhook:Webhook",
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
        "aws:ec2/flowLog:FlowLog",
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/route:Route",
        "aws:ec2/routeTable:RouteTable",
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/vpc:Vpc",
        "aws:ecr/lifecyclePolicy:LifecyclePolicy",
        "aws:eks/accessEntry:AccessEntry",
        "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
        "aws:eks/addon:Addon",
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
        "aws:elasticache/subnetGroup:SubnetGroup",
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
        "aws:iam/policy:Policy",
        "aws:iam/role:Role",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:kms/alias:Alias",
        "aws:rds/clusterParameterGroup:ClusterParameterGroup",
        "aws:rds/subnetGroup:SubnetGroup",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:secretsmanager/secretRotation:SecretRotation",
        "aws:secretsmanager/secretVersion:SecretVersion",
        "aws:sns/topicPolicy:TopicPolicy",
        "aws:sns/topicSubscription:TopicSubscription",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "aws:wafv2/ipSet:IpSet",
        "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration",
    }
)


@dataclass(frozen=True)
class Resource:
    """What the estimate reads of one rendered resource."""

    type: str
    name: str
    inputs: Mapping[str, Any]
    provider: str = ""


def from_recorded(resources: Iterable[Any]) -> list[Resource]:
    """Resources of a run (offline.engine.RecordedResource)."""
    return [Resource(r.type, r.name, r.inputs, r.provider) for r in resources]


def from_inventory(resources: Iterable[Mapping[str, Any]]) -> list[Resource]:
    """Resources of a rendered inventory.json (`make diff` prices both sides from these)."""
    return [
        Resource(r["type"], r["name"], r.get("inputs", {}), r.get("provider", ""))
        for r in resources
    ]


@dataclass(frozen=True)
class Line:
    kind: str
    detail: str
    monthly: tuple[float, float, float]
    # A price in it is an estimate, not a figure read (stacks/aws_prices.py says how).
    estimated: bool = False
    note: str = ""

    def at(self, size: Size) -> float:
        return self.monthly[SIZES.index(size)]


@dataclass(frozen=True)
class Estimate:
    region: str
    lines: tuple[Line, ...]
    not_estimated: tuple[str, ...]
    assumptions: tuple[str, ...]
    # Every price used: (region, key) -> price.
    prices: Mapping[tuple[str, str], Price] = field(default_factory=dict)

    def total(self, size: Size = "desired") -> float:
        return sum(line.at(size) for line in self.lines)

    def by_kind(self, size: Size = "desired") -> dict[str, float]:
        kinds: dict[str, float] = {}
        for line in self.lines:
            kinds[line.kind] = kinds.get(line.kind, 0.0) + line.at(size)
        return kinds

    def top(self, count: int = 3, size: Size = "desired") -> list[tuple[str, float]]:
        kinds = sorted(self.by_kind(size).items(), key=lambda item: (-item[1], item[0]))
        return kinds[:count]


def _mock_name(resource_id: Any) -> str:
    """The resource name behind a mock id (or an ARN's last part, the same)."""
    text = str(resource_id)
    found = _MOCK_ID.match(text)
    return found.group("name") if found else text


def money(usd: float) -> str:
    return f"${usd:,.2f}"


def rate(usd: float) -> str:
    """A unit price: at least cents, up to the table's precision ($0.10, $0.0225, $0.2198)."""
    text = f"{usd:.4f}".rstrip("0")
    return f"${text}{'0' * (2 - len(text.split('.')[1]))}"


class _Pricer:
    """Looks prices up per region and remembers which were used."""

    def __init__(self) -> None:
        self.used: dict[tuple[str, str], Price] = {}

    def __call__(self, region: str, key: str) -> Price:
        found = price(region, key)
        self.used[(region, key)] = found
        return found


def _monthly(found: Price, quantity: float = 1.0) -> float:
    per_month = HOURS_PER_MONTH if found.unit == "hour" else 1
    return found.usd * per_month * quantity


def _regions(resources: list[Resource]) -> tuple[str, dict[str, str]]:
    """The stack's region and each AWS provider's region by provider name. The stack's region
    is its AWS providers' (the program has one, named `aws`; with several, `aws` is it)."""
    by_name = {
        r.name: str(r.inputs.get("region", ""))
        for r in resources
        if r.type == "pulumi:providers:aws" and r.inputs.get("region")
    }
    stack_region = by_name.get("aws") or next(iter(sorted(by_name.values())), "")
    return stack_region, by_name


def estimate(resources: Iterable[Resource]) -> Estimate:
    """The monthly on-demand estimate of a rendered stack."""
    items = list(resources)
    region, provider_regions = _regions(items)
    pricer = _Pricer()
    lines: list[Line] = []
    not_estimated: list[str] = []
    assumptions: list[str] = []
    if not region:
        return Estimate("", (), ("no AWS provider in the render: nothing on AWS to price",), ())

    def region_of(resource: Resource) -> str:
        own = resource.inputs.get("region")
        if own:
            return str(own)
        # A provider reference is "<provider URN>::<id>"; the URN ends with its name.
        parts = resource.provider.rsplit("::", 2)
        return provider_regions.get(parts[-2], region) if len(parts) == 3 else region

    of_type: dict[str, list[Resource]] = {}
    for item in items:
        of_type.setdefault(item.type, []).append(item)

    def usage(what: str, key: str) -> str:
        found = pricer(region, key)
        return f"{what}: {rate(found.usd)} per {found.unit}"

    def flat(kind: str, detail: str, usd: float, estimated: bool, note: str = "") -> None:
        lines.append(Line(kind, detail, (usd, usd, usd), estimated, note))

    # The EKS control plane: standard support, or extended support once the version leaves it.
    # EKS API reference, UpgradePolicyRequest: the default is EXTENDED; a STANDARD cluster is
    # upgraded automatically at the end of standard support (it never bills extended support).
    for cluster in of_type.get("aws:eks/cluster:Cluster", []):
        where = region_of(cluster)
        standard = pricer(where, "eks:cluster-standard")
        extended = pricer(where, "eks:cluster-extended")
        policy = (cluster.inputs.get("upgradePolicy") or {}).get("supportType", "EXTENDED")
        version = cluster.inputs.get("version", "?")
        note = (
            "STANDARD upgrade policy: EKS upgrades the cluster at the end of standard support, "
            "so it never bills the extended rate"
            if policy == "STANDARD"
            else f"upgrade policy {policy} (the API's default): "
            f"{money(_monthly(extended) - _monthly(standard))} more a month once {version} "
            "leaves standard support"
        )
        flat(
            "EKS control plane",
            f"{cluster.name} ({version}, {rate(standard.usd)}/h)",
            _monthly(standard),
            bool(standard.estimate),
            note,
        )

    # Node groups: the first instance type at min, desired and max, and their root volumes.
    # A line per workload class (and per generation while two of a class coexist, as in a
    # blue/green replacement), so a change to a group changes one line of `make diff`.
    templates = of_type.get("aws:ec2/launchTemplate:LaunchTemplate", [])
    template_by_name = {t.name: t for t in templates}
    groups = of_type.get("aws:eks/nodeGroup:NodeGroup", [])
    group_kinds = _node_group_kinds(groups)
    gpus_wanted = _gpus_requested(of_type.get("kubernetes:apps/v1:Deployment", []))
    node_groups = []
    vcpus = [0, 0, 0]
    for group, group_kind in zip(groups, group_kinds, strict=True):
        where = region_of(group)
        types = list(group.inputs.get("instanceTypes") or [])
        scaling = group.inputs.get("scalingConfig") or {}
        counts = tuple(int(scaling.get(f"{size}Size", 0)) for size in SIZES)
        raised = ""
        gpus_per_node = INSTANCE_TYPES[types[0]].gpus if types[0] in INSTANCE_TYPES else 0
        workload_class = (group.inputs.get("labels") or {}).get(WORKLOAD_CLASS_LABEL)
        wanted = gpus_wanted.get(str(workload_class), 0) if gpus_per_node else 0
        if wanted:
            # Pods scaled by hand (no HPA) that need GPUs run at every size: the autoscaler
            # starts the nodes they need whatever the group's desired size says.
            needed = min(counts[2], -(-wanted // gpus_per_node))
            if needed > counts[1]:
                raised = (
                    f"desired {counts[1]} raised to {needed}: the pods scaled by hand ask for "
                    f"{wanted} GPU(s)"
                )
            counts = (max(counts[0], needed), max(counts[1], needed), counts[2])
        first = pricer(where, f"ec2:{types[0]}")
        disk_gib, disk_type = _root_volume(group, template_by_name)
        disk = pricer(where, f"ebs:{disk_type}")
        per_node = _monthly(first) + disk.usd * disk_gib
        monthly = (counts[0] * per_node, counts[1] * per_node, counts[2] * per_node)
        name = group.inputs.get("nodeGroupName") or group.name
        first_vcpus = INSTANCE_TYPES[types[0]].vcpu if types[0] in INSTANCE_TYPES else 0
        for index, count in enumerate(counts):
            vcpus[index] += count * first_vcpus
        note = ""
        if len(types) > 1:
            dearest = max(types, key=lambda t: pricer(where, f"ec2:{t}").usd)
            at_max = counts[2] * (_monthly(pricer(where, f"ec2:{dearest}")) + disk.usd * disk_gib)
            note = f"largest type {dearest}: {money(at_max)} a month at max size"
        note = "; ".join(part for part in (raised, note) if part)
        lines.append(
            Line(
                group_kind,
                f"{name}: {counts[0]}/{counts[1]}/{counts[2]} x {types[0]} "
                f"({rate(first.usd)}/h) + {disk_gib:g} GiB {disk_type} each",
                monthly,
                bool(first.estimate or disk.estimate),
                note,
            )
        )
        node_groups.append(name)

    # NAT gateways and the public IPv4 addresses the stack allocates.
    nats = of_type.get("aws:ec2/natGateway:NatGateway", [])
    if nats:
        found = pricer(region, "vpc:nat-gateway")
        flat(
            "NAT gateways",
            f"{len(nats)} x {rate(found.usd)}/h",
            _monthly(found, len(nats)),
            bool(found.estimate),
        )
        not_estimated.append(usage("NAT gateways' data processed", "vpc:nat-gateway-data"))
    addresses = of_type.get("aws:ec2/eip:Eip", [])
    if addresses:
        found = pricer(region, "vpc:public-ipv4")
        flat(
            "public IPv4 addresses",
            f"{len(addresses)} Elastic IPs x {rate(found.usd)}/h",
            _monthly(found, len(addresses)),
            bool(found.estimate),
        )

    # Interface VPC endpoints: one network interface per subnet (zone); gateway ones are free.
    interface = [
        e
        for e in of_type.get("aws:ec2/vpcEndpoint:VpcEndpoint", [])
        if e.inputs.get("vpcEndpointType") == "Interface"
    ]
    if interface:
        found = pricer(region, "vpc:interface-endpoint-zone")
        zones = sum(max(1, len(e.inputs.get("subnetIds") or [])) for e in interface)
        flat(
            "VPC interface endpoints",
            f"{len(interface)} endpoints, {zones} endpoint-zones x {rate(found.usd)}/h",
            _monthly(found, zones),
            bool(found.estimate),
        )
        not_estimated.append(usage("VPC endpoints' data processed", "vpc:endpoint-data"))

    # Application load balancers: the load balancer controller makes one per Ingress group
    # (the `alb.ingress.kubernetes.io/group.name` annotation; an Ingress without one gets its
    # own: aws-load-balancer-controller docs, "IngressGroup").
    albs = _load_balancers(of_type.get("kubernetes:networking.k8s.io/v1:Ingress", []))
    if albs:
        found = pricer(region, "elb:alb")
        flat(
            "application load balancers",
            f"{len(albs)} ({', '.join(sorted(albs))}) x {rate(found.usd)}/h (fixed part)",
            _monthly(found, len(albs)),
            bool(found.estimate),
        )
        not_estimated.append(usage("load balancer capacity units (by traffic)", "elb:alb-lcu"))
    # An internet-facing load balancer's nodes have public IPv4 addresses (ELB API reference,
    # LoadBalancer.Scheme), a node in each zone it is enabled in; the controller enables one
    # subnet per zone among the public subnets tagged kubernetes.io/role/elb
    # (aws-load-balancer-controller v3.5.0 docs/deploy/subnet_discovery.md).
    public = [name for name, scheme in albs.items() if scheme == "internet-facing"]
    if public:
        found = pricer(region, "vpc:public-ipv4")
        zones = len(
            {
                str(s.inputs.get("availabilityZone") or s.name)
                for s in of_type.get("aws:ec2/subnet:Subnet", [])
                if (s.inputs.get("tags") or {}).get("kubernetes.io/role/elb") in ("1", "")
            }
        )
        if not zones:
            # An ALB needs subnets in two zones at least (ELB API, CreateLoadBalancer).
            zones = 2
            assumptions.append(
                "no subnet is tagged kubernetes.io/role/elb: each internet-facing load "
                "balancer is in 2 zones"
            )
        flat(
            "load balancers' public IPv4",
            f"{len(public)} internet-facing x {zones} zones x {rate(found.usd)}/h",
            _monthly(found, len(public) * zones),
            bool(found.estimate),
            "at least: one address per zone, and more if AWS adds nodes as traffic grows",
        )

    # Aurora: instances, and storage at the assumed size. A cluster whose storageType is
    # `aurora-iopt1` (I/O-Optimized) pays 1.30 times for its instances and $0.225 a GiB for its
    # storage, and nothing for I/O (stacks/aws_prices.py, AURORA_IO_OPTIMIZED_*).
    clusters = of_type.get("aws:rds/cluster:Cluster", [])
    io_optimized = {
        name
        for c in clusters
        if c.inputs.get("storageType") == "aurora-iopt1"
        for name in (c.name, str(c.inputs.get("clusterIdentifier") or c.name))
    }
    instances = of_type.get("aws:rds/clusterInstance:ClusterInstance", [])
    if instances:
        classes: dict[tuple[str, str, bool], int] = {}
        for instance in instances:
            optimized = _mock_name(instance.inputs.get("clusterIdentifier")) in io_optimized
            key = (region_of(instance), str(instance.inputs.get("instanceClass")), optimized)
            classes[key] = classes.get(key, 0) + 1
        total, estimated, parts = 0.0, False, []
        for (where, class_, optimized), count in sorted(classes.items()):
            found = pricer(where, f"rds:{class_}")
            factor = AURORA_IO_OPTIMIZED_INSTANCE_FACTOR if optimized else 1.0
            total += _monthly(found, count) * factor
            estimated = estimated or bool(found.estimate)
            parts.append(
                f"{count} x {class_} ({rate(found.usd)}/h"
                + (f" x {factor:g}, I/O-Optimized)" if optimized else ")")
            )
        flat("Aurora instances", ", ".join(parts), total, estimated)
    if clusters:
        standard_clusters = [c for c in clusters if c.inputs.get("storageType") != "aurora-iopt1"]
        parts, total, estimated = [], 0.0, False
        for count, storage_key in (
            (len(standard_clusters), "aurora:storage"),
            (len(clusters) - len(standard_clusters), "aurora:storage-io-optimized"),
        ):
            if count:
                found = pricer(region, storage_key)
                total += _monthly(found, count * ASSUMED_DATABASE_GIB)
                estimated = estimated or bool(found.estimate)
                parts.append(
                    f"{count} cluster(s) x {ASSUMED_DATABASE_GIB} GiB x "
                    f"{rate(found.usd)}/GB-month"
                    + (" (I/O-Optimized)" if storage_key.endswith("optimized") else "")
                )
        flat("Aurora storage", ", ".join(parts), total, estimated)
        assumptions.append(f"each Aurora cluster holds {ASSUMED_DATABASE_GIB} GiB")
        if standard_clusters:
            not_estimated.append(usage("Aurora I/O requests (Aurora Standard)", "aurora:io"))
        not_estimated.append(
            usage(
                "Aurora backup storage beyond the cluster's size (free up to it)",
                "aurora:backup-storage",
            )
        )
        if any((c.inputs.get("enabledCloudwatchLogsExports") or []) for c in clusters):
            not_estimated.append(
                "the database's log export to CloudWatch Logs (a log group RDS creates, not in "
                "the render)"
            )
        if any(
            int(i.inputs.get("performanceInsightsRetentionPeriod", 7) or 7) > 7 for i in instances
        ):
            not_estimated.append(
                "Performance Insights retention beyond the free 7 days (per vCPU-month; price "
                "not read)"
            )

    # ElastiCache nodes.
    groups = of_type.get("aws:elasticache/replicationGroup:ReplicationGroup", [])
    for group in groups:
        where = region_of(group)
        node_type = str(group.inputs.get("nodeType"))
        shards = int(group.inputs.get("numNodeGroups") or 0)
        nodes = (
            shards * (int(group.inputs.get("replicasPerNodeGroup") or 0) + 1)
            if shards
            else int(group.inputs.get("numCacheClusters") or 1)
        )
        found = pricer(where, f"elasticache:{node_type}")
        flat(
            "ElastiCache nodes",
            f"{nodes} x {node_type} ({rate(found.usd)}/h)",
            _monthly(found, nodes),
            bool(found.estimate),
        )
    if groups:
        not_estimated.append(
            usage("ElastiCache backup storage beyond the free one", "elasticache:backup-storage")
        )

    # OpenSearch: data and dedicated master nodes, and the data nodes' EBS volumes.
    for domain in of_type.get("aws:opensearch/domain:Domain", []):
        where = region_of(domain)
        config = domain.inputs.get("clusterConfig") or {}
        data_type, data_count = str(config.get("instanceType")), int(config.get("instanceCount", 1))
        found = pricer(where, f"opensearch:{data_type}")
        total, estimated = _monthly(found, data_count), bool(found.estimate)
        detail = f"{data_count} x {data_type} ({rate(found.usd)}/h)"
        if config.get("dedicatedMasterEnabled"):
            master_type = str(config.get("dedicatedMasterType"))
            master_count = int(config.get("dedicatedMasterCount", 3))
            master = pricer(where, f"opensearch:{master_type}")
            total += _monthly(master, master_count)
            estimated = estimated or bool(master.estimate)
            detail += f" + {master_count} masters x {master_type} ({rate(master.usd)}/h)"
        flat("OpenSearch nodes", detail, total, estimated)
        ebs = domain.inputs.get("ebsOptions") or {}
        if ebs.get("ebsEnabled"):
            volume_type = str(ebs.get("volumeType", "gp2"))
            size = int(ebs.get("volumeSize", 10))
            storage = pricer(where, f"opensearch:{volume_type}")
            flat(
                "OpenSearch storage",
                f"{data_count} x {size} GiB {volume_type} ({rate(storage.usd)}/GB-month)",
                _monthly(storage, data_count * size),
                bool(storage.estimate),
            )
        # UltraWarm and cold storage: not in the price table; named, never free.
        if config.get("warmEnabled"):
            not_estimated.append(
                f"OpenSearch UltraWarm nodes of {domain.name}: {config.get('warmCount', '?')} x "
                f"{config.get('warmType', '?')} and their managed storage (prices not read)"
            )
        if (config.get("coldStorageOptions") or {}).get("enabled"):
            not_estimated.append(f"OpenSearch cold storage of {domain.name} (price not read)")

    # Persistent volumes: the claims the program makes, its StatefulSets' claim templates and
    # those its Helm releases' values ask for (volumeClaimTemplate or persistence.size, times
    # the replicas beside them), each at its storage class's EBS type.
    storage_classes = {
        str((c.inputs.get("metadata") or {}).get("name")): c
        for c in of_type.get("kubernetes:storage.k8s.io/v1:StorageClass", [])
    }
    volumes: list[tuple[str, str | None, float]] = []
    for claim in of_type.get("kubernetes:core/v1:PersistentVolumeClaim", []):
        spec = claim.inputs.get("spec") or {}
        volumes.append((claim.name, spec.get("storageClassName"), _claim_gib(spec)))
    for workload in of_type.get("kubernetes:apps/v1:StatefulSet", []):
        spec = workload.inputs.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        for template in spec.get("volumeClaimTemplates") or []:
            claim_spec = template.get("spec") or {}
            volumes.append(
                (
                    workload.name,
                    claim_spec.get("storageClassName"),
                    replicas * _claim_gib(claim_spec),
                )
            )
    releases = of_type.get("kubernetes:helm.sh/v3:Release", [])
    for release in releases:
        values = release.inputs.get("values") or {}
        for storage_class, gib in _helm_volumes(values):
            volumes.append((str(release.inputs.get("name") or release.name), storage_class, gib))
        if _asks_for_load_balancer(values):
            not_estimated.append(
                f"a Service of type LoadBalancer in the values of Helm release {release.name}: "
                "its load balancer is not priced"
            )
    if volumes:
        by_type: dict[str, float] = {}
        for owner, class_name, gib in volumes:
            ebs_type = _volume_type(class_name, storage_classes)
            if ebs_type is None:
                not_estimated.append(
                    f"{gib:g} GiB claimed by {owner} in storage class {class_name!r}, which "
                    "the render does not define"
                )
                continue
            by_type[ebs_type] = by_type.get(ebs_type, 0.0) + gib
        if by_type:
            total, estimated, parts = 0.0, False, []
            for ebs_type, gib in sorted(by_type.items()):
                found = pricer(region, f"ebs:{ebs_type}")
                total += _monthly(found, gib)
                estimated = estimated or bool(found.estimate)
                parts.append(f"{gib:g} GiB {ebs_type} x {rate(found.usd)}/GB-month")
            owners = sorted({owner for owner, _, _ in volumes})
            flat(
                "persistent volumes",
                f"{', '.join(parts)} ({', '.join(owners)})",
                total,
                estimated,
            )
    # A Service of type LoadBalancer makes AWS create a load balancer the render does not hold.
    for service in of_type.get("kubernetes:core/v1:Service", []):
        if (service.inputs.get("spec") or {}).get("type") == "LoadBalancer":
            not_estimated.append(
                f"the load balancer of Service {service.name} (type LoadBalancer): not priced"
            )

    # KMS keys and Secrets Manager secrets (with those RDS manages for its master password).
    keys = of_type.get("aws:kms/key:Key", [])
    if keys:
        per_region: dict[str, int] = {}
        for kms_key in keys:
            per_region[region_of(kms_key)] = per_region.get(region_of(kms_key), 0) + 1
        key_prices = {r: pricer(r, "kms:key") for r in per_region}
        rotating = sum(1 for k in keys if k.inputs.get("enableKeyRotation"))
        rotation = pricer(region, "kms:rotation")
        flat(
            "KMS keys",
            ", ".join(
                f"{n} in {r} x {rate(key_prices[r].usd)}/month"
                for r, n in sorted(per_region.items())
            ),
            sum(_monthly(key_prices[r], n) for r, n in per_region.items()),
            any(p.estimate for p in key_prices.values()),
            # The figure is the first year's: rotation adds key material later.
            f"{rotating} of the {len(keys)} keys rotate yearly: each of a key's first two "
            f"rotations adds {rate(rotation.usd)}/month, so {money(rotation.usd * rotating)} "
            f"more a month in the second year and {money(2 * rotation.usd * rotating)} more "
            "from the third on (later rotations are free)"
            if rotating
            else "",
        )
        not_estimated.append(usage("KMS requests", "kms:requests"))
    # A replica of a secret in another region is billed as a secret of its own (Secrets
    # Manager pricing page: "A replica secret is considered a distinct secret").
    secret_regions: dict[str, int] = {}
    for secret in of_type.get("aws:secretsmanager/secret:Secret", []):
        for where in [region_of(secret)] + [
            str(replica.get("region") or region) for replica in secret.inputs.get("replicas") or []
        ]:
            secret_regions[where] = secret_regions.get(where, 0) + 1
    managed = sum(1 for c in clusters if c.inputs.get("manageMasterUserPassword"))
    if managed:
        secret_regions[region] = secret_regions.get(region, 0) + managed
    if secret_regions:
        secret_prices = {r: pricer(r, "secretsmanager:secret") for r in secret_regions}
        replicas = (
            sum(secret_regions.values())
            - len(of_type.get("aws:secretsmanager/secret:Secret", []))
            - managed
        )
        flat(
            "Secrets Manager secrets",
            ", ".join(
                f"{n} in {r} x {rate(secret_prices[r].usd)}/month"
                for r, n in sorted(secret_regions.items())
            )
            + f" ({managed} RDS-managed, {replicas} replicas)",
            sum(_monthly(secret_prices[r], n) for r, n in secret_regions.items()),
            any(p.estimate for p in secret_prices.values()),
        )
        not_estimated.append(usage("Secrets Manager API calls", "secretsmanager:api"))

    # CloudWatch Logs ingestion, where the program sets a retention.
    kept = [
        g
        for g in of_type.get("aws:cloudwatch/logGroup:LogGroup", [])
        if g.inputs.get("retentionInDays")
    ]
    unkept = [
        g.name
        for g in of_type.get("aws:cloudwatch/logGroup:LogGroup", [])
        if not g.inputs.get("retentionInDays")
    ]
    if kept:
        found = pricer(region, "logs:ingestion")
        gib = len(kept) * ASSUMED_LOG_GIB_PER_DAY * DAYS_PER_MONTH
        flat(
            "CloudWatch Logs ingestion",
            f"{len(kept)} log groups x {ASSUMED_LOG_GIB_PER_DAY:g} GiB/day x {rate(found.usd)}/GB",
            _monthly(found, gib),
            bool(found.estimate),
        )
        assumptions.append(
            f"each log group with a retention ingests {ASSUMED_LOG_GIB_PER_DAY:g} GiB a day"
        )
        # What the groups keep once their retention has filled: the same GiB a day times the
        # days kept, priced uncompressed (CloudWatch bills the compressed size): an upper bound,
        # as the backup copies are.
        storage = pricer(region, "logs:storage")
        kept_gib = sum(ASSUMED_LOG_GIB_PER_DAY * int(g.inputs["retentionInDays"]) for g in kept)
        retentions = sorted({int(g.inputs["retentionInDays"]) for g in kept})
        flat(
            "CloudWatch Logs storage",
            f"{len(kept)} log groups x {ASSUMED_LOG_GIB_PER_DAY:g} GiB/day x "
            f"{'/'.join(str(d) for d in retentions)} days kept = {kept_gib:g} GiB x "
            f"{rate(storage.usd)}/GB-month",
            _monthly(storage, kept_gib),
            bool(storage.estimate),
            "an upper bound once each retention has filled: billed on the compressed size",
        )
    if unkept:
        not_estimated.append(f"log groups without a retention: {', '.join(sorted(unkept))}")

    # WAF: a fixed monthly charge per web ACL and per rule (managed rule groups included).
    for acl in of_type.get("aws:wafv2/webAcl:WebAcl", []):
        where = region_of(acl)
        rules = acl.inputs.get("rules") or []
        base, rule = pricer(where, "waf:web-acl"), pricer(where, "waf:rule")
        flat(
            "WAF web ACL",
            f"{acl.inputs.get('name', acl.name)}: {rate(base.usd)} + "
            f"{len(rules)} rules x {rate(rule.usd)}",
            base.usd + rule.usd * len(rules),
            bool(base.estimate or rule.estimate),
        )
        paid = sorted(
            rule_group["name"]
            for r in rules
            if (rule_group := (r.get("statement") or {}).get("managedRuleGroupStatement"))
            and rule_group.get("name") in _PAID_RULE_GROUPS
        )
        if paid:
            not_estimated.append(f"subscription fees of the rule groups {', '.join(paid)}")
    if of_type.get("aws:wafv2/webAcl:WebAcl"):
        not_estimated.append(usage("WAF requests", "waf:requests"))

    # GuardDuty: no fixed charge; all of it follows usage.
    if of_type.get("aws:guardduty/detector:Detector"):
        features = sorted(
            str(f.inputs.get("name"))
            for f in of_type.get("aws:guardduty/detectorFeature:DetectorFeature", [])
            if f.inputs.get("status") == "ENABLED"
        )
        not_estimated.append(
            "GuardDuty: no fixed charge; it bills the events and logs it analyses"
            + (f" and, with {', '.join(features)}, the EKS audit events" if features else "")
            + " (prices not read)"
        )
        # Runtime Monitoring bills each monitored node's vCPU-hours (GuardDuty User Guide,
        # "Monitoring GuardDuty usage and estimating costs": RuntimeMonitoringEKS,
        # MonitoredVcpuHours); its price was not found in a source read here, so the count is
        # given for whoever prices it.
        if "RUNTIME_MONITORING" in features and node_groups:
            not_estimated.append(
                f"GuardDuty Runtime Monitoring: the nodes' vCPUs, {vcpus[1]} at desired size "
                f"(min {vcpus[0]}, max {vcpus[2]}) on each group's first type, billed per "
                "vCPU-hour (price not read)"
            )

    # AWS Backup: the copies kept in another region.
    for plan in of_type.get("aws:backup/plan:Plan", []):
        selected = [
            s
            for s in of_type.get("aws:backup/selection:Selection", [])
            if _mock_name(s.inputs.get("planId")) == plan.name
        ]
        databases = sum(
            1
            for s in selected
            for arn in s.inputs.get("resources") or []
            for c in clusters
            if str(arn).endswith(f":cluster:{c.inputs.get('clusterIdentifier')}")
        )
        for rule in plan.inputs.get("rules") or []:
            schedule = str(rule.get("schedule", ""))
            runs = _runs_per_day(schedule)
            if runs is None:
                runs = 1.0
                assumptions.append(f"backup schedule {schedule!r} not read: it runs once a day")
            for action in rule.get("copyActions") or []:
                target_region = str(action.get("destinationVaultArn", "")).split(":")[3] or region
                keep_days = int((action.get("lifecycle") or {}).get("deleteAfter") or 0)
                copies = math.ceil(keep_days * runs) if keep_days else 1
                found = pricer(target_region, "backup:aurora-snapshot")
                gib = databases * ASSUMED_DATABASE_GIB * copies
                flat(
                    "backup copies",
                    f"{copies} copies ({runs:g} a day, kept {keep_days} days) of "
                    f"{databases} database(s) in {target_region} x {ASSUMED_DATABASE_GIB} GiB "
                    f"x {rate(found.usd)}/GB-month",
                    _monthly(found, gib),
                    bool(found.estimate),
                    "each copy counted whole: an upper bound (whether a copy shares unchanged "
                    "data with the one before was not found in the sources read)",
                )
                # Each copy crosses regions once: the copies made in a month, whole, at the
                # source region's rate for data sent to the target region.
                east = {"us-east-1", "us-east-2"}
                transfer = pricer(
                    region,
                    "transfer:us-east-to-us-east"
                    if {region, target_region} <= east and region != target_region
                    else "transfer:inter-region",
                )
                sent_gib = databases * ASSUMED_DATABASE_GIB * runs * DAYS_PER_MONTH
                flat(
                    "backup copy transfer",
                    f"{runs:g} copies a day x {DAYS_PER_MONTH:.2f} days x {databases} database(s) "
                    f"x {ASSUMED_DATABASE_GIB} GiB from {region} to {target_region} x "
                    f"{rate(transfer.usd)}/GB",
                    _monthly(transfer, sent_gib),
                    True,
                    "the inter-region data transfer rate taken for AWS Backup's cross-Region "
                    "copies (AWS Backup's page not read); each copy counted whole: an upper "
                    "bound",
                )
        not_estimated.append(f"the backups kept in {region} by plan {plan.name} (changed data)")

    # Usage-priced kinds the render holds, by count.
    for type_, what in (
        ("aws:s3/bucket:Bucket", "S3 buckets: storage and requests"),
        ("aws:ecr/repository:Repository", "ECR repositories: image storage"),
        (
            "aws:cloudtrail/trail:Trail",
            "CloudTrail: the trail's delivery beyond the first copy "
            "of management events, and its S3 storage",
        ),
        ("aws:sns/topic:Topic", "SNS topics: notifications"),
        ("aws:route53/record:Record", "Route 53: queries (the hosted zone is not this stack's)"),
    ):
        if of_type.get(type_):
            not_estimated.append(f"{len(of_type[type_])} {what}")
    if of_type.get("aws:codebuild/project:Project"):
        not_estimated.append(
            f"{len(of_type['aws:codebuild/project:Project'])} CodeBuild projects: build minutes"
        )
    unknown = sorted(
        type_
        for type_ in of_type
        if type_.startswith("aws:")
        and type_ not in PRICED_TYPES | NO_CHARGE_TYPES | {"aws:codebuild/project:Project"}
    )
    for type_ in unknown:
        not_estimated.append(f"{len(of_type[type_])} {type_}: not known to the estimate")
    if node_groups or nats or albs:
        not_estimated.append("data transfer (between zones, to the internet, between regions)")
    return Estimate(
        region, tuple(lines), tuple(not_estimated), tuple(assumptions), dict(pricer.used)
    )


def _root_volume(group: Resource, templates: Mapping[str, Resource]) -> tuple[float, str]:
    """A node's root volume: the launch template's first block device, else EKS's default."""
    reference = group.inputs.get("launchTemplate") or {}
    template = templates.get(_mock_name(reference.get("id") or reference.get("name") or ""))
    if template is not None:
        for device in template.inputs.get("blockDeviceMappings") or []:
            ebs = device.get("ebs") or {}
            if ebs.get("volumeSize"):
                return float(ebs["volumeSize"]), str(ebs.get("volumeType", "gp3"))
    return float(group.inputs.get("diskSize") or EKS_DEFAULT_DISK_GIB), "gp2"


def _gpus_requested(deployments: list[Resource]) -> dict[str, int]:
    """GPUs the Deployments ask for at their fixed replicas, by the workload class their pods
    select (`nvidia.com/gpu` limits: the device plugin's resource). A Deployment without
    `replicas` (an HPA's) is not counted: its count is the HPA's, not the render's."""
    wanted: dict[str, int] = {}
    for deployment in deployments:
        spec = deployment.inputs.get("spec") or {}
        replicas = spec.get("replicas")
        pod = (spec.get("template") or {}).get("spec") or {}
        workload_class = (pod.get("nodeSelector") or {}).get(WORKLOAD_CLASS_LABEL)
        if replicas is None or workload_class is None:
            continue
        per_pod = sum(
            int(((container.get("resources") or {}).get("limits") or {}).get("nvidia.com/gpu", 0))
            for container in pod.get("containers") or []
        )
        if per_pod:
            wanted[workload_class] = wanted.get(workload_class, 0) + int(replicas) * per_pod
    return wanted


# A node group of a later generation is named `<prefix>-<class>-g<N>` (the first generation
# has no suffix). The suffix may end the Pulumi resource name or the EKS name (the EKS name
# may also carry a digest after it), so both are read: `-g<N>` as a whole dash-separated part.
_GENERATION = re.compile(r"-g(?P<generation>[0-9]+)(?=-|$)")


def _generation(group: Resource) -> tuple[int, str]:
    """A group's generation (1 when no name carries `-g<N>`) and its resource name without it."""
    for text in (group.name, str(group.inputs.get("nodeGroupName") or "")):
        found = _GENERATION.search(text)
        if found:
            base = _GENERATION.sub("", group.name, count=1)
            return int(found.group("generation")), base
    return 1, group.name


def _node_group_kinds(groups: list[Resource]) -> list[str]:
    """Each node group's line: `node group <class>`, or `node group <class> g<N>` for each
    generation while a class has two. The class is the group's workload-class label (else its
    workload-class tag, else the resource name's last part without its generation), never the
    EKS name, which carries a digest of the instance types. Two groups of one class that no
    name tells apart keep a line each, named by their EKS names: never summed unseen."""
    classes: list[tuple[str, int]] = []
    for group in groups:
        generation, base = _generation(group)
        labels = group.inputs.get("labels") or {}
        tags = group.inputs.get("tags") or {}
        workload_class = str(
            labels.get(WORKLOAD_CLASS_LABEL)
            or tags.get(WORKLOAD_CLASS_LABEL)
            or base.rsplit("-", 1)[-1]
        )
        classes.append((workload_class, generation))
    per_class: dict[str, list[int]] = {}
    for workload_class, generation in classes:
        per_class.setdefault(workload_class, []).append(generation)
    kinds = []
    for group, (workload_class, generation) in zip(groups, classes, strict=True):
        generations = per_class[workload_class]
        if len(generations) == 1:
            kinds.append(f"node group {workload_class}")
        elif generations.count(generation) == 1:
            kinds.append(f"node group {workload_class} g{generation}")
        else:
            eks_name = group.inputs.get("nodeGroupName") or group.name
            kinds.append(f"node group {workload_class} ({eks_name})")
    return kinds


def _load_balancers(ingresses: list[Resource]) -> dict[str, str]:
    """The ALBs the Ingresses make, by group, with their scheme: internet-facing when an
    Ingress of the group says so, else the controller's default, internal
    (aws-load-balancer-controller v3.5.0 docs/guide/ingress/annotations.md)."""
    groups: dict[str, str] = {}
    for ingress in ingresses:
        metadata = ingress.inputs.get("metadata") or {}
        annotations = metadata.get("annotations") or {}
        if (ingress.inputs.get("spec") or {}).get("ingressClassName") != "alb" and (
            annotations.get("kubernetes.io/ingress.class") != "alb"
        ):
            continue
        group = annotations.get("alb.ingress.kubernetes.io/group.name")
        key = group or f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"
        scheme = annotations.get("alb.ingress.kubernetes.io/scheme", "internal")
        if groups.get(key) != "internet-facing":
            groups[key] = scheme
    return groups


def _cron_values(field: str, low: int, high: int, names: tuple[str, ...] = ()) -> int | None:
    """How many values of [low, high] a cron field matches: `*`, `?`, `a`, `a-b`, `*/n`,
    `a/n`, `a-b/n` and lists of them; None for anything else (L, W, #)."""
    matched: set[int] = set()
    for part in field.split(","):
        for index, name in enumerate(names):
            part = part.replace(name, str(index + low))
        step = 1
        if "/" in part:
            part, _, step_text = part.partition("/")
            if not step_text.isdigit() or int(step_text) == 0:
                return None
            step = int(step_text)
        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            first, _, last = part.partition("-")
            if not (first.isdigit() and last.isdigit()):
                return None
            start, end = int(first), int(last)
        elif part.isdigit():
            start = int(part)
            end = high if step > 1 else start
        else:
            return None
        matched.update(range(start, end + 1, step))
    return len(matched)


def _runs_per_day(schedule: str) -> float | None:
    """How many times a day a backup schedule runs, on average; None when it is not read."""
    found = _RATE.match(schedule)
    if found:
        per_day = {"minute": 24 * 60, "hour": 24, "day": 1}[found.group("unit")]
        return per_day / int(found.group("count"))
    found = _CRON.match(schedule)
    fields = found.group("fields").split() if found else []
    if len(fields) != 6 or fields[3] not in ("*", "?"):
        return None
    minutes = _cron_values(fields[0], 0, 59)
    hours = _cron_values(fields[1], 0, 23)
    month_days = _cron_values(fields[2], 1, 31)
    week_days = _cron_values(fields[4], 1, 7, _WEEKDAYS)
    if None in (minutes, hours, month_days, week_days):
        return None
    assert minutes is not None and hours is not None
    assert month_days is not None and week_days is not None
    if fields[2] not in ("*", "?"):
        days = month_days * 12 / 365
    elif fields[4] not in ("*", "?"):
        days = week_days / 7
    else:
        days = 1.0
    return minutes * hours * days


def _claim_gib(spec: Mapping[str, Any]) -> float:
    return _gib(((spec.get("resources") or {}).get("requests") or {}).get("storage", "0"))


def _helm_volumes(values: Any, replicas: int = 1) -> list[tuple[str | None, float]]:
    """(storage class, GiB) of each volume a release's values ask for: a
    `volumeClaimTemplate` (the Prometheus operator's charts) or an enabled `persistence`
    with a `size` (most charts), times the `replicas` of the nearest map that states them
    (a chart's own default when none does is not known here: 1)."""
    found: list[tuple[str | None, float]] = []
    if isinstance(values, list):
        for item in values:
            found.extend(_helm_volumes(item, replicas))
        return found
    if not isinstance(values, Mapping):
        return found
    if isinstance(values.get("replicas"), int):
        replicas = int(values["replicas"])
    for key, value in values.items():
        if key == "volumeClaimTemplate" and isinstance(value, Mapping):
            spec = value.get("spec") or {}
            found.append((spec.get("storageClassName"), replicas * _claim_gib(spec)))
        elif key == "persistence" and isinstance(value, Mapping) and value.get("enabled"):
            if value.get("size"):
                found.append((value.get("storageClass"), replicas * _gib(value["size"])))
        else:
            found.extend(_helm_volumes(value, replicas))
    return found


def _asks_for_load_balancer(values: Any) -> bool:
    """Whether a release's values set a Service type of LoadBalancer anywhere."""
    if isinstance(values, Mapping):
        return any(
            (key == "type" and value == "LoadBalancer") or _asks_for_load_balancer(value)
            for key, value in values.items()
        )
    if isinstance(values, list):
        return any(_asks_for_load_balancer(item) for item in values)
    return False


def _volume_type(class_name: Any, classes: Mapping[str, Resource]) -> str | None:
    """The EBS volume type of a storage class of the render (the default class when none is
    named); None when the render defines no such class or it is not an EBS class."""
    if not class_name:
        default = [
            c
            for c in classes.values()
            if ((c.inputs.get("metadata") or {}).get("annotations") or {}).get(
                "storageclass.kubernetes.io/is-default-class"
            )
            == "true"
        ]
        if len(default) != 1:
            return None
        storage_class = default[0]
    elif str(class_name) in classes:
        storage_class = classes[str(class_name)]
    else:
        return None
    if storage_class.inputs.get("provisioner") != "ebs.csi.aws.com":
        return None
    # The EBS CSI driver's default volume type is gp3 (kubernetes-sigs/aws-ebs-csi-driver
    # v1.64.0 docs/parameters.md, parameter "type").
    return str((storage_class.inputs.get("parameters") or {}).get("type", "gp3"))


_QUANTITY = re.compile(r"^(?P<number>[0-9.]+)(?P<unit>Ki|Mi|Gi|Ti|k|M|G|T)?$")
_GIB = {
    "Ki": 2**-20,
    "Mi": 2**-10,
    "Gi": 1,
    "Ti": 1024,
    "k": 1e3 / 2**30,
    "M": 1e6 / 2**30,
    "G": 1e9 / 2**30,
    "T": 1e12 / 2**30,
    None: 1 / 2**30,
}


def _gib(quantity: Any) -> float:
    found = _QUANTITY.match(str(quantity))
    if not found:
        return 0.0
    return float(found.group("number")) * _GIB[found.group("unit")]


def over_budget(found: Estimate, budget: float | None, stack: str) -> str | None:
    """One line when the estimate at desired size is above the stack's budget, else None."""
    if budget is None or found.total("desired") <= budget:
        return None
    top = ", ".join(f"{kind} {money(usd)}" for kind, usd in found.top(3))
    return (
        f"{stack}: the estimate at desired size, {money(found.total('desired'))} a month, is "
        f"over monthlyBudgetUsd {money(budget)}; the largest: {top}"
    )


def budget_of(namespace: Mapping[str, Any]) -> float | None:
    """The stack's monthly budget, from the program's settings (None: not stated)."""
    settings = namespace.get("settings")
    budget = getattr(settings, "monthly_budget_usd", None)
    return float(budget) if budget is not None else None


def summary(found: Estimate) -> str:
    """The one line `make synth` prints."""
    if not found.lines:
        return "Monthly on-demand estimate: nothing on AWS to price"
    mark = " (some prices estimated)" if any(line.estimated for line in found.lines) else ""
    return (
        f"Monthly on-demand estimate: {money(found.total('desired'))} at desired size "
        f"(min {money(found.total('min'))}, max {money(found.total('max'))}){mark}; "
        "`make cost` for the breakdown"
    )


def report(stack: str, found: Estimate) -> str:
    """The breakdown `make cost` prints."""
    if not found.lines:
        return f"{stack}: {found.not_estimated[0] if found.not_estimated else 'nothing to price'}"
    kind_width = max(len(line.kind) for line in found.lines) + 2
    lines = [
        f"Monthly on-demand estimate of {stack} ({found.region}), USD, from its render",
        f"{'':2}{'kind':<{kind_width}}{'min':>12}{'desired':>12}{'max':>12}  detail",
    ]
    for line in found.lines:
        mark = "~ " if line.estimated else "  "
        lines.append(
            f"{mark}{line.kind:<{kind_width}}"
            + "".join(f"{money(line.at(size)):>12}" for size in SIZES)
            + f"  {line.detail}"
        )
        if line.note:
            lines.append(f"{'':2}{'':<{kind_width}}{'':36}  ({line.note})")
    lines.append(
        f"{'':2}{'total':<{kind_width}}"
        + "".join(f"{money(found.total(size)):>12}" for size in SIZES)
    )
    lines.append("")
    lines.append(
        "~ a price in the line is an estimate, not a figure read (python -m offline.cost "
        f"--stack {stack} --prices shows each price's source and derivation)"
    )
    if found.assumptions:
        lines.append("Assumed (the render does not say): " + "; ".join(found.assumptions))
    lines.append("Not estimated:")
    lines.extend(f"  - {item}" for item in found.not_estimated)
    return "\n".join(lines)


def price_sheet(found: Estimate) -> str:
    """Every price the estimate used, with its page, where it was read and how estimated."""
    rows = []
    for (region, key), used in sorted(found.prices.items()):
        rows.append(
            f"{region} {key}: {rate(used.usd)} per {used.unit} (read {used.read_on})\n"
            f"    page: {used.page}\n    from: {used.read_from}"
            + (f"\n    estimate: {used.estimate}" if used.estimate else "")
        )
    return "\n".join(rows)


def cost_change(before: Estimate, after: Estimate) -> str:
    """What `make diff` prints of the cost: the total at desired size, and each kind changed."""
    old, new = before.total("desired"), after.total("desired")
    if not before.lines and not after.lines:
        return "cost: nothing on AWS to price"
    change = new - old
    if abs(change) < 0.005:
        lines = [f"cost a month at desired size: {money(new)}, unchanged"]
    else:
        lines = [
            f"cost a month at desired size: {money(old)} -> {money(new)} "
            f"({'+' if change >= 0 else '-'}{money(abs(change))})"
        ]
    old_kinds, new_kinds = before.by_kind(), after.by_kind()
    for kind in sorted(old_kinds.keys() | new_kinds.keys()):
        a, b = old_kinds.get(kind, 0.0), new_kinds.get(kind, 0.0)
        if abs(b - a) >= 0.005:
            lines.append(
                f"  {kind}: {money(a)} -> {money(b)} ({'+' if b >= a else '-'}{money(abs(b - a))})"
            )
    old_max, new_max = before.total("max"), after.total("max")
    if abs(new_max - old_max) >= 0.005:
        lines.append(f"  at max size: {money(old_max)} -> {money(new_max)}")
    return "\n".join(lines)


def inventory_change(
    before: Iterable[Mapping[str, Any]], after: Iterable[Mapping[str, Any]]
) -> str:
    """`cost_change` of two rendered inventories (a type the table cannot price says so)."""
    try:
        return cost_change(estimate(from_inventory(before)), estimate(from_inventory(after)))
    except UnknownPrice as error:
        return f"cost: not estimated ({error.args[0]})"


def main(argv: list[str] | None = None) -> int:
    from offline.engine import UnknownStackError, run_stack

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="production")
    parser.add_argument("--prices", action="store_true", help="each price's source")
    parser.add_argument("--json", action="store_true", help="the estimate as JSON")
    args = parser.parse_args(argv)
    try:
        run = run_stack(args.stack)
    except UnknownStackError as error:
        print(f"cost: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        print(f"cost {args.stack}: {error}", file=sys.stderr)
        return 1
    try:
        found = estimate(from_recorded(run.resources))
    except UnknownPrice as error:
        print(f"cost {args.stack}: {error.args[0]}", file=sys.stderr)
        return 1
    if args.json:
        print(
            json.dumps(
                {
                    "stack": args.stack,
                    "region": found.region,
                    "total": {size: round(found.total(size), 2) for size in SIZES},
                    "lines": [
                        {
                            "kind": line.kind,
                            "detail": line.detail,
                            "estimated": line.estimated,
                            **{size: round(line.at(size), 2) for size in SIZES},
                        }
                        for line in found.lines
                    ],
                    "notEstimated": list(found.not_estimated),
                    "assumptions": list(found.assumptions),
                },
                indent=2,
            )
        )
    else:
        print(report(args.stack, found))
        if args.prices:
            print("\nPrices used:")
            print(price_sheet(found))
    problem = over_budget(found, budget_of(run.namespace), args.stack)
    if problem:
        print(problem, file=sys.stderr)
        return OVER_BUDGET
    return 0


if __name__ == "__main__":
    sys.exit(main())
