"""Settings of the data tier: PostgreSQL (Aurora), Redis (ElastiCache), search (OpenSearch)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from stacks.aws_facts import (
    AURORA_INSTANCE_CLASSES,
    AURORA_POSTGRES_VERSIONS,
    CACHE_NODE_TYPES,
    LOG_RETENTION_DAYS,
    OPENSEARCH_EBS_GP3_MAX_GIB,
    OPENSEARCH_EBS_MIN_GIB,
    OPENSEARCH_VERSIONS,
    REDIS_VERSIONS,
    REGIONS,
    SEARCH_INSTANCE_TYPES,
)
from stacks.rules import PrincipalArn, allowed_database_name, allowed_master_username
from stacks.settings_base import Settings, check_one_of, invalid

# CloudWatch-free retention choices Performance Insights accepts: 7 days free, or months.
PERFORMANCE_INSIGHTS_RETENTION = frozenset({7, *range(31, 731, 31), 731})


class DisasterRecovery(Settings):
    """Copies of the database's backups in a second region, under a KMS key there."""

    region: str
    # How often a backup is taken and copied: the recovery point objective if the region is lost.
    every_hours: Literal[1, 2, 3, 4, 6, 8, 12, 24]
    # How long the copies are kept in the second region (and the backups in this one).
    retention_days: Annotated[int, Field(ge=7, le=3650)]

    @model_validator(mode="after")
    def _known_region(self) -> DisasterRecovery:
        check_one_of("region", self.region, REGIONS, "commercial AWS region")
        return self


class DatabaseSettings(Settings):
    """Aurora PostgreSQL: one writer and `instances - 1` readers, each in its own zone."""

    # A minor version Aurora offers (Aurora PostgreSQL release notes). Minor upgrades are made
    # here, not by AWS on its own, so the program and the cluster never disagree.
    engine_version: Annotated[str, Field(pattern=r"^(15|16|17)\.[0-9]{1,2}$")]
    instance_class: Annotated[str, Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")]
    # Writer plus readers; the reader endpoint spreads reads over the readers.
    instances: Annotated[int, Field(ge=1, le=16)]
    backup_retention_days: Annotated[int, Field(ge=1, le=35)]
    performance_insights_retention_days: int = 7
    database_name: Annotated[
        str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$"), AfterValidator(allowed_database_name)
    ] = "financial_planning"
    master_username: Annotated[
        str, Field(pattern=r"^[a-z][a-z0-9_]{0,15}$"), AfterValidator(allowed_master_username)
    ] = "fp_admin"
    disaster_recovery: DisasterRecovery | None = None
    # How often Aurora rotates the master password it manages (its default is 7 days).
    master_rotation_days: Annotated[int, Field(ge=1, le=365)] = 7

    @model_validator(mode="after")
    def _consistent(self) -> DatabaseSettings:
        check_one_of(
            "engineVersion",
            self.engine_version,
            AURORA_POSTGRES_VERSIONS,
            "known Aurora PostgreSQL version",
        )
        check_one_of(
            "instanceClass",
            self.instance_class,
            AURORA_INSTANCE_CLASSES,
            "known Aurora instance class",
        )
        if self.performance_insights_retention_days not in PERFORMANCE_INSIGHTS_RETENTION:
            raise invalid(
                "performanceInsightsRetentionDays",
                self.performance_insights_retention_days,
                f"{self.performance_insights_retention_days} is not offered (allowed: 7, a "
                "multiple of 31 up to 713, or 731)",
            )
        return self

    @property
    def major_version(self) -> str:
        return self.engine_version.split(".")[0]

    @property
    def parameter_group_family(self) -> str:
        """The cluster parameter group family of the engine's major version."""
        return f"aurora-postgresql{self.major_version}"

    @property
    def readers(self) -> int:
        return self.instances - 1


class CacheSettings(Settings):
    engine_version: Annotated[str, Field(pattern=r"^7\.[0-9]$")]
    node_type: Annotated[str, Field(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")]
    # One primary plus replicas; automatic failover and Multi-AZ need at least two.
    nodes: Annotated[int, Field(ge=1, le=6)]
    snapshot_retention_days: Annotated[int, Field(ge=1, le=35)]

    @model_validator(mode="after")
    def _offered(self) -> CacheSettings:
        check_one_of("engineVersion", self.engine_version, REDIS_VERSIONS, "known Redis version")
        check_one_of("nodeType", self.node_type, CACHE_NODE_TYPES, "known cache node type")
        return self

    @property
    def high_availability(self) -> bool:
        return self.nodes >= 2


class SearchSettings(Settings):
    engine_version: Annotated[str, Field(pattern=r"^OpenSearch_[0-9]+\.[0-9]+$")]
    instance_type: Annotated[str, Field(pattern=r"^[a-z0-9]+\.[a-z0-9]+\.search$")]
    instance_count: Annotated[int, Field(ge=1, le=30)]
    dedicated_master_type: Annotated[str, Field(pattern=r"^[a-z0-9]+\.[a-z0-9]+\.search$")] | None
    volume_size_gib: Annotated[
        int, Field(ge=OPENSEARCH_EBS_MIN_GIB, le=max(OPENSEARCH_EBS_GP3_MAX_GIB.values()))
    ]
    # The IAM principal that administers the domain: mapped to fine-grained access control's
    # all_access and security_manager by the search bootstrap (whose own role is the master
    # user, so that the program can apply the readers' and writers' mappings).
    administrator_arn: PrincipalArn
    # How long CloudWatch Logs keeps the domain's own logs (audit, error, slow logs).
    log_retention_days: int

    @field_validator("log_retention_days")
    @classmethod
    def _cloudwatch_retention(cls, days: int) -> int:
        if days not in LOG_RETENTION_DAYS:
            allowed = ", ".join(map(str, sorted(LOG_RETENTION_DAYS)))
            raise invalid(
                "logRetentionDays",
                days,
                f"{days} is not a CloudWatch Logs retention (allowed: {allowed})",
            )
        return days

    @model_validator(mode="after")
    def _zones_can_hold_the_nodes(self) -> SearchSettings:
        check_one_of(
            "engineVersion", self.engine_version, OPENSEARCH_VERSIONS, "known OpenSearch version"
        )
        check_one_of(
            "instanceType", self.instance_type, SEARCH_INSTANCE_TYPES, "known search instance type"
        )
        if self.dedicated_master_type is not None:
            check_one_of(
                "dedicatedMasterType",
                self.dedicated_master_type,
                SEARCH_INSTANCE_TYPES,
                "known search instance type",
            )
        most = OPENSEARCH_EBS_GP3_MAX_GIB[self.instance_type]
        if self.volume_size_gib > most:
            raise invalid(
                "volumeSizeGib",
                self.volume_size_gib,
                f"{self.volume_size_gib} GiB is above the {most} GiB a gp3 volume of "
                f"{self.instance_type} may have (OpenSearch Service quotas)",
            )
        if self.instance_count > 1 and self.instance_count % 2 and self.instance_count % 3:
            raise invalid(
                "instanceCount",
                self.instance_count,
                f"{self.instance_count} nodes cannot be balanced over 2 or 3 zones "
                "(allowed: 1, or a multiple of 2 or 3)",
            )
        return self

    @property
    def zone_count(self) -> int:
        """Zones the data nodes spread over (1 means no zone awareness)."""
        if self.instance_count == 1:
            return 1
        return 3 if self.instance_count % 3 == 0 else 2


class DataSettings(Settings):
    database: DatabaseSettings
    cache: CacheSettings
    search: SearchSettings
