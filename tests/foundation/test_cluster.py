"""EKS control plane: encryption, logging, endpoint access, access entries, OIDC, add-ons."""

from __future__ import annotations

import json

import pytest

from offline.engine import RecordedResource, StackRun
from tests.conftest import run_with
from tests.lookup import irsa_role, key_by_alias, policy

CLUSTER = "aws:eks/cluster:Cluster"
ALL_LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
# Production's deploy and preview roles (Pulumi.production.yaml, from python -m bootstrap).
DEPLOYER = "arn:aws:iam::123456789012:role/financial-planning-github-production-deploy"
PREVIEWER = "arn:aws:iam::123456789012:role/financial-planning-github-production-preview"


def cluster_key(run: StackRun) -> RecordedResource:
    return key_by_alias(run, f"financial-planning-{run.stack}-eks")


def test_one_cluster_with_secrets_encrypted_by_a_rotating_key(stack_run: StackRun) -> None:
    cluster = stack_run.one(CLUSTER)
    key = cluster_key(stack_run)
    assert key.inputs["enableKeyRotation"] is True
    assert cluster.inputs["encryptionConfig"]["resources"] == ["secrets"]
    assert cluster.inputs["encryptionConfig"]["provider"]["keyArn"].endswith(key.id)
    # The key is the account's, usable by CloudWatch Logs for this cluster's log group only.
    statements = {s["Sid"]: s for s in policy(key)["Statement"]}
    condition = statements["ControlPlaneLogs"]["Condition"]["ArnLike"]
    assert condition["kms:EncryptionContext:aws:logs:arn"].endswith(
        f":log-group:/aws/eks/financial-planning-{stack_run.stack}/cluster"
    )


def test_control_plane_logs_all_five_types_into_a_retained_encrypted_group(
    production: StackRun, staging: StackRun
) -> None:
    for run, days in ((production, 365), (staging, 30)):
        cluster = run.one(CLUSTER)
        assert cluster.inputs["enabledClusterLogTypes"] == ALL_LOG_TYPES
        [group] = [
            g
            for g in run.of_type("aws:cloudwatch/logGroup:LogGroup")
            if g.inputs["name"] == f"/aws/eks/{cluster.inputs['name']}/cluster"
        ]
        assert group.inputs["retentionInDays"] == days
        assert group.inputs["kmsKeyId"].endswith(cluster_key(run).id)
        # Created before the cluster, so EKS never makes one without retention.
        assert group.urn in cluster.dependencies


def test_endpoint_is_private_and_public_access_limited_to_the_stack_cidrs(
    production: StackRun, staging: StackRun
) -> None:
    # Staging's file lists one range; production's lists none until the real VPN range is
    # known (it refuses RFC 5737's documentation ranges): its endpoint is private only.
    public = staging.one(CLUSTER).inputs["vpcConfig"]
    assert public["endpointPublicAccess"] is True
    assert public["publicAccessCidrs"] == ["203.0.113.0/28"]
    private = production.one(CLUSTER).inputs["vpcConfig"]
    assert private["endpointPublicAccess"] is False
    assert not private.get("publicAccessCidrs")
    vpc_config = production.one(CLUSTER).inputs["vpcConfig"]
    assert vpc_config["endpointPrivateAccess"] is True
    # The control plane's own subnets: neither the nodes' nor the load balancers'.
    own_subnets = {
        s.id
        for s in production.of_type("aws:ec2/subnet:Subnet")
        if not {"kubernetes.io/role/internal-elb", "kubernetes.io/role/elb"} & set(s.inputs["tags"])
    }
    assert set(vpc_config["subnetIds"]) == own_subnets and len(own_subnets) == 3


