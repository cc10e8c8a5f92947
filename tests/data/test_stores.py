"""The data tier: Aurora PostgreSQL, Redis and OpenSearch, locked to the cluster; backups."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from offline.engine import PlatformMocks, RecordedResource, StackRun, secret_placeholder
from offline.synth import kubernetes_objects, write_build
from stacks import SettingsError, settings_from_values
from stacks.merge import deep_merge
from tests.conftest import run_with
from tests.lookup import (
    app_namespace,
    app_objects,
    children_of,
    inline_policy,
    irsa_role,
    service_role,
    signs_operators_in,
)
from tests.test_settings import BASE

CLUSTER = "aws:rds/cluster:Cluster"
INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"
SEARCH = "aws:opensearch/domain:Domain"
DATA_COMPONENTS = (
    "financial-planning:data:Database",
    "financial-planning:data:Cache",
    "financial-planning:data:SearchDomain",
)


def cluster(run: StackRun) -> dict[str, Any]:
    inputs: dict[str, Any] = run.one(CLUSTER).inputs
    return inputs


def instances(run: StackRun) -> list[dict[str, Any]]:
    return [i.inputs for i in run.of_type(INSTANCE)]


def data_key(run: StackRun, component: str) -> RecordedResource:
    """The store's own key: the one KMS key of its component that encrypts its data (the
    search domain has a second, for the logs it publishes)."""
    [key] = [
        r
        for r in children_of(run, run.one(component))
        if r.type == "aws:kms/key:Key" and "published logs" not in r.inputs["description"]
    ]
    return key


def test_production_postgres_is_aurora_encrypted_and_backed_up(production: StackRun) -> None:
    db = cluster(production)
    key = data_key(production, "financial-planning:data:Database")
    assert (db["engine"], db["engineMode"]) == ("aurora-postgresql", "provisioned")
    assert db["storageEncrypted"] is True and db["kmsKeyId"].endswith(key.id)
    assert db["backupRetentionPeriod"] == 30
    assert db["deletionProtection"] is True
    assert db["skipFinalSnapshot"] is False
    assert db["finalSnapshotIdentifier"].startswith("financial-planning-production-postgres-final-")
    assert db["iamDatabaseAuthenticationEnabled"] is True
    # The master password lives in Secrets Manager, managed by Aurora: none in inputs or state.
    assert db["manageMasterUserPassword"] is True
    assert db["masterUserSecretKmsKeyId"].endswith(key.id)
    assert "masterPassword" not in db and "masterPasswordWo" not in db


def test_production_has_a_writer_and_two_readers_one_per_zone(production: StackRun) -> None:
    found = instances(production)
    assert len(found) == 3
    assert sorted(i["availabilityZone"] for i in found) == [
        "us-east-1a",
        "us-east-1b",
        "us-east-1c",
    ]
    db = production.one(CLUSTER)
    key = data_key(production, "financial-planning:data:Database")
    for instance in found:
        assert instance["clusterIdentifier"] == db.id
        assert instance["engine"] == "aurora-postgresql"
        assert instance["instanceClass"] == "db.r6g.large"
        assert instance["publiclyAccessible"] is False
        assert instance["performanceInsightsEnabled"] is True
        assert instance["performanceInsightsKmsKeyId"].endswith(key.id)
        # Instances of the cluster carry no storage or credential settings of their own.
        assert not {"kmsKeyId", "storageEncrypted", "masterUsername", "replicateSourceDb"} & set(
            instance
        )
    # Created side by side: no instance waits for another.
    instance_urns = {i.urn for i in production.of_type(INSTANCE)}
    assert all(not instance_urns & set(i.dependencies) for i in production.of_type(INSTANCE))


def test_no_rds_read_replica_or_standalone_instance_remains(stack_run: StackRun) -> None:
    # RDS cannot replicate a source whose master password Secrets Manager manages.
    assert stack_run.of_type("aws:rds/instance:Instance") == []
    for resource in stack_run.resources:
        assert "replicateSourceDb" not in resource.inputs, resource.urn
        assert "replicationSourceIdentifier" not in resource.inputs, resource.urn


def test_postgres_runs_in_the_private_subnets(stack_run: StackRun) -> None:
    group = stack_run.one("aws:rds/subnetGroup:SubnetGroup")
    private = {
        s.id
        for s in stack_run.of_type("aws:ec2/subnet:Subnet")
        if "kubernetes.io/role/internal-elb" in s.inputs["tags"]
    }
    assert set(group.inputs["subnetIds"]) == private
    assert cluster(stack_run)["dbSubnetGroupName"] == group.id
    assert {i["dbSubnetGroupName"] for i in instances(stack_run)} == {group.id}


def test_the_cluster_parameter_group_forces_tls_and_matches_the_engine(
    stack_run: StackRun,
) -> None:
    group = stack_run.one("aws:rds/clusterParameterGroup:ClusterParameterGroup")
    parameters = {p["name"]: p["value"] for p in group.inputs["parameters"]}
    assert parameters["rds.force_ssl"] == "1"
    db = cluster(stack_run)
    assert db["dbClusterParameterGroupName"] == group.id
    # The family is the engine's, of the engine version's major.
    assert db["engineVersion"] == "16.6"
    assert group.inputs["family"] == "aurora-postgresql16"
    assert group.inputs["family"] == f"{db['engine']}{db['engineVersion'].split('.')[0]}"


@pytest.mark.parametrize("version", ["15.10", "17.4"])
def test_the_parameter_group_family_follows_the_engine_version(version: str) -> None:
    run = run_with("staging", data={"database": {"engineVersion": version}})
    group = run.one("aws:rds/clusterParameterGroup:ClusterParameterGroup")
    assert group.inputs["family"] == f"aurora-postgresql{version.split('.')[0]}"


def test_staging_is_the_smaller_variant(staging: StackRun) -> None:
    db = cluster(staging)
    [writer] = instances(staging)
    assert writer["instanceClass"] == "db.t4g.medium"
    assert db["deletionProtection"] is False and db["skipFinalSnapshot"] is True
    assert db["backupRetentionPeriod"] == 7
    assert staging.of_type("aws:backup/plan:Plan") == []
    redis = staging.one(REDIS).inputs
    assert redis["numCacheClusters"] == 1
    assert redis["automaticFailoverEnabled"] is False and redis["multiAzEnabled"] is False
    search = staging.one(SEARCH).inputs["clusterConfig"]
    assert search["instanceCount"] == 1
    assert search["zoneAwarenessEnabled"] is False
    assert search["dedicatedMasterEnabled"] is False


def test_production_copies_database_backups_to_a_second_region(production: StackRun) -> None:
    vaults = {
        v.inputs.get("region", "us-east-1"): v for v in production.of_type("aws:backup/vault:Vault")
    }
    assert set(vaults) == {"us-east-1", "us-west-2"}
    recovery_key = [
        k for k in production.of_type("aws:kms/key:Key") if k.inputs.get("region") == "us-west-2"
    ]
    assert len(recovery_key) == 1 and recovery_key[0].inputs["enableKeyRotation"] is True
    assert vaults["us-west-2"].inputs["kmsKeyArn"].startswith("arn:aws:kms:us-west-2:")
    assert all(v.protect for v in vaults.values()) and recovery_key[0].protect
    [rule] = production.one("aws:backup/plan:Plan").inputs["rules"]
    assert rule["schedule"] == "cron(0 */4 * * ? *)"
    assert rule["lifecycle"] == {"deleteAfter": 35}
    [copy] = rule["copyActions"]
    assert copy["destinationVaultArn"].startswith("arn:aws:backup:us-west-2:")
    assert copy["lifecycle"] == {"deleteAfter": 35}
    selection = production.one("aws:backup/selection:Selection").inputs
    assert selection["resources"] == [
        "arn:aws:rds:us-east-1:123456789012:cluster:financial-planning-production-postgres"
    ]
    role = service_role(production, "backup.amazonaws.com")
    assert selection["iamRoleArn"].endswith(f"role/{role.id}")


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
    # A stable random suffix: destroying the cache a second time never reuses a snapshot name.
    assert re.fullmatch(
        r"financial-planning-production-redis-final-[0-9a-f]{8}", redis["finalSnapshotIdentifier"]
    )
    suffixes = [
        r
        for r in production.of_type("random:index/randomId:RandomId")
        if r.parent == production.one(REDIS).parent
    ]
    assert len(suffixes) == 1 and suffixes[0].protect


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
    # The master user is the search bootstrap's role, which maps the rest (search_access.py).
    [association] = [
        a
        for a in stack_run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if a.inputs["namespace"] == "search-bootstrap"
    ]
    assert security["masterUserOptions"] == {"masterUserArn": association.inputs["roleArn"]}
    assert domain["ebsOptions"]["volumeType"] == "gp3"
    assert len(domain["domainName"]) <= 28
    private = {
        s.id
        for s in stack_run.of_type("aws:ec2/subnet:Subnet")
        if "kubernetes.io/role/internal-elb" in s.inputs["tags"]
    }
    assert set(domain["vpcOptions"]["subnetIds"]) <= private


# Requirements as literals: how long each stack keeps the domain's own logs, and the log types
# OpenSearch Service publishes (API reference, LogPublishingOption: the four keys).
SEARCH_LOG_DAYS = {"production": 365, "staging": 30}
SEARCH_LOG_TYPES = {"AUDIT_LOGS", "ES_APPLICATION_LOGS", "INDEX_SLOW_LOGS", "SEARCH_SLOW_LOGS"}


def test_the_search_domain_publishes_its_logs_to_encrypted_log_groups(stack_run: StackRun) -> None:
    """Audit, error and slow logs, each to its own log group, encrypted with a key CloudWatch
    Logs may use for those groups only, kept the stack's days; a resource policy lets
    OpenSearch Service (and only for this domain of this account) write them, and the domain
    waits for it (the service checks it on create and update). AUDIT_LOGS needs fine-grained
    access control (OpenSearch Service developer guide, "Monitoring audit logs")."""
    domain = stack_run.one(SEARCH)
    name = domain.inputs["domainName"]
    options = {o["logType"]: o for o in domain.inputs["logPublishingOptions"]}
    assert set(options) == SEARCH_LOG_TYPES
    assert all(o["enabled"] for o in options.values())
    assert domain.inputs["advancedSecurityOptions"]["enabled"] is True
    groups = {g.state["arn"]: g for g in stack_run.of_type("aws:cloudwatch/logGroup:LogGroup")}
    prefix = f"/aws/opensearch/domains/{name}/"
    for option in options.values():
        group = groups[option["cloudwatchLogGroupArn"]]
        assert group.inputs["name"].startswith(prefix)
        assert group.inputs["retentionInDays"] == SEARCH_LOG_DAYS[stack_run.stack]
        assert group.protect == (stack_run.stack == "production")
        key = [
            k
            for k in stack_run.of_type("aws:kms/key:Key")
            if k.state["arn"] == group.inputs["kmsKeyId"]
        ]
        [key_policy] = key
        logs = [
            st
            for st in json.loads(key_policy.inputs["policy"])["Statement"]
            if st["Principal"].get("Service") == "logs.us-east-1.amazonaws.com"
        ]
        [use] = logs
        pattern = use["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
        assert pattern.endswith(f":log-group:{prefix}*")
    assert len({o["cloudwatchLogGroupArn"] for o in options.values()}) == 4
    [resource_policy] = stack_run.of_type("aws:cloudwatch/logResourcePolicy:LogResourcePolicy")
    [statement] = json.loads(resource_policy.inputs["policyDocument"])["Statement"]
    assert statement["Principal"] == {"Service": "es.amazonaws.com"}
    assert sorted(statement["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    # Exactly the four groups (and their streams).
    assert sorted(statement["Resource"]) == sorted(f"{arn}:*" for arn in options_arns(options))
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"] == domain.state["arn"]
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
    assert resource_policy.urn in domain.dependencies


def options_arns(options: dict[str, Any]) -> list[str]:
    return [str(o["cloudwatchLogGroupArn"]) for o in options.values()]


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
    users = {CLUSTER: "vpcSecurityGroupIds", REDIS: "securityGroupIds"}
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


def test_config_map_points_reads_at_the_reader_endpoint(stack_run: StackRun) -> None:
    [config_map] = [
        o
        for o in kubernetes_objects(stack_run)
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "financial-planning-config"
    ]
    prod: dict[str, str] = config_map["data"]
    mocks = PlatformMocks().computed_outputs(CLUSTER, "x", cluster(stack_run), "x")
    # One writer host and one read host: Aurora's cluster and reader endpoints.
    assert prod["DATABASE_HOST"] == mocks["endpoint"]
    assert prod["DATABASE_READ_HOST"] == mocks["readerEndpoint"]
    assert ".cluster-ro-" in prod["DATABASE_READ_HOST"]
    assert "DATABASE_READ_HOSTS" not in prod
    assert prod["DATABASE_PORT"] == "5432" and prod["REDIS_PORT"] == "6379"
    assert prod["REDIS_TLS"] == "true"
    assert prod["REDIS_READER_HOST"].startswith("replica.")
    assert prod["SEARCH_ENDPOINT"].startswith(f"https://vpc-fp-{stack_run.stack}-search-")


def test_no_service_holds_the_master_password_only_the_bootstrap_job_reads_it(
    stack_run: StackRun,
) -> None:
    objects = kubernetes_objects(stack_run)
    externals = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o
        for o in objects
        if o["kind"] == "ExternalSecret"
    }
    app = app_namespace(stack_run)
    assert set(externals) == {
        (app, "api-credentials"),
        (app, "redis-credentials"),
        # The platform's own, in the monitoring namespace only.
        ("monitoring", "grafana-admin"),
        ("monitoring", "alert-receivers"),
        # Beside the gateway: the rate limiter's Redis token, and the operators' sign-in
        # client where they sign in.
        ("istio-ingress", "ratelimit-redis-credentials"),
        *([("istio-ingress", "operator-sso")] if signs_operators_in(stack_run) else []),
    }
    # The master secret is in no Kubernetes Secret: the bootstrap Job reads it itself, when
    # it runs (tests/workloads/test_database_bootstrap.py).
    assert ":secret:rds!cluster-" not in json.dumps(
        [o for o in objects if o["kind"] in ("ExternalSecret", "Secret")]
    )
    redis = externals[(app, "redis-credentials")]["spec"]["data"]
    assert redis == [
        {
            "secretKey": "auth-token",
            "remoteRef": {
                "key": f"financial-planning/{stack_run.stack}/redis-credentials",
                "property": "auth-token",
            },
        }
    ]


def test_each_database_service_connects_as_its_own_iam_user(stack_run: StackRun) -> None:
    objects = kubernetes_objects(stack_run)
    cluster_id = stack_run.one(CLUSTER).state["clusterResourceId"]
    users = {}
    for deployment in app_objects(stack_run, "Deployment").values():
        name = deployment["metadata"]["name"]
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert "DATABASE_PASSWORD" not in env and "DATABASE_USERNAME" not in env, name
        if "DATABASE_USER" in env:
            users[name] = env["DATABASE_USER"]["value"]
    assert users == {
        "financial-planning-api": "financial_planning_api",
        "simulation-service": "simulation_service",
        "user-service": "user_service",
        "banking-service": "banking_service",
        "notification-service": "notification_service",
        "document-service": "document_service",
    }
    for service, user in users.items():
        role = irsa_role(stack_run, app_namespace(stack_run), service)
        connect = [s for s in inline_policy(stack_run, role) if s["Action"] == "rds-db:connect"]
        assert connect == [
            {
                "Effect": "Allow",
                "Action": "rds-db:connect",
                "Resource": f"arn:aws:rds-db:us-east-1:123456789012:dbuser:{cluster_id}/{user}",
            }
        ]
    [job] = [
        o
        for o in objects
        if o["kind"] == "Job" and o["metadata"]["namespace"] == "database-bootstrap"
    ]
    [sql] = [
        o["data"]["users.sql"]
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["namespace"] == "database-bootstrap"
    ]
    for user in users.values():
        assert f"CREATE ROLE {user} LOGIN;" in sql and f"GRANT rds_iam TO {user};" in sql
    assert job["metadata"]["namespace"] == "database-bootstrap"


def test_no_credential_appears_in_plain_text(stack_run: StackRun, tmp_path: Path) -> None:
    passwords = stack_run.of_type("random:index/randomPassword:RandomPassword")
    # Redis's auth token and Grafana's admin password.
    assert len(passwords) == 2
    tokens = [PlatformMocks().computed_outputs(p.type, p.name, {}, "")["result"] for p in passwords]
    credentials = tokens + [
        secret_placeholder(f"financial-planning:{key}")
        for key in (
            "openaiApiKey",
            "plaidClientId",
            "plaidSecret",
            "alertPagerdutyRoutingKey",
            "alertSlackWebhookUrl",
            "alertHeartbeatUrl",
            *(["operatorOidcClientSecret"] if signs_operators_in(stack_run) else []),
        )
    ]
    inputs = json.dumps([r.to_json() for r in stack_run.resources])
    target = write_build(stack_run, tmp_path)
    rendered = "".join(p.read_text() for p in target.rglob("*") if p.is_file())
    for credential in credentials:
        assert credential not in inputs
        assert credential not in rendered
    # Where they do flow, they flow as secrets.
    assert stack_run.one(REDIS).inputs["authToken"] == "[secret]"
    assert inputs.count('"secretString": "[secret]"') == 4 + signs_operators_in(stack_run)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"database": {"instances": 2}},
            "data.database.instances: 2 is below production's 3 (a writer and two readers, one "
            "per zone)",
        ),
        (
            {"database": {"disasterRecovery": None}},
            "data.database.disasterRecovery: production copies its database backups to a second "
            "region",
        ),
        (
            {"database": {"disasterRecovery": {"region": "eu-west-1"}}},
            "data.database.disasterRecovery.region: eu-west-1 is the stack's own region",
        ),
        (
            {"database": {"disasterRecovery": {"retentionDays": 10}}},
            "data.database.disasterRecovery.retentionDays: 10 keeps copies for less than the "
            "backups' own 30 days",
        ),
        (
            {"database": {"disasterRecovery": {"everyHours": 5}}},
            "data.database.disasterRecovery.everyHours: 5 is invalid",
        ),
        ({"cache": {"nodes": 1}}, "data.cache.nodes: 1 is below production's minimum of 2"),
        ({"search": {"dedicatedMasterType": None}}, "data.search: production needs zone"),
        (
            {"search": {"instanceCount": 5}},
            "data.search.instanceCount: 5 nodes cannot be balanced over 2 or 3 zones",
        ),
        (
            {"database": {"engineVersion": "16"}},
            "data.database.engineVersion: '16' is invalid: string should match pattern",
        ),
        (
            {"database": {"readReplicas": 2}},
            "data.database.readReplicas: unknown setting (allowed: engineVersion,",
        ),
    ],
)
def test_data_settings_are_checked(data: dict[str, object], expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from_values("production", deep_merge(BASE, {"data": data}))
    assert str(caught.value).startswith(expected), str(caught.value)


def test_more_readers_are_a_setting_and_the_master_secret_is_still_one() -> None:
    assert settings_from_values("staging", BASE).data.database.readers == 0
    run = run_with("production", data={"database": {"instances": 5}})
    zones = [i["availabilityZone"] for i in instances(run)]
    assert len(zones) == 5 and set(zones) == {"us-east-1a", "us-east-1b", "us-east-1c"}
    role = irsa_role(run, "external-secrets-system", "external-secrets")
    # The stack's secrets (the operators' sign-in client's among them); the master secret,
    # one for all the instances, only the database bootstrap reads.
    assert len(inline_policy(run, role)[0]["Resource"]) == 5
    assert len(run.one(CLUSTER).state["masterUserSecrets"]) == 1


@pytest.mark.parametrize(("stack", "days"), [("production", 7), ("staging", 30)])
def test_the_master_secret_rotates_on_the_stacks_schedule(
    runs: dict[str, StackRun], stack: str, days: int
) -> None:
    run = runs[stack]
    rotation = run.one("aws:secretsmanager/secretRotation:SecretRotation").inputs
    master = run.one(CLUSTER).state["masterUserSecrets"][0]["secretArn"]
    assert rotation["secretId"] == master
    assert rotation["rotationRules"] == {"automaticallyAfterDays": days}
    # Managed rotation: Aurora rotates, no Lambda of ours.
    assert "rotationLambdaArn" not in rotation
