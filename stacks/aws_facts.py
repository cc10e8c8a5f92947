"""What AWS offers that the settings may name: regions, and the database, cache and search
classes and versions this platform is checked against. A value outside these lists is refused
before anything is created; adding one is a deliberate, reviewed change.

Only the commercial partition (`aws`): ARNs are built with it, so GovCloud (`aws-us-gov`) and
China (`aws-cn`) regions are refused rather than half supported.
"""

from __future__ import annotations

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
SEARCH_INSTANCE_TYPES = frozenset(
    f"{family}.{size}.search"
    for family in ("m6g", "m7g", "r6g", "r7g", "c6g", "c7g")
    for size in ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge")
)

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
