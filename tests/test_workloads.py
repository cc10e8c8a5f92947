"""The eight microservices and what they stand on: namespaces, config, secrets, storage, images."""

from __future__ import annotations

import json
from typing import Any

import pytest

from offline.engine import RecordedResource, StackRun, run_stack, stack_config
from offline.synth import kubernetes_objects
from stacks import SettingsError
from tests.lookup import (
    helm_release,
    inline_policy,
    irsa_role,
    key_by_alias,
    policy,
)

SEED_PORTS = {
    "financial-planning-api": 8000,
    "simulation-service": 8001,
    "user-service": 8002,
    "banking-service": 8003,
    "ml-service": 8004,
    "notification-service": 8005,
    "document-service": 8006,
    "graphql-gateway": 4000,
}
NAMESPACES = {"production": "financial-planning", "staging": "financial-planning-staging"}


def objects(run: StackRun, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in kubernetes_objects(run) if o["kind"] == kind}


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def test_eight_deployments_and_services_on_the_seed_ports(stack_run: StackRun) -> None:
    deployments = objects(stack_run, "Deployment")
    services = objects(stack_run, "Service")
    assert set(deployments) == set(services) == set(SEED_PORTS)
    for name, port in SEED_PORTS.items():
        [container] = pod_spec(deployments[name])["containers"]
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        [service_port] = services[name]["spec"]["ports"]
        assert service_port["port"] == port
        assert service_port["targetPort"] == "http"
        assert service_port["name"].startswith("http-")
        assert services[name]["metadata"]["namespace"] == NAMESPACES[stack_run.stack]


def test_every_deployment_runs_restricted(stack_run: StackRun) -> None:
    for name, deployment in objects(stack_run, "Deployment").items():
        pod = pod_spec(deployment)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        [container] = pod["containers"]
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["runAsNonRoot"] is True and context["runAsUser"] > 10000
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}} in pod["volumes"]
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[kind]["httpGet"] == {"path": "/health", "port": "http"}, name
        assert set(container["resources"]["requests"]) >= {"cpu", "memory"}
        assert set(container["resources"]["limits"]) >= {"cpu", "memory"}
        assert container["lifecycle"]["preStop"]["sleep"]["seconds"] > 0
        assert (
            pod["terminationGracePeriodSeconds"]
            > container["lifecycle"]["preStop"]["sleep"]["seconds"]
        )
        keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


def test_services_run_on_their_workload_class(production: StackRun) -> None:
    deployments = objects(production, "Deployment")
    classes = {
        name: pod_spec(d)["nodeSelector"]["workload-class"] for name, d in deployments.items()
    }
    assert classes["ml-service"] == "gpu"
    assert classes["simulation-service"] == "compute"
    assert classes["document-service"] == "memory"
    assert {
        classes[n]
        for n in (
            "financial-planning-api",
            "user-service",
            "banking-service",
            "notification-service",
            "graphql-gateway",
        )
    } == {"general"}


