"""The data tier: PostgreSQL with replicas, Redis and OpenSearch, locked to the cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offline.engine import PlatformMocks, RecordedResource, StackRun, secret_placeholder
from offline.synth import kubernetes_objects, write_build
from stacks import SettingsError, settings_from_values
from tests.conftest import run_with
from tests.lookup import children_of, policy
from tests.test_settings import BASE

RDS = "aws:rds/instance:Instance"
REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"
SEARCH = "aws:opensearch/domain:Domain"
DATA_COMPONENTS = (
    "financial-planning:data:Database",
    "financial-planning:data:Cache",
    "financial-planning:data:SearchDomain",
)


def primary(run: StackRun) -> RecordedResource:
    [found] = [r for r in run.of_type(RDS) if "replicateSourceDb" not in r.inputs]
    return found


def replicas(run: StackRun) -> list[RecordedResource]:
    return [r for r in run.of_type(RDS) if "replicateSourceDb" in r.inputs]


def data_key(run: StackRun, component: str) -> RecordedResource:
    """The store's own key: the one KMS key of its component."""
    [key] = [r for r in children_of(run, run.one(component)) if r.type == "aws:kms/key:Key"]
    return key


def test_production_postgres_is_multi_az_encrypted_and_backed_up(production: StackRun) -> None:
    db = primary(production).inputs
    key = data_key(production, "financial-planning:data:Database")
    assert db["engine"] == "postgres"
    assert db["multiAz"] is True
    assert db["storageEncrypted"] is True and db["kmsKeyId"].endswith(key.id)
    assert db["backupRetentionPeriod"] == 30
    assert db["deletionProtection"] is True
    assert db["skipFinalSnapshot"] is False
    assert db["finalSnapshotIdentifier"].startswith("financial-planning-production-postgres-final-")
    assert db["performanceInsightsEnabled"] is True
    assert db["performanceInsightsKmsKeyId"].endswith(key.id)
    assert db["publiclyAccessible"] is False
    # The master password lives in Secrets Manager, managed by RDS: none in inputs or state.
    assert db["manageMasterUserPassword"] is True
    assert db["masterUserSecretKmsKeyId"].endswith(key.id)
    assert "password" not in db


def test_postgres_runs_in_the_private_subnets(stack_run: StackRun) -> None:
    group = stack_run.one("aws:rds/subnetGroup:SubnetGroup")
    private = {
        s.id
        for s in stack_run.of_type("aws:ec2/subnet:Subnet")
        if "kubernetes.io/role/internal-elb" in s.inputs["tags"]
    }
    assert set(group.inputs["subnetIds"]) == private
    assert primary(stack_run).inputs["dbSubnetGroupName"] == group.id


def test_the_parameter_group_forces_tls(stack_run: StackRun) -> None:
    group = stack_run.one("aws:rds/parameterGroup:ParameterGroup")
    parameters = {p["name"]: p["value"] for p in group.inputs["parameters"]}
    assert parameters["rds.force_ssl"] == "1"
    assert group.inputs["family"] == "postgres16"
    for instance in stack_run.of_type(RDS):
        assert instance.inputs["parameterGroupName"] == group.id


def test_production_has_two_read_replicas_of_the_primary(production: StackRun) -> None:
    found = replicas(production)
    assert len(found) == 2
    for replica in found:
        assert replica.inputs["replicateSourceDb"] == primary(production).inputs["identifier"]
        assert replica.inputs["storageEncrypted"] is True
        assert replica.inputs["deletionProtection"] is True
        assert replica.inputs["publiclyAccessible"] is False
        assert "password" not in replica.inputs and "username" not in replica.inputs


def test_staging_is_the_smaller_variant(staging: StackRun) -> None:
    db = primary(staging).inputs
    assert replicas(staging) == []
    assert db["multiAz"] is False
    assert db["deletionProtection"] is False and db["skipFinalSnapshot"] is True
    assert db["backupRetentionPeriod"] == 7
    assert db["instanceClass"] == "db.t4g.medium"
    redis = staging.one(REDIS).inputs
    assert redis["numCacheClusters"] == 1
    assert redis["automaticFailoverEnabled"] is False and redis["multiAzEnabled"] is False
    search = staging.one(SEARCH).inputs["clusterConfig"]
    assert search["instanceCount"] == 1
    assert search["zoneAwarenessEnabled"] is False
    assert search["dedicatedMasterEnabled"] is False


def test_redis_encrypts_in_transit_and_at_rest_with_a_secret_token(stack_run: StackRun) -> None:
    redis = stack_run.one(REDIS).inputs
    assert redis["engine"] == "redis"
    assert redis["transitEncryptionEnabled"] is True
    assert redis["transitEncryptionMode"] == "required"
    assert redis["atRestEncryptionEnabled"] is True
    assert redis["kmsKeyId"].endswith(data_key(stack_run, "financial-planning:data:Cache").id)
    assert redis["authToken"] == "[secret]"
    assert redis["snapshotRetentionLimit"] >= 1


