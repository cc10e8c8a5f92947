"""One IRSA role per service that calls AWS, holding exactly what its data stores grant it.

A service account can assume one role, so each service's statements (documents bucket, its
own PostgreSQL user) are gathered here rather than in each store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components.shared.iam import IrsaRole, IrsaRoleArgs, OidcIssuer, policy_document


def database_connect_statement(
    region: str, account_id: str, cluster_resource_id: str, user: str
) -> dict[str, Any]:
    """Connect to the cluster as `user` with an IAM authentication token, and as no one else
    (RDS User Guide, "Creating and using an IAM policy for IAM database access")."""
    return {
        "Effect": "Allow",
        "Action": "rds-db:connect",
        "Resource": f"arn:aws:rds-db:{region}:{account_id}:dbuser:{cluster_resource_id}/{user}",
    }


@dataclass(frozen=True)
class ServiceRolesArgs:
    oidc: OidcIssuer
    namespace: str
    # Role logical names are "<name_prefix>-<service>" (IAM role names stop at 64 characters).
    name_prefix: str
    # service -> the statements its role holds.
    statements: Mapping[str, Sequence[pulumi.Input[Sequence[Mapping[str, Any]]]]]
    # The permissions boundary every IAM role of the stack carries (None: none).
    permissions_boundary: pulumi.Input[str] | None = None


class ServiceRoles(pulumi.ComponentResource):
    role_arns: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: ServiceRolesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:data:ServiceRoles", name, None, opts)
        self.role_arns = {}
        for service, groups in sorted(args.statements.items()):
            policy = pulumi.Output.all(*groups).apply(
                lambda found: policy_document([s for group in found for s in group])
            )
            self.role_arns[service] = IrsaRole(
                f"{args.name_prefix}-{service}",
                IrsaRoleArgs(
                    oidc=args.oidc,
                    namespace=args.namespace,
                    service_account=service,
                    inline_policy=policy,
                    permissions_boundary=args.permissions_boundary,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            ).role_arn
        self.register_outputs({"roleArns": self.role_arns})
