"""Redis on Amazon ElastiCache: a replication group with TLS and AUTH, encrypted at rest."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.data.stores import store_key_and_group
from components.foundation.network import PrivateNetwork
from components.shared.passwords import generated_password
from stacks.data_settings import CacheSettings

REDIS_PORT = 6379


@dataclass(frozen=True)
class CacheArgs:
    replication_group_id: str
    settings: CacheSettings
    network: PrivateNetwork
    protect: bool


class Cache(pulumi.ComponentResource):
    """A Redis replication group: TLS and AUTH required, encrypted at rest, snapshots kept."""

    primary_address: pulumi.Output[str]
    reader_address: pulumi.Output[str]
    port: int = REDIS_PORT
    auth_token: pulumi.Output[str]

    def __init__(
        self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:data:Cache", name, None, opts)
        settings = args.settings
        kept = pulumi.ResourceOptions(parent=self, protect=args.protect)
        key, security_group = store_key_and_group(
            self,
            f"{name}-redis",
            "Redis",
            args.replication_group_id,
            args.network,
            REDIS_PORT,
            args.protect,
        )
        subnets = aws.elasticache.SubnetGroup(
            name,
            subnet_ids=list(args.network.subnet_ids),
            description=f"{args.replication_group_id} private subnets",
            opts=kept,
        )
        # Final snapshot names must be unique across re-creations; the suffix stays stable.
        suffix = random.RandomId(f"{name}-final-snapshot", byte_length=4, opts=kept)
        # Alphanumeric: ElastiCache refuses some punctuation in AUTH tokens.
        token = generated_password(f"{name}-auth-token", kept, length=64)
        group = aws.elasticache.ReplicationGroup(
            name,
            replication_group_id=args.replication_group_id,
            description=f"Cache and sessions of {args.replication_group_id}",
            engine="redis",
            engine_version=settings.engine_version,
            node_type=settings.node_type,
            num_cache_clusters=settings.nodes,
            port=REDIS_PORT,
            subnet_group_name=subnets.name,
            security_group_ids=[security_group.id],
            at_rest_encryption_enabled=True,
            kms_key_id=key.arn,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            auth_token=token,
            automatic_failover_enabled=settings.high_availability,
            multi_az_enabled=settings.high_availability,
            snapshot_retention_limit=settings.snapshot_retention_days,
            snapshot_window="01:00-02:00",
            maintenance_window="sun:04:30-sun:05:30",
            auto_minor_version_upgrade=True,
            final_snapshot_identifier=(
                suffix.hex.apply(lambda hex_: f"{args.replication_group_id}-final-{hex_}")
                if args.protect
                else None
            ),
            opts=kept,
        )
        self.primary_address = group.primary_endpoint_address
        self.reader_address = group.reader_endpoint_address
        self.auth_token = token
        self.register_outputs({"primaryAddress": group.primary_endpoint_address})
