"""Jaeger: the traces' collector and UI, storing in the search domain with its own role."""

from __future__ import annotations

from typing import Any

import pytest

from components.addons.jaeger import config_digest, jaeger_config
from offline.engine import StackRun
from tests.data.test_search_access import plan_of as plan_steps
from tests.lookup import helm_release, inline_policy, irsa_role, objects, waits_for

SEARCH = "aws:opensearch/domain:Domain"
# Requirements as literals: the stacks' retention, Jaeger's ports, the release with the SigV4
# fix for requests with a body (jaegertracing/jaeger#8760, first in 2.20.0).
RETENTION_DAYS = {"production": 7, "staging": 3}
REPLICAS = {"production": 2, "staging": 1}
FIXED_IN = (2, 20, 0)
HEALTH_PROBE_PORT = 13133
OTLP_GRPC, OTLP_HTTP, METRICS = 4317, 4318, 8888


def values(run: StackRun) -> Any:
    return helm_release(run, "jaeger").inputs["values"]


def plan_of(run: StackRun) -> dict[str, Any]:
    return {step["path"].rsplit("/", 1)[1]: step["body"] for step in plan_steps(run)}


def test_one_release_with_the_fixed_image_runs_restricted(stack_run: StackRun) -> None:
    found = values(stack_run)
    jaeger = found["jaeger"]
    assert found["fullnameOverride"] == "jaeger"
    version = tuple(int(part) for part in jaeger["image"]["tag"].split("."))
    assert version >= FIXED_IN
    assert jaeger["replicas"] == REPLICAS[stack_run.stack]
    assert jaeger["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    pod, container = jaeger["podSecurityContext"], jaeger["securityContext"]
    assert pod["runAsNonRoot"] and pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["readOnlyRootFilesystem"] and not container["allowPrivilegeEscalation"]
    assert container["capabilities"] == {"drop": ["ALL"]}
    # A read-only root needs somewhere to write: the image's /tmp volume.
    assert {"name": "tmp", "mountPath": "/tmp"} in jaeger["extraVolumeMounts"]
    [namespace] = [
        o for o in objects(stack_run, "Namespace").values() if o["metadata"]["name"] == "tracing"
    ]
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["istio-injection"] == "disabled"
    # Maintenance jobs (index cleaner, rollover) are the chart's and off: they cannot sign.
    for job in ("esIndexCleaner", "esRollover", "esLookback", "spark"):
        assert job not in found


def test_spans_are_stored_in_the_search_domain_signed_by_its_own_role(
    stack_run: StackRun,
) -> None:
    found = values(stack_run)
    config = found["userconfig"]
    domain = stack_run.one(SEARCH)
    settings = stack_run.namespace["settings"]
    [backend_name] = config["extensions"]["jaeger_storage"]["backends"]
    backend = config["extensions"]["jaeger_storage"]["backends"][backend_name]["opensearch"]
    assert backend["server_urls"] == [f"https://{domain.state['endpoint']}"]
    # Signed with the AWS SDK's credentials (the IRSA role) for OpenSearch Service ("es").
    assert backend["auth"] == {"authenticator": "sigv4auth"}
    assert config["extensions"]["sigv4auth"] == {"region": "us-east-1", "service": "es"}
    # The UI searches as far back as the indices are kept.
    assert backend["max_span_age"] == f"{RETENTION_DAYS[stack_run.stack] * 24}h"
    # A replica shard per index where the domain has a second data node to hold it.
    replicas = 1 if settings.data.search.instance_count > 1 else 0
    assert backend["indices"]["spans"]["replicas"] == replicas
    # The collector writes to, and the UI reads from, that one backend.
    assert config["exporters"]["jaeger_storage_exporter"] == {"trace_storage": backend_name}
    assert config["extensions"]["jaeger_query"]["storage"] == {"traces": backend_name}
    role = irsa_role(stack_run, "tracing", "jaeger")
    annotations = found["jaeger"]["serviceAccount"]["annotations"]
    assert annotations["eks.amazonaws.com/role-arn"].endswith(role.id)
    [http] = inline_policy(stack_run, role)
    assert http["Resource"] == f"{domain.state['arn']}/*"
    assert all(action.startswith("es:ESHttp") for action in http["Action"])


def test_the_collectors_configuration_is_whole(stack_run: StackRun) -> None:
    """Every component the service names is configured and every configured one is named
    (the collector refuses to start otherwise), and each listens where the pod is reached."""
    config = values(stack_run)["userconfig"]
    service = config["service"]
    assert set(service["extensions"]) == set(config["extensions"])
    for pipeline in service["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            assert set(pipeline[kind]) <= set(config[kind]), kind
    assert set(config["receivers"]) == {
        r for p in service["pipelines"].values() for r in p["receivers"]
    }
    # Components listen on localhost unless told: the chart's probes, the Service's ports and
    # Prometheus reach the pod's address.
    health = config["extensions"]["healthcheckv2"]["http"]["endpoint"]
    assert health == f"0.0.0.0:{HEALTH_PROBE_PORT}"
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == f"0.0.0.0:{OTLP_GRPC}"
    assert protocols["http"]["endpoint"] == f"0.0.0.0:{OTLP_HTTP}"
    [reader] = service["telemetry"]["metrics"]["readers"]
    assert reader["pull"]["exporter"]["prometheus"] == {"host": "0.0.0.0", "port": METRICS}
    # Memory is limited before batching: spans are refused rather than the pod killed.
    [traces] = service["pipelines"].values()
    assert traces["processors"][0] == "memory_limiter"


def test_a_changed_configuration_rolls_the_pods(stack_run: StackRun) -> None:
    """The chart mounts the configuration without a checksum: a pod label carries one."""
    found = values(stack_run)
    label = found["jaeger"]["podLabels"]["financial-planning/config-digest"]
    assert label == config_digest(found["userconfig"])
    other = jaeger_config("vpc-other.us-east-1.es.amazonaws.com", "us-east-1", 7, 1)
    assert config_digest(other) != label
    assert len(label) <= 63


def test_the_traces_role_holds_only_jaegers_indices_kept_the_stacks_days(
    stack_run: StackRun,
) -> None:
    role = irsa_role(stack_run, "tracing", "jaeger")
    plan = plan_of(stack_run)
    # The role's own step comes first, then who holds it.
    bodies = [s["body"] for s in plan_steps(stack_run) if s["path"].endswith("/trace-store")]
    definition, mapping = bodies
    assert mapping == {"backend_roles": [role.state["arn"]]}
    [indices] = definition["index_permissions"]
    assert indices["index_patterns"] == ["jaeger-*"]
    # It puts its index templates at start (a cluster-wide permission).
    assert "cluster_manage_index_templates" in definition["cluster_permissions"]
    # No other role reaches the traces.
    others = [
        s["body"]
        for s in plan_steps(stack_run)
        if "/roles/" in s["path"] and not s["path"].endswith("/trace-store")
    ]
    for body in others:
        for permission in body["index_permissions"]:
            assert not any(p.startswith("jaeger") for p in permission["index_patterns"])
    retention = plan["traces-retention"]["policy"]
    assert retention["ism_template"] == [{"index_patterns": ["jaeger-*"], "priority": 100}]
    states = {s["name"]: s for s in retention["states"]}
    [transition] = states["hot"]["transitions"]
    assert transition["conditions"] == {"min_index_age": f"{RETENTION_DAYS[stack_run.stack]}d"}
    assert states["delete"]["actions"] == [{"delete": {}}]


def test_a_drain_keeps_a_replica_where_there_are_two(stack_run: StackRun) -> None:
    budgets = {
        name: o
        for name, o in objects(stack_run, "PodDisruptionBudget").items()
        if o["metadata"]["namespace"] == "tracing"
    }
    if REPLICAS[stack_run.stack] == 1:
        assert budgets == {}
        return
    [budget] = budgets.values()
    assert budget["spec"]["maxUnavailable"] == 1
    # The API refuses a budget with both maxUnavailable and minAvailable.
    assert "minAvailable" not in budget["spec"]
    assert budget["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "jaeger",
        "app.kubernetes.io/instance": "jaeger",
    }
    spread = values(stack_run)["jaeger"]["topologySpreadConstraints"]
    assert spread[0]["labelSelector"]["matchLabels"] == budget["spec"]["selector"]["matchLabels"]


def test_grafana_reads_traces_and_prometheus_scrapes_the_collector(stack_run: StackRun) -> None:
    grafana = helm_release(stack_run, "kube-prometheus-stack").inputs["values"]["grafana"]
    [source] = grafana["additionalDataSources"]
    assert source["type"] == "jaeger"
    assert source["url"] == "http://jaeger.tracing.svc.cluster.local:16686"
    monitor = objects(stack_run, "ServiceMonitor")["jaeger"]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["tracing"]}
    # The chart's Service port name for the collector's metrics.
    assert monitor["spec"]["endpoints"][0]["port"] == "internal-metrics"


@pytest.mark.parametrize("replicas", [0, 2])
def test_index_replicas_follow_the_argument(replicas: int) -> None:
    config = jaeger_config("d.example", "eu-west-1", 3, replicas)
    backend = config["extensions"]["jaeger_storage"]["backends"]
    [store] = backend.values()
    assert store["opensearch"]["indices"]["spans"]["replicas"] == replicas
    assert store["opensearch"]["max_span_age"] == "72h"


# Which of these values chart jaeger 4.11.1 reads is checked with every other chart's, from
# facts rendered from its source: tests/test_chart_facts.py.


def test_on_a_first_up_jaeger_installs_once_the_search_bootstrap_has_mapped_its_role(
    stack_run: StackRun,
) -> None:
    """Jaeger exits while the domain refuses its index templates (403 until the bootstrap maps
    its role), and Kubernetes' restart back-off (10 s doubling to 5 minutes) could outlast the
    release's atomic wait. So the release waits for the bootstrap Job itself (Pulumi waits
    for a Job to complete): Jaeger's first start finds its role mapped, and no back-off can
    meet the wait."""
    [job] = [r for r in stack_run.of_type("kubernetes:batch/v1:Job") if "search-users" in r.name]
    release = helm_release(stack_run, "jaeger")
    assert job.urn in release.dependencies
    # The Job is awaited (no skip-await annotation) and does not wait for Jaeger: no loop.
    annotations = job.inputs["metadata"].get("annotations") or {}
    assert "pulumi.com/skipAwait" not in annotations
    assert release.urn not in waits_for(stack_run, job.urn)
    # The bootstrap maps Jaeger's own role, which exists before the release.
    role = irsa_role(stack_run, "tracing", "jaeger")
    assert role.urn in waits_for(stack_run, job.urn)
    assert release.inputs["timeout"] >= 600


def test_without_the_bootstrap_order_the_release_would_not_wait(stack_run: StackRun) -> None:
    """Negative control: the Jaeger add-on left without the bootstrap waits for nothing
    outside the add-ons."""
    from components.addons.jaeger import Jaeger

    settings = stack_run.namespace["settings"]
    alone = Jaeger(
        settings.addons.jaeger,
        region="us-east-1",
        search_endpoint="d",
        search_domain_arn="arn",
        index_replicas=0,
    )
    assert list(alone.release_waits_for()) == []
