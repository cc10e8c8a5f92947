"""HPAs, VPAs and PriorityClasses of the services, per stack: the seed's "Auto-scaling" section."""

from __future__ import annotations

from typing import Any

import pytest

from offline.engine import StackRun
from stacks.capacity import service_pod
from stacks.catalog import cpu_millicores, memory_mib
from tests.conftest import SEED_PORTS, run_with
from tests.lookup import app_deployments, app_objects, helm_release, objects, pod_spec


def cpu_at(percent: int) -> dict[str, Any]:
    target = {"type": "Utilization", "averageUtilization": percent}
    return {"type": "Resource", "resource": {"name": "cpu", "target": target}}


CPU_70 = cpu_at(70)


def hpas(run: StackRun) -> dict[str, dict[str, Any]]:
    return {name: h["spec"] for name, h in objects(run, "HorizontalPodAutoscaler").items()}


def test_production_hpas_hold_the_seed_ranges(production: StackRun) -> None:
    ranges = {name: (h["minReplicas"], h["maxReplicas"]) for name, h in hpas(production).items()}
    assert ranges == {
        "financial-planning-api": (3, 50),
        "banking-service": (3, 20),
        "user-service": (3, 10),
        "graphql-gateway": (3, 10),
        "simulation-service": (3, 20),
        "notification-service": (2, 6),
        "document-service": (2, 10),
    }
    assert "ml-service" not in ranges


def test_staging_hpas_are_smaller(staging: StackRun) -> None:
    ranges = {name: (h["minReplicas"], h["maxReplicas"]) for name, h in hpas(staging).items()}
    assert ranges == {
        "financial-planning-api": (2, 6),
        "banking-service": (2, 4),
        "user-service": (2, 4),
        "graphql-gateway": (2, 4),
        "simulation-service": (1, 4),
        "notification-service": (1, 2),
        "document-service": (1, 2),
    }


def test_each_hpa_targets_its_own_deployment(stack_run: StackRun) -> None:
    for name, spec in hpas(stack_run).items():
        assert spec["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert objects(stack_run, "HorizontalPodAutoscaler")[name]["apiVersion"] == "autoscaling/v2"


def test_the_api_scales_on_cpu_memory_and_request_rate_and_the_others_on_cpu(
    stack_run: StackRun,
) -> None:
    """The seed: the API scales on CPU, memory and custom metrics (its requests per second,
    which prometheus-adapter serves per pod)."""
    found = hpas(stack_run)
    assert found["financial-planning-api"]["metrics"] == [
        CPU_70,
        {
            "type": "Resource",
            "resource": {
                "name": "memory",
                "target": {"type": "Utilization", "averageUtilization": 80},
            },
        },
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "http_requests_per_second"},
                "target": {"type": "AverageValue", "averageValue": "50"},
            },
        },
    ]
    banking = found["banking-service"]["metrics"]
    assert banking == [cpu_at(60)]
    for name in ("user-service", "graphql-gateway", "simulation-service", "notification-service"):
        assert found[name]["metrics"] == [CPU_70], name


