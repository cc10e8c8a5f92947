"""The data tier as managed AWS services: RDS for PostgreSQL, ElastiCache for Redis, OpenSearch.

Each store sits in the private subnets behind its own security group, which admits only the
cluster's security group (the nodes, and so the pods) on the store's own port. Each encrypts
with its own KMS key. With `protect`, every resource here is protected and the services' own
deletion protection (or final snapshot) is on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.kms import encryption_key
from stacks.data_settings import CacheSettings, DatabaseSettings, SearchSettings

POSTGRES_PORT = 5432
REDIS_PORT = 6379
HTTPS_PORT = 443
# TLS 1.2 minimum with perfect forward secrecy only.
OPENSEARCH_TLS_POLICY = "Policy-Min-TLS-1-2-PFS-2023-10"


@dataclass(frozen=True)
class StoreNetwork:
    """Where a store lives and who may reach it."""

    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    # The cluster security group: EKS attaches it to every managed node.
    client_security_group_id: pulumi.Input[str]


def store_security_group(
    name: str, network: StoreNetwork, port: int, description: str, opts: pulumi.ResourceOptions
) -> aws.ec2.SecurityGroup:
    """A security group that admits only the cluster, on one port, and lets nothing out."""
    group = aws.ec2.SecurityGroup(
        name, vpc_id=network.vpc_id, description=description, tags={"Name": name}, opts=opts
    )
    aws.vpc.SecurityGroupIngressRule(
        f"{name}-from-cluster",
        security_group_id=group.id,
        referenced_security_group_id=network.client_security_group_id,
        ip_protocol="tcp",
        from_port=port,
        to_port=port,
        description="From the EKS cluster (nodes and pods)",
        opts=opts,
    )
    return group


def store_key_and_group(
    component: pulumi.ComponentResource,
    name: str,
    engine: str,
    store: str,
    network: StoreNetwork,
    port: int,
    protect: bool,
) -> tuple[aws.kms.Key, aws.ec2.SecurityGroup]:
    """What every store has of its own: a KMS key and a security group open to the cluster."""
    key = encryption_key(
        name,
        alias=store,
        description=f"Encryption of {engine} {store}",
        protect=protect,
        parent=component,
    )
    group = store_security_group(
        name,
        network,
        port,
        f"{engine} {store}: cluster only",
        pulumi.ResourceOptions(parent=component, protect=protect),
    )
    return key, group


@dataclass(frozen=True)
class DatabaseArgs:
    identifier: str
    settings: DatabaseSettings
    network: StoreNetwork
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


@dataclass(frozen=True)
class CacheArgs:
    replication_group_id: str
    settings: CacheSettings
    network: StoreNetwork
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
        # Alphanumeric: ElastiCache refuses some punctuation in AUTH tokens.
        token = random.RandomPassword(f"{name}-auth-token", length=64, special=False, opts=kept)
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
            auth_token=token.result,
            automatic_failover_enabled=settings.high_availability,
            multi_az_enabled=settings.high_availability,
            snapshot_retention_limit=settings.snapshot_retention_days,
            snapshot_window="01:00-02:00",
            maintenance_window="sun:04:30-sun:05:30",
            auto_minor_version_upgrade=True,
            final_snapshot_identifier=(
                f"{args.replication_group_id}-final" if args.protect else None
            ),
            opts=kept,
        )
        self.primary_address = group.primary_endpoint_address
        self.reader_address = group.reader_endpoint_address
        self.auth_token = token.result
        self.register_outputs({"primaryAddress": group.primary_endpoint_address})


def search_access_policy(domain_arn: str) -> str:
    """Any principal in the account may send requests; fine-grained access control decides."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": "es:ESHttp*",
                    "Resource": f"{domain_arn}/*",
                }
            ],
        },
        sort_keys=True,
    )


@dataclass(frozen=True)
class SearchArgs:
    domain_name: str
    settings: SearchSettings
    network: StoreNetwork
    region: str
    account_id: pulumi.Input[str]
    # The IAM principal that administers the domain's fine-grained access control.
    master_user_arn: str
    protect: bool


class SearchDomain(pulumi.ComponentResource):
    """An OpenSearch domain inside the VPC: encrypted, HTTPS only, fine-grained access control."""

    endpoint: pulumi.Output[str]

    def __init__(
        self, name: str, args: SearchArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:data:SearchDomain", name, None, opts)
        settings = args.settings
        kept = pulumi.ResourceOptions(parent=self, protect=args.protect)
        key, security_group = store_key_and_group(
            self,
            f"{name}-search",
            "OpenSearch",
            args.domain_name,
            args.network,
            HTTPS_PORT,
            args.protect,
        )
        zones = settings.zone_count
        domain_arn = pulumi.Output.from_input(args.account_id).apply(
            lambda account: f"arn:aws:es:{args.region}:{account}:domain/{args.domain_name}"
        )
        domain = aws.opensearch.Domain(
            name,
            domain_name=args.domain_name,
            engine_version=settings.engine_version,
            cluster_config=aws.opensearch.DomainClusterConfigArgs(
                instance_type=settings.instance_type,
                instance_count=settings.instance_count,
                zone_awareness_enabled=zones > 1,
                zone_awareness_config=(
                    aws.opensearch.DomainClusterConfigZoneAwarenessConfigArgs(
                        availability_zone_count=zones
                    )
                    if zones > 1
                    else None
                ),
                dedicated_master_enabled=settings.dedicated_master_type is not None,
                dedicated_master_type=settings.dedicated_master_type,
                dedicated_master_count=3 if settings.dedicated_master_type else None,
            ),
            ebs_options=aws.opensearch.DomainEbsOptionsArgs(
                ebs_enabled=True, volume_type="gp3", volume_size=settings.volume_size_gib
            ),
            # One subnet per zone the data nodes use.
            vpc_options=aws.opensearch.DomainVpcOptionsArgs(
                subnet_ids=list(args.network.subnet_ids)[:zones],
                security_group_ids=[security_group.id],
            ),
            encrypt_at_rest=aws.opensearch.DomainEncryptAtRestArgs(
                enabled=True, kms_key_id=key.arn
            ),
            node_to_node_encryption=aws.opensearch.DomainNodeToNodeEncryptionArgs(enabled=True),
            domain_endpoint_options=aws.opensearch.DomainDomainEndpointOptionsArgs(
                enforce_https=True, tls_security_policy=OPENSEARCH_TLS_POLICY
            ),
            advanced_security_options=aws.opensearch.DomainAdvancedSecurityOptionsArgs(
                enabled=True,
                anonymous_auth_enabled=False,
                # IAM principals only: no internal users, so no password to keep anywhere.
                internal_user_database_enabled=False,
                master_user_options=(
                    aws.opensearch.DomainAdvancedSecurityOptionsMasterUserOptionsArgs(
                        master_user_arn=args.master_user_arn
                    )
                ),
            ),
            access_policies=domain_arn.apply(search_access_policy),
            opts=kept,
        )
        self.endpoint = domain.endpoint
        self.register_outputs({"endpoint": domain.endpoint})
