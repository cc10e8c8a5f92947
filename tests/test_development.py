"""The development stack: the application and an in-cluster data tier on an existing cluster.

No AWS at all; every object goes to the stack's kubeconfig context; the services keep the EKS
stacks' configuration contract; every Secret a pod reads exists, with the key it reads; no
secret value appears in what is rendered; bad development settings fail with one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.addons.base import ClusterAddon, HelmAddon, HelmAddonArgs
from components.shared.helm import HelmChart
from offline.engine import SECRET, StackRun, run_program
from offline.synth import kubernetes_objects, write_build
from stacks import (
    LocalStackSettings,
    SettingsError,
    any_settings_from_values,
    settings_from_values,
)
from stacks.catalog import database_user
from stacks.environments import DEFAULTS, LOCAL_ENVIRONMENTS
from tests.conftest import SEED_PORTS, run_with
from tests.lookup import helm_release, objects, pod_spec
from tests.test_pod_security import pod_problems, values_problems

STACK = "development"
APP = "financial-planning-dev"
DATA = "financial-planning-dev-data"
# Services with a PostgreSQL user (the catalog's dataStores), as literals.
DATABASE_SERVICES = {
    "financial-planning-api",
    "simulation-service",
    "user-service",
    "banking-service",
    "notification-service",
    "document-service",
}


@pytest.fixture(scope="module")
def development(runs: dict[str, StackRun]) -> StackRun:
    return runs[STACK]


def in_namespace(run: StackRun, kind: str, namespace: str) -> dict[str, dict[str, Any]]:
    return {
        name: o for name, o in objects(run, kind).items() if o["metadata"]["namespace"] == namespace
    }


def test_development_is_the_one_environment_without_aws() -> None:
    assert LOCAL_ENVIRONMENTS == (STACK,)


def test_nothing_touches_aws_and_every_object_uses_the_stack_context(
    development: StackRun,
) -> None:
    assert [
        r.type for r in development.resources if r.type.startswith(("aws:", "pulumi:providers:aws"))
    ] == []
    [provider] = development.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["context"] == "kind-financial-planning"
    assert "kubeconfig" not in provider.inputs
    kubernetes = [r for r in development.resources if r.custom and r.type.startswith("kubernetes:")]
    assert len(kubernetes) > 50
    assert {r.provider.rsplit("::", 1)[0] for r in kubernetes} == {provider.urn}


def test_the_services_run_one_replica_on_any_node_with_no_autoscalers(
    development: StackRun,
) -> None:
    deployments = in_namespace(development, "Deployment", APP)
    assert {n: d["spec"]["replicas"] for n, d in deployments.items()} == dict.fromkeys(
        SEED_PORTS, 1
    )
    for name, deployment in deployments.items():
        spec = pod_spec(deployment)
        # No node groups, no zone labels, no GPUs: a strict zone spread would leave pods Pending.
        assert "nodeSelector" not in spec, name
        assert spec["tolerations"] == [], name
        assert [c["topologyKey"] for c in spec["topologySpreadConstraints"]] == [
            "kubernetes.io/hostname"
        ], name
        [container] = spec["containers"]
        assert container["ports"][0]["containerPort"] == SEED_PORTS[name]
        assert "nvidia.com/gpu" not in json.dumps(container["resources"])
        # The stack file asks for the placeholder image (tests/test_devloop.py): the product's
        # own images are not built in this repository.
        assert container["image"] == "localhost:5001/financial-planning/placeholder-service:dev"
        assert pod_problems(name, spec) == []
    kinds = {o["kind"] for o in kubernetes_objects(development)}
    assert not kinds & {"HorizontalPodAutoscaler", "VerticalPodAutoscaler", "PodDisruptionBudget"}


def test_namespaces_are_restricted_and_outside_any_mesh(development: StackRun) -> None:
    namespaces = objects(development, "Namespace")
    assert set(namespaces) == {APP, DATA, "cnpg-system"}
    for name, namespace in namespaces.items():
        labels = namespace["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted", name
        assert labels["istio-injection"] == "disabled", name


def test_configuration_keeps_the_eks_contract(development: StackRun, production: StackRun) -> None:
    dev_config = in_namespace(development, "ConfigMap", APP)["financial-planning-config"]
    prod_config = objects(production, "ConfigMap")["financial-planning-config"]
    # The same keys the services read on EKS, less what only AWS provides and where spans go
    # (no collector here: the SDKs export nothing).
    exporter = {k for k in prod_config["data"] if k.startswith("OTEL_")} - {"OTEL_TRACES_EXPORTER"}
    assert set(dev_config["data"]) == set(prod_config["data"]) - {
        "AWS_REGION",
        "AWS_STS_REGIONAL_ENDPOINTS",
        "AWS_S3_US_EAST_1_REGIONAL_ENDPOINT",
        "DOCUMENTS_BUCKET",
        *exporter,
    }
    data = dev_config["data"]
    assert (data["OTEL_TRACES_EXPORTER"], prod_config["data"]["OTEL_TRACES_EXPORTER"]) == (
        "none",
        "otlp",
    )
    assert data["DATABASE_HOST"] == f"postgres-rw.{DATA}.svc.cluster.local"
    assert data["DATABASE_READ_HOST"] == f"postgres-r.{DATA}.svc.cluster.local"
    assert (data["DATABASE_PORT"], data["DATABASE_AUTH"]) == ("5432", "password")
    assert data["REDIS_HOST"] == f"valkey.{DATA}.svc.cluster.local"
    assert (
        data["SEARCH_ENDPOINT"] == f"http://opensearch-cluster-master.{DATA}.svc.cluster.local:9200"
    )
    assert data["ENVIRONMENT"] == STACK


def test_postgres_has_one_login_per_database_service_with_its_own_secret(
    development: StackRun,
) -> None:
    [cluster] = objects(development, "Cluster").values()
    spec = cluster["spec"]
    assert cluster["metadata"]["namespace"] == DATA
    # Production's engine version, so that what works here works there.
    engine = DEFAULTS["production"]["data"]["database"]["engineVersion"]
    assert spec["imageName"] == f"ghcr.io/cloudnative-pg/postgresql:{engine}"
    assert spec["enableSuperuserAccess"] is False
    roles = {r["name"]: r for r in spec["managed"]["roles"]}
    assert set(roles) == {database_user(s) for s in DATABASE_SERVICES}
    secrets = in_namespace(development, "Secret", DATA)
    referenced = [spec["bootstrap"]["initdb"]["secret"]["name"]]
    for role in roles.values():
        assert role["login"] and role["inRoles"] == [spec["bootstrap"]["initdb"]["owner"]]
        referenced.append(role["passwordSecret"]["name"])
    assert len(set(referenced)) == len(referenced)
    for name in referenced:
        # CloudNativePG reads basic-auth Secrets in the Cluster's namespace.
        assert secrets[name]["type"] == "kubernetes.io/basic-auth", name
        assert set(secrets[name]["stringData"]) == {"username", "password"}, name


def test_every_secret_a_pod_reads_exists_with_its_key(development: StackRun) -> None:
    secrets = in_namespace(development, "Secret", APP)
    read = 0
    for name, deployment in in_namespace(development, "Deployment", APP).items():
        env = {e["name"]: e for e in pod_spec(deployment)["containers"][0]["env"]}
        for variable, entry in env.items():
            reference = entry.get("valueFrom", {}).get("secretKeyRef")
            if reference:
                read += 1
                assert reference["key"] in secrets[reference["name"]]["stringData"], (
                    name,
                    variable,
                )
        uses_database = name in DATABASE_SERVICES
        assert ("DATABASE_PASSWORD" in env) == uses_database, name
        if uses_database:
            assert env["DATABASE_USER"]["value"] == database_user(name)
            assert env["DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == (
                f"database-{name}"
            )
    assert read >= len(DATABASE_SERVICES) + 4


def test_no_secret_value_is_rendered(development: StackRun, tmp_path: Path) -> None:
    manifests = write_build(development, tmp_path) / "manifests"
    text = "\n".join(p.read_text() for p in sorted(manifests.glob("*.yaml")))
    inventory = (tmp_path / STACK / "inventory.json").read_text()
    passwords = [
        r.state["result"] for r in development.of_type("random:index/randomPassword:RandomPassword")
    ]
    assert len(passwords) == len(DATABASE_SERVICES) + 2  # and the owner's, and Redis's
    for value in [*passwords, "offline-placeholder-for"]:
        assert value not in text and value not in inventory, value
    for secret in objects(development, "Secret").values():
        assert set(secret["stringData"].values()) == {SECRET}


def test_the_data_charts_are_pinned_and_restricted(development: StackRun) -> None:
    pins = {
        r.inputs["chart"]: (r.inputs["version"], r.inputs["namespace"])
        for r in development.of_type("kubernetes:helm.sh/v3:Release")
    }
    assert pins == {
        "cloudnative-pg": ("0.29.0", "cnpg-system"),
        "valkey": ("0.11.0", DATA),
        "opensearch": ("3.6.0", DATA),
    }
    for chart in pins:
        values = helm_release(development, chart).inputs["values"]
        assert values_problems(chart, values) == []
    valkey = helm_release(development, "valkey").inputs["values"]
    assert valkey["auth"]["enabled"] is True
    assert valkey["auth"]["usersExistingSecret"] in in_namespace(development, "Secret", DATA)
    opensearch = helm_release(development, "opensearch").inputs["values"]
    # Neither a root chown nor a privileged sysctl init container.
    assert opensearch["persistence"]["enableInitChown"] is False
    assert opensearch["sysctlInit"]["enabled"] is False


def test_a_storage_class_reaches_every_volume(development: StackRun) -> None:
    def classes(run: StackRun) -> list[Any]:
        [cluster] = objects(run, "Cluster").values()
        [cache] = [
            v
            for v in pod_spec(objects(run, "Deployment")["ml-service"])["volumes"]
            if v["name"] == "cache"
        ]
        claim = cache["ephemeral"]["volumeClaimTemplate"]
        valkey = helm_release(run, "valkey").inputs["values"]["dataStorage"]
        opensearch = helm_release(run, "opensearch").inputs["values"]["persistence"]
        return [
            cluster["spec"]["storage"].get("storageClass"),
            claim["spec"].get("storageClassName"),
            valkey.get("className"),
            opensearch.get("storageClass"),
        ]

    # Unset: the cluster's default class.
    assert classes(development) == [None] * 4
    assert classes(run_with(STACK, storageClass="local-path")) == ["local-path"] * 4


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"services": {"ml-service": {"workloadClass": "gpu", "gpus": 1}}},
            "services.ml-service.workloadClass: a local cluster has no GPU nodes",
        ),
        (
            {
                "services": {
                    "user-service": {
                        "replicas": None,
                        "autoscaling": {"minReplicas": 1, "maxReplicas": 2},
                    }
                }
            },
            "services.user-service.autoscaling: a development stack runs no metrics-server",
        ),
        (
            {"services": {"document-service": {"documentsBucket": True}}},
            "services.document-service.documentsBucket: a development stack has no S3 bucket",
        ),
        ({"region": "us-east-1"}, "region: unknown setting (allowed: environment, kubeContext"),
        ({"kubeContext": "kind cluster"}, "kubeContext: 'kind cluster' is invalid"),
        ({"imageRegistry": "Localhost:5001"}, "imageRegistry: 'Localhost:5001' is invalid"),
        ({"kubernetesVersion": "1.20"}, "kubernetesVersion: '1.20' is not supported"),
        (
            {"data": {"database": {"engineVersion": "9.6"}}},
            "data.database.engineVersion: '9.6' is invalid",
        ),
        ({"data": {"search": {"heapMib": 64}}}, "data.search.heapMib: 64 is invalid"),
    ],
)
def test_bad_development_settings_fail_with_one_line(values: dict[str, Any], message: str) -> None:
    base = {"kubeContext": "kind-dev", "services": {}}
    with pytest.raises(SettingsError) as raised:
        any_settings_from_values(STACK, {**base, **values})
    lines = str(raised.value).splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines


def test_the_development_defaults_are_valid_and_need_only_a_context() -> None:
    settings = any_settings_from_values(STACK, {"kubeContext": "minikube"})
    assert isinstance(settings, LocalStackSettings)
    assert settings.kube_context == "minikube"
    # Placeholders run only where a stack file says so.
    assert settings.placeholder_images is False
    with pytest.raises(SettingsError, match=r"^kubeContext: required setting is missing$"):
        any_settings_from_values(STACK, {})
    with pytest.raises(SettingsError, match="deploys onto an existing cluster, not EKS"):
        settings_from_values(STACK, {"kubeContext": "minikube"})


class _CallsAws(ClusterAddon):
    name = "calls-aws"
    chart = HelmChart(chart="sample", version="1.0.0", repository="https://example.test/charts")
    namespace = "sample-system"
    service_account = "sample"

    @property
    def enabled(self) -> bool:
        return True

    def values(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        return {}

    def irsa_policy(self) -> str:
        return json.dumps({"Version": "2012-10-17", "Statement": []})


def test_an_add_on_that_calls_aws_is_refused_without_an_eks_cluster() -> None:
    def program() -> None:
        HelmAddon("calls-aws", HelmAddonArgs(addon=_CallsAws(), oidc=None))

    with pytest.raises(Exception, match="calls-aws calls AWS: it needs an EKS cluster"):
        run_program(program, project="financial-planning", stack="harness")
