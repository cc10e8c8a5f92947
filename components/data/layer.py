"""Builds the data tier, and tells the later layers how the services reach it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components.context import StackContext
from components.data.backup import DatabaseBackups, DatabaseBackupsArgs
from components.data.cache import Cache, CacheArgs
from components.data.database import Database, DatabaseArgs
from components.data.documents import DocumentStore, DocumentStoreArgs
from components.data.search import SearchArgs, SearchDomain, search_domain_arn
from components.data.search_access import (
    IndexRetention,
    SearchMaster,
    SearchMasterArgs,
    index_replicas,
    platform_retention,
    search_http_statement,
)
from components.data.secrets import (
    ApplicationSecrets,
    ApplicationSecretsArgs,
    RemoteSecret,
    SecretAccess,
)
from components.data.service_roles import (
    ServiceRoles,
    ServiceRolesArgs,
    database_connect_statement,
)
from components.foundation.network import PrivateNetwork
from components.shared.iam import OidcIssuer
from stacks.addon_settings import JaegerSettings, LogShipperSettings
from stacks.catalog import database_services, database_user
from stacks.data_settings import DataSettings
from stacks.secrets import (
    GRAFANA_ADMIN,
    OPERATOR_SSO,
    PLATFORM_SECRETS,
    REDIS_CREDENTIALS,
    secret_values,
)
from stacks.settings import StackSettings


@dataclass(frozen=True)
class DataArgs:
    data: DataSettings
    # The database puts one instance in each, in order.
    availability_zones: Sequence[str]
    # The IAM principal that administers the search domain (mapped to its admin roles).
    search_administrator_arn: str
    # Services that use the search domain.
    search_users: Sequence[str]
    # The namespace and service accounts of the services (one IRSA role each that needs AWS).
    app_namespace: str
    document_service_accounts: Sequence[str]
    # Services that connect to PostgreSQL, each as its own IAM-authenticated user.
    database_users: Sequence[str]
    secret_recovery_window_days: int
    document_version_days: int
    # Secret config values, as secret Outputs, by config key.
    secrets: Mapping[str, pulumi.Output[str]]
    # The operators' OIDC client at the load balancer, where they sign in with OIDC: its ID
    # is kept beside its secret, in the one Secret the controller reads.
    operator_client_id: str | None = None
    # How long the platform's writers' indices are kept (the log shipper's, Jaeger's: only
    # those that run), and the container logs' replica shards where logs are shipped.
    platform_retention: Mapping[str, IndexRetention] = dataclasses.field(default_factory=dict)
    log_replicas: int | None = None

    @classmethod
    def from_settings(
        cls, settings: StackSettings, secrets: Mapping[str, pulumi.Output[str]]
    ) -> DataArgs:
        return cls(
            data=settings.data,
            availability_zones=settings.availability_zones,
            search_administrator_arn=settings.data.search.administrator_arn,
            search_users=[
                name for name, s in settings.services.items() if "search" in s.data_stores
            ],
            app_namespace=settings.application.namespace,
            document_service_accounts=[
                name for name, s in settings.services.items() if s.documents_bucket
            ],
            database_users=database_services(settings.services),
            secret_recovery_window_days=settings.retention.secret_recovery_window_days,
            document_version_days=settings.retention.document_version_days,
            secrets=secrets,
            operator_client_id=(
                login.client_id if (login := settings.edge.operator_login) else None
            ),
            platform_retention=platform_retention(
                log_days=enabled_days(settings.addons.log_shipper),
                trace_days=enabled_days(settings.addons.jaeger),
            ),
            log_replicas=(
                index_replicas(settings.data.search.instance_count)
                if settings.addons.log_shipper.enabled
                else None
            ),
        )


def enabled_days(writer: LogShipperSettings | JaegerSettings) -> int | None:
    """How long a writer's indices are kept, where it runs."""
    return writer.retention_days if writer.enabled else None


