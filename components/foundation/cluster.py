"""The EKS control plane: IAM, secrets encryption, logging, access entries, OIDC and kubeconfig."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.shared.iam import (
    PARTITION,
    OidcIssuer,
    managed_policy_arn,
    policy_document,
    service_trust_policy,
)
from components.shared.kms import encryption_key, log_group_key_policy
from components.shared.urns import formerly
from stacks.settings import AccessSettings, ControlPlaneLogType, Persona

CLUSTER_ADMIN_POLICY = f"arn:{PARTITION}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
# Personas that are cluster-admins through an EKS access policy; the others get a Kubernetes
# group that the security layer binds to Kubernetes RBAC roles.
CLUSTER_ADMINS: frozenset[Persona] = frozenset({"platformAdmin", "deployer"})
PERSONA_GROUPS: dict[Persona, str] = {
    "sre": "financial-planning:sre",
    "developer": "financial-planning:developers",
    "auditor": "financial-planning:auditors",
}


def principal_slug(principal_arn: str) -> str:
    """A stable resource name for a principal: its role or user path, not its position."""
    resource = principal_arn.split(":", 5)[5]
    return re.sub(r"[^a-z0-9]+", "-", resource.lower()).strip("-")


def kubeconfig(cluster_name: str, region: str, endpoint: str, certificate_data: str) -> str:
    """A kubeconfig that authenticates with `aws eks get-token` (no long-lived credentials)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster_name,
                    "cluster": {"server": endpoint, "certificate-authority-data": certificate_data},
                }
            ],
            "contexts": [
                {"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}
            ],
            "current-context": cluster_name,
            "users": [
                {
                    "name": cluster_name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": [
                                "eks",
                                "get-token",
                                "--cluster-name",
                                cluster_name,
                                "--region",
                                region,
                                "--output",
                                "json",
                            ],
                        }
                    },
                }
            ],
        }
    )


@dataclass(frozen=True)
class ClusterArgs:
    cluster_name: str
    kubernetes_version: str
    region: str
    account_id: pulumi.Input[str]
    # Where EKS puts the control plane's network interfaces: subnets of their own, so that
    # network policies can admit the API server (and nothing else) by address. Changing them
    # updates the cluster in place (EKS UpdateClusterConfig; terraform-provider-aws
    # `aws_eks_cluster` has no ForceNew on vpc_config.subnet_ids since v5.25.0), within the
    # zones the cluster was created in.
    subnet_ids: Sequence[pulumi.Input[str]]
    public_access_cidrs: Sequence[str]
    log_types: Sequence[ControlPlaneLogType]
    log_retention_days: int
    access: AccessSettings
    protect: bool
    # The permissions boundary every IAM role of the stack carries (None: none).
    permissions_boundary: pulumi.Input[str] | None = None


