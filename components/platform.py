"""Wires one stack's settings into the components, in dependency order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.addons import AddonSpec, ManagedAddons, ManagedAddonsArgs
from components.application import Application, ApplicationArgs
from components.cluster import Cluster, ClusterArgs
from components.data import (
    Cache,
    CacheArgs,
    Database,
    DatabaseArgs,
    SearchArgs,
    SearchDomain,
    StoreNetwork,
)
from components.documents import DocumentStore, DocumentStoreArgs
from components.network import Network, NetworkArgs
from components.node_group import NodeGroup, NodeGroupArgs
from components.registry import ImageRegistry, ImageRegistryArgs
from components.secrets import (
    ApplicationSecrets,
    ApplicationSecretsArgs,
    ExternalSecretsOperator,
    ExternalSecretsOperatorArgs,
    RemoteSecret,
)
from components.storage import (
    DEFAULT_STORAGE_CLASS,
    StorageClasses,
    StorageClassesArgs,
    VolumeEncryption,
    VolumeEncryptionArgs,
    ebs_csi_key_policy,
)
from stacks.secrets import DATABASE_CREDENTIALS, REDIS_CREDENTIALS, secret_values
from stacks.settings import StackSettings
from stacks.settings_base import WorkloadClass

BEFORE_NODES = (
    AddonSpec("vpc-cni", service_account="aws-node", managed_policies=["AmazonEKS_CNI_Policy"]),
    AddonSpec("kube-proxy"),
    AddonSpec("eks-pod-identity-agent"),
)


def after_nodes(volume_key_arn: pulumi.Output[str]) -> tuple[AddonSpec, ...]:
    return (
        AddonSpec("coredns"),
        AddonSpec(
            "aws-ebs-csi-driver",
            service_account="ebs-csi-controller-sa",
            managed_policies=["service-role/AmazonEBSCSIDriverPolicy"],
            inline_policy=volume_key_arn.apply(ebs_csi_key_policy),
        ),
    )


@dataclass(frozen=True)
class Platform:
    aws_provider: aws.Provider
    network: Network
    cluster: Cluster
    node_groups: dict[WorkloadClass, NodeGroup]
    addons: list[ManagedAddons]
    registry: ImageRegistry
    documents: DocumentStore
    database: Database
    cache: Cache
    search: SearchDomain
    application: Application


def build_platform(
    project: str,
    stack: str,
    settings: StackSettings,
    secrets: Mapping[str, pulumi.Output[str]],
) -> Platform:
    prefix = f"{project}-{stack}"
    tags = {**settings.tags, "environment": settings.environment, "pulumi-stack": stack}
    aws_provider = aws.Provider(
        "aws", region=settings.region, default_tags=aws.ProviderDefaultTagsArgs(tags=tags)
    )
    with_aws = pulumi.ResourceOptions(providers=[aws_provider])
    account_id = aws.get_caller_identity_output(
        opts=pulumi.InvokeOutputOptions(provider=aws_provider)
    ).account_id

    network = Network(
        prefix,
        NetworkArgs(
            cidr=settings.vpc_cidr,
            availability_zones=settings.availability_zones,
            nat_gateways=settings.nat_gateways,
            flow_log_retention_days=settings.flow_log_retention_days,
            cluster_name=prefix,
            protect=settings.protect,
        ),
        opts=with_aws,
    )

    cluster = Cluster(
        prefix,
        ClusterArgs(
            cluster_name=prefix,
            kubernetes_version=settings.kubernetes_version,
            region=settings.region,
            account_id=account_id,
            subnet_ids=network.private_subnet_ids,
            public_access_cidrs=settings.endpoint_public_access_cidrs,
            log_types=settings.control_plane_log_types,
            log_retention_days=settings.control_plane_log_retention_days,
            admin_access=settings.admin_access,
            protect=settings.protect,
        ),
        opts=with_aws,
    )

    before_nodes = ManagedAddons(
        f"{prefix}-before-nodes",
        ManagedAddonsArgs(
            cluster_name=cluster.name, role_prefix=prefix, oidc=cluster.oidc, addons=BEFORE_NODES
        ),
        opts=with_aws,
    )
    node_groups = {
        workload_class: NodeGroup(
            f"{prefix}-{workload_class}",
            NodeGroupArgs(
                cluster_name=prefix,
                kubernetes_version=settings.kubernetes_version,
                workload_class=workload_class,
                group=group,
                subnet_ids=network.private_subnet_ids,
                tags=tags,
                depends_on=[cluster.eks_cluster, before_nodes],
            ),
            opts=with_aws,
        )
        for workload_class, group in settings.node_groups.items()
    }
    volumes = VolumeEncryption(
        f"{prefix}-volumes",
        VolumeEncryptionArgs(alias=f"{prefix}-volumes", protect=settings.protect),
        opts=with_aws,
    )
    late_addons = ManagedAddons(
        f"{prefix}-after-nodes",
        ManagedAddonsArgs(
            cluster_name=cluster.name,
            role_prefix=prefix,
            oidc=cluster.oidc,
            addons=after_nodes(volumes.key_arn),
            depends_on=list(node_groups.values()),
        ),
        opts=with_aws,
    )

    # Kubernetes objects wait for a cluster that can run them (nodes, DNS, CSI driver).
    with_cluster = pulumi.ResourceOptions(
        providers=[aws_provider, cluster.provider], depends_on=[late_addons]
    )
    storage = StorageClasses(
        f"{prefix}-storage", StorageClassesArgs(key_arn=volumes.key_arn), opts=with_cluster
    )
    registry = ImageRegistry(
        f"{prefix}-images",
        ImageRegistryArgs(
            name_prefix=prefix, services=list(settings.services), protect=settings.protect
        ),
        opts=with_aws,
    )
    store_network = StoreNetwork(
        vpc_id=network.vpc_id,
        subnet_ids=network.private_subnet_ids,
        client_security_group_id=cluster.security_group_id,
    )
    data = settings.data
    database = Database(
        f"{prefix}-database",
        DatabaseArgs(
            identifier=f"{prefix}-postgres",
            settings=data.database,
            network=store_network,
            protect=settings.protect,
        ),
        opts=with_aws,
    )
    cache = Cache(
        f"{prefix}-cache",
        CacheArgs(
            replication_group_id=f"{prefix}-redis",
            settings=data.cache,
            network=store_network,
            protect=settings.protect,
        ),
        opts=with_aws,
    )
    search = SearchDomain(
        f"{prefix}-search",
        SearchArgs(
            domain_name=f"fp-{stack}-search",
            settings=data.search,
            network=store_network,
            region=settings.region,
            account_id=account_id,
            master_user_arn=next(
                a.principal_arn for a in settings.admin_access if a.policy == "cluster-admin"
            ),
            protect=settings.protect,
        ),
        opts=with_aws,
    )

    app_secrets = ApplicationSecrets(
        f"{prefix}-app-secrets",
        ApplicationSecretsArgs(
            name_prefix=f"{project}/{stack}",
            values={
                **secret_values(secrets),
                REDIS_CREDENTIALS: {"auth-token": cache.auth_token},
            },
            recovery_window_days=settings.retention.secret_recovery_window_days,
            protect=settings.protect,
        ),
        opts=with_aws,
    )
    operator = ExternalSecretsOperator(
        f"{prefix}-eso",
        ExternalSecretsOperatorArgs(
            region=settings.region,
            oidc=cluster.oidc,
            key_arns=[app_secrets.key_arn, database.key_arn],
            secret_arns=[*app_secrets.secret_arns, database.master_secret_arn],
            consumer_namespaces=[settings.application.namespace],
            replicas=settings.addon_replicas,
        ),
        opts=with_cluster,
    )
    documents = DocumentStore(
        f"{prefix}-docs",
        DocumentStoreArgs(
            bucket_name=f"{prefix}-documents",
            oidc=cluster.oidc,
            namespace=settings.application.namespace,
            service_accounts=[name for name, s in settings.services.items() if s.documents_bucket],
            noncurrent_version_days=settings.retention.document_version_days,
            protect=settings.protect,
        ),
        opts=with_aws,
    )
    application = Application(
        f"{prefix}-app",
        ApplicationArgs(
            environment=settings.environment,
            region=settings.region,
            application=settings.application,
            services=settings.services,
            image_repositories=registry.repository_urls,
            node_taints={name: group.taints for name, group in settings.node_groups.items()},
            storage_class=DEFAULT_STORAGE_CLASS,
            remote_secrets={
                **app_secrets.remote,
                # RDS keeps the master credentials in a secret of its own, as JSON.
                DATABASE_CREDENTIALS: RemoteSecret(
                    database.master_secret_arn, ["password", "username"]
                ),
            },
            secret_store=operator.store_name,
            service_roles=documents.role_arns,
            extra_config={
                "DOCUMENTS_BUCKET": documents.bucket_name,
                "DATABASE_HOST": database.address,
                # Reads go to the replicas; without replicas, to the primary.
                "DATABASE_READ_HOSTS": pulumi.Output.all(
                    *(database.replica_addresses or [database.address])
                ).apply(",".join),
                "DATABASE_PORT": str(database.port),
                "DATABASE_NAME": data.database.database_name,
                "DATABASE_SSLMODE": "verify-full",
                "REDIS_HOST": cache.primary_address,
                "REDIS_READER_HOST": cache.reader_address,
                "REDIS_PORT": str(cache.port),
                "REDIS_TLS": "true",
                "SEARCH_ENDPOINT": search.endpoint.apply(lambda host: f"https://{host}"),
            },
            depends_on=[operator, storage],
        ),
        opts=with_cluster,
    )

    return Platform(
        aws_provider=aws_provider,
        network=network,
        cluster=cluster,
        node_groups=node_groups,
        addons=[before_nodes, late_addons],
        registry=registry,
        documents=documents,
        database=database,
        cache=cache,
        search=search,
        application=application,
    )