def operator_sso(args: DataArgs) -> dict[str, dict[str, pulumi.Output[str]]]:
    """The operator sign-in's client ID beside its secret (from the stack's secrets)."""
    grouped = secret_values(args.secrets).get(OPERATOR_SSO)
    if args.operator_client_id is None or grouped is None:
        return {}
    return {
        OPERATOR_SSO: {**grouped, "clientID": pulumi.Output.from_input(args.operator_client_id)}
    }


@dataclass(frozen=True)
class SearchAccess:
    """The search domain's endpoint, its master role (the bootstrap's), its administrator,
    and the IAM roles that hold each of its roles."""

    endpoint: pulumi.Output[str]
    master_role_arn: pulumi.Output[str]
    administrator_arn: str
    mappings: dict[str, list[pulumi.Output[str]]]
    # ISM policy id -> the indices it deletes and when (the add-ons' logs and traces).
    retention: Mapping[str, IndexRetention] = dataclasses.field(default_factory=dict)
    # The container logs' replica shards, where logs are shipped (their index template).
    log_replicas: int | None = None

    def with_writers(self, writers: Mapping[str, list[pulumi.Output[str]]]) -> SearchAccess:
        """This access, with the add-ons' writers' roles (made after the data tier)."""
        return dataclasses.replace(self, mappings={**self.mappings, **writers})


@dataclass(frozen=True)
class DataTier:
    database: Database
    # Copies of the database's backups in a second region (None without disaster recovery).
    backups: DatabaseBackups | None
    cache: Cache
    search: SearchDomain
    secrets: ApplicationSecrets
    documents: DocumentStore
    # Secrets the services read, by Kubernetes Secret name, and what their reader needs.
    remote_secrets: dict[str, RemoteSecret]
    # The platform's own (Grafana's admin, the alert receivers' keys), for monitoring only.
    platform_secrets: dict[str, RemoteSecret]
    # The database's master credentials: for the bootstrap job only, never a service.
    database_master: RemoteSecret
    secret_access: SecretAccess
    # Non-secret configuration the services need to reach the stores (endpoints, ports, TLS).
    config: dict[str, pulumi.Input[str]]
    # service -> IRSA role of its service account.
    service_roles: dict[str, pulumi.Output[str]]
    # Who may use the search domain: what the search bootstrap applies.
    search_access: SearchAccess


def connect_as(region: str, user: str) -> Callable[[list[str]], list[dict[str, Any]]]:
    """From (account, cluster resource id): the statement letting `user` connect."""

    def statements(values: list[str]) -> list[dict[str, Any]]:
        return [database_connect_statement(region, values[0], values[1], user)]

    return statements


