"""The VPC: public and private subnets in three zones, NAT, routing and flow logs."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.shared.endpoints import https_from_vpc_group, interface_endpoint
from components.shared.iam import policy_document, service_trust_policy
from components.shared.kms import encryption_key, log_group_key_policy
from components.shared.urns import formerly
from stacks.settings import NatStrategy


def subnet_layout(vpc_cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """(private, public) CIDRs, one each per zone.

    Private subnets hold nodes and pods (the VPC CNI gives every pod a VPC address), so each gets a
    quarter of the VPC; the public subnets, which only hold load balancers and NAT gateways,
    share the last quarter.
    """
    quarters = list(ipaddress.IPv4Network(vpc_cidr).subnets(prefixlen_diff=2))
    if zones > 3:
        raise ValueError(f"{zones} zones do not fit the layout (at most 3)")
    private = [str(net) for net in quarters[:zones]]
    public = [str(net) for net in list(quarters[3].subnets(prefixlen_diff=2))[:zones]]
    return private, public


# EKS needs at least six free addresses in each cluster subnet and recommends sixteen (EKS User
# Guide, "VPC and subnet requirements"): a /27 leaves 27 after AWS's five.
CONTROL_PLANE_PREFIX = 27


def control_plane_layout(vpc_cidr: str, zones: int) -> list[str]:
    """The EKS control plane's own small subnets, one per zone, in the last quarter's spare
    part (after the public subnets): only the control plane's network interfaces live there,
    so "from these subnets" means "from the API server" (webhooks, aggregated APIs)."""
    last_quarter = list(ipaddress.IPv4Network(vpc_cidr).subnets(prefixlen_diff=2))[3]
    # The public subnets take the first three quarters of it (subnet_layout).
    spare = list(last_quarter.subnets(prefixlen_diff=2))[3]
    return [str(net) for net in list(spare.subnets(new_prefix=CONTROL_PLANE_PREFIX))[:zones]]


# AWS APIs that pods and nodes call (IRSA's STS, Secrets Manager, KMS, ECR, CloudWatch Logs,
# and what the cluster autoscaler and load balancer controller call), as interface endpoints.
INTERFACE_ENDPOINTS = (
    "sts",
    "secretsmanager",
    "kms",
    "ecr.api",
    "ecr.dkr",
    "logs",
    "ec2",
    "autoscaling",
    "eks",
    "elasticloadbalancing",
)


@dataclass(frozen=True)
class PrivateNetwork:
    """The private side of the VPC, as the data stores see it: where they live, who reaches them."""

    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    # The cluster security group: EKS attaches it to every managed node (and so every pod).
    client_security_group_id: pulumi.Input[str]


@dataclass(frozen=True)
class NetworkArgs:
    cidr: str
    availability_zones: Sequence[str]
    nat_gateways: NatStrategy
    flow_log_retention_days: int
    # Where the flow-log key lets CloudWatch Logs use it.
    region: str
    account_id: pulumi.Input[str]
    # Subnets are tagged for this cluster's load balancers.
    cluster_name: str
    protect: bool
    # The permissions boundary every IAM role of the stack carries (None: none).
    permissions_boundary: pulumi.Input[str] | None = None


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    private_subnet_arns: list[pulumi.Output[str]]
    public_subnet_ids: list[pulumi.Output[str]]
    # Where EKS puts the control plane's network interfaces (its cluster subnets).
    control_plane_subnet_ids: list[pulumi.Output[str]]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "financial-planning:foundation:Network",
            name,
            None,
            formerly(opts, "financial-planning:network:Network"),
        )
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect)
        cluster_tag = {f"kubernetes.io/cluster/{args.cluster_name}": "shared"}

        vpc = aws.ec2.Vpc(
            name,
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": name},
            opts=stateful,
        )
        # The default security group would let anything inside it talk to anything: empty it.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default",
            vpc_id=vpc.id,
            ingress=[],
            egress=[],
            tags={"Name": f"{name}-default-closed"},
            opts=child,
        )
        igw = aws.ec2.InternetGateway(name, vpc_id=vpc.id, tags={"Name": name}, opts=child)

        private_cidrs, public_cidrs = subnet_layout(args.cidr, len(args.availability_zones))
        public_rt = aws.ec2.RouteTable(
            f"{name}-public", vpc_id=vpc.id, tags={"Name": f"{name}-public"}, opts=child
        )
        aws.ec2.Route(
            f"{name}-public-internet",
            route_table_id=public_rt.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=igw.id,
            opts=child,
        )

        public_subnets: list[aws.ec2.Subnet] = []
        private_subnets: list[aws.ec2.Subnet] = []
        for zone, private_cidr, public_cidr in zip(
            args.availability_zones, private_cidrs, public_cidrs, strict=True
        ):
            public = aws.ec2.Subnet(
                f"{name}-public-{zone}",
                vpc_id=vpc.id,
                cidr_block=public_cidr,
                availability_zone=zone,
                # Nothing is launched with a public address; load balancers get their own.
                map_public_ip_on_launch=False,
                tags={
                    "Name": f"{name}-public-{zone}",
                    "kubernetes.io/role/elb": "1",
                    **cluster_tag,
                },
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone}",
                subnet_id=public.id,
                route_table_id=public_rt.id,
                opts=child,
            )
            public_subnets.append(public)
            private_subnets.append(
                aws.ec2.Subnet(
                    f"{name}-private-{zone}",
                    vpc_id=vpc.id,
                    cidr_block=private_cidr,
                    availability_zone=zone,
                    tags={
                        "Name": f"{name}-private-{zone}",
                        "kubernetes.io/role/internal-elb": "1",
                        **cluster_tag,
                    },
                    opts=child,
                )
            )

        # The control plane's subnets: its network interfaces only, which talk to the nodes
        # and pods inside the VPC (the main route table's local route is all they need).
        control_plane_subnets = [
            aws.ec2.Subnet(
                f"{name}-control-plane-{zone}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=zone,
                tags={"Name": f"{name}-control-plane-{zone}"},
                opts=child,
            )
            for zone, cidr in zip(
                args.availability_zones,
                control_plane_layout(args.cidr, len(args.availability_zones)),
                strict=True,
            )
        ]

        # perAz: a zone outage takes only that zone's egress with it. single: one NAT for all.
        nat_zones = (
            args.availability_zones if args.nat_gateways == "perAz" else args.availability_zones[:1]
        )
        nat_ids: list[pulumi.Output[str]] = []
        for zone, public in zip(nat_zones, public_subnets, strict=False):
            eip = aws.ec2.Eip(
                f"{name}-nat-{zone}", domain="vpc", tags={"Name": f"{name}-nat-{zone}"}, opts=child
            )
            nat = aws.ec2.NatGateway(
                f"{name}-{zone}",
                allocation_id=eip.id,
                subnet_id=public.id,
                tags={"Name": f"{name}-{zone}"},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            )
            nat_ids.append(nat.id)

        private_route_tables: list[aws.ec2.RouteTable] = []
        for index, (zone, private) in enumerate(
            zip(args.availability_zones, private_subnets, strict=True)
        ):
            route_table = aws.ec2.RouteTable(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                tags={"Name": f"{name}-private-{zone}"},
                opts=child,
            )
            aws.ec2.Route(
                f"{name}-private-{zone}-egress",
                route_table_id=route_table.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nat_ids[min(index, len(nat_ids) - 1)],
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}",
                subnet_id=private.id,
                route_table_id=route_table.id,
                opts=child,
            )
            private_route_tables.append(route_table)

        self._flow_logs(name, vpc, args)
        self._endpoints(name, vpc, args, private_subnets, private_route_tables)

        self.vpc_id = vpc.id
        self.private_subnet_ids = [subnet.id for subnet in private_subnets]
        self.private_subnet_arns = [subnet.arn for subnet in private_subnets]
        self.public_subnet_ids = [subnet.id for subnet in public_subnets]
        self.control_plane_subnet_ids = [subnet.id for subnet in control_plane_subnets]
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "privateSubnetIds": self.private_subnet_ids,
                "publicSubnetIds": self.public_subnet_ids,
                "controlPlaneSubnetIds": self.control_plane_subnet_ids,
            }
        )

    def _endpoints(
        self,
        name: str,
        vpc: aws.ec2.Vpc,
        args: NetworkArgs,
        subnets: list[aws.ec2.Subnet],
        route_tables: list[aws.ec2.RouteTable],
    ) -> None:
        """AWS APIs inside the VPC: traffic to them never leaves it, and NetworkPolicies can
        allow it by address (HTTPS to the VPC's range) instead of to the internet."""
        child = pulumi.ResourceOptions(parent=self)
        group = https_from_vpc_group(
            f"{name}-endpoints",
            vpc_id=vpc.id,
            vpc_cidr=args.cidr,
            description="AWS API endpoints: HTTPS from inside the VPC only",
            rule_description="HTTPS from the VPC",
            tag_name=f"{name}-endpoints",
            opts=child,
        )
        for service in INTERFACE_ENDPOINTS:
            interface_endpoint(
                f"{name}-{service.replace('.', '-')}",
                vpc_id=vpc.id,
                region=args.region,
                service=service,
                subnet_ids=[subnet.id for subnet in subnets],
                security_group=group,
                tag_name=f"{name}-{service}",
                opts=child,
            )
        # S3 (image layers, documents) through the route tables: no charge, no ENIs.
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[table.id for table in route_tables],
            tags={"Name": f"{name}-s3"},
            opts=child,
        )

    def _flow_logs(self, name: str, vpc: aws.ec2.Vpc, args: NetworkArgs) -> None:
        log_group_name = f"/aws/vpc/{name}/flow-logs"
        # Flow logs say who talked to whom: encrypted at rest like every other log group.
        key = encryption_key(
            f"{name}-flow-logs",
            alias=f"{name}-flow-logs",
            description=f"Encryption of {name}'s VPC flow logs",
            protect=args.protect,
            parent=self,
            policy=log_group_key_policy(args.account_id, args.region, log_group_name),
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=log_group_name,
            retention_in_days=args.flow_log_retention_days,
            kms_key_id=key.arn,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        role = aws.iam.Role(
            f"{name}-flow-logs",
            assume_role_policy=service_trust_policy("vpc-flow-logs.amazonaws.com"),
            permissions_boundary=args.permissions_boundary,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=log_group.arn.apply(
                lambda arn: policy_document(
                    [
                        # What AWS lists for publishing flow logs to CloudWatch Logs (VPC User
                        # Guide, "IAM role for publishing flow logs to CloudWatch Logs"): writes
                        # on this log group only; listing log groups takes no resource.
                        {
                            "Effect": "Allow",
                            "Action": [
                                "logs:CreateLogStream",
                                "logs:PutLogEvents",
                                "logs:DescribeLogStreams",
                            ],
                            "Resource": [arn, f"{arn}:*"],
                        },
                        {"Effect": "Allow", "Action": "logs:DescribeLogGroups", "Resource": "*"},
                    ]
                )
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.ec2.FlowLog(
            name,
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            opts=pulumi.ResourceOptions(parent=self),
        )
