"""AWS Load Balancer Controller: makes the internet-facing ALB from the edge's Ingresses.

The ALB, its listeners, target groups and security groups are the controller's, not Pulumi's:
it tags each with `elbv2.k8s.aws/cluster: <cluster>`, and its IAM role may change only what
carries this cluster's tag (production and staging may share an account). Deleting an Ingress
makes the controller delete the ALB, so the edge's Ingresses depend on this add-on: on
`pulumi destroy` they go first, while the controller still runs (were it gone, they would hang
on its finalizer and the ALB would be orphaned).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.addons.base import SelfMonitoredAddon
from components.shared.conventions import (
    CONTROLLER_NODES,
    PART_OF,
    PLATFORM_PRIORITY_CLASS,
    restricted_container_security_context,
    restricted_pod_security_context,
)
from components.shared.helm import HelmChart
from components.shared.iam import policy_document
from stacks.addon_settings import ControllerSettings

# The namespace of the edge's AWS-facing controllers (this one and external-dns): restricted.
EDGE_NAMESPACE = "edge-system"
# The controller's admission webhook (Ingress and TargetGroupBinding validation, pod readiness
# gates), which the API server calls.
WEBHOOK_PORT = 9443
NOBODY = 65534
CLUSTER_TAG = "elbv2.k8s.aws/cluster"

# What the controller reads to plan a load balancer (upstream docs/install/iam_policy.json,
# v3.5.0: its Describe/Get statement, less Cognito, WAF Classic and IAM server certificates,
# which this platform does not use).
READ_ACTIONS = [
    "ec2:DescribeAccountAttributes",
    "ec2:DescribeAddresses",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeVpcs",
    "ec2:DescribeVpcPeeringConnections",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeTags",
    "ec2:DescribeRouteTables",
    "ec2:DescribeIpamPools",
    "ec2:GetCoipPoolUsage",
    "ec2:DescribeCoipPools",
    "ec2:GetSecurityGroupsForVpc",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeListenerCertificates",
    "elasticloadbalancing:DescribeListenerAttributes",
    "elasticloadbalancing:DescribeSSLPolicies",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTrustStores",
    "elasticloadbalancing:DescribeCapacityReservation",
    "acm:ListCertificates",
    "acm:DescribeCertificate",
]
# The web ACL the Ingress names is attached by the controller (AWS WAF v2 only).
WAF_ACTIONS = [
    "wafv2:GetWebACL",
    "wafv2:GetWebACLForResource",
    "wafv2:AssociateWebACL",
    "wafv2:DisassociateWebACL",
]
SHIELD_ACTIONS = [
    "shield:GetSubscriptionState",
    "shield:DescribeProtection",
    "shield:CreateProtection",
    "shield:DeleteProtection",
]
# Changes to a load balancer or target group the controller made (tagged as this cluster's).
MODIFY_TAGGED_ACTIONS = [
    "elasticloadbalancing:ModifyLoadBalancerAttributes",
    "elasticloadbalancing:SetIpAddressType",
    "elasticloadbalancing:SetSecurityGroups",
    "elasticloadbalancing:SetSubnets",
    "elasticloadbalancing:DeleteLoadBalancer",
    "elasticloadbalancing:ModifyTargetGroup",
    "elasticloadbalancing:ModifyTargetGroupAttributes",
    "elasticloadbalancing:DeleteTargetGroup",
    "elasticloadbalancing:ModifyListenerAttributes",
    "elasticloadbalancing:ModifyCapacityReservation",
    "elasticloadbalancing:ModifyIpPools",
]
# Listener and rule changes: these ARNs carry no tags of their own that IAM could check.
LISTENER_ACTIONS = [
    "elasticloadbalancing:CreateListener",
    "elasticloadbalancing:DeleteListener",
    "elasticloadbalancing:CreateRule",
    "elasticloadbalancing:DeleteRule",
    "elasticloadbalancing:SetWebAcl",
    "elasticloadbalancing:ModifyListener",
    "elasticloadbalancing:AddListenerCertificates",
    "elasticloadbalancing:RemoveListenerCertificates",
    "elasticloadbalancing:ModifyRule",
    "elasticloadbalancing:SetRulePriorities",
]
ELB_ARNS = [
    "arn:aws:elasticloadbalancing:*:*:targetgroup/*/*",
    "arn:aws:elasticloadbalancing:*:*:loadbalancer/net/*/*",
    "arn:aws:elasticloadbalancing:*:*:loadbalancer/app/*/*",
]
LISTENER_ARNS = [
    "arn:aws:elasticloadbalancing:*:*:listener/net/*/*/*",
    "arn:aws:elasticloadbalancing:*:*:listener/app/*/*/*",
    "arn:aws:elasticloadbalancing:*:*:listener-rule/net/*/*/*",
    "arn:aws:elasticloadbalancing:*:*:listener-rule/app/*/*/*",
]
SECURITY_GROUPS = "arn:aws:ec2:*:*:security-group/*"


def load_balancer_controller_policy(cluster_name: str, shield: bool) -> str:
    """The upstream policy's shape, with its tag conditions narrowed from "has a cluster tag"
    to "has this cluster's tag"; Shield's actions only when Shield Advanced is on."""
    own_request = {f"aws:RequestTag/{CLUSTER_TAG}": cluster_name}
    own_resource = {f"aws:ResourceTag/{CLUSTER_TAG}": cluster_name}
    # Tag changes that leave the cluster tag alone, on resources that carry this cluster's.
    retag = {"Null": {f"aws:RequestTag/{CLUSTER_TAG}": "true"}, "StringEquals": own_resource}
    return policy_document(
        [
            {
                "Sid": "ElbServiceLinkedRole",
                "Effect": "Allow",
                "Action": "iam:CreateServiceLinkedRole",
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}
                },
            },
            {"Sid": "Discover", "Effect": "Allow", "Action": READ_ACTIONS, "Resource": "*"},
            {
                "Sid": "AttachFirewall",
                "Effect": "Allow",
                "Action": [*WAF_ACTIONS, *(SHIELD_ACTIONS if shield else [])],
                "Resource": "*",
            },
            # The load balancer's own security group, and its rules on the nodes' groups
            # (which the controller did not create, so they carry no tag of its own).
            {
                "Sid": "SecurityGroups",
                "Effect": "Allow",
                "Action": [
                    "ec2:CreateSecurityGroup",
                    "ec2:AuthorizeSecurityGroupIngress",
                    "ec2:RevokeSecurityGroupIngress",
                ],
                "Resource": "*",
            },
            {
                "Sid": "TagNewSecurityGroups",
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": SECURITY_GROUPS,
                "Condition": {
                    "StringEquals": {"ec2:CreateAction": "CreateSecurityGroup", **own_request}
                },
            },
            {
                "Sid": "RetagOwnSecurityGroups",
                "Effect": "Allow",
                "Action": ["ec2:CreateTags", "ec2:DeleteTags"],
                "Resource": SECURITY_GROUPS,
                "Condition": retag,
            },
            {
                "Sid": "DeleteOwnSecurityGroups",
                "Effect": "Allow",
                "Action": "ec2:DeleteSecurityGroup",
                "Resource": "*",
                "Condition": {"StringEquals": own_resource},
            },
            {
                "Sid": "CreateOwnLoadBalancers",
                "Effect": "Allow",
                "Action": [
                    "elasticloadbalancing:CreateLoadBalancer",
                    "elasticloadbalancing:CreateTargetGroup",
                ],
                "Resource": "*",
                "Condition": {"StringEquals": own_request},
            },
            {
                "Sid": "TagOnCreate",
                "Effect": "Allow",
                "Action": "elasticloadbalancing:AddTags",
                "Resource": ELB_ARNS,
                "Condition": {
                    "StringEquals": {
                        "elasticloadbalancing:CreateAction": [
                            "CreateTargetGroup",
                            "CreateLoadBalancer",
                        ],
                        **own_request,
                    }
                },
            },
            {
                "Sid": "RetagOwnLoadBalancers",
                "Effect": "Allow",
                "Action": ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
                "Resource": ELB_ARNS,
                "Condition": retag,
            },
            {
                "Sid": "TagListeners",
                "Effect": "Allow",
                "Action": ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
                "Resource": LISTENER_ARNS,
            },
            {
                "Sid": "ModifyOwnLoadBalancers",
                "Effect": "Allow",
                "Action": MODIFY_TAGGED_ACTIONS,
                "Resource": "*",
                "Condition": {"StringEquals": own_resource},
            },
            {
                "Sid": "Listeners",
                "Effect": "Allow",
                "Action": LISTENER_ACTIONS,
                "Resource": "*",
            },
            {
                "Sid": "Targets",
                "Effect": "Allow",
                "Action": [
                    "elasticloadbalancing:RegisterTargets",
                    "elasticloadbalancing:DeregisterTargets",
                ],
                "Resource": "arn:aws:elasticloadbalancing:*:*:targetgroup/*/*",
            },
        ]
    )


