"""The mesh: Istio's three charts at one version, the CNI agent in a privileged namespace of
its own, istiod highly available in production, sidecars within the restricted profile and
counted in the node groups' capacity, scraped by Prometheus; the services start after istiod."""

from __future__ import annotations

from offline.engine import StackRun
from stacks.capacity import Demand, service_demand
from stacks.catalog import ServiceSettings
from stacks.environments import DEFAULTS
from tests.conftest import run_with
from tests.lookup import app_deployments, helm_release, objects, waits_for

ISTIO = "1.30.3"


def test_three_charts_one_version_and_their_namespaces(stack_run: StackRun) -> None:
    found = {
        chart: (
            helm_release(stack_run, chart).inputs["version"],
            helm_release(stack_run, chart).inputs["namespace"],
        )
        for chart in ("base", "cni", "istiod")
    }
    assert found == {
        "base": (ISTIO, "istio-system"),
        "cni": (ISTIO, "istio-cni"),
        "istiod": (ISTIO, "istio-system"),
    }
    namespaces = objects(stack_run, "Namespace")
    level = "pod-security.kubernetes.io/enforce"
    assert namespaces["istio-system"]["metadata"]["labels"][level] == "restricted"
    assert namespaces["istio-cni"]["metadata"]["labels"][level] == "privileged"


def test_istiod_and_the_gateway_run_at_the_platform_priority(stack_run: StackRun) -> None:
    """Each chart where it reads the priority class: istio-discovery
    templates/deployment.yaml at 1.30.3 only `.Values.global.priorityClassName` (a top-level
    key is ignored), the gateway chart's templates/deployment.yaml `.Values.priorityClassName`."""
    classes = objects(stack_run, "PriorityClass")
    istiod = helm_release(stack_run, "istiod").inputs["values"]
    assert istiod["global"]["priorityClassName"] in classes
    assert "priorityClassName" not in istiod
    gateway = helm_release(stack_run, "gateway").inputs["values"]
    assert gateway["priorityClassName"] == istiod["global"]["priorityClassName"]


def test_istiod_uses_the_cni_agent_and_keeps_sidecars_restricted(stack_run: StackRun) -> None:
    values = helm_release(stack_run, "istiod").inputs["values"]
    replicas = {"production": 2, "staging": 1}[stack_run.stack]
    assert (values["autoscaleEnabled"], values["replicaCount"]) == (False, replicas)
    # The chart's PodDisruptionBudget: only with a replica to spare (at one replica the chart
    # renders none, and reads no switch).
    assert values["global"].get("defaultPodDisruptionBudget") == (
        {"enabled": True} if replicas > 1 else None
    )
    assert values["cni"] == {"enabled": True}
    proxy = values["global"]["proxy"]
    assert proxy["seccompProfile"] == {"type": "RuntimeDefault"}
    assert proxy["resources"]["requests"] == {"cpu": "50m", "memory": "128Mi"}
    mesh = values["meshConfig"]
    assert {k: mesh[k] for k in ("accessLogFile", "accessLogEncoding")} == {
        "accessLogFile": "/dev/stdout",
        "accessLogEncoding": "JSON",
    }


def test_the_services_start_after_istiod_and_the_agent_beside_the_crds(
    stack_run: StackRun,
) -> None:
    istiod = helm_release(stack_run, "istiod")
    base, cni = helm_release(stack_run, "base"), helm_release(stack_run, "cni")
    assert {base.urn, cni.urn} <= set(istiod.dependencies)
    # The agent needs no CRD: it installs alongside base.
    assert base.urn not in waits_for(stack_run, cni.urn)
    for deployment in app_deployments(stack_run):
        # Pods created before istiod's webhook would run without a sidecar.
        assert istiod.urn in waits_for(stack_run, deployment.urn), deployment.name
    [app] = [
        n
        for n in objects(stack_run, "Namespace").values()
        if n["metadata"]["name"].startswith("financial-planning")
    ]
    assert app["metadata"]["labels"]["istio-injection"] == "enabled"


def test_sidecars_and_istiod_are_scraped(stack_run: StackRun) -> None:
    sidecars = objects(stack_run, "PodMonitor")["istio-sidecars"]["spec"]
    assert sidecars["selector"] == {"matchLabels": {"security.istio.io/tlsMode": "istio"}}
    assert sidecars["podMetricsEndpoints"][0]["port"] == "http-envoy-prom"
    istiod = objects(stack_run, "ServiceMonitor")["istiod"]["spec"]
    assert istiod["namespaceSelector"] == {"matchNames": ["istio-system"]}
    # Each service admits monitoring on its own port and its sidecar's statistics port.
    policies = objects(stack_run, "NetworkPolicy")
    ingress = {n: p for n, p in policies.items() if n.endswith("-ingress")}
    assert len(ingress) == 8
    for name, policy in ingress.items():
        from_monitoring = [
            r
            for r in policy["spec"]["ingress"]
            if r["from"]
            == [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                    }
                }
            ]
        ]
        [rule] = from_monitoring
        assert 15090 in {p["port"] for p in rule["ports"]}, name


def test_the_sidecar_counts_in_each_pods_demand() -> None:
    service = ServiceSettings.model_validate(
        {
            **DEFAULTS["production"]["services"]["notification-service"],
            "imageTag": "1.0.0",
        }
    )
    alone = service_demand(service)
    meshed = service_demand(service, Demand(50, 128))
    pods = service.max_replicas
    assert meshed.cpu_millicores - alone.cpu_millicores == 50 * pods
    assert meshed.memory_mib - alone.memory_mib == 128 * pods


def test_without_the_mesh_nothing_of_istio_is_installed() -> None:
    run = run_with("staging", addons={"mesh": {"enabled": False}}, edge={"enabled": False})
    charts = {r.inputs["chart"] for r in run.of_type("kubernetes:helm.sh/v3:Release")}
    assert not charts & {"base", "cni", "istiod"}
    [app] = [
        n
        for n in objects(run, "Namespace").values()
        if n["metadata"]["name"] == "financial-planning-staging"
    ]
    assert app["metadata"]["labels"]["istio-injection"] == "disabled"
    assert "istio-sidecars" not in objects(run, "PodMonitor")