def test_ml_service_requests_a_gpu_and_tolerates_the_gpu_taint(stack_run: StackRun) -> None:
    ml = pod_spec(objects(stack_run, "Deployment")["ml-service"])
    resources = ml["containers"][0]["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == "1"
    assert ml["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
    ]
    others = [pod_spec(d) for n, d in objects(stack_run, "Deployment").items() if n != "ml-service"]
    assert all(not p["tolerations"] for p in others)
    assert all("nvidia.com/gpu" not in p["containers"][0]["resources"]["limits"] for p in others)


def test_pod_disruption_budgets_exactly_where_replicas_allow_one(stack_run: StackRun) -> None:
    deployments = objects(stack_run, "Deployment")
    budgets = objects(stack_run, "PodDisruptionBudget")
    multi = {name for name, d in deployments.items() if d["spec"]["replicas"] > 1}
    assert set(budgets) == multi
    assert len(multi) >= 5
    for name in multi:
        assert budgets[name]["spec"]["maxUnavailable"] == 1
        # A rollout never takes a pod away before its replacement is ready.
        assert deployments[name]["spec"]["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        }


def test_staging_runs_fewer_replicas(production: StackRun, staging: StackRun) -> None:
    prod = {n: d["spec"]["replicas"] for n, d in objects(production, "Deployment").items()}
    stag = {n: d["spec"]["replicas"] for n, d in objects(staging, "Deployment").items()}
    assert all(stag[name] <= prod[name] for name in prod)
    assert sum(stag.values()) < sum(prod.values())
    assert prod["financial-planning-api"] == 3 and prod["banking-service"] == 3


def test_read_write_once_claims_only_in_single_replica_deployments(stack_run: StackRun) -> None:
    claims = objects(stack_run, "PersistentVolumeClaim")
    assert "ml-service-data" in claims
    mounted = {}
    for deployment in objects(stack_run, "Deployment").values():
        for volume in pod_spec(deployment)["volumes"]:
            if "persistentVolumeClaim" in volume:
                mounted[volume["persistentVolumeClaim"]["claimName"]] = deployment
    assert set(mounted) == set(claims)
    for claim_name, deployment in mounted.items():
        if "ReadWriteOnce" in claims[claim_name]["spec"]["accessModes"]:
            assert deployment["spec"]["replicas"] == 1
            assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert claims["ml-service-data"]["spec"]["storageClassName"] == "gp3"


def test_namespaces_are_labelled_for_pod_security_and_istio(stack_run: StackRun) -> None:
    namespaces = objects(stack_run, "Namespace")
    app = namespaces[NAMESPACES[stack_run.stack]]["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert app[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    assert app["istio-injection"] == "enabled"
    operator = namespaces["external-secrets-system"]["metadata"]["labels"]
    assert operator["pod-security.kubernetes.io/enforce"] == "restricted"


def test_config_map_holds_environment_and_service_urls(stack_run: StackRun) -> None:
    [config] = objects(stack_run, "ConfigMap").values()
    data = config["data"]
    namespace = NAMESPACES[stack_run.stack]
    assert data["ENVIRONMENT"] == stack_run.stack
    assert data["USER_SERVICE_URL"] == f"http://user-service.{namespace}.svc.cluster.local:8002"
    assert data["GRAPHQL_GATEWAY_URL"].endswith(":4000")
    assert data["DOCUMENTS_BUCKET"] == f"financial-planning-{stack_run.stack}-documents"
    for deployment in objects(stack_run, "Deployment").values():
        container = pod_spec(deployment)["containers"][0]
        assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
        assert all("value" in e or "valueFrom" in e for e in container["env"])


def test_secrets_reach_pods_only_by_reference(stack_run: StackRun) -> None:
    env = {
        n: pod_spec(d)["containers"][0]["env"] for n, d in objects(stack_run, "Deployment").items()
    }
    refs = {
        name: {
            e["name"]: e["valueFrom"]["secretKeyRef"]
            for e in variables
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        for name, variables in env.items()
    }
    assert refs["banking-service"] == {
        "PLAID_CLIENT_ID": {"name": "api-credentials", "key": "plaid-client-id"},
        "PLAID_SECRET": {"name": "api-credentials", "key": "plaid-secret"},
        "DATABASE_USERNAME": {"name": "database-credentials", "key": "username"},
        "DATABASE_PASSWORD": {"name": "database-credentials", "key": "password"},
    }
    assert refs["ml-service"] == {
        "OPENAI_API_KEY": {"name": "api-credentials", "key": "openai-api-key"}
    }
    assert not objects(stack_run, "Secret"), "no Kubernetes Secret is ever rendered"


def api_credentials(run: StackRun) -> RecordedResource:
    remote_key = f"financial-planning/{run.stack}/api-credentials"
    [secret] = [
        s for s in run.of_type("aws:secretsmanager/secret:Secret") if s.inputs["name"] == remote_key
    ]
    return secret


def test_external_secret_and_its_store(stack_run: StackRun) -> None:
    [store] = objects(stack_run, "ClusterSecretStore").values()
    assert store["spec"]["provider"] == {
        "aws": {"service": "SecretsManager", "region": "us-east-1"}
    }
    assert store["spec"]["conditions"] == [{"namespaces": [NAMESPACES[stack_run.stack]]}]
    external = objects(stack_run, "ExternalSecret")["api-credentials"]
    assert external["spec"]["secretStoreRef"] == {
        "kind": "ClusterSecretStore",
        "name": store["metadata"]["name"],
    }
    remote_key = f"financial-planning/{stack_run.stack}/api-credentials"
    assert external["spec"]["data"] == [
        {"secretKey": key, "remoteRef": {"key": remote_key, "property": key}}
        for key in ("openai-api-key", "plaid-client-id", "plaid-secret")
    ]
    secret = api_credentials(stack_run)
    assert secret.inputs["name"] == remote_key
    assert secret.inputs["kmsKeyId"].startswith("arn:aws:kms:")
    versions = stack_run.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert len(versions) == 2
    assert all(v.inputs["secretString"] == "[secret]" for v in versions)


def test_external_secrets_operator_is_pinned_and_reads_only_this_stacks_secrets(
    stack_run: StackRun,
) -> None:
    release = helm_release(stack_run, "external-secrets").inputs
    # The README's pinned version, stated here: a chart upgrade must change this test too.
    assert release["version"] == "0.19.2"
    assert release["repositoryOpts"]["repo"] == "https://charts.external-secrets.io"
    assert release["namespace"] == "external-secrets-system"
    values = release["values"]
    role = irsa_role(stack_run, "external-secrets-system", "external-secrets")
    assert values["serviceAccount"]["name"] == "external-secrets"
    assert values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(role.id)
    statements = inline_policy(stack_run, role)
    assert statements[0]["Action"] == [
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
    ]
    prefix = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
    readable = statements[0]["Resource"]
    # Its own two secrets and the database's master secret: nothing else, no wildcard.
    assert len(readable) == 3 and not any("*" in arn for arn in readable)
    names = sorted(arn.removeprefix(prefix).rsplit("-", 1)[0] for arn in readable)
    assert names[:2] == [
        f"financial-planning/{stack_run.stack}/api-credentials",
        f"financial-planning/{stack_run.stack}/redis-credentials",
    ]
    assert names[2].startswith("rds!db-")
    keys = statements[1]["Resource"]
    assert len(keys) == 2
    assert statements[1]["Action"] == "kms:Decrypt"
    assert statements[1]["Condition"]["StringEquals"]["kms:ViaService"] == (
        "secretsmanager.us-east-1.amazonaws.com"
    )


def test_storage_classes_encrypt_with_the_volume_key(stack_run: StackRun) -> None:
    classes = objects(stack_run, "StorageClass")
    assert set(classes) == {"gp3", "gp3-retain"}
    defaults = [
        n
        for n, c in classes.items()
        if c["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    ]
    assert defaults == ["gp3"]
    key = key_by_alias(stack_run, f"financial-planning-{stack_run.stack}-volumes")
    for storage_class in classes.values():
        assert storage_class["provisioner"] == "ebs.csi.aws.com"
        assert storage_class["parameters"]["encrypted"] == "true"
        assert storage_class["parameters"]["kmsKeyId"].endswith(key.id)
        assert storage_class["volumeBindingMode"] == "WaitForFirstConsumer"
    # The EBS CSI driver may use that key, and only for AWS resources when granting.
    grants = inline_policy(stack_run, irsa_role(stack_run, "kube-system", "ebs-csi-controller-sa"))
    assert all(s["Resource"].endswith(key.id) for s in grants)


def test_documents_bucket_is_private_encrypted_versioned_and_tls_only(
    stack_run: StackRun,
) -> None:
    bucket = stack_run.one("aws:s3/bucket:Bucket")
    assert bucket.inputs["bucket"] == f"financial-planning-{stack_run.stack}-documents"
    assert bucket.protect is (stack_run.stack == "production")
    block = stack_run.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(
        block[k] is True
        for k in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    sse = stack_run.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs["rules"][0]
    assert sse["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    versioning = stack_run.one("aws:s3/bucketVersioning:BucketVersioning").inputs
    assert versioning["versioningConfiguration"]["status"] == "Enabled"
    [deny] = policy(stack_run.one("aws:s3/bucketPolicy:BucketPolicy"))["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_only_document_service_reaches_the_bucket(stack_run: StackRun) -> None:
    role = irsa_role(stack_run, NAMESPACES[stack_run.stack], "document-service")
    accounts = objects(stack_run, "ServiceAccount")
    annotated = {
        name
        for name, sa in accounts.items()
        if "eks.amazonaws.com/role-arn" in sa["metadata"].get("annotations", {})
    }
    assert annotated == {"document-service"}
    assert accounts["document-service"]["metadata"]["annotations"][
        "eks.amazonaws.com/role-arn"
    ].endswith(role.id)
    assert all(sa["automountServiceAccountToken"] is False for sa in accounts.values())


def test_one_immutable_scanned_repository_per_service(stack_run: StackRun) -> None:
    repositories = stack_run.of_type("aws:ecr/repository:Repository")
    names = {r.inputs["name"].rsplit("/", 1)[1]: r for r in repositories}
    assert set(names) == set(SEED_PORTS)
    for repository in repositories:
        assert repository.inputs["imageTagMutability"] == "IMMUTABLE"
        assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    lifecycles = stack_run.of_type("aws:ecr/lifecyclePolicy:LifecyclePolicy")
    assert len(lifecycles) == 8
    rules = json.loads(lifecycles[0].inputs["policy"])["rules"]
    assert [r["selection"]["tagStatus"] for r in rules] == ["untagged", "any"]
    # Release tags come from the stack files.
    default_tag = {"production": "1.4.2", "staging": "1.5.0-rc.1"}[stack_run.stack]
    tags = {"ml-service": "1.3.0"} if stack_run.stack == "production" else {}
    for name, deployment in objects(stack_run, "Deployment").items():
        image = pod_spec(deployment)["containers"][0]["image"]
        assert image == (
            f"123456789012.dkr.ecr.us-east-1.amazonaws.com/"
            f"financial-planning-{stack_run.stack}/{name}:{tags.get(name, default_tag)}"
        )


def test_network_policies_deny_by_default_and_open_each_service_port(
    stack_run: StackRun,
) -> None:
    policies = objects(stack_run, "NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress"],
    }
    for name, port in SEED_PORTS.items():
        rule = policies[f"{name}-ingress"]["spec"]["ingress"]
        assert rule[0]["ports"] == [{"port": port, "protocol": "TCP"}]


def resource_inputs(run: StackRun) -> str:
    return json.dumps([r.to_json() for r in run.resources])


@pytest.mark.parametrize(
    "needle",
    [
        "offline-placeholder-for-financial-planning-openaiApiKey",
        "offline-placeholder-for-financial-planning-plaidSecret",
    ],
)
def test_secret_config_values_appear_in_no_resource_input(stack_run: StackRun, needle: str) -> None:
    assert needle not in resource_inputs(stack_run)


def test_a_secret_set_in_plain_text_is_rejected() -> None:
    config, secret_keys = stack_config("staging")
    secret_keys.remove("financial-planning:plaidSecret")
    with pytest.raises(
        SettingsError,
        match=r"^plaidSecret: is stored in plain text \(set it "
        r"again with: pulumi config set --secret plaidSecret <value>\)$",
    ):
        run_stack("staging", config=config, secret_keys=secret_keys)


def test_a_missing_secret_is_rejected_with_the_command_to_set_it() -> None:
    config, secret_keys = stack_config("staging")
    del config["financial-planning:openaiApiKey"]
    with pytest.raises(SettingsError, match=r"^openaiApiKey: required secret is missing"):
        run_stack("staging", config=config, secret_keys=secret_keys)
