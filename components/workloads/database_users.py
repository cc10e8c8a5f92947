"""The database bootstrap: one PostgreSQL user per service, for IAM authentication.

Services never see the master password. A Job in a namespace of its own is the only reader of
the master secret: it creates each service's login role, grants it `rds_iam` (so it signs in
with an IAM token its IRSA role may request for exactly that user), and lets it use the
application database. It is idempotent and runs again, under a new name, whenever the list of
users changes (`pulumi up` waits for it to succeed).

The Job reads the master secret itself, when it runs: Aurora rotates it (every 7 days in
production), and a copy delivered by External Secrets could be up to a refresh interval old,
so a run soon after a rotation would sign in with the replaced password. An init container
with the Job's own role (EKS Pod Identity: GetSecretValue on that secret, Decrypt through
Secrets Manager with its key) writes the current username and password into a memory volume
that psql reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.data.secrets import RemoteSecret
from components.shared.conventions import (
    DATABASE_BOOTSTRAP_NAMESPACE,
    digest,
    namespace,
    standard_labels,
)
from components.shared.iam import pod_identity_trust_policy, policy_document
from components.workloads.bootstrap_job import bootstrap_job
from components.workloads.search_users import PYTHON_IMAGE

BOOTSTRAP_NAMESPACE = DATABASE_BOOTSTRAP_NAMESPACE
BOOTSTRAP_ACCOUNT = "database-bootstrap"
SCRIPTS = Path(__file__).parent / "scripts"
# The init container's script and the signer it imports (Python's standard library only).
SCRIPT_FILES = ("master_secret.py", "aws_sigv4.py")
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


def master_secret_policy(region: str, secret_arn: str, key_arn: str) -> str:
    """Read the master secret, and decrypt it with its key only through Secrets Manager and only
    for this secret: Secrets Manager's every KMS request for a secret carries the encryption
    context `SecretARN` = the secret's ARN (Secrets Manager User Guide, "Secret encryption and
    decryption", Secrets Manager encryption context), so another secret under the same key
    stays out of reach."""
    return policy_document(
        [
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": secret_arn,
            },
            {
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": key_arn,
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": f"secretsmanager.{region}.amazonaws.com",
                        "kms:EncryptionContext:SecretARN": secret_arn,
                    }
                },
            },
        ]
    )


@dataclass(frozen=True)
class DatabaseUsersArgs:
    users: Sequence[str]
    database_name: str
    writer_host: pulumi.Input[str]
    # The Aurora-managed master secret (its ARN) and the key it is encrypted with.
    master: RemoteSecret
    master_key_arn: pulumi.Input[str]
    # The cluster whose Pod Identity agent gives the Job its role.
    cluster_name: pulumi.Input[str]
    region: str
    # The permissions boundary every IAM role of the stack carries (None: none).
    permissions_boundary: pulumi.Input[str] | None = None


class DatabaseUsers(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: DatabaseUsersArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:workloads:DatabaseUsers", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = namespace(
            BOOTSTRAP_NAMESPACE,
            pod_security="restricted",
            istio_injection=False,
            opts=child,
        )
        inside = pulumi.ResourceOptions(parent=self, depends_on=[ns])
        labels = standard_labels("database-users", "database")
        cluster_name = pulumi.Output.from_input(args.cluster_name)
        role = aws.iam.Role(
            f"{name}-bootstrap",
            assume_role_policy=cluster_name.apply(
                lambda cluster: pod_identity_trust_policy(
                    cluster, BOOTSTRAP_NAMESPACE, BOOTSTRAP_ACCOUNT
                )
            ),
            permissions_boundary=args.permissions_boundary,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-bootstrap",
            role=role.id,
            policy=pulumi.Output.all(args.master.remote_key, args.master_key_arn).apply(
                lambda arns: master_secret_policy(args.region, arns[0], arns[1])
            ),
            opts=child,
        )
        account = k8s.core.v1.ServiceAccount(
            f"{name}-account",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=BOOTSTRAP_ACCOUNT, namespace=BOOTSTRAP_NAMESPACE, labels=labels
            ),
            automount_service_account_token=False,
            opts=inside,
        )
        association = aws.eks.PodIdentityAssociation(
            f"{name}-identity",
            cluster_name=args.cluster_name,
            namespace=BOOTSTRAP_NAMESPACE,
            service_account=BOOTSTRAP_ACCOUNT,
            role_arn=role.arn,
            opts=child,
        )
        sql = users_sql(args.database_name, args.users)
        scripts = {file: (SCRIPTS / file).read_text() for file in SCRIPT_FILES}
        # A new name when the users or the scripts change: the Job runs again exactly then.
        run_digest = digest(sql + "".join(scripts.values()), 8)
        script = k8s.core.v1.ConfigMap(
            f"{name}-sql",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"database-users-{run_digest}",
                namespace=ns.metadata.name,
                labels=labels,
            ),
            data={"users.sql": sql, **scripts},
            opts=inside,
        )
        bootstrap_job(
            f"{name}-job",
            name=f"database-users-{run_digest}",
            namespace=ns.metadata.name,
            labels=labels,
            # The Pod Identity webhook mounts its own token for this service account.
            service_account=BOOTSTRAP_ACCOUNT,
            init_container={
                "name": "master-secret",
                "image": PYTHON_IMAGE,
                "command": ["python3", "/sql/master_secret.py"],
                "env": [
                    {"name": "AWS_REGION", "value": args.region},
                    {"name": "MASTER_SECRET_ARN", "value": args.master.remote_key},
                    {"name": "CREDENTIALS_DIR", "value": "/credentials"},
                    {"name": "HOME", "value": "/tmp"},
                ],
                "volumeMounts": [
                    {"name": "sql", "mountPath": "/sql", "readOnly": True},
                    {"name": "credentials", "mountPath": "/credentials"},
                ],
            },
            container={
                "name": "psql",
                "image": PSQL_IMAGE,
                # The credentials are read from the files the init container wrote (never the
                # pod's environment), for this one process.
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
                # In memory only, and gone with the pod.
                {"name": "credentials", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ns, account, script, association]),
        )
        self.register_outputs({"namespace": BOOTSTRAP_NAMESPACE, "users": sorted(args.users)})
