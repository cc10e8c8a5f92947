"""The eight microservices: ports, pod security, placement, disruption, config and secrets."""

from __future__ import annotations

import json

import pytest

from offline.engine import StackRun, run_stack, stack_config
from stacks import SettingsError
from tests.conftest import APP_NAMESPACES, SEED_PORTS, run_with
from tests.lookup import app_deployments, app_namespace, app_objects, objects, pod_spec, waits_for


def test_eight_deployments_and_services_on_the_seed_ports(stack_run: StackRun) -> None:
    deployments = app_objects(stack_run, "Deployment")
    services = app_objects(stack_run, "Service")
    assert set(deployments) == set(services) == set(SEED_PORTS)
    for name, port in SEED_PORTS.items():
        [container] = pod_spec(deployments[name])["containers"]
        # The service port, and /metrics on a port of its own (the metrics contract's 9464).
        assert container["ports"] == [
            {"name": "http", "containerPort": port, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9464, "protocol": "TCP"},
        ]
        service_port, metrics_port = services[name]["spec"]["ports"]
        assert service_port["port"] == port
        assert service_port["targetPort"] == "http"
        assert service_port["name"].startswith("http-")
        assert (metrics_port["port"], metrics_port["targetPort"]) == (9464, "metrics")
        assert services[name]["metadata"]["namespace"] == app_namespace(stack_run)


