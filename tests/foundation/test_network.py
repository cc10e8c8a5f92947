"""Network: three zones, NAT per zone in production and one in staging, flow logs, subnet tags."""

from __future__ import annotations

import ipaddress

import pytest

from components.foundation.network import control_plane_layout, subnet_layout
from offline.engine import StackRun
from tests.conftest import run_with
from tests.lookup import inline_policy, service_role

NAT = "aws:ec2/natGateway:NatGateway"
SUBNET = "aws:ec2/subnet:Subnet"
CLUSTER = "aws:eks/cluster:Cluster"
ROUTE = "aws:ec2/route:Route"


def test_production_has_a_nat_gateway_per_zone(production: StackRun) -> None:
    nats = production.of_type(NAT)
    assert len(nats) == 3
    public_subnet_ids = {
        s.id for s in production.of_type(SUBNET) if "kubernetes.io/role/elb" in s.inputs["tags"]
    }
    assert {n.inputs["subnetId"] for n in nats} == public_subnet_ids


def test_staging_has_one_nat_gateway_that_every_private_zone_uses(staging: StackRun) -> None:
    nats = staging.of_type(NAT)
    assert len(nats) == 1
    egress = [r for r in staging.of_type(ROUTE) if "natGatewayId" in r.inputs]
    assert len(egress) == 3
    assert {r.inputs["natGatewayId"] for r in egress} == {nats[0].id}


def test_each_private_zone_leaves_through_its_own_nat_in_production(production: StackRun) -> None:
    egress = [r for r in production.of_type(ROUTE) if "natGatewayId" in r.inputs]
    assert len({r.inputs["natGatewayId"] for r in egress}) == 3
    assert all(r.inputs["destinationCidrBlock"] == "0.0.0.0/0" for r in egress)


def test_nat_strategy_is_a_setting() -> None:
    assert len(run_with("staging", natGateways="perAz").of_type(NAT)) == 3
    assert len(run_with("production", natGateways="single").of_type(NAT)) == 1


def test_subnets_span_three_zones_with_load_balancer_tags(stack_run: StackRun) -> None:
    subnets = stack_run.of_type(SUBNET)
    public = [s for s in subnets if s.inputs["tags"].get("kubernetes.io/role/elb") == "1"]
    private = [s for s in subnets if s.inputs["tags"].get("kubernetes.io/role/internal-elb") == "1"]
    assert len(public) == len(private) == 3
    assert len({s.inputs["availabilityZone"] for s in public}) == 3
    assert len({s.inputs["availabilityZone"] for s in private}) == 3
    cluster_tag = f"kubernetes.io/cluster/financial-planning-{stack_run.stack}"
    assert all(s.inputs["tags"][cluster_tag] == "shared" for s in public + private)
    assert not any(s.inputs.get("mapPublicIpOnLaunch") for s in subnets)


def test_the_control_plane_has_small_subnets_of_its_own_in_the_same_zones(
    stack_run: StackRun,
) -> None:
    """EKS puts its network interfaces in the cluster's subnets (EKS User Guide, "VPC and
    subnet requirements": 2-4 interfaces; at least six free addresses each, sixteen
    recommended; subnets in at least two zones; later ones in the zones the cluster was
    created in). Subnets that hold nothing else make "the API server" an address range."""
    subnets = {s.id: s for s in stack_run.of_type(SUBNET)}
    vpc_config = stack_run.one(CLUSTER).inputs["vpcConfig"]
    control_plane = [subnets[i] for i in vpc_config["subnetIds"]]
    others = [s for i, s in subnets.items() if i not in vpc_config["subnetIds"]]
    assert len(control_plane) == 3
    assert {s.inputs["availabilityZone"] for s in control_plane} == {
        s.inputs["availabilityZone"] for s in others
    }
    for subnet in control_plane:
        network = ipaddress.IPv4Network(subnet.inputs["cidrBlock"])
        # AWS keeps five addresses of every subnet (VPC User Guide, "Subnet CIDR blocks").
        assert network.num_addresses - 5 >= 16
        # No load balancer may land there (no role tags), and no node group uses them.
        assert not {"kubernetes.io/role/elb", "kubernetes.io/role/internal-elb"} & set(
            subnet.inputs["tags"]
        )
    for group in stack_run.of_type("aws:eks/nodeGroup:NodeGroup"):
        assert not set(group.inputs["subnetIds"]) & set(vpc_config["subnetIds"])