def build_data(
    context: StackContext, network: PrivateNetwork, oidc: OidcIssuer, args: DataArgs
) -> DataTier:
    prefix, with_aws, protect = context.prefix, context.with_aws, context.protect
    data = args.data
    database = Database(
        f"{prefix}-database",
        DatabaseArgs(
            identifier=f"{prefix}-postgres",
            settings=data.database,
            network=network,
            availability_zones=args.availability_zones,
            protect=protect,
        ),
        opts=with_aws,
    )
    recovery = data.database.disaster_recovery
    backups = (
        DatabaseBackups(
            f"{prefix}-database-backups",
            DatabaseBackupsArgs(
                permissions_boundary=context.permissions_boundary,
                name_prefix=prefix,
                cluster_arn=database.cluster_arn,
                key_arn=database.key_arn,
                recovery=recovery,
                protect=protect,
            ),
            opts=with_aws,
        )
        if recovery is not None
        else None
    )
    cache = Cache(
        f"{prefix}-cache",
        CacheArgs(
            replication_group_id=f"{prefix}-redis",
            settings=data.cache,
            network=network,
            protect=protect,
        ),
        opts=with_aws,
    )
    search_name = f"fp-{context.stack}-search"
    search_arn = search_domain_arn(context.region, context.account_id, search_name)
    search_http = search_arn.apply(lambda arn: [search_http_statement(arn)])
    # Fine-grained access control's master user: the search bootstrap's role (search_access.py).
    search_master = SearchMaster(
        f"{prefix}-search-master",
        SearchMasterArgs(
            domain_arn=search_arn,
            cluster_name=prefix,
            permissions_boundary=context.permissions_boundary,
        ),
        opts=with_aws,
    )
    search = SearchDomain(
        f"{prefix}-search",
        SearchArgs(
            domain_name=search_name,
            settings=data.search,
            network=network,
            region=context.region,
            account_id=context.account_id,
            master_user_arn=search_master.role_arn,
            protect=protect,
        ),
        opts=with_aws,
    )
    secrets = ApplicationSecrets(
        f"{prefix}-app-secrets",
        ApplicationSecretsArgs(
            name_prefix=f"{context.project}/{context.stack}",
            values={
                **secret_values(args.secrets),
                REDIS_CREDENTIALS: {"auth-token": cache.auth_token},
                GRAFANA_ADMIN: {"admin-user": pulumi.Output.from_input("admin")},
                **operator_sso(args),
            },
            recovery_window_days=args.secret_recovery_window_days,
            protect=protect,
            generated=[(GRAFANA_ADMIN, "admin-password")],
        ),
        opts=with_aws,
    )
    documents = DocumentStore(
        f"{prefix}-docs",
        DocumentStoreArgs(
            bucket_name=f"{prefix}-documents",
            noncurrent_version_days=args.document_version_days,
            protect=protect,
        ),
        opts=with_aws,
    )
    statements: dict[str, list[pulumi.Input[Sequence[Mapping[str, Any]]]]] = {}
    for service in args.document_service_accounts:
        statements.setdefault(service, []).append(documents.access_statements)
    cluster_of = pulumi.Output.all(context.account_id, database.cluster_resource_id)
    for service in args.database_users:
        statements.setdefault(service, []).append(
            cluster_of.apply(connect_as(context.region, database_user(service)))
        )
    for service in args.search_users:
        statements.setdefault(service, []).append(search_http)
    roles = ServiceRoles(
        f"{prefix}-service-roles",
        ServiceRolesArgs(
            permissions_boundary=context.permissions_boundary,
            oidc=oidc,
            namespace=args.app_namespace,
            name_prefix=prefix,
            statements=statements,
        ),
        opts=with_aws,
    )
    return DataTier(
        database=database,
        backups=backups,
        cache=cache,
        search=search,
        secrets=secrets,
        documents=documents,
        remote_secrets={
            name: remote for name, remote in secrets.remote.items() if name not in PLATFORM_SECRETS
        },
        platform_secrets={
            name: remote for name, remote in secrets.remote.items() if name in PLATFORM_SECRETS
        },
        # Aurora keeps the master credentials in a secret of its own, as JSON.
        database_master=RemoteSecret(database.master_secret_arn, ["password", "username"]),
        # External Secrets reads the services' secrets; the master secret only the database
        # bootstrap's own role reads (components/workloads/database_users.py).
        secret_access=SecretAccess(
            secret_arns=list(secrets.secret_arns),
            key_arns=[secrets.key_arn],
        ),
        config={
            "DOCUMENTS_BUCKET": documents.bucket_name,
            # Writes go to the cluster endpoint (the writer, wherever it is after a failover);
            # reads to the reader endpoint, which balances over the readers.
            "DATABASE_HOST": database.address,
            "DATABASE_READ_HOST": database.reader_address,
            "DATABASE_PORT": str(database.port),
            "DATABASE_NAME": data.database.database_name,
            "DATABASE_SSLMODE": "verify-full",
            # Each service signs in as its own user with an IAM token (no password anywhere).
            "DATABASE_AUTH": "iam",
            "REDIS_HOST": cache.primary_address,
            "REDIS_READER_HOST": cache.reader_address,
            "REDIS_PORT": str(cache.port),
            "REDIS_TLS": "true",
            "SEARCH_ENDPOINT": search.endpoint.apply(lambda host: f"https://{host}"),
        },
        service_roles=roles.role_arns,
        search_access=SearchAccess(
            endpoint=search.endpoint,
            master_role_arn=search_master.role_arn,
            administrator_arn=args.search_administrator_arn,
            mappings={"document-search": [roles.role_arns[s] for s in args.search_users]},
            retention=args.platform_retention,
            log_replicas=args.log_replicas,
        ),
    )
