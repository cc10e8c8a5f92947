"""Interface VPC endpoints: an AWS API answered inside the VPC, on private DNS, behind a
security group that admits HTTPS from the VPC's range and nothing else."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws


def https_from_vpc_group(
    name: str,
    *,
    vpc_id: pulumi.Input[str],
    vpc_cidr: pulumi.Input[str],
    description: str,
    rule_description: str,
    tag_name: str,
    opts: pulumi.ResourceOptions,
) -> aws.ec2.SecurityGroup:
    """The group `name` and its one rule `<name>-https`: TCP 443 from `vpc_cidr`."""
    group = aws.ec2.SecurityGroup(
        name, vpc_id=vpc_id, description=description, tags={"Name": tag_name}, opts=opts
    )
    aws.vpc.SecurityGroupIngressRule(
        f"{name}-https",
        security_group_id=group.id,
        cidr_ipv4=vpc_cidr,
        ip_protocol="tcp",
        from_port=443,
        to_port=443,
        description=rule_description,
        opts=opts,
    )
    return group


def interface_endpoint(
    name: str,
    *,
    vpc_id: pulumi.Input[str],
    region: str,
    service: str,
    subnet_ids: Sequence[pulumi.Input[str]],
    security_group: aws.ec2.SecurityGroup,
    tag_name: str,
    opts: pulumi.ResourceOptions,
    policy: pulumi.Input[str] | None = None,
) -> aws.ec2.VpcEndpoint:
    """`com.amazonaws.<region>.<service>` in `subnet_ids`, with private DNS: clients resolve
    the service's usual host name to the endpoint."""
    return aws.ec2.VpcEndpoint(
        name,
        vpc_id=vpc_id,
        service_name=f"com.amazonaws.{region}.{service}",
        vpc_endpoint_type="Interface",
        subnet_ids=list(subnet_ids),
        security_group_ids=[security_group.id],
        private_dns_enabled=True,
        policy=policy,
        tags={"Name": tag_name},
        opts=opts,
    )
