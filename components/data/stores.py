"""What every data store has of its own: a place in the private subnets, a security group open
only to the cluster on the store's port, and a KMS key.

With `protect`, every resource of a store is protected and the service's own deletion protection
(or final snapshot) is on.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.foundation.network import PrivateNetwork
from components.shared.kms import encryption_key


def store_security_group(
    name: str, network: PrivateNetwork, port: int, description: str, opts: pulumi.ResourceOptions
) -> aws.ec2.SecurityGroup:
    """A security group that admits only the cluster, on one port, and lets nothing out."""
    group = aws.ec2.SecurityGroup(
        name, vpc_id=network.vpc_id, description=description, tags={"Name": name}, opts=opts
    )
    aws.vpc.SecurityGroupIngressRule(
        f"{name}-from-cluster",
        security_group_id=group.id,
        referenced_security_group_id=network.client_security_group_id,
        ip_protocol="tcp",
        from_port=port,
        to_port=port,
        description="From the EKS cluster (nodes and pods)",
        opts=opts,
    )
    return group


def store_key_and_group(
    component: pulumi.ComponentResource,
    name: str,
    engine: str,
    store: str,
    network: PrivateNetwork,
    port: int,
    protect: bool,
) -> tuple[aws.kms.Key, aws.ec2.SecurityGroup]:
    """What every store has of its own: a KMS key and a security group open to the cluster."""
    key = encryption_key(
        name,
        alias=store,
        description=f"Encryption of {engine} {store}",
        protect=protect,
        parent=component,
    )
    group = store_security_group(
        name,
        network,
        port,
        f"{engine} {store}: cluster only",
        pulumi.ResourceOptions(parent=component, protect=protect),
    )
    return key, group