def test_every_deployment_runs_restricted(stack_run: StackRun) -> None:
    for name, deployment in app_objects(stack_run, "Deployment").items():
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
    deployments = app_objects(production, "Deployment")
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
    ml = pod_spec(app_objects(stack_run, "Deployment")["ml-service"])
    resources = ml["containers"][0]["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == "1"
    assert ml["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
    ]
    others = [
        pod_spec(d) for n, d in app_objects(stack_run, "Deployment").items() if n != "ml-service"
    ]
    assert all(not p["tolerations"] for p in others)
    assert all("nvidia.com/gpu" not in p["containers"][0]["resources"]["limits"] for p in others)


def minimum_replicas(run: StackRun) -> dict[str, int]:
    """Each Deployment's fewest replicas: its HPA's minimum, or its own fixed count."""
    hpas = objects(run, "HorizontalPodAutoscaler")
    return {
        name: hpas[name]["spec"]["minReplicas"] if name in hpas else d["spec"]["replicas"]
        for name, d in app_objects(run, "Deployment").items()
    }


def test_pod_disruption_budgets_exactly_where_replicas_allow_one(stack_run: StackRun) -> None:
    deployments = app_objects(stack_run, "Deployment")
    budgets = app_objects(stack_run, "PodDisruptionBudget")
    multi = {name for name, count in minimum_replicas(stack_run).items() if count > 1}
    assert set(budgets) == multi
    # In production every service runs two or more replicas at its lowest (the request path's
    # HA rule, ml-service included); staging runs its GPU service once.
    assert len(multi) == 8 if stack_run.stack == "production" else len(multi) >= 4
    for name in multi:
        assert budgets[name]["spec"]["maxUnavailable"] == 1
        # A rollout never takes a pod away before its replacement is ready.
        assert deployments[name]["spec"]["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        }


def test_staging_runs_fewer_replicas(production: StackRun, staging: StackRun) -> None:
    prod, stag = minimum_replicas(production), minimum_replicas(staging)
    assert all(stag[name] <= prod[name] for name in prod)
    assert sum(stag.values()) < sum(prod.values())
    assert prod["financial-planning-api"] == 3 and prod["banking-service"] == 3


def test_no_service_volume_ties_a_pod_to_a_zone(stack_run: StackRun) -> None:
    # The cluster autoscaler models a multi-zone group as its first zone: a pod bound to a zonal
    # EBS volume in another zone never gets a node from zero (kubernetes/autoscaler
    # cluster-autoscaler/cloudprovider/aws/README.md, "Common Notes and Gotchas", at
    # cluster-autoscaler-1.35.2). The GPU group spans three zones and starts at zero: ML's model
    # cache is a generic ephemeral volume, made in the zone the pod lands in and deleted with it.
    assert objects(stack_run, "PersistentVolumeClaim") == {}
    deployments = app_objects(stack_run, "Deployment")
    for name, deployment in deployments.items():
        for volume in pod_spec(deployment)["volumes"]:
            assert "persistentVolumeClaim" not in volume, name
    ml = pod_spec(deployments["ml-service"])
    [cache] = [v for v in ml["volumes"] if v["name"] == "cache"]
    template = cache["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert template["accessModes"] == ["ReadWriteOnce"]
    assert template["storageClassName"] == "gp3"
    size = stack_run.namespace["settings"].services["ml-service"].cache_volume.size_gib
    assert template["resources"] == {"requests": {"storage": f"{size}Gi"}}
    [container] = ml["containers"]
    assert {"name": "cache", "mountPath": "/models"} in container["volumeMounts"]
    # gp3 binds WaitForFirstConsumer: the volume is made where the scheduler puts the pod.
    [gp3] = [
        c for c in objects(stack_run, "StorageClass").values() if c["metadata"]["name"] == "gp3"
    ]
    assert gp3["volumeBindingMode"] == "WaitForFirstConsumer"
    # Its GPU group may hold a second node (maxSize 5 in production, 2 in staging): a rollout
    # or a Reloader restart starts the new pod, on its own cache volume, before it stops the
    # old one, which keeps serving through the model download.
    assert stack_run.namespace["settings"].node_groups.gpu.max_size >= 2
    assert deployments["ml-service"]["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }


def test_a_gpu_service_on_a_one_node_group_is_replaced_not_rolled() -> None:
    # Negative control: with maxSize 1 a surge pod has no node to start on (kept Pending, the
    # rollout stuck), so the pod is replaced. The zone-loss check then refuses maxSize 1 while
    # ml-service runs a replica; with none it is allowed.
    run = run_with(
        "staging",
        nodeGroups={"gpu": {"maxSize": 1}},
        services={"ml-service": {"replicas": 0}},
    )
    ml = app_objects(run, "Deployment")["ml-service"]
    assert ml["spec"]["strategy"] == {"type": "Recreate"}


def test_each_stack_has_its_own_application_namespace(
    production: StackRun, staging: StackRun
) -> None:
    assert app_namespace(production) == APP_NAMESPACES["production"] == "financial-planning"
    assert app_namespace(staging) == APP_NAMESPACES["staging"]
    assert objects(staging, "Namespace")["financial-planning-staging"]


def test_namespaces_are_labelled_for_pod_security_and_istio(stack_run: StackRun) -> None:
    namespaces = objects(stack_run, "Namespace")
    app = namespaces[app_namespace(stack_run)]["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert app[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    assert app["istio-injection"] == "enabled"
    operator = namespaces["external-secrets-system"]["metadata"]["labels"]
    assert operator["pod-security.kubernetes.io/enforce"] == "restricted"


def test_config_map_holds_environment_and_service_urls(stack_run: StackRun) -> None:
    config = objects(stack_run, "ConfigMap")["financial-planning-config"]
    data = config["data"]
    namespace = app_namespace(stack_run)
    assert data["ENVIRONMENT"] == stack_run.stack
    assert data["USER_SERVICE_URL"] == f"http://user-service.{namespace}.svc.cluster.local:8002"
    assert data["GRAPHQL_GATEWAY_URL"].endswith(":4000")
    assert data["DOCUMENTS_BUCKET"] == f"financial-planning-{stack_run.stack}-documents"
    for deployment in app_objects(stack_run, "Deployment").values():
        container = pod_spec(deployment)["containers"][0]
        assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
        assert all("value" in e or "valueFrom" in e for e in container["env"])


def test_secrets_reach_pods_only_by_reference(stack_run: StackRun) -> None:
    env = {
        n: pod_spec(d)["containers"][0]["env"]
        for n, d in app_objects(stack_run, "Deployment").items()
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
    }
    assert refs["ml-service"] == {
        "OPENAI_API_KEY": {"name": "api-credentials", "key": "openai-api-key"}
    }
    assert not objects(stack_run, "Secret"), "no Kubernetes Secret is ever rendered"


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


def test_each_service_waits_for_the_priority_class_it_names(stack_run: StackRun) -> None:
    classes = {
        r.inputs["metadata"]["name"]: r.urn
        for r in stack_run.of_type("kubernetes:scheduling.k8s.io/v1:PriorityClass")
    }
    for deployment in app_deployments(stack_run):
        named = deployment.inputs["spec"]["template"]["spec"]["priorityClassName"]
        assert classes[named] in waits_for(stack_run, deployment.urn), deployment.name
