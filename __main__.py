"""The Financial Planning platform: load this stack's settings, build it, export what users need."""

import pulumi

from components.platform import build_platform
from stacks import load_secrets, load_settings

settings = load_settings()
platform = build_platform(pulumi.get_project(), pulumi.get_stack(), settings, load_secrets())

foundation = platform.foundation

pulumi.export("vpcId", foundation.network.vpc_id)
pulumi.export("privateSubnetIds", foundation.network.private_subnet_ids)
pulumi.export("clusterName", foundation.cluster.name)
pulumi.export("clusterEndpoint", foundation.cluster.endpoint)
pulumi.export("oidcProviderArn", foundation.cluster.oidc.provider_arn)
pulumi.export("kubeconfig", foundation.cluster.kubeconfig)
pulumi.export(
    "nodeGroups",
    {name: group.node_group.node_group_name for name, group in foundation.node_groups.items()},
)
