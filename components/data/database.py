"""PostgreSQL on Amazon RDS: a primary (Multi-AZ where set) and its read replicas, TLS only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.data.stores import store_key_and_group
from components.foundation.network import PrivateNetwork
from stacks.data_settings import DatabaseSettings

POSTGRES_PORT = 5432


@dataclass(frozen=True)
class DatabaseArgs:
    identifier: str
    settings: DatabaseSettings
    network: PrivateNetwork
    protect: bool


class Database(pulumi.ComponentResource):
    """PostgreSQL primary (Multi-AZ where set) and its read replicas; TLS only."""

    address: pulumi.Output[str]
    port: int = POSTGRES_PORT
    replica_addresses: list[pulumi.Output[str]]
    # The Secrets Manager secret RDS keeps the master credentials in, and its key.
    master_secret_arn: pulumi.Output[str]
    key_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:data:Database", name, None, opts)
        settings = args.settings
        kept = pulumi.ResourceOptions(parent=self, protect=args.protect)
        key, security_group = store_key_and_group(
            self,
            f"{name}-postgres",
            "PostgreSQL",
            args.identifier,
            args.network,
            POSTGRES_PORT,
            args.protect,
        )
        subnets = aws.rds.SubnetGroup(name, subnet_ids=list(args.network.subnet_ids), opts=kept)
        parameters = aws.rds.ParameterGroup(
            name,
            family=settings.parameter_group_family,
            description=f"{args.identifier}: TLS required",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1"),
                aws.rds.ParameterGroupParameterArgs(
                    name="log_min_duration_statement", value="1000"
                ),
            ],
            opts=kept,
        )
        # Final snapshot names must be unique across re-creations; the suffix stays stable.
        suffix = random.RandomId(f"{name}-final-snapshot", byte_length=4, opts=kept)

        # Settings the primary and its replicas share.
        common: dict[str, Any] = {
            "instance_class": settings.instance_class,
            "vpc_security_group_ids": [security_group.id],
            "parameter_group_name": parameters.name,
            "publicly_accessible": False,
            "auto_minor_version_upgrade": True,
            "performance_insights_enabled": True,
            "performance_insights_kms_key_id": key.arn,
            "performance_insights_retention_period": settings.performance_insights_retention_days,
            "enabled_cloudwatch_logs_exports": ["postgresql", "upgrade"],
            "copy_tags_to_snapshot": True,
            "deletion_protection": args.protect,
            "ca_cert_identifier": "rds-ca-rsa2048-g1",
        }
        primary = aws.rds.Instance(
            name,
            identifier=args.identifier,
            engine="postgres",
            engine_version=settings.engine_version,
            db_name=settings.database_name,
            username=settings.master_username,
            # RDS generates and rotates the password in Secrets Manager: never in config or state.
            manage_master_user_password=True,
            master_user_secret_kms_key_id=key.arn,
            iam_database_authentication_enabled=True,
            allocated_storage=settings.allocated_storage_gib,
            max_allocated_storage=settings.max_allocated_storage_gib,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=key.arn,
            db_subnet_group_name=subnets.name,
            multi_az=settings.multi_az,
            backup_retention_period=settings.backup_retention_days,
            backup_window="02:00-03:00",
            maintenance_window="sun:03:30-sun:04:30",
            skip_final_snapshot=not args.protect,
            final_snapshot_identifier=(
                suffix.hex.apply(lambda hex_: f"{args.identifier}-final-{hex_}")
                if args.protect
                else None
            ),
            delete_automated_backups=not args.protect,
            **common,
            opts=kept,
        )
        replicas = [
            aws.rds.Instance(
                f"{name}-replica-{index}",
                identifier=f"{args.identifier}-replica-{index}",
                replicate_source_db=primary.identifier,
                # Encryption, engine and credentials follow the primary.
                storage_encrypted=True,
                kms_key_id=key.arn,
                backup_retention_period=0,
                skip_final_snapshot=True,
                **common,
                opts=kept,
            )
            for index in range(1, settings.read_replicas + 1)
        ]
        self.address = primary.address
        self.replica_addresses = [replica.address for replica in replicas]
        self.master_secret_arn = primary.master_user_secrets.apply(
            lambda secrets: (secrets or [])[0].secret_arn or ""
        )
        self.key_arn = key.arn
        self.register_outputs(
            {"address": primary.address, "replicaAddresses": self.replica_addresses}
        )
