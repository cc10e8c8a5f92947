"""The whole program per stack: providers, protection, naming limits, and what synth writes."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from offline import synth as synth_module
from offline.engine import PROJECT_DIR, StackRun, stack_config
from offline.synth import headline, kubernetes_objects, main, summary, warnings, write_build
from stacks.aws_facts import EKS_KUBERNETES_RELEASES
from tests.conftest import config_with, shared_renders

PROTECTED_IN_PRODUCTION = {
    "aws:eks/cluster:Cluster",
    "aws:kms/key:Key",
    "aws:kms/alias:Alias",
    "aws:ec2/vpc:Vpc",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:s3/bucket:Bucket",
    "aws:ecr/repository:Repository",
    "aws:secretsmanager/secret:Secret",
    # The data tier, every resource of it, and its backups in both regions.
    "aws:rds/cluster:Cluster",
    "aws:rds/clusterInstance:ClusterInstance",
    "aws:rds/clusterParameterGroup:ClusterParameterGroup",
    "aws:backup/vault:Vault",
    "aws:secretsmanager/secretRotation:SecretRotation",
    # The audit trail.
    "aws:cloudtrail/trail:Trail",
    "aws:rds/subnetGroup:SubnetGroup",
    "aws:elasticache/replicationGroup:ReplicationGroup",
    "aws:elasticache/subnetGroup:SubnetGroup",
    "aws:opensearch/domain:Domain",
    # What lets the search domain publish its audit log: kept with the domain it serves.
    "aws:cloudwatch/logResourcePolicy:LogResourcePolicy",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    # The deploy runner's way out (its group's HTTPS rule): the deploy job runs through it
    # (tests/delivery/test_runner.py).
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    "random:index/randomId:RandomId",
    "random:index/randomPassword:RandomPassword",
}


def test_every_cloud_resource_names_its_explicit_provider(stack_run: StackRun) -> None:
    aws_provider = stack_run.one("pulumi:providers:aws")
    assert aws_provider.inputs["region"] == "us-east-1"
    k8s_provider = stack_run.one("pulumi:providers:kubernetes")
    for resource in stack_run.resources:
        if resource.type.startswith("aws:"):
            assert resource.provider.startswith(aws_provider.urn + "::"), resource.urn
        elif resource.type.startswith("kubernetes:"):
            assert resource.provider.startswith(k8s_provider.urn + "::"), resource.urn


def test_stack_tags_are_default_tags_of_the_aws_provider(production: StackRun) -> None:
    tags = production.one("pulumi:providers:aws").inputs["defaultTags"]
    assert json.loads(tags)["tags"] == {
        "application": "financial-planning",
        "managed-by": "pulumi",
        "cost-center": "financial-planning-prod",
        "environment": "production",
        "pulumi-stack": "production",
    }


def test_production_protects_its_stateful_resources(production: StackRun) -> None:
    protected = {r.type for r in production.resources if r.protect}
    assert protected == PROTECTED_IN_PRODUCTION
    # Every resource of these types, but security groups and rules: only the data stores' and
    # the deploy runner's are protected (the VPC endpoints' group is not; the data tier's and
    # the runner's tests cover theirs).
    stateless = {
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    }
    for resource in production.resources:
        if resource.type in PROTECTED_IN_PRODUCTION - stateless:
            assert resource.protect, resource.urn
    assert production.one("aws:eks/cluster:Cluster").inputs["deletionProtection"] is True


def test_staging_protects_nothing(staging: StackRun) -> None:
    assert [r.urn for r in staging.resources if r.protect] == []
    assert staging.one("aws:eks/cluster:Cluster").inputs["deletionProtection"] is False


def test_iam_role_names_fit_the_64_character_limit_for_the_longest_stack_name() -> None:
    # Staging's stack file as a stack of the longest name allowed: a shared render (its key
    # holds the stack's name, so never staging's own).
    config, secret_keys = config_with("staging", environment="staging")
    renders = shared_renders()
    assert renders.key_of("twelve-chars", config, secret_keys) != renders.key_of(
        "staging", config, secret_keys
    )
    run = renders.render("twelve-chars", config, secret_keys, "staging as twelve-chars")
    assert run.stack == "twelve-chars"
    roles = run.of_type("aws:iam/role:Role")
    assert len(roles) >= 10
    # Pulumi auto-names a role "<logical name>-<7 random characters>".
    names = [role.inputs.get("name") or f"{role.name}-abcdefg" for role in roles]
    assert all("twelve-chars" in name for name in names)  # the names hold the stack's
    for name in names:
        assert len(name) <= 64, name
    assert len(run.one("aws:opensearch/domain:Domain").inputs["domainName"]) <= 28


def test_every_component_child_is_parented(stack_run: StackRun) -> None:
    top_level = [
        r
        for r in stack_run.resources
        if r.parent.endswith(f"pulumi:pulumi:Stack::financial-planning-{stack_run.stack}")
    ]
    # Only the providers and the components sit directly under the stack.
    assert {r.type.split(":")[0] for r in top_level if r.custom} == {"pulumi"}


def test_synth_writes_inventory_and_manifests(stack_run: StackRun, tmp_path: Path) -> None:
    target = write_build(stack_run, tmp_path)
    inventory = json.loads((target / "inventory.json").read_text())
    assert inventory["project"] == "financial-planning"
    assert inventory["stack"] == stack_run.stack
    assert len(inventory["resources"]) == len(stack_run.resources)
    for entry in inventory["resources"]:
        assert set(entry) == {
            "urn",
            "type",
            "name",
            "parent",
            "custom",
            "protect",
            "aliases",
            "customTimeouts",
            "provider",
            "dependencies",
            "ignoreChanges",
            "inputs",
        }
    group = next(r for r in inventory["resources"] if r["type"] == "aws:eks/nodeGroup:NodeGroup")
    assert isinstance(group["inputs"]["scalingConfig"]["maxSize"], int)
    documents = [yaml.safe_load(p.read_text()) for p in (target / "manifests").glob("*.yaml")]
    assert len(documents) == len(kubernetes_objects(stack_run))
    for document in documents:
        assert document["apiVersion"] and document["kind"] and document["metadata"]["name"]


def test_no_secret_value_of_a_stack_file_reaches_the_build(
    stack_run: StackRun, tmp_path: Path
) -> None:
    config, secret_keys = stack_config(stack_run.stack)
    target = write_build(stack_run, tmp_path)
    rendered = "".join(p.read_text() for p in target.rglob("*") if p.is_file())
    for key in secret_keys:
        assert str(config[key]) not in rendered, key
    assert '"kubeconfig": "[secret]"' in rendered


def test_summary_shows_the_component_tree_and_counts(production: StackRun) -> None:
    text = summary(production)
    assert "+ financial-planning:foundation:Cluster financial-planning-production" in text
    assert "    + financial-planning:shared:IrsaRole" in text
    assert "total" in text and str(len(production.resources)) in text


def test_synth_command_reports_a_bad_setting_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A copy of the project whose staging stack file has a bad value.
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((PROJECT_DIR / name).read_text())
    broken = yaml.safe_load((PROJECT_DIR / "Pulumi.staging.yaml").read_text())
    broken["config"]["financial-planning:natGateways"] = "several"
    (tmp_path / "Pulumi.staging.yaml").write_text(yaml.safe_dump(broken))
    out = tmp_path / "build"
    assert main(["--stack", "staging", "--out", str(out), "--project-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        "synth staging: natGateways: 'several' is invalid: input should be 'perAz' or 'single'\n"
    )
    assert not out.exists()


def test_synth_headline_counts_resources_by_provider(production: StackRun) -> None:
    line = headline(production)
    custom = [r for r in production.resources if r.custom]
    assert line.startswith(
        f"Stack financial-planning/production (offline, mocked engine): {len(custom)} resources ("
    )
    aws = sum(1 for r in custom if r.type.startswith("aws:"))
    assert f"aws {aws}," in line
    assert line.endswith(f"in {len(production.resources) - len(custom)} components")


def test_synth_warns_of_a_kubernetes_minor_near_its_end_of_support(
    production: StackRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = production.namespace["settings"]
    end = EKS_KUBERNETES_RELEASES[settings.kubernetes_version].end_of_standard_support
    monkeypatch.setattr(synth_module, "render_date", lambda: end - timedelta(days=30))
    [warning] = warnings(settings)
    assert warning.startswith(f"kubernetesVersion: '{settings.kubernetes_version}' leaves EKS")
    # Control: far from the end, nothing to warn of.
    monkeypatch.setattr(synth_module, "render_date", lambda: end - timedelta(days=365))
    assert warnings(settings) == []
