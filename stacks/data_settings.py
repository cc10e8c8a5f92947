"""Settings of the data tier: PostgreSQL (RDS), Redis (ElastiCache) and search (OpenSearch)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from stacks.settings_base import Settings, invalid

# CloudWatch-free retention choices Performance Insights accepts: 7 days free, or months.
PERFORMANCE_INSIGHTS_RETENTION = frozenset({7, *range(31, 731, 31), 731})


class DatabaseSettings(Settings):
    # A major version: RDS picks its newest minor and keeps it patched (auto minor upgrades).
    engine_version: Annotated[str, Field(pattern=r"^(15|16|17)$")]
    instance_class: Annotated[str, Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")]
    allocated_storage_gib: Annotated[int, Field(ge=20, le=65536)]
    max_allocated_storage_gib: Annotated[int, Field(ge=20, le=65536)]
    multi_az: bool
    read_replicas: Annotated[int, Field(ge=0, le=5)]
    backup_retention_days: Annotated[int, Field(ge=1, le=35)]
    performance_insights_retention_days: int = 7
    database_name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")] = "financial_planning"
    master_username: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,15}$")] = "fp_admin"

    @model_validator(mode="after")
    def _consistent(self) -> DatabaseSettings:
        if self.max_allocated_storage_gib < self.allocated_storage_gib:
            raise invalid(
                "maxAllocatedStorageGib",
                self.max_allocated_storage_gib,
                f"{self.max_allocated_storage_gib} is below allocatedStorageGib "
                f"{self.allocated_storage_gib}",
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
    def parameter_group_family(self) -> str:
        return f"postgres{self.engine_version}"


class CacheSettings(Settings):
    engine_version: Annotated[str, Field(pattern=r"^7\.[0-9]$")]
    node_type: Annotated[str, Field(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")]
    # One primary plus replicas; automatic failover and Multi-AZ need at least two.
    nodes: Annotated[int, Field(ge=1, le=6)]
    snapshot_retention_days: Annotated[int, Field(ge=1, le=35)]

    @property
    def high_availability(self) -> bool:
        return self.nodes >= 2


class SearchSettings(Settings):
    engine_version: Annotated[str, Field(pattern=r"^OpenSearch_[0-9]+\.[0-9]+$")]
    instance_type: Annotated[str, Field(pattern=r"^[a-z0-9]+\.[a-z0-9]+\.search$")]
    instance_count: Annotated[int, Field(ge=1, le=30)]
    dedicated_master_type: Annotated[str, Field(pattern=r"^[a-z0-9]+\.[a-z0-9]+\.search$")] | None
    volume_size_gib: Annotated[int, Field(ge=10, le=16384)]

    @model_validator(mode="after")
    def _zones_can_hold_the_nodes(self) -> SearchSettings:
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
