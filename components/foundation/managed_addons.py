"""EKS managed add-ons, each with its own IRSA role where it calls AWS."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.foundation.storage import ebs_csi_key_policy
from components.shared.iam import IrsaRole, IrsaRoleArgs, OidcIssuer, managed_policy_arn
from components.shared.urns import formerly


@dataclass(frozen=True)
class ManagedAddonSpec:
    name: str
    # None: the version EKS makes the default for the cluster's Kubernetes minor (looked up at
    # each run, so that changing `kubernetesVersion` updates the add-on with the cluster).
    version: str | None = None
    # The add-on's service account in kube-system and the managed policies its IRSA role gets.
    service_account: str | None = None
    managed_policies: Sequence[str] = ()
    inline_policy: pulumi.Input[str] | None = None
    # The add-on's configuration values (its JSON schema: `aws eks describe-addon-configuration`).
    configuration: Mapping[str, Any] | None = None


# Networking add-ons must exist before nodes join, or the nodes never become Ready.
BEFORE_NODES = (
    ManagedAddonSpec(
        "vpc-cni",
        service_account="aws-node",
        managed_policies=["AmazonEKS_CNI_Policy"],
        # NetworkPolicies are enforced only with this on (EKS User Guide, "Restrict Pod network
        # traffic with Kubernetes network policies"); without it every policy is ignored.
        configuration={"enableNetworkPolicy": "true"},
    ),
    ManagedAddonSpec("kube-proxy"),
    ManagedAddonSpec("eks-pod-identity-agent"),
)


def after_nodes(volume_key_arn: pulumi.Output[str]) -> tuple[ManagedAddonSpec, ...]:
    """Add-ons that run as Deployments: degraded until nodes exist, so installed after them."""
    return (
        ManagedAddonSpec("coredns"),
        ManagedAddonSpec(
            "aws-ebs-csi-driver",
            service_account="ebs-csi-controller-sa",
            managed_policies=["service-role/AmazonEBSCSIDriverPolicy"],
            inline_policy=volume_key_arn.apply(ebs_csi_key_policy),
        ),
    )


def default_version(
    addon: str, kubernetes_version: str, opts: pulumi.InvokeOutputOptions
) -> pulumi.Output[str]:
    """The add-on version EKS makes the default for a Kubernetes minor (DescribeAddonVersions'
    `defaultVersion`; EKS User Guide, "Update existing cluster to new Kubernetes version": the
    add-ons follow the control plane). Not the newest: the default is the one EKS tested."""
    return aws.eks.get_addon_version_output(
        addon_name=addon, kubernetes_version=kubernetes_version, most_recent=False, opts=opts
    ).version


@dataclass(frozen=True)
class ManagedAddonsArgs:
    cluster_name: pulumi.Input[str]
    # The cluster's minor: each add-on runs the version EKS makes the default for it.
    kubernetes_version: str
    # Plain prefix of the add-ons' IRSA role names (IAM role names stop at 64 characters).
    role_prefix: str
    oidc: OidcIssuer
    addons: Sequence[ManagedAddonSpec]
    depends_on: Sequence[pulumi.Resource] = ()
    # The permissions boundary every IAM role of the stack carries (None: none).
    permissions_boundary: pulumi.Input[str] | None = None


class ManagedAddons(pulumi.ComponentResource):
    """A set of managed add-ons; the platform installs one set before the node groups, one after.

    Networking add-ons (vpc-cni, kube-proxy, eks-pod-identity-agent) must exist before nodes join
    or the nodes never become Ready; coredns and the EBS CSI driver run as Deployments and stay
    degraded until there are nodes, so they come after.
    """

    addons: dict[str, aws.eks.Addon]

    def __init__(
        self, name: str, args: ManagedAddonsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "financial-planning:foundation:ManagedAddons",
            name,
            None,
            formerly(opts, "financial-planning:cluster:ManagedAddons"),
        )
        self.addons = {}
        for spec in args.addons:
            role_arn: pulumi.Output[str] | None = None
            if spec.service_account is not None:
                role_arn = IrsaRole(
                    f"{args.role_prefix}-{spec.name}",
                    IrsaRoleArgs(
                        oidc=args.oidc,
                        namespace="kube-system",
                        service_account=spec.service_account,
                        managed_policy_arns=[managed_policy_arn(p) for p in spec.managed_policies],
                        inline_policy=spec.inline_policy,
                        permissions_boundary=args.permissions_boundary,
                    ),
                    opts=pulumi.ResourceOptions(parent=self),
                ).role_arn
            self.addons[spec.name] = aws.eks.Addon(
                f"{name}-{spec.name}",
                cluster_name=args.cluster_name,
                addon_name=spec.name,
                addon_version=spec.version
                or default_version(
                    spec.name, args.kubernetes_version, pulumi.InvokeOutputOptions(parent=self)
                ),
                service_account_role_arn=role_arn,
                configuration_values=(
                    json.dumps(dict(spec.configuration), sort_keys=True)
                    if spec.configuration is not None
                    else None
                ),
                # This program is the source of truth for add-on configuration.
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
            )
        self.register_outputs({"addons": list(self.addons)})
