"""What AWS offers that the settings may name: regions, the EKS Kubernetes release calendar,
and the database, cache and search classes and versions this platform is checked against. A
value outside these lists is refused before anything is created; adding one is a deliberate,
reviewed change.

Only the commercial partition (`aws`): ARNs are built with it, so GovCloud (`aws-us-gov`) and
China (`aws-cn`) regions are refused rather than half supported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# Commercial regions (AWS General Reference, "Regions and Availability Zones").
REGIONS = frozenset(
    {
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "ca-central-1",
        "ca-west-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-central-1",
        "eu-central-2",
        "eu-north-1",
        "eu-south-1",
        "eu-south-2",
        "ap-south-1",
        "ap-south-2",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "ap-east-1",
        "sa-east-1",
        "me-south-1",
        "me-central-1",
        "af-south-1",
        "il-central-1",
        "mx-central-1",
    }
)
# Availability zone letters a region may have.
ZONE_LETTERS = frozenset("abcdef")

# Aurora PostgreSQL releases (Aurora PostgreSQL release notes).
AURORA_POSTGRES_VERSIONS = frozenset(
    {
        "15.10",
        "15.12",
        "16.6",
        "16.8",
        "17.4",
        "17.5",
    }
)
# Aurora instance classes for PostgreSQL (Aurora User Guide, "DB instance classes").
AURORA_INSTANCE_CLASSES = frozenset(
    {
        "db.t4g.medium",
        "db.t4g.large",
        *(
            f"db.{family}.{size}"
            for family in ("r6g", "r7g", "r6i", "r7i")
            for size in ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")
        ),
    }
)
# ElastiCache for Redis OSS.
REDIS_VERSIONS = frozenset({"7.0", "7.1"})
CACHE_NODE_TYPES = frozenset(
    {
        "cache.t4g.micro",
        "cache.t4g.small",
        "cache.t4g.medium",
        *(
            f"cache.{family}.{size}"
            for family in ("m6g", "m7g", "r6g", "r7g")
            for size in ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")
        ),
    }
)
# OpenSearch Service.
OPENSEARCH_VERSIONS = frozenset(
    {"OpenSearch_2.13", "OpenSearch_2.15", "OpenSearch_2.17", "OpenSearch_2.19"}
)
# The most a data node's gp3 EBS volume may hold, in GiB, per instance type (Amazon OpenSearch
# Service Developer Guide, "Amazon OpenSearch Service quotas", table "EBS volume size quotas",
# column "Maximum EBS size (gp3)"; read from awsdocs/amazon-opensearch-service-developer-guide
# doc_source/limits.md at 1dc78183; 1 TiB = 1024 GiB). The minimum is 10 GiB for each. The
# types this platform takes are the table's rows: the M7g, R7g and C7g families are offered
# too, but the stored quotas table has no row for them, so they are refused until one is
# added from the page.
OPENSEARCH_EBS_GP3_MAX_GIB: dict[str, int] = {
    "m6g.large.search": 1024,
    "m6g.xlarge.search": 2048,
    "m6g.2xlarge.search": 3072,
    "m6g.4xlarge.search": 6144,
    "m6g.8xlarge.search": 12288,
    "m6g.12xlarge.search": 18432,
    "c6g.large.search": 256,
    "c6g.xlarge.search": 512,
    "c6g.2xlarge.search": 1024,
    "c6g.4xlarge.search": 1536,
    "c6g.8xlarge.search": 3072,
    "c6g.12xlarge.search": 4608,
    "r6g.large.search": 2048,
    "r6g.xlarge.search": 3072,
    "r6g.2xlarge.search": 6144,
    "r6g.4xlarge.search": 12288,
    "r6g.8xlarge.search": 16384,
    "r6g.12xlarge.search": 24576,
}
OPENSEARCH_EBS_MIN_GIB = 10
SEARCH_INSTANCE_TYPES = frozenset(OPENSEARCH_EBS_GP3_MAX_GIB)

# The values CloudWatch Logs accepts for retentionInDays (0, "never expire", is not offered:
# every log group here has a retention).
LOG_RETENTION_DAYS = frozenset(
    {
        1,
        3,
        5,
        7,
        14,
        30,
        60,
        90,
        120,
        150,
        180,
        365,
        400,
        545,
        731,
        1096,
        1827,
        2192,
        2557,
        2922,
        3288,
        3653,
    }
)


@dataclass(frozen=True)
class EksRelease:
    """One Kubernetes minor on EKS: released, then 14 months of standard support, then 12 of
    extended support (dates in UTC)."""

    released: date
    end_of_standard_support: date
    end_of_extended_support: date

    def in_standard_support(self, day: date) -> bool:
        """Extended support (and its billing) starts at the beginning of the end date, so the
        end date itself is no longer standard support."""
        return self.released <= day < self.end_of_standard_support


# The Amazon EKS Kubernetes release calendar (EKS User Guide, "Understand the Kubernetes version
# lifecycle on EKS", docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html, table
# "Amazon EKS Kubernetes release calendar", as published with 1.35 the newest row; read
# 2026-12-03). With `upgradePolicy.supportType: STANDARD` EKS upgrades a cluster itself at the
# end of standard support, and a later `pulumi up` asking for the old minor is refused (EKS
# never downgrades): the settings refuse a minor outside standard support. A new minor is added
# here from that table when the page lists it with exact dates (1.36 is on EKS, but the stored
# calendar had no row for it yet).
EKS_KUBERNETES_RELEASES: dict[str, EksRelease] = {
    "1.29": EksRelease(date(2024, 1, 23), date(2025, 3, 23), date(2026, 3, 23)),
    "1.30": EksRelease(date(2024, 5, 23), date(2025, 7, 23), date(2026, 7, 23)),
    "1.31": EksRelease(date(2024, 9, 26), date(2025, 11, 26), date(2026, 11, 26)),
    "1.32": EksRelease(date(2025, 1, 23), date(2026, 3, 23), date(2027, 3, 23)),
    "1.33": EksRelease(date(2025, 5, 29), date(2026, 7, 29), date(2027, 7, 29)),
    "1.34": EksRelease(date(2025, 10, 2), date(2026, 12, 2), date(2027, 12, 2)),
    "1.35": EksRelease(date(2026, 1, 27), date(2027, 3, 27), date(2028, 3, 27)),
}
# A stack whose minor leaves standard support sooner than this is warned at every render: an
# upgrade (one minor at a time, docs/operations.md, "Kubernetes upgrades") takes planning.
STANDARD_SUPPORT_WARNING_DAYS = 90


def minor_order(version: str) -> tuple[int, int]:
    major, minor = version.split(".")
    return int(major), int(minor)
