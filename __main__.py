"""The Financial Planning platform: load this stack's settings, build it, export what users need."""

import pulumi

from components.platform import build_platform
from stacks import load_secrets, load_settings

settings = load_settings()
platform = build_platform(pulumi.get_project(), pulumi.get_stack(), settings, load_secrets())

pulumi.export("vpcId", platform.network.vpc_id)
pulumi.export("privateSubnetIds", platform.network.private_subnet_ids)
pulumi.export("clusterName", platform.cluster.name)
pulumi.export("clusterEndpoint", platform.cluster.endpoint)
pulumi.export("oidcProviderArn", platform.cluster.oidc.provider_arn)
pulumi.export("kubeconfig", platform.cluster.kubeconfig)
pulumi.export(
    "nodeGroups",
    {name: group.node_group.node_group_name for name, group in platform.node_groups.items()},
)