@pytest.mark.parametrize("cidr", ["10.0.0.0/16", "10.20.0.0/18", "172.16.0.0/20"])
def test_subnet_layout_is_disjoint_and_inside_the_vpc(cidr: str) -> None:
    private, public = subnet_layout(cidr, 3)
    control_plane = control_plane_layout(cidr, 3)
    networks = [ipaddress.IPv4Network(n) for n in private + public + control_plane]
    vpc = ipaddress.IPv4Network(cidr)
    assert all(n.subnet_of(vpc) for n in networks)
    assert not any(a.overlaps(b) for i, a in enumerate(networks) for b in networks[i + 1 :])
    # Pods take VPC addresses: private subnets are the large ones.
    assert min(n.num_addresses for n in networks[:3]) == 4 * max(
        n.num_addresses for n in networks[3:6]
    )


def test_flow_logs_capture_all_traffic_into_a_log_group_with_retention(
    production: StackRun, staging: StackRun
) -> None:
    for run, days in ((production, 365), (staging, 30)):
        flow_log = run.one("aws:ec2/flowLog:FlowLog")
        assert flow_log.inputs["trafficType"] == "ALL"
        assert flow_log.inputs["logDestinationType"] == "cloud-watch-logs"
        group = next(
            g
            for g in run.of_type("aws:cloudwatch/logGroup:LogGroup")
            if g.inputs["name"].endswith("/flow-logs")
        )
        assert group.inputs["retentionInDays"] == days
        assert flow_log.inputs["logDestination"].endswith(group.inputs["name"])
        statement = inline_policy(run, service_role(run, "vpc-flow-logs.amazonaws.com"))[0]
        assert statement["Resource"][0].endswith(group.inputs["name"])


def test_default_security_group_is_emptied(stack_run: StackRun) -> None:
    group = stack_run.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert group.inputs.get("ingress", []) == [] and group.inputs.get("egress", []) == []


def test_aws_apis_are_reached_through_endpoints_inside_the_vpc(stack_run: StackRun) -> None:
    endpoints = stack_run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    # GuardDuty's runtime agent endpoint is the security layer's, with its own group
    # (tests/security/test_audit.py).
    interface = {
        e.inputs["serviceName"].removeprefix("com.amazonaws.us-east-1."): e
        for e in endpoints
        if e.inputs["vpcEndpointType"] == "Interface"
        and not e.inputs["serviceName"].endswith(".guardduty-data")
    }
    assert {"sts", "secretsmanager", "kms", "ecr.api", "ecr.dkr", "logs"} <= set(interface)
    private = {
        s.id
        for s in stack_run.of_type(SUBNET)
        if "kubernetes.io/role/internal-elb" in s.inputs["tags"]
    }
    for endpoint in interface.values():
        assert endpoint.inputs["privateDnsEnabled"] is True
        assert set(endpoint.inputs["subnetIds"]) == private
    [group_id] = {g for e in interface.values() for g in e.inputs["securityGroupIds"]}
    [rule] = [
        r
        for r in stack_run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["securityGroupId"] == group_id
    ]
    vpc = stack_run.one("aws:ec2/vpc:Vpc").inputs["cidrBlock"]
    assert (rule.inputs["cidrIpv4"], rule.inputs["fromPort"], rule.inputs["toPort"]) == (
        vpc,
        443,
        443,
    )
    [gateway] = [e for e in endpoints if e.inputs["vpcEndpointType"] == "Gateway"]
    assert gateway.inputs["serviceName"] == "com.amazonaws.us-east-1.s3"
    assert len(gateway.inputs["routeTableIds"]) == 3


def test_private_dns_endpoints_lie_in_a_vpc_with_dns_hostnames_and_support(
    stack_run: StackRun,
) -> None:
    """AWS PrivateLink guide, "Access an AWS service using an interface VPC endpoint", DNS
    hostnames: to use private DNS the VPC must have both enableDnsHostnames and
    enableDnsSupport true (CreateVpcEndpoint with PrivateDnsEnabled fails otherwise). Both the
    network's endpoints and GuardDuty's, where its agent runs (components/shared/endpoints.py),
    ask for private DNS."""
    vpc = stack_run.one("aws:ec2/vpc:Vpc")
    private_dns = [
        e
        for e in stack_run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
        if e.inputs.get("privateDnsEnabled")
    ]
    assert len(private_dns) >= 6  # the network's six at least (GuardDuty's where it runs)
    assert {e.inputs["vpcId"] for e in private_dns} == {vpc.id}
    assert vpc.inputs["enableDnsHostnames"] is True
    assert vpc.inputs["enableDnsSupport"] is True