def test_without_cidrs_the_public_endpoint_is_off() -> None:
    vpc_config = run_with("staging", endpointPublicAccessCidrs=[]).one(CLUSTER).inputs["vpcConfig"]
    assert vpc_config["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in vpc_config


def test_access_entries_replace_the_aws_auth_configmap(production: StackRun) -> None:
    access = production.one(CLUSTER).inputs["accessConfig"]
    assert access == {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False}
    entries = {
        e.inputs["principalArn"]: e.inputs.get("kubernetesGroups", [])
        for e in production.of_type("aws:eks/accessEntry:AccessEntry")
    }
    associations = {
        a.inputs["principalArn"]: (
            a.inputs["policyArn"].rsplit("/", 1)[1],
            a.inputs["accessScope"]["type"],
        )
        for a in production.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    }
    # Only the platform admins and the deployer are cluster-admins.
    assert associations == {
        "arn:aws:iam::123456789012:role/platform-admin": ("AmazonEKSClusterAdminPolicy", "cluster"),
        DEPLOYER: ("AmazonEKSClusterAdminPolicy", "cluster"),
    }
    # The others are Kubernetes groups that RBAC binds.
    assert entries == {
        "arn:aws:iam::123456789012:role/platform-admin": [],
        DEPLOYER: [],
        "arn:aws:iam::123456789012:role/sre-readonly": ["financial-planning:sre"],
        # Pull requests preview as this role: the cluster read-only, without Secrets.
        PREVIEWER: ["financial-planning:auditors"],
    }


def test_access_entries_are_named_by_principal_so_removing_one_touches_no_other() -> None:
    principals = {
        "platformAdmins": [
            "arn:aws:iam::123456789012:role/admin-a",
            "arn:aws:iam::123456789012:role/admin-b",
        ],
        "deployer": "arn:aws:iam::123456789012:role/platform-deployer",
        "developers": [],
    }
    before = run_with("staging", access=principals)
    after = run_with(
        "staging", access={**principals, "platformAdmins": principals["platformAdmins"][1:]}
    )

    def named(run: StackRun) -> dict[str, str]:
        return {
            e.name: e.inputs["principalArn"] for e in run.of_type("aws:eks/accessEntry:AccessEntry")
        }

    kept = named(after)
    assert set(kept.items()) < set(named(before).items())
    assert sorted(kept.values()) == [
        "arn:aws:iam::123456789012:role/admin-b",
        "arn:aws:iam::123456789012:role/financial-planning-github-staging-preview",
        "arn:aws:iam::123456789012:role/platform-deployer",
    ]


def test_kubernetes_objects_wait_for_the_nodes_and_the_deployers_access(
    production: StackRun,
) -> None:
    provider = production.one("pulumi:providers:kubernetes")
    association = next(
        a
        for a in production.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
        if a.inputs["principalArn"] == DEPLOYER
    )
    coredns = next(
        a for a in production.of_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "coredns"
    )
    # A component's depends_on does not reach its children; the provider every Kubernetes
    # object uses does.
    assert {association.urn, coredns.urn} <= set(provider.dependencies)
    objects = [r for r in production.resources if r.type.startswith("kubernetes:")]
    assert len(objects) > 50
    assert all(r.provider.startswith(provider.urn + "::") for r in objects)


def test_one_oidc_provider_for_the_cluster_issuer(stack_run: StackRun) -> None:
    provider = stack_run.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    assert provider.inputs["url"].startswith("https://oidc.eks.us-east-1.amazonaws.com/id/")


def _addons(run: StackRun) -> dict[str, RecordedResource]:
    return {a.inputs["addonName"]: a for a in run.of_type("aws:eks/addon:Addon")}


def test_managed_addons_and_their_order_around_the_nodes(stack_run: StackRun) -> None:
    addons = _addons(stack_run)
    # The security layer installs GuardDuty's runtime agent where the stack's GuardDuty runs
    # (its automated agent configuration is off); the foundation installs the other five.
    guardduty = {"aws-guardduty-agent"} if stack_run.stack == "production" else set()
    assert (
        set(addons)
        == {
            "vpc-cni",
            "coredns",
            "kube-proxy",
            "aws-ebs-csi-driver",
            "eks-pod-identity-agent",
        }
        | guardduty
    )
    node_groups = [g.urn for g in stack_run.of_type("aws:eks/nodeGroup:NodeGroup")]
    for early in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent"):
        assert all(
            addons[early].urn
            in stack_run.one("aws:eks/nodeGroup:NodeGroup", g.rsplit("::", 1)[1]).dependencies
            for g in node_groups
        )
    for late in ("coredns", "aws-ebs-csi-driver"):
        assert set(node_groups) <= set(addons[late].dependencies)


@pytest.mark.parametrize(
    ("addon", "service_account", "policy_name"),
    [
        ("aws-ebs-csi-driver", "ebs-csi-controller-sa", "service-role/AmazonEBSCSIDriverPolicy"),
        ("vpc-cni", "aws-node", "AmazonEKS_CNI_Policy"),
    ],
)
def test_addons_that_call_aws_use_their_own_irsa_role(
    production: StackRun, addon: str, service_account: str, policy_name: str
) -> None:
    role = irsa_role(production, "kube-system", service_account)
    assert _addons(production)[addon].inputs["serviceAccountRoleArn"].endswith(role.id)
    statement = policy(role, "assumeRolePolicy")["Statement"]
    assert len(statement) == 1
    assert statement[0]["Action"] == "sts:AssumeRoleWithWebIdentity"
    issuer = (
        production.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
        .inputs["url"]
        .removeprefix("https://")
    )
    assert statement[0]["Principal"]["Federated"].endswith(f"oidc-provider/{issuer}")
    assert statement[0]["Condition"] == {
        "StringEquals": {
            f"{issuer}:sub": f"system:serviceaccount:kube-system:{service_account}",
            f"{issuer}:aud": "sts.amazonaws.com",
        }
    }
    attached = [
        a.inputs["policyArn"]
        for a in production.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == role.id
    ]
    assert attached == [f"arn:aws:iam::aws:policy/{policy_name}"]


def test_kubeconfig_is_secret_and_feeds_the_one_kubernetes_provider(
    stack_run: StackRun,
) -> None:
    provider = stack_run.one("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == "[secret]"
    cluster = stack_run.one("financial-planning:foundation:Cluster")
    assert stack_run.outputs[cluster.urn]["kubeconfig"] == "[secret]"
    assert stack_run.outputs[cluster.urn]["name"] == f"financial-planning-{stack_run.stack}"


def test_kubeconfig_authenticates_through_aws_eks_get_token() -> None:
    from components.foundation.cluster import kubeconfig

    config = json.loads(kubeconfig("c1", "eu-west-1", "https://example", "Q0E="))
    user = config["users"][0]["user"]["exec"]
    assert user["command"] == "aws"
    assert user["args"][:4] == ["eks", "get-token", "--cluster-name", "c1"]
    assert config["clusters"][0]["cluster"] == {
        "server": "https://example",
        "certificate-authority-data": "Q0E=",
    }
    assert "token" not in json.dumps(config["users"]).replace("get-token", "")
