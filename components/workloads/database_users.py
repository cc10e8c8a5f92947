"""The database bootstrap: one PostgreSQL user per service, for IAM authentication.

Services never see the master password. A Job in a namespace of its own is the only reader of
the master secret (through an ExternalSecret): it creates each service's login role, grants it
`rds_iam` (so it signs in with an IAM token its IRSA role may request for exactly that user),
and lets it use the application database. It is idempotent and runs again, under a new name,
whenever the list of users changes (`pulumi up` waits for it to succeed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.addons.external_secrets import external_secret
from components.data.secrets import RemoteSecret
from components.shared.conventions import (
    DATABASE_BOOTSTRAP_NAMESPACE,
    digest,
    namespace,
    standard_labels,
)
from components.workloads.bootstrap_job import bootstrap_job

BOOTSTRAP_NAMESPACE = DATABASE_BOOTSTRAP_NAMESPACE
MASTER_SECRET = "database-master"
# The official PostgreSQL client, from ECR Public's mirror of the Docker official images.
PSQL_IMAGE = "public.ecr.aws/docker/library/postgres:16.6-alpine"


def users_sql(database: str, users: Sequence[str]) -> str:
    """Create each login role once, then (again, harmlessly) grant what it needs."""
    lines = ["\\set ON_ERROR_STOP on"]
    for user in sorted(users):
        lines += [
            "DO $$ BEGIN",
            f"  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{user}') THEN",
            f"    CREATE ROLE {user} LOGIN;",
            "  END IF;",
            "END $$;",
            f"GRANT rds_iam TO {user};",
            f"GRANT CONNECT ON DATABASE {database} TO {user};",
            f"GRANT USAGE, CREATE ON SCHEMA public TO {user};",
        ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class DatabaseUsersArgs:
    users: Sequence[str]
    database_name: str
    writer_host: pulumi.Input[str]
    master: RemoteSecret
    secret_store: str


class DatabaseUsers(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: DatabaseUsersArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:workloads:DatabaseUsers", name, None, opts)
        ns = namespace(
            BOOTSTRAP_NAMESPACE,
            pod_security="restricted",
            istio_injection=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        inside = pulumi.ResourceOptions(parent=self, depends_on=[ns])
        secret = external_secret(
            MASTER_SECRET,
            args.master,
            namespace_name=ns.metadata.name,
            store_name=args.secret_store,
            opts=inside,
        )
        sql = users_sql(args.database_name, args.users)
        sql_digest = digest(sql, 8)
        script = k8s.core.v1.ConfigMap(
            f"{name}-sql",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"database-users-{sql_digest}",
                namespace=ns.metadata.name,
                labels=standard_labels("database-users", "database"),
            ),
            data={"users.sql": sql},
            opts=inside,
        )
        bootstrap_job(
            f"{name}-job",
            name=f"database-users-{sql_digest}",
            namespace=ns.metadata.name,
            labels=standard_labels("database-users", "database"),
            container={
                "name": "psql",
                "image": PSQL_IMAGE,
                # The credentials are read from the mounted Secret (never the pod's
                # environment), for this one process.
                "command": [
                    "sh",
                    "-c",
                    'PGUSER="$(cat /credentials/username)" '
                    'PGPASSWORD="$(cat /credentials/password)" '
                    "exec psql --no-psqlrc --file=/sql/users.sql",
                ],
                "env": [
                    {"name": "PGHOST", "value": args.writer_host},
                    {"name": "PGDATABASE", "value": args.database_name},
                    # TLS is forced by the cluster; the client insists on it too.
                    {"name": "PGSSLMODE", "value": "require"},
                    {"name": "HOME", "value": "/tmp"},
                ],
                "volumeMounts": [
                    {"name": "sql", "mountPath": "/sql", "readOnly": True},
                    {"name": "credentials", "mountPath": "/credentials", "readOnly": True},
                ],
            },
            volumes=[
                {"name": "sql", "configMap": {"name": script.metadata.name}},
                {"name": "credentials", "secret": {"secretName": MASTER_SECRET}},
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ns, secret, script]),
        )
        self.register_outputs({"namespace": BOOTSTRAP_NAMESPACE, "users": sorted(args.users)})