class Cluster(pulumi.ComponentResource):
    name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    oidc: OidcIssuer
    kubeconfig: pulumi.Output[str]
    component_name: str
    eks_cluster: aws.eks.Cluster

    def kubernetes_provider(self, ready: Sequence[pulumi.Resource]) -> k8s.Provider:
        """The one Kubernetes provider of the program, parented here.

        Every Kubernetes object goes through it, so every one waits for what it waits for:
        the nodes and their add-ons, and the access entries that let the deployer in (a
        component's `depends_on` does not reach its children; a provider does).
        """
        return k8s.Provider(
            f"{self.component_name}-k8s",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(ready)),
        )

    def __init__(
        self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "financial-planning:foundation:Cluster",
            name,
            None,
            formerly(opts, "financial-planning:cluster:Cluster"),
        )
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect)
        cluster_name = args.cluster_name
        log_group_name = f"/aws/eks/{cluster_name}/cluster"

        key = encryption_key(
            f"{name}-secrets",
            alias=f"{cluster_name}-eks",
            description=f"Envelope encryption of {cluster_name} Kubernetes secrets and its logs",
            protect=args.protect,
            parent=self,
            policy=log_group_key_policy(args.account_id, args.region, log_group_name),
        )

        # Created before the cluster so that EKS does not create it without retention or key.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane",
            name=log_group_name,
            retention_in_days=args.log_retention_days,
            kms_key_id=key.arn,
            opts=stateful,
        )

        role = aws.iam.Role(
            f"{name}-cluster",
            assume_role_policy=service_trust_policy("eks.amazonaws.com"),
            permissions_boundary=args.permissions_boundary,
            opts=child,
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy",
            role=role.name,
            policy_arn=managed_policy_arn("AmazonEKSClusterPolicy"),
            opts=child,
        )
        key_use = aws.iam.RolePolicy(
            f"{name}-cluster-kms",
            role=role.id,
            policy=key.arn.apply(
                lambda arn: policy_document(
                    [
                        {
                            "Effect": "Allow",
                            "Action": [
                                "kms:Encrypt",
                                "kms:Decrypt",
                                "kms:ListGrants",
                                "kms:DescribeKey",
                            ],
                            "Resource": arn,
                        }
                    ]
                )
            ),
            opts=child,
        )

        cluster = aws.eks.Cluster(
            name,
            name=cluster_name,
            version=args.kubernetes_version,
            role_arn=role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=list(args.subnet_ids),
                endpoint_private_access=True,
                endpoint_public_access=bool(args.public_access_cidrs),
                public_access_cidrs=list(args.public_access_cidrs) or None,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=key.arn),
                resources=["secrets"],
            ),
            enabled_cluster_log_types=list(args.log_types),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                # Admins come from explicit access entries below, not from whoever ran `up`.
                bootstrap_cluster_creator_admin_permissions=False,
            ),
            # vpc-cni, kube-proxy and coredns are EKS managed add-ons owned by this program.
            bootstrap_self_managed_addons=False,
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type="STANDARD"),
            deletion_protection=args.protect,
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect, depends_on=[cluster_policy, key_use, log_group]
            ),
        )

        # Entries are named by principal, so removing one principal touches no other. Each
        # also answers to the positional name earlier revisions gave it (`-admin-<n>`, in
        # the same order), so that change re-creates nothing; drop those aliases once every
        # stack has run `pulumi up` with them.
        self.access: list[pulumi.Resource] = []
        for index, (principal, persona) in enumerate(args.access.entries()):
            entry_name = f"{name}-access-{principal_slug(principal)}"
            formerly_at = pulumi.ResourceOptions(
                parent=self, aliases=[pulumi.Alias(name=f"{name}-admin-{index}")]
            )
            group = PERSONA_GROUPS.get(persona)
            access = aws.eks.AccessEntry(
                entry_name,
                cluster_name=cluster.name,
                principal_arn=principal,
                type="STANDARD",
                kubernetes_groups=[group] if group else None,
                opts=formerly_at,
            )
            self.access.append(access)
            if persona in CLUSTER_ADMINS:
                self.access.append(
                    aws.eks.AccessPolicyAssociation(
                        entry_name,
                        cluster_name=cluster.name,
                        principal_arn=access.principal_arn,
                        policy_arn=CLUSTER_ADMIN_POLICY,
                        access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                        opts=formerly_at,
                    )
                )

        issuer_url = cluster.identities.apply(lambda ids: (ids[0].oidcs or [])[0].issuer or "")
        oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=issuer_url,
            client_id_lists=["sts.amazonaws.com"],
            opts=stateful,
        )

        self.eks_cluster = cluster
        self.name = cluster.name
        self.endpoint = cluster.endpoint
        self.security_group_id = cluster.vpc_config.apply(
            lambda vpc: vpc.cluster_security_group_id or ""
        )
        self.oidc = OidcIssuer(
            provider_arn=oidc_provider.arn,
            host_path=issuer_url.apply(lambda url: url.removeprefix("https://")),
        )
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                cluster.name,
                cluster.endpoint,
                cluster.certificate_authority.apply(lambda ca: ca.data or ""),
            ).apply(lambda values: kubeconfig(values[0], args.region, values[1], values[2]))
        )
        self.component_name = name
        self.register_outputs(
            {
                "name": self.name,
                "endpoint": self.endpoint,
                "oidcProviderArn": oidc_provider.arn,
                "kubeconfig": self.kubeconfig,
            }
        )
