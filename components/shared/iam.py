"""IAM building blocks shared by every component: policy documents and the IRSA role."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.shared.urns import formerly

# The partition is fixed to the commercial one; GovCloud or China would change it here only.
PARTITION = "aws"


def managed_policy_arn(policy_name: str) -> str:
    return f"arn:{PARTITION}:iam::aws:policy/{policy_name}"


def policy_document(statements: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, sort_keys=True)


def service_trust_policy(service: str) -> str:
    """Trust policy letting one AWS service principal assume a role."""
    return policy_document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
            }
        ]
    )


def pod_identity_trust_policy(cluster_name: str, namespace: str, service_account: str) -> str:
    """Trust for EKS Pod Identity: the agent assumes the role for one service account of one
    cluster, named by the session tags it sets (EKS User Guide, "EKS Pod Identity": the role
    trusts pods.eks.amazonaws.com for sts:AssumeRole and sts:TagSession). Unlike IRSA it
    names no OIDC provider, so the role can exist before the cluster does."""
    return policy_document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": "pods.eks.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Condition": {
                    "StringEquals": {
                        "aws:RequestTag/eks-cluster-name": cluster_name,
                        "aws:RequestTag/kubernetes-namespace": namespace,
                        "aws:RequestTag/kubernetes-service-account": service_account,
                    }
                },
            }
        ]
    )


def oidc_trust_policy(
    oidc_provider_arn: str, issuer_host_path: str, subjects: str | Sequence[str]
) -> str:
    """Trust policy for tokens of one OIDC issuer, for STS, with exactly these subjects."""
    return policy_document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Federated": oidc_provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer_host_path}:sub": (
                            subjects if isinstance(subjects, str) else list(subjects)
                        ),
                        f"{issuer_host_path}:aud": "sts.amazonaws.com",
                    }
                },
            }
        ]
    )


def web_identity_trust_policy(
    oidc_provider_arn: str, issuer_host_path: str, namespace: str, service_account: str
) -> str:
    """Trust policy for exactly one Kubernetes service account through the cluster's OIDC issuer."""
    return oidc_trust_policy(
        oidc_provider_arn, issuer_host_path, f"system:serviceaccount:{namespace}:{service_account}"
    )


@dataclass(frozen=True)
class OidcIssuer:
    """The cluster's IAM OIDC provider, as IRSA trust policies need it."""

    provider_arn: pulumi.Input[str]
    # Issuer URL without its scheme, e.g. oidc.eks.<region>.amazonaws.com/id/<id>.
    host_path: pulumi.Input[str]


@dataclass(frozen=True)
class IrsaRoleArgs:
    oidc: OidcIssuer
    namespace: str
    service_account: str
    managed_policy_arns: Sequence[str] = ()
    # An inline policy document (JSON) for permissions no managed policy grants narrowly enough.
    inline_policy: pulumi.Input[str] | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    # The permissions boundary every IAM role of the stack carries (None: none).
    permissions_boundary: pulumi.Input[str] | None = None


class IrsaRole(pulumi.ComponentResource):
    """An IAM role that only one namespace/serviceaccount of the cluster can assume (IRSA)."""

    role_arn: pulumi.Output[str]
    role_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: IrsaRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "financial-planning:shared:IrsaRole",
            name,
            None,
            formerly(opts, "financial-planning:iam:IrsaRole"),
        )
        child = pulumi.ResourceOptions(parent=self)
        trust = pulumi.Output.all(args.oidc.provider_arn, args.oidc.host_path).apply(
            lambda values: web_identity_trust_policy(
                values[0], values[1], args.namespace, args.service_account
            )
        )
        role = aws.iam.Role(
            name,
            assume_role_policy=trust,
            description=f"IRSA role of {args.namespace}/{args.service_account}",
            tags=dict(args.tags),
            permissions_boundary=args.permissions_boundary,
            opts=child,
        )
        for policy_arn in args.managed_policy_arns:
            aws.iam.RolePolicyAttachment(
                f"{name}-{policy_arn.rsplit('/', 1)[-1]}",
                role=role.name,
                policy_arn=policy_arn,
                opts=child,
            )
        if args.inline_policy is not None:
            aws.iam.RolePolicy(
                f"{name}-inline", role=role.id, policy=args.inline_policy, opts=child
            )
        self.role_arn = role.arn
        self.role_name = role.name
        self.register_outputs({"roleArn": role.arn, "roleName": role.name})