def test_banking_scales_up_at_once_and_down_one_pod_at_a_time(production: StackRun) -> None:
    behavior = hpas(production)["banking-service"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert {"type": "Percent", "value": 100, "periodSeconds": 15} in behavior["scaleUp"]["policies"]
    assert behavior["scaleDown"] == {
        "stabilizationWindowSeconds": 600,
        "selectPolicy": "Min",
        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
    }
    assert all("behavior" not in h for n, h in hpas(production).items() if n != "banking-service")


def test_no_deployment_under_an_hpa_sets_or_tracks_its_replicas(stack_run: StackRun) -> None:
    scaled = set(hpas(stack_run))
    assert len(scaled) == 7
    for deployment in app_deployments(stack_run):
        name = deployment.inputs["metadata"]["name"]
        if name in scaled:
            # Absent, so a server-side apply never takes the field back from the HPA.
            assert "replicas" not in deployment.inputs["spec"], name
        else:
            # ml-service, scaled by hand: two in production (on the request path), one else.
            expected = 2 if stack_run.stack == "production" else 1
            assert deployment.inputs["spec"]["replicas"] == expected, name
        assert "spec.replicas" not in deployment.ignore_changes


def test_the_api_scales_on_request_rate_once_prometheus_adapter_serves_it() -> None:
    run = run_with(
        "staging",
        addons={
            "prometheusAdapter": {
                "enabled": True,
                "prometheusUrl": "http://prometheus.monitoring.svc:9090",
            }
        },
        services={"financial-planning-api": {"autoscaling": {"requestsPerSecond": 40}}},
    )
    metrics = hpas(run)["financial-planning-api"]["metrics"]
    assert metrics[-1] == {
        "type": "Pods",
        "pods": {
            "metric": {"name": "http_requests_per_second"},
            "target": {"type": "AverageValue", "averageValue": "40"},
        },
    }
    adapter = helm_release(run, "prometheus-adapter").inputs["values"]
    assert adapter["prometheus"]["url"] == "http://prometheus.monitoring.svc:9090"
    [rule] = adapter["rules"]["custom"]
    # The adapter derives the metric from the request count of the metrics contract.
    assert rule["seriesQuery"] == (
        'http_server_request_duration_seconds_count{namespace!="",pod!=""}'
    )
    assert rule["name"] == {
        "matches": "^http_server_request_duration_seconds_count$",
        "as": "http_requests_per_second",
    }


def test_the_adapter_reads_the_monitoring_prometheus_by_default(stack_run: StackRun) -> None:
    adapter = helm_release(stack_run, "prometheus-adapter").inputs["values"]
    assert adapter["prometheus"]["url"] == "http://monitoring-prometheus.monitoring.svc:9090"
    # Its one user: the API, on CPU, memory and requests per second (the seed's custom metric).
    users = {
        name: [m["pods"]["target"]["averageValue"] for m in h["metrics"] if m["type"] == "Pods"]
        for name, h in hpas(stack_run).items()
    }
    assert {name: rps for name, rps in users.items() if rps} == {"financial-planning-api": ["50"]}
    api = hpas(stack_run)["financial-planning-api"]["metrics"]
    assert [m["resource"]["name"] for m in api if m["type"] == "Resource"] == ["cpu", "memory"]


def test_without_prometheus_nothing_scales_on_request_rate() -> None:
    run = run_with(
        "staging",
        addons={"monitoring": {"enabled": False}, "prometheusAdapter": {"enabled": False}},
        # Without Prometheus nothing serves the API's request rate.
        services={"financial-planning-api": {"autoscaling": {"requestsPerSecond": None}}},
        # Grafana and Prometheus are monitoring's: the edge serves no operator UI then.
        edge={"operatorUis": []},
    )
    assert all(m["type"] == "Resource" for h in hpas(run).values() for m in h["metrics"])
    charts = {r.inputs["chart"] for r in run.of_type("kubernetes:helm.sh/v3:Release")}
    assert not charts & {"prometheus-adapter", "kube-prometheus-stack", "prometheus-node-exporter"}


def vpas(run: StackRun) -> dict[str, dict[str, Any]]:
    return {name: v["spec"] for name, v in objects(run, "VerticalPodAutoscaler").items()}


def test_every_service_has_a_vpa_that_never_fights_its_hpa(stack_run: StackRun) -> None:
    found, scaled = vpas(stack_run), hpas(stack_run)
    assert set(found) == set(SEED_PORTS)
    for name, spec in found.items():
        assert spec["targetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        policy, others = spec["resourcePolicy"]["containerPolicies"]
        assert policy["containerName"] == name
        assert policy["controlledValues"] == "RequestsOnly"
        # Every other container, the injected istio-proxy among them, is left alone: "*" is the
        # policy of containers without their own, and a container with none defaults to Auto
        # on CPU and memory (VPA 1.7.1, pkg/apis/autoscaling.k8s.io/v1/types.go:
        # DefaultContainerResourcePolicy = "*", ContainerScalingModeOff = "Off").
        assert others == {"containerName": "*", "mode": "Off"}
        if spec["updatePolicy"]["updateMode"] == "Off" or name not in scaled:
            continue
        hpa_resources = {
            m["resource"]["name"] for m in scaled[name]["metrics"] if m["type"] == "Resource"
        }
        assert not hpa_resources & set(policy["controlledResources"]), name


def test_the_sidecar_is_counted_in_every_pod_the_capacity_check_plans(
    stack_run: StackRun,
) -> None:
    # The VPA leaves the sidecar at its requests; the capacity check adds them to every pod.
    settings = stack_run.namespace["settings"]
    sidecar = settings.addons.mesh.sidecar.requests
    load = settings.platform_load()
    assert (load.sidecar.cpu_millicores, load.sidecar.memory_mib) == (
        cpu_millicores(sidecar.cpu),
        memory_mib(sidecar.memory),
    )
    service = settings.services["user-service"]
    alone, meshed = service_pod(service), service_pod(service, load.sidecar)
    assert meshed.cpu_millicores - alone.cpu_millicores == cpu_millicores(sidecar.cpu)
    assert meshed.pods == alone.pods == 1


def test_ml_and_the_api_only_recommend_and_the_rest_size_memory(stack_run: StackRun) -> None:
    modes = {
        name: (
            spec["updatePolicy"]["updateMode"],
            tuple(spec["resourcePolicy"]["containerPolicies"][0]["controlledResources"]),
        )
        for name, spec in vpas(stack_run).items()
    }
    assert modes.pop("ml-service")[0] == "Off"
    assert modes.pop("financial-planning-api")[0] == "Off"
    assert set(modes.values()) == {("Recreate", ("memory",))}


def test_services_outrank_each_other_as_the_seed_says_and_addons_outrank_them(
    stack_run: StackRun,
) -> None:
    classes = {name: c["value"] for name, c in objects(stack_run, "PriorityClass").items()}
    deployments = app_objects(stack_run, "Deployment")
    value = {n: classes[pod_spec(d)["priorityClassName"]] for n, d in deployments.items()}
    for high in ("banking-service", "financial-planning-api", "user-service"):
        for low in ("notification-service", "simulation-service"):
            assert value[high] > value[low], (high, low)
    assert classes["platform-critical"] > max(value.values())
    for chart in ("external-secrets", "vertical-pod-autoscaler"):
        values = helm_release(stack_run, chart).inputs["values"]
        names = [values.get("priorityClassName")] + [
            values[c]["priorityClassName"]
            for c in ("recommender", "updater", "admissionController")
            if c in values
        ]
        assert {n for n in names if n} == {"platform-critical"}, chart
    assert all(not c.get("globalDefault") for c in objects(stack_run, "PriorityClass").values())


def test_the_gpu_service_waits_long_enough_for_a_node_from_zero(stack_run: StackRun) -> None:
    waits = {d.inputs["metadata"]["name"]: d.custom_timeouts for d in app_deployments(stack_run)}
    # Groups that start at zero nodes (GPU; in staging also memory): a new node, its driver and
    # the device plugin take longer than the provider's default 10 minutes.
    from_zero = {"production": {"ml-service"}, "staging": {"ml-service", "document-service"}}
    for name, timeouts in waits.items():
        if name in from_zero[stack_run.stack]:
            assert timeouts == {"create": "25m", "update": "25m"}, name
        else:
            assert timeouts == {}, name


@pytest.mark.parametrize("replicas", [0, 1])
def test_ml_service_is_scaled_by_hand(replicas: int) -> None:
    run = run_with("staging", services={"ml-service": {"replicas": replicas}})
    [ml] = [
        d for d in app_objects(run, "Deployment").values() if d["metadata"]["name"] == "ml-service"
    ]
    assert ml["spec"]["replicas"] == replicas
    assert "ml-service" not in hpas(run)
    assert "ml-service" not in objects(run, "PodDisruptionBudget")
