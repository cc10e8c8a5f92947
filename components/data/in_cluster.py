"""The development stack's data tier, inside the cluster: PostgreSQL, Redis and search.

Each store is a maintained upstream chart or operator, pinned: PostgreSQL is a CloudNativePG
`Cluster` (the operator is an add-on), Redis is Valkey's official chart (Bitnami's free images
ended in 2025), search is OpenSearch's official chart. They keep the EKS stacks' contract: the
same configuration keys (DATABASE_HOST, REDIS_HOST, SEARCH_ENDPOINT, ...), a PostgreSQL user per
service, a Redis auth token in `redis-credentials/auth-token`. Passwords are generated here
(pulumi-random, secret in state) and reach the pods only through Kubernetes Secrets.

What differs from production, on purpose: services sign in to PostgreSQL with a password
(there is no IAM), Redis has no TLS, and the search engine has its security plugin off (it is
reachable inside the cluster only, and holds development data).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components.shared.conventions import (
    namespace,
    restricted_container_security_context,
    restricted_pod_security_context,
    service_host,
)
from components.shared.custom_resources import labelled_custom_resource
from components.shared.helm import HelmChart, helm_release
from components.shared.kubernetes_secrets import opaque_secret
from components.shared.passwords import generated_password
from stacks.catalog import database_user
from stacks.secrets import REDIS_CREDENTIALS

CNPG_API_VERSION = "postgresql.cnpg.io/v1"
POSTGRES_CLUSTER = "postgres"
POSTGRES_PORT = 5432
# CloudNativePG's PostgreSQL images; the tag is the stack's engine version (production's minor).
POSTGRES_IMAGE = "ghcr.io/cloudnative-pg/postgresql"
# The role that owns the database; every service's user is a member (inherits its rights).
DATABASE_OWNER = "app_owner"

VALKEY = HelmChart(chart="valkey", version="0.11.0", repository="https://valkey.io/valkey-helm/")
# A release whose name contains "valkey" names its Service after the release alone.
VALKEY_RELEASE = "valkey"
VALKEY_PORT = 6379
VALKEY_USERS_SECRET = "valkey-users"
# The Valkey image's user (the chart's default).
VALKEY_USER_ID = 1000

OPENSEARCH = HelmChart(
    chart="opensearch",
    version="3.6.0",
    repository="https://opensearch-project.github.io/helm-charts/",
)
# The chart's Service for its default clusterName and nodeGroup ("master").
OPENSEARCH_SERVICE = "opensearch-cluster-master"
OPENSEARCH_PORT = 9200
# The OpenSearch image's user (the chart's default).
OPENSEARCH_USER_ID = 1000


@dataclass(frozen=True)
class InClusterDataArgs:
    namespace: str
    engine_version: str
    database_name: str
    database_instances: int
    database_storage_gib: int
    cache_storage_gib: int
    search_storage_gib: int
    search_heap_mib: int
    # Services with their own PostgreSQL user.
    database_users: Sequence[str]
    # None: the cluster's default StorageClass.
    storage_class: str | None
    # The CloudNativePG operator (its CRDs), which the Cluster needs first.
    operator: pulumi.Resource


class InClusterData(pulumi.ComponentResource):
    # The services' configuration (the EKS data tier's keys) and the Secrets they read:
    # secret -> key -> value, for the application namespace.
    config: dict[str, pulumi.Input[str]]
    secrets: dict[str, dict[str, pulumi.Output[str]]]
    # service -> Secret holding its database password (key "password").
    database_passwords: dict[str, str]
    namespace_name: str

    def __init__(
        self, name: str, args: InClusterDataArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:data:InClusterData", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = namespace(args.namespace, pod_security="restricted", istio_injection=False, opts=child)
        inside = pulumi.ResourceOptions(parent=self, depends_on=[ns])
        ns_name = self.namespace_name = args.namespace

        # PostgreSQL: the owner and one login role per service, each with its own password.
        users = {DATABASE_OWNER: None, **{database_user(s): s for s in args.database_users}}
        passwords = {
            user: generated_password(f"{name}-{user.replace('_', '-')}", child) for user in users
        }
        role_secrets = {
            user: opaque_secret(
                f"postgres-{user.replace('_', '-')}",
                {"username": pulumi.Output.from_input(user), "password": password},
                namespace_name=ns_name,
                opts=inside,
                # CloudNativePG reads role passwords from basic-auth Secrets.
                secret_type="kubernetes.io/basic-auth",
            )
            for user, password in passwords.items()
        }
        storage: dict[str, Any] = {"size": f"{args.database_storage_gib}Gi"}
        if args.storage_class is not None:
            storage["storageClass"] = args.storage_class
        cluster_spec: dict[str, Any] = {
            "instances": args.database_instances,
            "imageName": f"{POSTGRES_IMAGE}:{args.engine_version}",
            "storage": storage,
            # No superuser login: the operator needs none, and nothing else should have one.
            "enableSuperuserAccess": False,
            "bootstrap": {
                "initdb": {
                    "database": args.database_name,
                    "owner": DATABASE_OWNER,
                    "secret": {"name": f"postgres-{DATABASE_OWNER.replace('_', '-')}"},
                }
            },
            "managed": {
                "roles": [
                    {
                        "name": user,
                        "ensure": "present",
                        "login": True,
                        "inRoles": [DATABASE_OWNER],
                        "passwordSecret": {"name": f"postgres-{user.replace('_', '-')}"},
                    }
                    for user in users
                    if user != DATABASE_OWNER
                ]
            },
            "resources": {
                "requests": {"cpu": "100m", "memory": "256Mi"},
                "limits": {"memory": "512Mi"},
            },
        }
        labelled_custom_resource(
            f"{name}-postgres",
            api_version=CNPG_API_VERSION,
            kind="Cluster",
            name=POSTGRES_CLUSTER,
            namespace=ns_name,
            component="database",
            spec=cluster_spec,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[ns, args.operator, *role_secrets.values()]
            ),
        )

        # Valkey: one node, the `default` user authenticated by the same token the services get.
        auth_token = generated_password(f"{name}-redis-auth-token", child)
        valkey_users = opaque_secret(
            VALKEY_USERS_SECRET, {"default": auth_token}, namespace_name=ns_name, opts=inside
        )
        helm_release(
            VALKEY_RELEASE,
            VALKEY,
            namespace=ns_name,
            values=valkey_values(args.cache_storage_gib, args.storage_class),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ns, valkey_users]),
        )

        helm_release(
            "opensearch",
            OPENSEARCH,
            namespace=ns_name,
            values=opensearch_values(
                args.search_storage_gib, args.search_heap_mib, args.storage_class
            ),
            opts=inside,
        )

        self.database_passwords = {
            service: f"database-{service}" for service in args.database_users
        }
        self.secrets = {
            REDIS_CREDENTIALS: {"auth-token": auth_token},
            **{
                secret: {"password": passwords[database_user(service)]}
                for service, secret in self.database_passwords.items()
            },
        }
        database = service_host(f"{POSTGRES_CLUSTER}-rw", ns_name)
        cache = service_host(VALKEY_RELEASE, ns_name)
        self.config = {
            "DATABASE_HOST": database,
            # "-r" reaches any instance; "-ro" only standbys, of which one instance has none.
            "DATABASE_READ_HOST": service_host(f"{POSTGRES_CLUSTER}-r", ns_name),
            "DATABASE_PORT": str(POSTGRES_PORT),
            "DATABASE_NAME": args.database_name,
            # The operator's own CA signs the server certificate: encrypted, not verified.
            "DATABASE_SSLMODE": "require",
            "DATABASE_AUTH": "password",
            "REDIS_HOST": cache,
            "REDIS_READER_HOST": cache,
            "REDIS_PORT": str(VALKEY_PORT),
            "REDIS_TLS": "false",
            "SEARCH_ENDPOINT": f"http://{service_host(OPENSEARCH_SERVICE, ns_name)}:"
            f"{OPENSEARCH_PORT}",
        }
        self.register_outputs({"namespace": ns_name, "databaseHost": database})


def valkey_values(storage_gib: int, storage_class: str | None) -> dict[str, Any]:
    data_storage: dict[str, Any] = {"enabled": True, "requestedSize": f"{storage_gib}Gi"}
    if storage_class is not None:
        data_storage["className"] = storage_class
    return {
        "auth": {
            "enabled": True,
            "usersExistingSecret": VALKEY_USERS_SECRET,
            # The `default` user (what clients without a user name are) with every command;
            # its password is the Secret's key "default".
            "aclUsers": {"default": {"permissions": "~* &* +@all"}},
        },
        "dataStorage": data_storage,
        "podSecurityContext": restricted_pod_security_context(VALKEY_USER_ID),
        "securityContext": restricted_container_security_context(VALKEY_USER_ID),
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"memory": "256Mi"},
        },
    }


def opensearch_values(storage_gib: int, heap_mib: int, storage_class: str | None) -> dict[str, Any]:
    persistence: dict[str, Any] = {
        "enabled": True,
        "size": f"{storage_gib}Gi",
        # The chart's chown init container runs as root; fsGroup gives the volume to the user.
        "enableInitChown": False,
    }
    if storage_class is not None:
        persistence["storageClass"] = storage_class
    # OpenSearch writes under its home directory: a read-only root would stop it.
    container = {**restricted_container_security_context(OPENSEARCH_USER_ID)}
    container["readOnlyRootFilesystem"] = False
    return {
        "singleNode": True,
        "persistence": persistence,
        # Off already by default; stated because it would add a privileged init container.
        "sysctlInit": {"enabled": False},
        "opensearchJavaOpts": f"-Xms{heap_mib}m -Xmx{heap_mib}m",
        "resources": {
            "requests": {"cpu": "250m", "memory": f"{heap_mib * 2}Mi"},
            "limits": {"memory": f"{heap_mib * 2}Mi"},
        },
        "extraEnvs": [
            # No mmap: the node's vm.max_map_count (a host sysctl) then does not matter.
            {"name": "node.store.allow_mmap", "value": "false"},
            {"name": "DISABLE_SECURITY_PLUGIN", "value": "true"},
            {"name": "DISABLE_INSTALL_DEMO_CONFIG", "value": "true"},
        ],
        "podSecurityContext": restricted_pod_security_context(OPENSEARCH_USER_ID),
        "securityContext": container,
    }
