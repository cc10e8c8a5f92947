"""The monthly cost estimate (offline/cost.py) and its price table (stacks/aws_prices.py).

The expected figures below are worked by hand from the table's prices, each named where it is
used: the code under test is never asked for them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from offline import cost
from offline.cost import Resource, estimate, from_inventory, from_recorded, over_budget
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
    AURORA_BURSTABLE_PREMIUM,
    EC2_HOURLY,
    FLAT,
    REGIONAL,
    USAGE,
    UnknownPrice,
    price,
)
from stacks.instance_types import INSTANCE_TYPES
from stacks.merge import deep_merge
from tests.conftest import run_with
from tests.test_settings import BASE

PROVIDER = "urn:pulumi:tiny::p::pulumi:providers:aws::aws::id-1"


def aws(type_: str, resource_name: str, **inputs: Any) -> Resource:
    return Resource(type_, resource_name, inputs, PROVIDER)


def tiny_stack() -> list[Resource]:
    """A stack small enough to price by hand: us-east-1, one of each priced kind."""
    return [
        Resource("pulumi:providers:aws", "aws", {"region": "us-east-1"}),
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
            nodeGroupName="general",
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
        aws("aws:kms/key:Key", "tiny"),
        aws("aws:secretsmanager/secret:Secret", "tiny"),
        aws("aws:cloudwatch/logGroup:LogGroup", "tiny", retentionInDays=7),
        aws(
            "aws:wafv2/webAcl:WebAcl",
            "tiny",
            name="tiny",
            rules=[{"name": "rate"}, {"name": "common"}],
        ),
        Resource(
            "kubernetes:networking.k8s.io/v1:Ingress",
            "tiny",
            {
                "metadata": {"name": "public", "namespace": "app", "annotations": {}},
                "spec": {"ingressClassName": "alb"},
            },
        ),
    ]


# Worked by hand, USD a month of 730 hours (stacks/aws_prices.py's figures, us-east-1):
# kind: (min, desired, max)
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
    "KMS keys": (1.00, 1.00, 1.00),
    "Secrets Manager secrets": (0.40, 0.40, 0.40),
    # 1 GiB a day (the assumption) for 730/24 days at $0.50 per GB: 15.2083.
    "CloudWatch Logs ingestion": (15.208333, 15.208333, 15.208333),
    # $5 for the web ACL and $1 for each of its 2 rules.
    "WAF web ACL": (7.00, 7.00, 7.00),
}


def test_a_tiny_stack_costs_what_was_worked_out_by_hand() -> None:
    found = estimate(tiny_stack())
    assert found.region == "us-east-1"
    for size_index, size in enumerate(cost.SIZES):
        assert found.by_kind(size) == pytest.approx(
            {kind: figures[size_index] for kind, figures in EXPECTED.items()}
        ), size
    assert found.total("desired") == pytest.approx(307.493333)
    # Every price used was read (us-east-1, no managed class): no line is marked estimated.
    assert not any(line.estimated for line in found.lines)
    # The largest type of the group is a note, at max size: 4 x (m5.xlarge $140.16 + $1.60).
    general = next(line for line in found.lines if line.kind == "node group general")
    assert "m5.xlarge: $567.04" in general.note
    # What follows usage is listed, not counted.
    listed = "\n".join(found.not_estimated)
    for usage in ("NAT gateways' data processed", "load balancer capacity units", "WAF requests"):
        assert usage in listed


def test_removing_a_resource_removes_exactly_its_cost() -> None:
    # Negative control: the figures above come from the resources, not from a fixed table.
    without_nat = [r for r in tiny_stack() if r.type != "aws:ec2/natGateway:NatGateway"]
    found = estimate(without_nat)
    assert "NAT gateways" not in found.by_kind()
    assert found.total("desired") == pytest.approx(307.493333 - 32.85)


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
        r if r.type != "pulumi:providers:aws" else Resource(r.type, "aws", {"region": "eu-west-1"})
        for r in tiny_stack()
    ]
    found = estimate(stack)
    assert found.total("desired") == pytest.approx(307.493333)
    assert all(line.estimated for line in found.lines)


def test_a_managed_class_is_estimated_from_its_ec2_instance_and_says_so() -> None:
    # db.t4g.medium: EC2 t4g.medium $0.0336/h x Aurora's burstable premium, measured on
    # db.t3.medium ($59.86 for 730 h over EC2 t3.medium's $0.0416/h): 0.0336 x 1.97115 = 0.0662.
    found = price("us-east-1", "rds:db.t4g.medium")
    assert found.usd == pytest.approx(0.0662)
    assert AURORA_BURSTABLE_PREMIUM.factor == pytest.approx(59.86 / 730 / 0.0416)
    assert found.estimate.startswith("db.t4g.medium not found")


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
    stack = tiny_stack()
    stack[3] = aws(
        "aws:eks/nodeGroup:NodeGroup",
        "odd",
        instanceTypes=["c5.8xlarge"],
        scalingConfig={"minSize": 1, "desiredSize": 1, "maxSize": 1},
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
    assert {k for k in kinds if k.startswith("node group ")} == {
        f"node group {g.inputs['nodeGroupName']}" for g in groups
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
        "WAF web ACL",
    ):
        assert kinds.get(kind, 0) > 0, kind
    assert found.total("min") <= found.total("desired") <= found.total("max")
    assert "data transfer (between zones, to the internet, between regions)" in found.not_estimated
    # The same render read back from its inventory (as `make diff` does) costs the same.
    inventory = [r.to_json() for r in stack_run.resources]
    assert estimate(from_inventory(json.loads(json.dumps(inventory)))).total() == pytest.approx(
        found.total()
    )


def test_production_counts_its_backup_copies_and_guardduty(production: StackRun) -> None:
    found = estimate(from_recorded(production.resources))
    copies = next(line for line in found.lines if line.kind == "backup copies")
    # Every 4 hours, kept 35 days: 210 copies in us-west-2 (stacks/environments/production.py).
    assert copies.detail.startswith("210 copies (every 4 h, kept 35 days)")
    assert "us-west-2" in copies.detail and copies.estimated
    assert any(item.startswith("GuardDuty: no fixed charge") for item in found.not_estimated)


def test_a_budget_refuses_in_one_line_naming_the_three_largest() -> None:
    found = estimate(tiny_stack())
    assert over_budget(found, None, "tiny") is None
    assert over_budget(found, 400.0, "tiny") is None
    problem = over_budget(found, 300.0, "tiny")
    assert problem is not None and "\n" not in problem
    assert problem == (
        "tiny: the estimate at desired size, $307.49 a month, is over monthlyBudgetUsd "
        "$300.00; the largest: node group general $143.36, EKS control plane $73.00, "
        "NAT gateways $32.85"
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
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    stack_file = yaml.safe_load((PROJECT_DIR / "Pulumi.staging.yaml").read_text())
    stack_file["config"]["financial-planning:monthlyBudgetUsd"] = 100
    (tmp_path / "Pulumi.staging.yaml").write_text(yaml.safe_dump(stack_file))
    out = tmp_path / "build"
    status = synth(["--stack", "staging", "--project-dir", str(tmp_path), "--out", str(out)])
    assert status == cost.OVER_BUDGET
    assert (out / "staging" / "inventory.json").exists()
    printed = capsys.readouterr()
    assert "Monthly on-demand estimate: $" in printed.out
    # The summary comes first; the component tree only with --verbose (VERBOSE=1 make synth).
    assert printed.out.startswith("Stack financial-planning/staging (offline, mocked engine): ")
    assert "Component tree of" not in printed.out and "VERBOSE=1 make synth" in printed.out
    refusal = printed.err.strip().splitlines()
    assert len(refusal) == 1 and "over monthlyBudgetUsd $100.00; the largest: " in refusal[0]


def test_a_diff_names_the_cost_change_per_kind() -> None:
    before = [
        {"type": r.type, "name": r.name, "inputs": dict(r.inputs), "provider": r.provider}
        for r in tiny_stack()
    ]
    after = json.loads(json.dumps(before))
    after[3]["inputs"]["scalingConfig"] = {"minSize": 1, "desiredSize": 3, "maxSize": 6}
    text = cost.inventory_change(before, after)
    # One more m5.large node at desired size ($71.68), two more at max ($143.36).
    assert text.splitlines() == [
        "cost a month at desired size: $307.49 -> $379.17 (+$71.68)",
        "  node group general: $143.36 -> $215.04 (+$71.68)",
        "  at max size: $450.85 -> $594.21",
    ]
    assert cost.inventory_change(before, before) == (
        "cost a month at desired size: $307.49, unchanged"
    )


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