def test_production_redis_fails_over_across_zones(production: StackRun) -> None:
    redis = production.one(REDIS).inputs
    assert redis["numCacheClusters"] == 3
    assert redis["automaticFailoverEnabled"] is True
    assert redis["multiAzEnabled"] is True
    assert redis["finalSnapshotIdentifier"] == "financial-planning-production-redis-final"


def test_search_domain_is_private_encrypted_and_access_controlled(stack_run: StackRun) -> None:
    domain = stack_run.one(SEARCH).inputs
    assert domain["encryptAtRest"]["enabled"] is True
    assert domain["encryptAtRest"]["kmsKeyId"].endswith(
        data_key(stack_run, "financial-planning:data:SearchDomain").id
    )
    assert domain["nodeToNodeEncryption"] == {"enabled": True}
    assert domain["domainEndpointOptions"] == {
        "enforceHttps": True,
        "tlsSecurityPolicy": "Policy-Min-TLS-1-2-PFS-2023-10",
    }
    security = domain["advancedSecurityOptions"]
    assert security["enabled"] is True and security["internalUserDatabaseEnabled"] is False
    assert security["masterUserOptions"] == {
        "masterUserArn": "arn:aws:iam::123456789012:role/platform-"
        + ("admin" if stack_run.stack == "production" else "deployer")
    }
    assert domain["ebsOptions"]["volumeType"] == "gp3"
    assert len(domain["domainName"]) <= 28
    private = {
        s.id
        for s in stack_run.of_type("aws:ec2/subnet:Subnet")
        if "kubernetes.io/role/internal-elb" in s.inputs["tags"]
    }
    assert set(domain["vpcOptions"]["subnetIds"]) <= private


def test_production_search_is_zone_aware_with_dedicated_masters(production: StackRun) -> None:
    config = production.one(SEARCH).inputs["clusterConfig"]
    assert config["zoneAwarenessEnabled"] is True
    assert config["zoneAwarenessConfig"] == {"availabilityZoneCount": 3}
    assert config["dedicatedMasterEnabled"] is True and config["dedicatedMasterCount"] == 3
    assert len(production.one(SEARCH).inputs["vpcOptions"]["subnetIds"]) == 3


STORE_PORTS = dict(zip(DATA_COMPONENTS, (5432, 6379, 443), strict=True))


@pytest.mark.parametrize(("component", "port"), STORE_PORTS.items())
def test_each_store_admits_only_the_cluster_on_its_port(
    stack_run: StackRun, component: str, port: int
) -> None:
    [group] = [
        g
        for g in children_of(stack_run, stack_run.one(component))
        if g.type == "aws:ec2/securityGroup:SecurityGroup"
    ]
    assert group.inputs.get("ingress", []) == [] and group.inputs.get("egress", []) == []
    rules = [
        r
        for r in stack_run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["securityGroupId"] == group.id
    ]
    assert len(rules) == 1
    rule = rules[0].inputs
    assert (rule["fromPort"], rule["toPort"], rule["ipProtocol"]) == (port, port, "tcp")
    cluster = stack_run.one("aws:eks/cluster:Cluster")
    assert rule["referencedSecurityGroupId"] == PlatformMocks.cluster_security_group_id(
        cluster.name
    )
    assert "cidrIpv4" not in rule and "cidrIpv6" not in rule
    # And the store uses that group and no other.
    users = {RDS: "vpcSecurityGroupIds", REDIS: "securityGroupIds"}
    for type_, key in users.items():
        for store in stack_run.of_type(type_):
            if store.parent == group.parent:
                assert store.inputs[key] == [group.id]
    for domain in stack_run.of_type(SEARCH):
        if domain.parent == group.parent:
            assert domain.inputs["vpcOptions"]["securityGroupIds"] == [group.id]


def test_production_protects_every_data_resource(production: StackRun) -> None:
    for component_type in DATA_COMPONENTS:
        component = production.one(component_type)
        children = children_of(production, component)
        assert len(children) >= 5
        assert all(child.protect for child in children), [c.name for c in children if not c.protect]


def test_staging_data_is_not_protected(staging: StackRun) -> None:
    for component_type in DATA_COMPONENTS:
        assert not any(c.protect for c in children_of(staging, staging.one(component_type)))