@dataclass(frozen=True)
class LoadBalancerController(SelfMonitoredAddon):
    settings: ControllerSettings
    cluster_name: str
    region: str
    vpc_id: pulumi.Input[str]
    shield_advanced: bool

    name = "lb-controller"
    chart = HelmChart(
        chart="aws-load-balancer-controller",
        version="3.5.0",
        repository="https://aws.github.io/eks-charts",
    )
    namespace = EDGE_NAMESPACE
    service_account = "aws-load-balancer-controller"

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def irsa_policy(self) -> str:
        return load_balancer_controller_policy(self.cluster_name, self.shield_advanced)

    def values(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        settings = self.settings
        return {
            "clusterName": self.cluster_name,
            "region": self.region,
            # Given, not looked up from the instance metadata (IMDS hop limit 1 on the nodes).
            "vpcId": self.vpc_id,
            "replicaCount": settings.replicas,
            # The chart renders its PodDisruptionBudget only when this is set and
            # replicaCount > 1 (with one replica the bound would be read by nothing).
            **({"podDisruptionBudget": {"maxUnavailable": 1}} if settings.replicas > 1 else {}),
            "serviceAccount": self.irsa_service_account(role_arn),
            # The controller's flags: WAF v2 on, WAF Classic off (its actions are not in the
            # role), Shield as the stack's settings say.
            "enableWafv2": True,
            "enableWaf": False,
            "enableShield": self.shield_advanced,
            # The ALB class is only the edge's; nothing else becomes a load balancer by default.
            "createIngressClassResource": True,
            "ingressClass": "alb",
            "ingressClassConfig": {"default": False},
            "resources": settings.resources.as_values(),
            "nodeSelector": CONTROLLER_NODES,
            "priorityClassName": PLATFORM_PRIORITY_CLASS,
            # The chart sets no seccomp profile nor dropped capabilities: restricted's are here.
            "podSecurityContext": restricted_pod_security_context(NOBODY),
            "securityContext": restricted_container_security_context(NOBODY),
            "serviceMonitor": {
                "enabled": self.monitored,
                "additionalLabels": {"app.kubernetes.io/part-of": PART_OF},
                "interval": "30s",
            },
        }
