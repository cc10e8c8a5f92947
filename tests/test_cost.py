"""The monthly cost estimate (offline/cost.py) and its price table (stacks/aws_prices.py).

The expected figures below are worked by hand from the table's prices, each named where it is
used: the code under test is never asked for them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from offline import cost
from offline import synth as synth_module
from offline.cost import (
    Resource,
    estimate,
    from_inventory,
    from_recorded,
    money,
    over_budget,
)
from offline.engine import PROJECT_DIR, StackRun
from offline.synth import main as synth
from stacks import SettingsError, settings_from_values
from stacks.aws_facts import (
    AURORA_INSTANCE_CLASSES,
    CACHE_NODE_TYPES,
    REGIONS,
    SEARCH_INSTANCE_TYPES,
)
from stacks.aws_prices import (
    EC2_HOURLY,
    ELASTICACHE,
    FLAT,
    OPENSEARCH,
    REGIONAL,
    USAGE,
    UnknownPrice,
    managed_ec2_type,
    price,
)
from stacks.instance_types import INSTANCE_TYPES
from stacks.merge import deep_merge
from tests.conftest import run_with
from tests.test_settings import BASE

PROVIDER = "urn:pulumi:tiny::p::pulumi:providers:aws::aws::id-1"
WEST = "urn:pulumi:tiny::p::pulumi:providers:aws::aws-west::id-2"


def aws(type_: str, resource_name: str, **inputs: Any) -> Resource:
    return Resource(type_, resource_name, inputs, PROVIDER)


def kubernetes(type_: str, resource_name: str, **inputs: Any) -> Resource:
    return Resource(type_, resource_name, inputs)


def tiny_stack() -> list[Resource]:
    """A stack small enough to price by hand: us-east-1 (and us-west-2 for a key and the backup
    copies), one of each priced kind."""
    return [
        Resource("pulumi:providers:aws", "aws", {"region": "us-east-1"}),
        Resource("pulumi:providers:aws", "aws-west", {"region": "us-west-2"}),
        aws(
            "aws:eks/cluster:Cluster",
            "tiny",
            version="1.33",
            upgradePolicy={"supportType": "STANDARD"},
        ),
        # The launch template's id as the mock engine gives it: its name and 8 hex digits.
        aws(
            "aws:ec2/launchTemplate:LaunchTemplate",
            "tiny-general",
            blockDeviceMappings=[{"ebs": {"volumeSize": 20, "volumeType": "gp3"}}],
        ),
        aws(
            "aws:eks/nodeGroup:NodeGroup",
            "tiny-general",
            nodeGroupName="general-0a1b2c",
            labels={"workload-class": "general"},
            instanceTypes=["m5.large", "m5.xlarge"],
            scalingConfig={"minSize": 1, "desiredSize": 2, "maxSize": 4},
            launchTemplate={"id": "tiny-general-0a1b2c3d", "version": "1"},
        ),
        aws("aws:ec2/natGateway:NatGateway", "tiny-a"),
        aws("aws:ec2/eip:Eip", "tiny-a", domain="vpc"),
        aws(
            "aws:ec2/vpcEndpoint:VpcEndpoint",
            "tiny-sts",
            vpcEndpointType="Interface",
            subnetIds=["a", "b"],
        ),
        aws("aws:ec2/vpcEndpoint:VpcEndpoint", "tiny-s3", vpcEndpointType="Gateway"),
        # Two public subnets the load balancer controller may use (kubernetes.io/role/elb),
        # in two zones, and a private one it may not for an internet-facing load balancer.
        aws(
            "aws:ec2/subnet:Subnet",
            "tiny-public-a",
            availabilityZone="us-east-1a",
            tags={"kubernetes.io/role/elb": "1"},
        ),
        aws(
            "aws:ec2/subnet:Subnet",
            "tiny-public-b",
            availabilityZone="us-east-1b",
            tags={"kubernetes.io/role/elb": "1"},
        ),
        aws(
            "aws:ec2/subnet:Subnet",
            "tiny-private-a",
            availabilityZone="us-east-1a",
            tags={"kubernetes.io/role/internal-elb": "1"},
        ),
        aws("aws:kms/key:Key", "tiny", enableKeyRotation=True),
        Resource("aws:kms/key:Key", "tiny-west", {}, WEST),
        aws("aws:secretsmanager/secret:Secret", "tiny", replicas=[{"region": "us-west-2"}]),
        aws("aws:cloudwatch/logGroup:LogGroup", "tiny", retentionInDays=7),
        aws(
            "aws:wafv2/webAcl:WebAcl",
            "tiny",
            name="tiny",
            rules=[{"name": "rate"}, {"name": "common"}],
        ),
        kubernetes(
            "kubernetes:networking.k8s.io/v1:Ingress",
            "tiny",
            metadata={
                "name": "public",
                "namespace": "app",
                "annotations": {"alb.ingress.kubernetes.io/scheme": "internet-facing"},
            },
            spec={"ingressClassName": "alb"},
        ),
        # Aurora: one cluster (with the master password RDS keeps in Secrets Manager), two
        # instances naming it by its id as the mock engine gives it.
        aws(
            "aws:rds/cluster:Cluster",
            "tiny-db",
            clusterIdentifier="tiny-postgres",
            manageMasterUserPassword=True,
        ),
        aws(
            "aws:rds/clusterInstance:ClusterInstance",
            "tiny-db-1",
            clusterIdentifier="tiny-db-0a1b2c3d",
            instanceClass="db.r6g.large",
        ),
        aws(
            "aws:rds/clusterInstance:ClusterInstance",
            "tiny-db-2",
            clusterIdentifier="tiny-db-0a1b2c3d",
            instanceClass="db.r6g.large",
        ),
        # ElastiCache, cluster mode: 2 shards of a primary and 1 replica each.
        aws(
            "aws:elasticache/replicationGroup:ReplicationGroup",
            "tiny-cache",
            nodeType="cache.r6g.large",
            numNodeGroups=2,
            replicasPerNodeGroup=1,
        ),
        # OpenSearch: 2 data nodes with 20 GiB gp3 each, 3 dedicated masters.
        aws(
            "aws:opensearch/domain:Domain",
            "tiny-search",
            clusterConfig={
                "instanceType": "r6g.large.search",
                "instanceCount": 2,
                "dedicatedMasterEnabled": True,
                "dedicatedMasterType": "m6g.large.search",
                "dedicatedMasterCount": 3,
            },
            ebsOptions={"ebsEnabled": True, "volumeType": "gp3", "volumeSize": 20},
        ),
        # AWS Backup: every 12 hours, copies kept 7 days in us-west-2, of the cluster above.
        aws(
            "aws:backup/plan:Plan",
            "tiny-backups",
            rules=[
                {
                    "ruleName": "twice-a-day",
                    "schedule": "cron(0 */12 * * ? *)",
                    "copyActions": [
                        {
                            "destinationVaultArn": (
                                "arn:aws:backup:us-west-2:123456789012:backup-vault:tiny"
                            ),
                            "lifecycle": {"deleteAfter": 7},
                        }
                    ],
                }
            ],
        ),
        aws(
            "aws:backup/selection:Selection",
            "tiny-backups",
            planId="tiny-backups-0a1b2c3d",
            resources=["arn:aws:rds:us-east-1:123456789012:cluster:tiny-postgres"],
        ),
        aws("aws:guardduty/detector:Detector", "tiny"),
        aws(
            "aws:guardduty/detectorFeature:DetectorFeature",
            "tiny-runtime",
            name="RUNTIME_MONITORING",
            status="ENABLED",
        ),
        # Volumes: a StatefulSet's claim template (2 replicas x 5Gi) and a chart's
        # volumeClaimTemplate (2 replicas x 10Gi), both in the gp3 class.
        kubernetes(
            "kubernetes:storage.k8s.io/v1:StorageClass",
            "tiny-gp3",
            metadata={"name": "gp3"},
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3"},
        ),
        kubernetes(
            "kubernetes:apps/v1:StatefulSet",
            "tiny-queue",
            spec={
                "replicas": 2,
                "volumeClaimTemplates": [
                    {
                        "spec": {
                            "storageClassName": "gp3",
                            "resources": {"requests": {"storage": "5Gi"}},
                        }
                    }
                ],
            },
        ),
        kubernetes(
            "kubernetes:helm.sh/v3:Release",
            "tiny-monitoring",
            name="monitoring",
            values={
                "prometheus": {
                    "prometheusSpec": {
                        "replicas": 2,
                        "storageSpec": {
                            "volumeClaimTemplate": {
                                "spec": {
                                    "storageClassName": "gp3",
                                    "resources": {"requests": {"storage": "10Gi"}},
                                }
                            }
                        },
                    }
                }
            },
        ),
    ]


# Worked by hand, USD a month of 730 hours (stacks/aws_prices.py's figures, us-east-1 unless
# said): kind: (min, desired, max)
EXPECTED = {
    # $0.10 an hour.
    "EKS control plane": (73.00, 73.00, 73.00),
    # m5.large $0.096/h = $70.08, plus 20 GiB gp3 at $0.08 = $1.60: $71.68 a node, 1/2/4 nodes.
    "node group general": (71.68, 143.36, 286.72),
    # $0.045 an hour.
    "NAT gateways": (32.85, 32.85, 32.85),
    # $0.005 an hour.
    "public IPv4 addresses": (3.65, 3.65, 3.65),
    # One interface endpoint in 2 subnets, $0.01 an hour each; the gateway endpoint is free.
    "VPC interface endpoints": (14.60, 14.60, 14.60),
    # One Ingress, no group: one ALB, $0.0225 an hour.
    "application load balancers": (16.425, 16.425, 16.425),
    # The ALB is internet-facing: one address in each of the 2 zones with a public subnet,
    # $0.005 an hour each: 2 x $3.65.
    "load balancers' public IPv4": (7.30, 7.30, 7.30),
    # 2 x db.r6g.large at $0.260/h: 2 x $189.80.
    "Aurora instances": (379.60, 379.60, 379.60),
    # 100 GiB (the assumption) x $0.10.
    "Aurora storage": (10.00, 10.00, 10.00),
    # 2 shards x (1 replica + 1 primary) = 4 x cache.r6g.large at $0.206/h: 4 x $150.38.
    "ElastiCache nodes": (601.52, 601.52, 601.52),
    # 2 x r6g.large.search at $0.167/h ($121.91) + 3 x m6g.large.search at $0.128/h ($93.44):
    # $243.82 + $280.32.
    "OpenSearch nodes": (524.14, 524.14, 524.14),
    # 2 data nodes x 20 GiB x $0.122.
    "OpenSearch storage": (4.88, 4.88, 4.88),
    # (2 x 5 GiB + 2 x 10 GiB) x $0.08.
    "persistent volumes": (2.40, 2.40, 2.40),
    # One key in us-east-1 and one in us-west-2, $1.00 each.
    "KMS keys": (2.00, 2.00, 2.00),
    # The secret, its replica in us-west-2 and RDS's master password secret: 3 x $0.40.
    "Secrets Manager secrets": (1.20, 1.20, 1.20),
    # 1 GiB a day (the assumption) for 730/24 days at $0.50 per GB: 15.2083.
    "CloudWatch Logs ingestion": (15.208333, 15.208333, 15.208333),
    # 1 GiB a day kept 7 days: 7 GiB x $0.03.
    "CloudWatch Logs storage": (0.21, 0.21, 0.21),
    # $5 for the web ACL and $1 for each of its 2 rules.
    "WAF web ACL": (7.00, 7.00, 7.00),
    # 2 copies a day kept 7 days: 14 copies x 100 GiB x $0.021 (us-west-2 takes us-east-1's).
    "backup copies": (29.40, 29.40, 29.40),
    # 2 copies a day x 730/24 days x 100 GiB sent from us-east-1 at $0.02 per GB: 121.6667.
    "backup copy transfer": (121.666667, 121.666667, 121.666667),
}
# The sum of the lines above: 1,990.41 at desired size; at minimum one general node fewer
# (- 71.68 = 1,918.73); at maximum two more (+ 143.36 = 2,133.77).
TOTALS = (1918.73, 1990.41, 2133.77)
# Lines with a figure that is an estimate: third-party figures (ElastiCache, OpenSearch), a
# region whose figure was not read (us-west-2's key, secret replica and backup storage), and
# the transfer rate taken for AWS Backup's.
ESTIMATED = {
    "ElastiCache nodes",
    "OpenSearch nodes",
    "OpenSearch storage",
    "KMS keys",
    "Secrets Manager secrets",
    "backup copies",
    "backup copy transfer",
}


def test_a_tiny_stack_costs_what_was_worked_out_by_hand() -> None:
    found = estimate(tiny_stack())
    assert found.region == "us-east-1"
    for size_index, size in enumerate(cost.SIZES):
        assert found.by_kind(size) == pytest.approx(
            {kind: figures[size_index] for kind, figures in EXPECTED.items()}
        ), size
        assert found.total(size) == pytest.approx(TOTALS[size_index], abs=0.005), size
    assert {line.kind for line in found.lines if line.estimated} == ESTIMATED
    # The largest type of the group is a note, at max size: 4 x (m5.xlarge $140.16 + $1.60).
    general = next(line for line in found.lines if line.kind == "node group general")
    assert "m5.xlarge: $567.04" in general.note
    # The first year's key price is counted; the rotating key's later material is a note:
    # 1 of 2 keys rotates, $1 more a month after its first rotation, $2 after its second.
    keys = next(line for line in found.lines if line.kind == "KMS keys")
    # Each key counted in its provider's region (the west key by its provider reference).
    assert keys.detail == "1 in us-east-1 x $1.00/month, 1 in us-west-2 x $1.00/month"
    assert keys.note.startswith("1 of the 2 keys rotate yearly")
    assert "$1.00 more a month in the second year and $2.00 more from the third on" in keys.note
    # What follows usage is listed, not counted.
    listed = "\n".join(found.not_estimated)
    for usage in ("NAT gateways' data processed", "load balancer capacity units", "WAF requests"):
        assert usage in listed
    # GuardDuty Runtime Monitoring bills the nodes' vCPUs: m5.large has 2 (stacks/
    # instance_types.py), so 1/2/4 nodes are 2/4/8 vCPUs.
    assert (
        "GuardDuty Runtime Monitoring: the nodes' vCPUs, 4 at desired size (min 2, max 8)" in listed
    )


def test_removing_a_resource_removes_exactly_its_cost() -> None:
    # Negative control: the figures above come from the resources, not from a fixed table.
    without_nat = [r for r in tiny_stack() if r.type != "aws:ec2/natGateway:NatGateway"]
    found = estimate(without_nat)
    assert "NAT gateways" not in found.by_kind()
    assert found.total("desired") == pytest.approx(TOTALS[1] - 32.85, abs=0.005)


def test_extended_support_is_named_when_the_policy_allows_it() -> None:
    stack = [
        r
        if r.type != "aws:eks/cluster:Cluster"
        else aws("aws:eks/cluster:Cluster", "tiny", version="1.33")
        for r in tiny_stack()
    ]
    line = next(line for line in estimate(stack).lines if line.kind == "EKS control plane")
    # The API's default policy is EXTENDED: $0.60 - $0.10 = $0.50 an hour more, $365 a month.
    assert line.monthly == (73.0, 73.0, 73.0)
    assert "$365.00 more a month once 1.33 leaves standard support" in line.note


def test_a_region_not_read_is_priced_from_us_east_1_and_marked() -> None:
    stack = [
        r if r.name != "aws" else Resource(r.type, "aws", {"region": "eu-west-1"})
        for r in tiny_stack()
    ]
    found = estimate(stack)
    # eu-west-1 sends to another region at us-east-1's $0.02 a GB (infracost's
    # data_transfer_test: $15.00 for 750 GB from each), so the total does not move.
    assert found.total("desired") == pytest.approx(TOTALS[1], abs=0.005)
    assert all(line.estimated for line in found.lines)
    assert found.prices[("eu-west-1", "transfer:inter-region")].estimate == ""


def test_managed_classes_are_read_where_a_figure_exists_and_estimated_otherwise() -> None:
    # Aurora: AWS's own table (agent toolkit, commitment_pricing_analyzer.py), read as is.
    for name, usd in (("db.r6g.large", 0.260), ("db.r7g.large", 0.276), ("db.t4g.medium", 0.073)):
        found = price("us-east-1", f"rds:{name}")
        assert (found.usd, found.estimate) == (usd, ""), name
        assert found.read_from.startswith("aws/agent-toolkit-for-aws "), name
    # db.r6i has no figure: the premium over EC2 measured on db.r5.large, $0.290 over r5.large
    # $0.126 (x 2.3016); r6i.large is $0.126 too, so $0.29.
    r6i = price("us-east-1", "rds:db.r6i.large")
    assert r6i.usd == pytest.approx(0.29)
    assert r6i.estimate.startswith("no figure for db.r6i.large or its family")
    # A size without its own figure: the family's large figure times its size.
    # r6g.2xlarge.search: $0.167 x 4 = $0.668.
    bigger = price("us-east-1", "opensearch:r6g.2xlarge.search")
    assert bigger.usd == pytest.approx(0.668)
    assert bigger.estimate.startswith("no figure for r6g.2xlarge.search: r6g.large.search's")
    # ElastiCache and OpenSearch figures are third parties' copies of the pricing page: marked.
    for key, usd in (
        ("elasticache:cache.r6g.large", 0.206),
        ("elasticache:cache.m6g.large", 0.149),
        ("opensearch:r6g.large.search", 0.167),
        ("opensearch:m6g.large.search", 0.128),
    ):
        found = price("us-east-1", key)
        assert found.usd == usd and found.estimate, key
    # The ElastiCache premium, last resort: cache.m6g.12xlarge's $2,596.61 for 730 h over EC2
    # m6g.12xlarge ($0.077 x 24 = $1.848/h): x 1.9248; cache.r7g.large = $0.1071 x 1.9248
    # = $0.206 (three figures).
    assert ELASTICACHE.fallback.factor == pytest.approx(2596.61 / 730 / 1.848)
    assert price("us-east-1", "elasticache:cache.r7g.large").usd == pytest.approx(0.206)


def test_the_premium_fallback_understates_where_a_figure_shows_it() -> None:
    # The fallbacks' stated bias holds on the classes that have both a figure and a premium.
    # OpenSearch's premium ($1,285.53 for 2,190 h of c4.2xlarge.search over EC2 c4.2xlarge's
    # $0.398/h: x 1.4749) gives r6g.large.search $0.1008 x 1.4749 = $0.149 against its $0.167
    # and m6g.large.search $0.077 x 1.4749 = $0.114 against $0.128: about 11% low.
    assert OPENSEARCH.fallback.price("r6g.large.search").usd == pytest.approx(0.149)
    assert OPENSEARCH.fallback.price("m6g.large.search").usd == pytest.approx(0.114)
    # ElastiCache's (x 1.9248) gives cache.m6g.large $0.148 against $0.149 and cache.r6g.large
    # $0.1008 x 1.9248 = $0.194 against $0.206: about 6% low on the r family.
    assert ELASTICACHE.fallback.price("cache.m6g.large").usd == pytest.approx(0.148)
    assert ELASTICACHE.fallback.price("cache.r6g.large").usd == pytest.approx(0.194)


def test_the_price_table_covers_every_type_and_class_the_settings_accept_in_every_region() -> None:
    keys = (
        [f"ec2:{t}" for t in INSTANCE_TYPES]
        + [f"rds:{c}" for c in AURORA_INSTANCE_CLASSES]
        + [f"elasticache:{c}" for c in CACHE_NODE_TYPES]
        + [f"opensearch:{c}" for c in SEARCH_INSTANCE_TYPES]
        + list(FLAT)
        + list(USAGE)
    )
    for region in REGIONS:
        for key in keys:
            found = price(region, key)
            assert found.usd > 0, (region, key)
            assert found.page.startswith("https://aws.amazon.com/"), key
            assert found.read_from and found.read_on == "2026-12-03", key
            if region in REGIONAL and key in REGIONAL[region]:
                assert found == REGIONAL[region][key]
            elif region != "us-east-1":
                assert found.estimate.startswith(f"not found for {region}"), (region, key)
    # Each managed class is priced at its family's rate: a bigger size never costs less, and a
    # size costs its multiple of the large one within 1% (the tables round each figure).
    multiple = {"large": 1, "xlarge": 2, "2xlarge": 4, "4xlarge": 8, "8xlarge": 16}
    multiple |= {"12xlarge": 24, "16xlarge": 32}
    for prefix, classes in (
        ("rds", AURORA_INSTANCE_CLASSES),
        ("elasticache", CACHE_NODE_TYPES),
        ("opensearch", SEARCH_INSTANCE_TYPES),
    ):
        for name in classes:
            size = managed_ec2_type(name).partition(".")[2]
            if size not in multiple:
                continue
            large = name.replace(f".{size}", ".large", 1)
            ratio = (
                price("us-east-1", f"{prefix}:{name}").usd
                / price("us-east-1", f"{prefix}:{large}").usd
            )
            assert ratio == pytest.approx(multiple[size], rel=0.01), name


def test_every_region_that_sends_data_has_its_read_rate() -> None:
    # infracost's data_transfer_test.golden, "Outbound data transfer to other regions", 750 GB:
    # $110.25 from af-south-1, $82.88 from me-south-1, $15.00 from us-west-2.
    for region, usd in (("af-south-1", 0.147), ("me-south-1", 0.1105), ("us-west-2", 0.02)):
        found = price(region, "transfer:inter-region")
        assert (found.usd, found.estimate) == (usd, ""), region
    # A region the file does not hold takes us-east-1's, marked.
    assert price("eu-central-2", "transfer:inter-region").estimate.startswith("not found")


def test_an_aws_type_the_estimate_does_not_know_is_listed_never_free(stack_run: StackRun) -> None:
    found = estimate(from_recorded(stack_run.resources))
    # Today's renders hold no AWS type the estimate has not classified.
    assert not [item for item in found.not_estimated if "not known to the estimate" in item]
    # Negative control: one it does not know is named, with its count.
    odd = [*tiny_stack(), aws("aws:redshift/cluster:Cluster", "odd")]
    assert (
        "1 aws:redshift/cluster:Cluster: not known to the estimate" in estimate(odd).not_estimated
    )


def test_a_type_the_settings_do_not_accept_has_no_price() -> None:
    # Negative control for the coverage test: a key outside the lists is refused, not guessed.
    # c5 has no 8xlarge (Karpenter's table lists 4xlarge, then 9xlarge).
    for key in ("ec2:c5.8xlarge", "rds:db.x2g.large", "elasticache:cache.m5.large", "kms:alias"):
        with pytest.raises(UnknownPrice):
            price("us-east-1", key)
    with pytest.raises(UnknownPrice):
        price("cn-north-1", "ec2:m5.large")
    assert "c5.8xlarge" not in INSTANCE_TYPES
    # And a render naming such a type is refused by the estimate, not priced at zero.
    stack = [r for r in tiny_stack() if r.type != "aws:eks/nodeGroup:NodeGroup"]
    stack.append(
        aws(
            "aws:eks/nodeGroup:NodeGroup",
            "odd",
            instanceTypes=["c5.8xlarge"],
            scalingConfig={"minSize": 1, "desiredSize": 1, "maxSize": 1},
        )
    )
    with pytest.raises(UnknownPrice):
        estimate(stack)


def test_the_autoscalers_prices_agree_with_the_table() -> None:
    # stacks/instance_types.py keeps an hourly price for the priority expander's order.
    for name, capacity in INSTANCE_TYPES.items():
        assert capacity.hourly_usd == pytest.approx(EC2_HOURLY[name], rel=1e-3), name


def test_each_stack_is_priced_from_its_render(stack_run: StackRun) -> None:
    found = estimate(from_recorded(stack_run.resources))
    kinds = found.by_kind()
    groups = stack_run.of_type("aws:eks/nodeGroup:NodeGroup")
    # One line per workload class, named by the group's label, not by its EKS name; while two
    # generations of a class run side by side, one line each, by the generation label
    # (components/shared/conventions.py: generation 1 carries none).
    classes = [g.inputs["labels"]["workload-class"] for g in groups]
    assert {k for k in kinds if k.startswith("node group ")} == {
        f"node group {cls}"
        if classes.count(cls) == 1
        else f"node group {cls} g{g.inputs['labels'].get('node-group-generation', '1')}"
        for cls, g in zip(classes, groups, strict=True)
    }
    for kind in (
        "EKS control plane",
        "NAT gateways",
        "application load balancers",
        "Aurora instances",
        "Aurora storage",
        "ElastiCache nodes",
        "OpenSearch nodes",
        "OpenSearch storage",
        "KMS keys",
        "Secrets Manager secrets",
        "CloudWatch Logs ingestion",
        "CloudWatch Logs storage",
        "WAF web ACL",
        "persistent volumes",
        "load balancers' public IPv4",
    ):
        assert kinds.get(kind, 0) > 0, kind
    # Nothing the render asks AWS for is left unknown to the estimate.
    assert not [item for item in found.not_estimated if "not priced" in item]
    assert found.total("min") <= found.total("desired") <= found.total("max")
    assert "data transfer (between zones, to the internet, between regions)" in found.not_estimated
    # The same render read back from its inventory (as `make diff` does) costs the same.
    inventory = [r.to_json() for r in stack_run.resources]
    assert estimate(from_inventory(json.loads(json.dumps(inventory)))).total() == pytest.approx(
        found.total()
    )


def test_production_prices_its_backup_copies_volumes_and_logs(production: StackRun) -> None:
    found = estimate(from_recorded(production.resources))
    kinds = found.by_kind()
    copies = next(line for line in found.lines if line.kind == "backup copies")
    # Every 4 hours (cron(0 */4 * * ? *): 6 a day), kept 35 days: 210 copies in us-west-2
    # (stacks/environments/production.py), 100 GiB each at $0.021: $441.00.
    assert copies.detail.startswith("210 copies (6 a day, kept 35 days)")
    assert "us-west-2" in copies.detail and copies.estimated
    assert kinds["backup copies"] == pytest.approx(441.00)
    # Each copy crosses from us-east-1 once: 6 a day x 730/24 days x 100 GiB x $0.02 = $365.00.
    assert kinds["backup copy transfer"] == pytest.approx(365.00)
    # kube-prometheus-stack's values: 2 Prometheus replicas x 100Gi + 2 Alertmanager replicas x
    # 10Gi, in the gp3 class: 220 GiB x $0.08 = $17.60.
    assert kinds["persistent volumes"] == pytest.approx(17.60)
    # 8 log groups kept 365 days at 1 GiB a day: 2,920 GiB x $0.03 = $87.60.
    assert kinds["CloudWatch Logs storage"] == pytest.approx(87.60)
    # The internet-facing ALB in the 3 zones' public subnets: 3 x $3.65.
    assert kinds["load balancers' public IPv4"] == pytest.approx(10.95)
    # GuardDuty Runtime Monitoring, both generations of general and compute (step 1 of the
    # generation change): compute g1 0/3/30 x c5.large (2 vCPUs), compute g2 3/3/30 x c5.xlarge
    # (4), general g1 0/3/20 x m5.large (2), general g2 2/3/20 x m5.xlarge (4), gpu 2/2/5 x
    # g4dn.xlarge (4; ml-service's two one-GPU pods hold two nodes at every size), memory
    # 1/1/10 x r5.large (2): 30 / 46 / 340 vCPUs.
    assert (
        "GuardDuty Runtime Monitoring: the nodes' vCPUs, 46 at desired size (min 30, max 340) "
        "on each group's first type, billed per vCPU-hour (price not read)"
    ) in found.not_estimated
    # Every key rotates (components/shared/kms.py): the second-year note counts them all.
    keys = next(line for line in found.lines if line.kind == "KMS keys")
    count = len(production.of_type("aws:kms/key:Key"))
    assert keys.note.startswith(f"{count} of the {count} keys rotate yearly")


def test_a_budget_refuses_in_one_line_naming_the_three_largest() -> None:
    found = estimate(tiny_stack())
    assert over_budget(found, None, "tiny") is None
    assert over_budget(found, 2000.0, "tiny") is None
    problem = over_budget(found, 1500.0, "tiny")
    assert problem is not None and "\n" not in problem
    # The total and the three largest lines of EXPECTED, at desired size.
    assert problem == (
        "tiny: the estimate at desired size, $1,990.41 a month, is over monthlyBudgetUsd "
        "$1,500.00; the largest: ElastiCache nodes $601.52, OpenSearch nodes $524.14, "
        "Aurora instances $379.60"
    )


def test_the_budget_is_read_from_the_stacks_settings() -> None:
    run = run_with("staging", monthlyBudgetUsd=100)
    assert cost.budget_of(run.namespace) == 100
    found = estimate(from_recorded(run.resources))
    problem = over_budget(found, cost.budget_of(run.namespace), "staging")
    assert problem is not None and problem.startswith("staging: the estimate at desired size")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "monthlyBudgetUsd: 0 is invalid: input should be greater than 0"),
        (-5, "monthlyBudgetUsd: -5 is invalid: input should be greater than 0"),
        ("lots", "monthlyBudgetUsd: 'lots' is invalid: input should be a valid number"),
        (True, "monthlyBudgetUsd: True is a boolean, not a number"),
    ],
)
def test_a_bad_budget_is_refused_in_one_line(value: Any, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from_values("staging", deep_merge(BASE, {"monthlyBudgetUsd": value}))
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_synth_writes_the_render_then_refuses_a_stack_over_its_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # synth's render of the stack is the shared one of staging's stack file with
    # monthlyBudgetUsd 100, handed over where synth asks for its render of the project it is
    # given (--project-dir, here a directory the seam only names; a render of another project's
    # stack file is in tests/test_program.py::test_synth_command_reports_a_bad_setting_in_one_line).
    # What synth does with the render is tested here.
    project = tmp_path / "project"
    asked: list[tuple[str, Path]] = []

    def render(stack: str, project_dir: Path) -> StackRun:
        asked.append((stack, project_dir))
        return run_with(stack, monthlyBudgetUsd=100)

    monkeypatch.setattr(synth_module, "run_stack", render)
    out = tmp_path / "build"
    status = synth(["--stack", "staging", "--out", str(out), "--project-dir", str(project)])
    assert asked == [("staging", project)]
    assert status == cost.OVER_BUDGET
    assert (out / "staging" / "inventory.json").exists()
    printed = capsys.readouterr()
    assert "Monthly on-demand estimate: $" in printed.out
    # The summary comes first; the component tree only with --verbose (VERBOSE=1 make synth).
    assert printed.out.startswith("Stack financial-planning/staging (offline, mocked engine): ")
    assert "Component tree of" not in printed.out and "VERBOSE=1 make synth" in printed.out
    refusal = printed.err.strip().splitlines()
    assert len(refusal) == 1 and "over monthlyBudgetUsd $100.00; the largest: " in refusal[0]


def inventory(resources: list[Resource]) -> list[dict[str, Any]]:
    return [
        {"type": r.type, "name": r.name, "inputs": dict(r.inputs), "provider": r.provider}
        for r in resources
    ]


def test_a_diff_names_the_cost_change_per_kind() -> None:
    before = inventory(tiny_stack())
    after = json.loads(json.dumps(before))
    group = next(r for r in after if r["type"] == "aws:eks/nodeGroup:NodeGroup")
    group["inputs"]["scalingConfig"] = {"minSize": 1, "desiredSize": 3, "maxSize": 6}
    text = cost.inventory_change(before, after)
    # One more m5.large node at desired size ($71.68), two more at max ($143.36).
    assert text.splitlines() == [
        "cost a month at desired size: $1,990.41 -> $2,062.09 (+$71.68)",
        "  node group general: $143.36 -> $215.04 (+$71.68)",
        "  at max size: $2,133.77 -> $2,277.13",
    ]
    assert cost.inventory_change(before, before) == (
        "cost a month at desired size: $1,990.41, unchanged"
    )


def new_generation(group: Resource, suffix: str, **inputs: Any) -> Resource:
    """The group as its next generation names it: `<prefix>-<class>-g<N>`, a new EKS name."""
    return Resource(group.type, f"{group.name}{suffix}", {**group.inputs, **inputs}, PROVIDER)


def test_node_group_lines_follow_the_workload_class_not_the_eks_name() -> None:
    stack = tiny_stack()
    group = next(r for r in stack if r.type == "aws:eks/nodeGroup:NodeGroup")
    # A replacement generation on other types has a new EKS name and a new URN name; once the
    # old one is gone, the class's line is the same line: make diff shows it change in place.
    replaced = [r for r in stack if r is not group] + [
        new_generation(
            group,
            "-g2",
            nodeGroupName="general-9f8e7d",
            instanceTypes=["m6i.large", "m6i.xlarge"],
        )
    ]
    text = cost.inventory_change(inventory(stack), inventory(replaced))
    # m6i.large costs what m5.large does ($0.096/h): nothing changes, on no line.
    assert text == "cost a month at desired size: $1,990.41, unchanged"
    # While both generations run (blue/green), each has its own line, by generation.
    both = [*stack, new_generation(group, "-g2", nodeGroupName="general-9f8e7d")]
    kinds = estimate(both).by_kind()
    assert kinds["node group general g1"] == pytest.approx(143.36)
    assert kinds["node group general g2"] == pytest.approx(143.36)
    assert "node group general" not in kinds
    # Without the label, the class is the URN name's last part, the generation set aside.
    unlabelled = [r for r in stack if r is not group] + [new_generation(group, "-g3", labels={})]
    assert "node group general" in estimate(unlabelled).by_kind()
    # Without the label but with the workload-class tag, the tag names the class, whatever
    # the resource is called.
    tagged = [r for r in stack if r is not group] + [
        Resource(
            group.type,
            "pool-7",
            {**group.inputs, "labels": {}, "tags": {"workload-class": "general"}},
            PROVIDER,
        )
    ]
    assert "node group general" in estimate(tagged).by_kind()


def test_a_generation_in_the_eks_name_alone_still_splits_the_line() -> None:
    # The other design: the Pulumi resource keeps its name and the EKS name carries the
    # generation (`<prefix>-<class>-g<N>`, a digest possibly after it).
    stack = tiny_stack()
    group = next(r for r in stack if r.type == "aws:eks/nodeGroup:NodeGroup")
    successor = Resource(
        group.type,
        group.name,
        {**group.inputs, "nodeGroupName": "tiny-general-g2-9f8e7d"},
        PROVIDER,
    )
    kinds = estimate([*stack, successor]).by_kind()
    assert kinds["node group general g1"] == pytest.approx(143.36)
    assert kinds["node group general g2"] == pytest.approx(143.36)
    # Negative control: two groups of a class that no name tells apart are not summed into
    # one line; each keeps its own, named by its EKS name.
    twin = Resource(
        group.type, group.name, {**group.inputs, "nodeGroupName": "general-5d4c3b"}, PROVIDER
    )
    kinds = estimate([*stack, twin]).by_kind()
    assert kinds["node group general (general-0a1b2c)"] == pytest.approx(143.36)
    assert kinds["node group general (general-5d4c3b)"] == pytest.approx(143.36)
    assert not any(kind in kinds for kind in ("node group general", "node group general g1"))


def test_an_io_optimized_cluster_is_priced_as_such() -> None:
    stack = [
        aws(
            "aws:rds/cluster:Cluster",
            "tiny-db",
            clusterIdentifier="tiny-postgres",
            manageMasterUserPassword=True,
            storageType="aurora-iopt1",
        )
        if r.type == "aws:rds/cluster:Cluster"
        else r
        for r in tiny_stack()
    ]
    kinds = estimate(stack).by_kind()
    # Instances 1.30 times: 2 x $0.260 x 1.30 x 730 = $493.48; storage 100 GiB x $0.225
    # (agent toolkit io-optimized-pricing.md).
    assert kinds["Aurora instances"] == pytest.approx(493.48)
    assert kinds["Aurora storage"] == pytest.approx(22.50)
    # I/O is included: no longer listed as usage.
    assert not any("Aurora I/O requests" in item for item in estimate(stack).not_estimated)
    # Negative control: the tiny stack's Standard cluster lists it.
    assert any("Aurora I/O requests" in item for item in estimate(tiny_stack()).not_estimated)


@pytest.mark.parametrize(
    ("extra", "listed"),
    [
        (
            kubernetes("kubernetes:core/v1:Service", "edge", spec={"type": "LoadBalancer"}),
            "the load balancer of Service edge (type LoadBalancer): not priced",
        ),
        (
            kubernetes(
                "kubernetes:helm.sh/v3:Release",
                "gateway",
                name="gateway",
                values={"service": {"type": "LoadBalancer"}},
            ),
            "a Service of type LoadBalancer in the values of Helm release gateway: its load "
            "balancer is not priced",
        ),
        (
            aws(
                "aws:opensearch/domain:Domain",
                "warm",
                clusterConfig={
                    "instanceType": "r6g.large.search",
                    "instanceCount": 1,
                    "warmEnabled": True,
                    "warmCount": 2,
                    "warmType": "ultrawarm1.medium.search",
                },
            ),
            "OpenSearch UltraWarm nodes of warm: 2 x ultrawarm1.medium.search and their managed "
            "storage (prices not read)",
        ),
        (
            aws(
                "aws:opensearch/domain:Domain",
                "cold",
                clusterConfig={
                    "instanceType": "r6g.large.search",
                    "instanceCount": 1,
                    "coldStorageOptions": {"enabled": True},
                },
            ),
            "OpenSearch cold storage of cold (price not read)",
        ),
        (
            kubernetes(
                "kubernetes:core/v1:PersistentVolumeClaim",
                "scratch",
                spec={"storageClassName": "fast", "resources": {"requests": {"storage": "8Gi"}}},
            ),
            "8 GiB claimed by scratch in storage class 'fast', which the render does not define",
        ),
    ],
)
def test_what_the_table_cannot_price_is_named_never_free(extra: Resource, listed: str) -> None:
    found = estimate([*tiny_stack(), extra])
    assert listed in found.not_estimated
    # Negative control: the tiny stack alone lists nothing of the kind.
    assert listed not in estimate(tiny_stack()).not_estimated


@pytest.mark.parametrize(
    ("schedule", "runs"),
    [
        ("cron(0 */4 * * ? *)", 6),
        ("cron(0 0,12 * * ? *)", 2),
        ("cron(30 5 * * ? *)", 1),
        ("cron(0 1-3 * * ? *)", 3),
        ("cron(0 5 ? * SUN *)", 1 / 7),
        ("cron(0 5 ? * MON-FRI *)", 5 / 7),
        ("rate(12 hours)", 2),
    ],
)
def test_a_backup_schedule_is_read_as_runs_a_day(schedule: str, runs: float) -> None:
    assert cost._runs_per_day(schedule) == pytest.approx(runs)


def test_a_schedule_not_read_is_an_assumption_not_a_silent_daily() -> None:
    stack = tiny_stack()
    plan = next(r for r in stack if r.type == "aws:backup/plan:Plan")
    rule = {**plan.inputs["rules"][0], "schedule": "cron(0 5 L * ? *)"}
    odd = [r if r is not plan else aws(plan.type, plan.name, rules=[rule]) for r in stack]
    found = estimate(odd)
    assert "backup schedule 'cron(0 5 L * ? *)' not read: it runs once a day" in (found.assumptions)
    # Once a day, kept 7 days: 7 copies x 100 GiB x $0.021.
    assert found.by_kind()["backup copies"] == pytest.approx(14.70)


def test_the_pull_request_comment_carries_make_diffs_output() -> None:
    # The cost lines reach the pull request because the comment is `make diff`'s output.
    workflow = yaml.safe_load(
        (PROJECT_DIR / ".github" / "workflows" / "pull-request.yml").read_text()
    )
    steps = workflow["jobs"]["render-diff"]["steps"]
    runs = [str(step.get("run", "")) for step in steps]
    assert any("diff BASE=" in run and "> render-diff.txt" in run for run in runs)
    # The comment's body is that file: one comment per pull request, rewritten on each push.
    assert any(
        "render-diff.txt" in run and "> comment.md" in run and "body=@comment.md" in run
        for run in runs
    )


def _readme_cost_section() -> str:
    # The figures live in docs/offline.md's Cost section, the page's last.
    text = (PROJECT_DIR / "docs" / "offline.md").read_text()
    return text[text.index("\n## Cost\n") :]


@pytest.mark.parametrize("stack", ["production", "staging"])
def test_the_readme_figures_are_the_estimate_of_each_render(
    stack: str, runs: dict[str, StackRun]
) -> None:
    found = estimate(from_recorded(runs[stack].resources))
    row = next(
        line for line in _readme_cost_section().splitlines() if line.startswith(f"| {stack} |")
    )
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1:4] == [money(found.total(size)) for size in cost.SIZES], row
    # The largest kinds at desired size, in order, to the dollar (`~` where estimated).
    estimated = {line.kind for line in found.lines if line.estimated}
    largest = found.top(5)
    named = re.findall(r"(~?)\$([0-9]{1,3}(?:,[0-9]{3})*)", cells[4])
    assert named == [("~" if kind in estimated else "", f"{usd:,.0f}") for kind, usd in largest], (
        row
    )


def test_the_readme_notes_and_budget_example_are_the_estimates(
    production: StackRun, staging: StackRun
) -> None:
    section = _readme_cost_section()
    found = estimate(from_recorded(production.resources))
    groups = [line for line in found.lines if line.kind.startswith("node group ")]
    first_types = sum(line.at("max") for line in groups)
    largest_types = sum(
        float(note.group(1).replace(",", ""))
        if (note := re.search(r": \$([0-9,.]+) a month at max size", line.note))
        else line.at("max")
        for line in groups
    )
    assert (
        f"node groups alone come to ${first_types:,.0f} on their first types "
        f"(${largest_types:,.0f} if every"
    ) in " ".join(section.split())
    example = over_budget(estimate(from_recorded(staging.resources)), 800.0, "staging")
    assert example is not None and example in section


def _gpu_stack(replicas: int | None) -> list[Resource]:
    """A GPU group at 0/0/5 g4dn.xlarge (one NVIDIA T4 each) and a Deployment on it asking
    for one `nvidia.com/gpu` (the device plugin's resource) per pod."""
    spec: dict[str, Any] = {
        "template": {
            "spec": {
                "nodeSelector": {"workload-class": "gpu"},
                "containers": [{"name": "m", "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
            }
        }
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return [
        Resource("pulumi:providers:aws", "aws", {"region": "us-east-1"}),
        aws(
            "aws:eks/nodeGroup:NodeGroup",
            "gpu",
            nodeGroupName="gpu",
            instanceTypes=["g4dn.xlarge"],
            diskSize=100,
            labels={"workload-class": "gpu"},
            scalingConfig={"minSize": 0, "desiredSize": 0, "maxSize": 5},
        ),
        kubernetes("kubernetes:apps/v1:Deployment", "ml", spec=spec),
    ]


def test_gpu_pods_scaled_by_hand_count_their_nodes_at_every_size() -> None:
    # Two pods of one GPU each on one-GPU nodes: the autoscaler starts two nodes whatever the
    # group's desired size (0) says: 2 x ($0.526 x 730 + 100 GiB x $0.10, the gp2 root volume
    # EKS gives a group's diskSize) = $787.96.
    line = next(ln for ln in estimate(_gpu_stack(2)).lines if ln.kind == "node group gpu")
    assert line.monthly == pytest.approx((787.96, 787.96, 5 * 393.98))
    assert line.note.startswith("desired 0 raised to 2: the pods scaled by hand ask for 2 GPU(s)")
    # Negative controls: no fixed replicas (an HPA decides), or none at all: the group's sizes.
    for replicas in (None, 0):
        line = next(
            ln for ln in estimate(_gpu_stack(replicas)).lines if ln.kind == "node group gpu"
        )
        assert line.monthly == pytest.approx((0.0, 0.0, 5 * 393.98)), replicas