def test_config_map_points_readers_at_the_replicas(production: StackRun, staging: StackRun) -> None:
    def config(run: StackRun) -> dict[str, str]:
        [config_map] = [o for o in kubernetes_objects(run) if o["kind"] == "ConfigMap"]
        data: dict[str, str] = config_map["data"]
        return data

    prod = config(production)
    assert prod["DATABASE_HOST"].startswith("financial-planning-production-postgres.")
    assert prod["DATABASE_READ_HOSTS"].split(",") == [
        f"financial-planning-production-postgres-replica-{i}.c0ffee.us-east-1.rds.amazonaws.com"
        for i in (1, 2)
    ]
    assert prod["DATABASE_PORT"] == "5432" and prod["REDIS_PORT"] == "6379"
    assert prod["REDIS_TLS"] == "true"
    assert prod["REDIS_READER_HOST"].startswith("replica.")
    assert prod["SEARCH_ENDPOINT"].startswith("https://vpc-fp-production-search-")
    # Without replicas, reads go to the primary.
    assert config(staging)["DATABASE_READ_HOSTS"] == config(staging)["DATABASE_HOST"]


def test_credentials_reach_the_services_through_external_secrets_only(
    stack_run: StackRun,
) -> None:
    objects = kubernetes_objects(stack_run)
    externals = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ExternalSecret"}
    assert set(externals) == {"api-credentials", "database-credentials", "redis-credentials"}
    database = externals["database-credentials"]["spec"]["data"]
    assert {d["secretKey"] for d in database} == {"username", "password"}
    assert all(
        d["remoteRef"]["key"].startswith("arn:aws:secretsmanager:")
        and ":secret:rds!db-" in d["remoteRef"]["key"]
        for d in database
    )
    redis = externals["redis-credentials"]["spec"]["data"]
    assert redis == [
        {
            "secretKey": "auth-token",
            "remoteRef": {
                "key": f"financial-planning/{stack_run.stack}/redis-credentials",
                "property": "auth-token",
            },
        }
    ]
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    env = {
        e["name"]: e
        for e in deployments["financial-planning-api"]["spec"]["template"]["spec"]["containers"][0][
            "env"
        ]
    }
    assert env["DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "database-credentials",
        "key": "password",
    }
    assert env["REDIS_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "redis-credentials",
        "key": "auth-token",
    }


def test_no_credential_appears_in_plain_text(stack_run: StackRun, tmp_path: Path) -> None:
    [password] = stack_run.of_type("random:index/randomPassword:RandomPassword")
    token = PlatformMocks().computed_outputs(password.type, password.name, {}, "")
    credentials = [token["result"]] + [
        secret_placeholder(f"financial-planning:{key}")
        for key in ("openaiApiKey", "plaidClientId", "plaidSecret")
    ]
    inputs = json.dumps([r.to_json() for r in stack_run.resources])
    target = write_build(stack_run, tmp_path)
    rendered = "".join(p.read_text() for p in target.rglob("*") if p.is_file())
    for credential in credentials:
        assert credential not in inputs
        assert credential not in rendered
    # Where they do flow, they flow as secrets.
    assert stack_run.one(REDIS).inputs["authToken"] == "[secret]"
    assert inputs.count('"secretString": "[secret]"') == 2


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"database": {"readReplicas": 1}},
            "data.database.readReplicas: 1 is below production's minimum of 2",
        ),
        (
            {"database": {"multiAz": False}},
            "data.database.multiAz: production needs a Multi-AZ primary",
        ),
        ({"cache": {"nodes": 1}}, "data.cache.nodes: 1 is below production's minimum of 2"),
        ({"search": {"dedicatedMasterType": None}}, "data.search: production needs zone"),
        (
            {"search": {"instanceCount": 5}},
            "data.search.instanceCount: 5 nodes cannot be balanced over 2 or 3 zones",
        ),
        (
            {"database": {"engineVersion": "12"}},
            "data.database.engineVersion: '12' is invalid: string should match pattern",
        ),
        (
            {"database": {"allocatedStorageGib": 500, "maxAllocatedStorageGib": 100}},
            "data.database.maxAllocatedStorageGib: 100 is below allocatedStorageGib 500",
        ),
    ],
)
def test_data_settings_are_checked(data: dict[str, object], expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from_values("production", {**BASE, "data": data})
    assert str(caught.value).startswith(expected), str(caught.value)


def test_staging_may_run_without_replicas_and_production_sizes_are_settings() -> None:
    assert settings_from_values("staging", BASE).data.database.read_replicas == 0
    run = run_with("production", data={"database": {"readReplicas": 3}})
    assert len(replicas(run)) == 3
    assert (
        len(
            policy(
                run.one(
                    "aws:iam/rolePolicy:RolePolicy",
                    "financial-planning-production-eso-operator-inline",
                )
            )["Statement"][0]["Resource"]
        )
        == 3
    )
