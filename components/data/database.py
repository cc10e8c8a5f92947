"""PostgreSQL on Amazon Aurora: one writer and its readers in separate zones, TLS only.

Why Aurora (see docs/data.md for the citations): Aurora writes every commit
to six storage copies in three zones before acknowledging it, so losing a zone loses no
committed transaction; a reader is promoted in well under a minute; the reader endpoint spreads
reads over the readers; and readers are instances of the cluster, not RDS read replicas, so the
master password can stay managed by Aurora in Secrets Manager (RDS does not support read
replicas of a source with a managed master password).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.data.stores import store_key_and_group
from components.foundation.network import PrivateNetwork
from stacks.data_settings import DatabaseSettings

POSTGRES_PORT = 5432
ENGINE = "aurora-postgresql"


@dataclass(frozen=True)
class DatabaseArgs:
    identifier: str
    settings: DatabaseSettings
    network: PrivateNetwork
    # One instance per zone, in this order: the writer is created in the first.
    availability_zones: Sequence[str]
    protect: bool


class Database(pulumi.ComponentResource):
    """An Aurora PostgreSQL cluster: KMS-encrypted, TLS forced, IAM authentication on."""

    # The writer (cluster) endpoint and the reader endpoint, which balances over the readers
    # (and reaches the writer while there are none).
    address: pulumi.Output[str]
    reader_address: pulumi.Output[str]
    port: int = POSTGRES_PORT
    # The Secrets Manager secret Aurora keeps the master credentials in, and its key.
    master_secret_arn: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    # What IAM database authentication names the cluster by (rds-db:connect resources).
    cluster_resource_id: pulumi.Output[str]

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
        # The family must be the engine's major version's (aurora-postgresql16 for 16.x).
        parameters = aws.rds.ClusterParameterGroup(
            name,
            family=settings.parameter_group_family,
            description=f"{args.identifier}: TLS required",
            parameters=[
                aws.rds.ClusterParameterGroupParameterArgs(name="rds.force_ssl", value="1"),
                aws.rds.ClusterParameterGroupParameterArgs(
                    name="log_min_duration_statement", value="1000"
                ),
            ],
            opts=kept,
        )
        # Final snapshot names must be unique across re-creations; the suffix stays stable.
        suffix = random.RandomId(f"{name}-final-snapshot", byte_length=4, opts=kept)
        cluster = aws.rds.Cluster(
            name,
            cluster_identifier=args.identifier,
            engine=ENGINE,
            engine_mode="provisioned",
            # Applied in the maintenance window; major upgrades need a deliberate flag.
            engine_version=settings.engine_version,
            allow_major_version_upgrade=False,
            database_name=settings.database_name,
            master_username=settings.master_username,
            # Aurora generates and rotates the password in Secrets Manager: never in config or
            # state. (Unsupported only for global databases, Blue/Green and cross-region
            # replicas, none of which this cluster uses.)
            manage_master_user_password=True,
            master_user_secret_kms_key_id=key.arn,
            iam_database_authentication_enabled=True,
            storage_encrypted=True,
            kms_key_id=key.arn,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[security_group.id],
            db_cluster_parameter_group_name=parameters.name,
            port=POSTGRES_PORT,
            backup_retention_period=settings.backup_retention_days,
            preferred_backup_window="02:00-03:00",
            preferred_maintenance_window="sun:03:30-sun:04:30",
            copy_tags_to_snapshot=True,
            deletion_protection=args.protect,
            skip_final_snapshot=not args.protect,
            final_snapshot_identifier=(
                suffix.hex.apply(lambda hex_: f"{args.identifier}-final-{hex_}")
                if args.protect
                else None
            ),
            delete_automated_backups=not args.protect,
            enabled_cloudwatch_logs_exports=["postgresql"],
            opts=kept,
        )
        # Created side by side (not one after another): the first to be ready is the writer.
        zones = list(args.availability_zones)
        for index in range(settings.instances):
            aws.rds.ClusterInstance(
                f"{name}-{index + 1}",
                identifier=f"{args.identifier}-{index + 1}",
                cluster_identifier=cluster.id,
                # Must be the cluster's: an instance of another engine or version is refused.
                engine=aws.rds.EngineType.AURORA_POSTGRESQL,
                # The version is the cluster's (an instance cannot set its own).
                instance_class=settings.instance_class,
                availability_zone=zones[index % len(zones)],
                db_subnet_group_name=subnets.name,
                publicly_accessible=False,
                # Any reader may take over from the writer; tier 0 and 1 are tried first.
                promotion_tier=min(index, 1),
                # Upgrades come from `engineVersion` in the settings, reviewed like any change:
                # an upgrade AWS applied on its own would make the next `up` try to downgrade.
                auto_minor_version_upgrade=False,
                performance_insights_enabled=True,
                performance_insights_kms_key_id=key.arn,
                performance_insights_retention_period=settings.performance_insights_retention_days,
                ca_cert_identifier="rds-ca-rsa2048-g1",
                copy_tags_to_snapshot=True,
                opts=kept,
            )
        # The managed secret's schedule (managed rotation: no Lambda; Secrets Manager User
        # Guide, "Managed rotation for AWS Secrets Manager secrets"). Only the bootstrap job
        # reads it, and it reads it afresh on every run.
        master_secret = cluster.master_user_secrets.apply(
            lambda secrets: (secrets or [])[0].secret_arn or ""
        )
        aws.secretsmanager.SecretRotation(
            f"{name}-master",
            secret_id=master_secret,
            rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(
                automatically_after_days=settings.master_rotation_days
            ),
            rotate_immediately=False,
            opts=kept,
        )
        self.address = cluster.endpoint
        self.reader_address = cluster.reader_endpoint
        self.master_secret_arn = master_secret
        self.key_arn = key.arn
        self.cluster_arn = cluster.arn
        self.cluster_resource_id = cluster.cluster_resource_id
        self.register_outputs(
            {"address": cluster.endpoint, "readerAddress": cluster.reader_endpoint}
        )
