"""Tracing: a sampling rate per environment; every proxy's and service's spans to Jaeger's
collector where Jaeger runs, and nowhere where it does not."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from offline.engine import PROJECT_DIR, StackRun
from offline.synth import write_build
from stacks import SettingsError, settings_from_values
from stacks.merge import deep_merge
from tests.conftest import run_with
from tests.lookup import app_objects, helm_release, objects, pod_spec
from tests.test_settings import BASE

# Requirements as literals: Jaeger's Service in its namespace, OTLP over gRPC.
HOST = "jaeger.tracing.svc.cluster.local"
OTLP_PORT = 4317
TO_THE_COLLECTOR = {
    "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "tracing"}}}],
    "ports": [{"port": OTLP_PORT, "protocol": "TCP"}],
}


@pytest.fixture(scope="module")
def untraced() -> StackRun:
    """Staging without Jaeger (and without its operator host)."""
    return run_with(
        "staging",
        addons={"jaeger": {"enabled": False}},
        edge={"operatorUis": ["grafana", "prometheus"]},
    )


def app_config(run: StackRun) -> dict[str, str]:
    [config] = [c for c in app_objects(run, "ConfigMap").values() if "ENVIRONMENT" in c["data"]]
    data: dict[str, str] = config["data"]
    return data


def test_sampling_is_a_setting_per_environment(stack_run: StackRun) -> None:
    tracing = stack_run.namespace["settings"].addons.mesh.tracing
    assert tracing.sampling_percent == {"production": 1.0, "staging": 10.0}[stack_run.stack]
    [telemetry] = objects(stack_run, "Telemetry").values()
    [rule] = telemetry["spec"]["tracing"]
    assert rule["randomSamplingPercentage"] == tracing.sampling_percent
    # The services' SDKs start their own traces at the same rate (a fraction, not a percent).
    config = app_config(stack_run)
    assert float(config["OTEL_TRACES_SAMPLER_ARG"]) == tracing.sampling_percent / 100


def test_every_proxy_and_service_sends_spans_to_jaeger(stack_run: StackRun, tmp_path: Path) -> None:
    mesh = helm_release(stack_run, "istiod").inputs["values"]["meshConfig"]
    [provider] = mesh["extensionProviders"]
    assert provider["opentelemetry"] == {"service": HOST, "port": OTLP_PORT}
    [telemetry] = objects(stack_run, "Telemetry").values()
    assert telemetry["metadata"]["namespace"] == "istio-system"
    [tracing] = telemetry["spec"]["tracing"]
    assert tracing["providers"] == [{"name": provider["name"]}]
    # Every service's proxy may reach it: its Sidecar knows the host, its policy opens the port.
    sidecars = app_objects(stack_run, "Sidecar")
    assert len(sidecars) == 8
    for name, sidecar in sidecars.items():
        assert f"tracing/{HOST}" in sidecar["spec"]["egress"][0]["hosts"], name
    egress = {n: p for n, p in app_objects(stack_run, "NetworkPolicy").items() if "-egress" in n}
    assert len(egress) == 8
    for name, network_policy in egress.items():
        assert TO_THE_COLLECTOR in network_policy["spec"]["egress"], name
    # The services' own SDKs: the same collector, W3C context (what the proxies propagate),
    # following the proxy's decision; each Deployment names its service.
    config = app_config(stack_run)
    assert config["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{HOST}:{OTLP_PORT}"
    assert config["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
    assert config["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    assert config["OTEL_PROPAGATORS"].split(",")[0] == "tracecontext"
    deployments = app_objects(stack_run, "Deployment")
    assert len(deployments) == 8
    for name, deployment in deployments.items():
        [container] = pod_spec(deployment)["containers"]
        assert {"name": "OTEL_SERVICE_NAME", "value": name} in container["env"], name
    # The Telemetry validates against Istio's published schema.
    manifests = write_build(stack_run, tmp_path) / "manifests"
    files = [str(p) for p in manifests.glob("Telemetry_*.yaml")]
    assert files
    result = subprocess.run(
        ["node", str(PROJECT_DIR / "tools" / "validate-custom-resources.mjs"), *files],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"


def test_without_jaeger_no_spans_are_sent(untraced: StackRun) -> None:
    mesh = helm_release(untraced, "istiod").inputs["values"]["meshConfig"]
    assert "extensionProviders" not in mesh
    assert objects(untraced, "Telemetry") == {}
    # The services' SDKs export nothing (their default would try localhost).
    tracing = {k: v for k, v in app_config(untraced).items() if k.startswith("OTEL_")}
    assert tracing == {"OTEL_TRACES_EXPORTER": "none"}
    for name, sidecar in app_objects(untraced, "Sidecar").items():
        assert not [h for h in sidecar["spec"]["egress"][0]["hosts"] if HOST in h], name
    for name, network_policy in app_objects(untraced, "NetworkPolicy").items():
        assert TO_THE_COLLECTOR not in network_policy["spec"].get("egress", []), name
    assert not [r for r in untraced.of_type("kubernetes:helm.sh/v3:Release") if "jaeger" in r.name]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"addons": {"mesh": {"tracing": {"samplingPercent": 0.001}}}},
            "addons.mesh.tracing.samplingPercent: 0.001 is finer than",
        ),
        (
            {"addons": {"mesh": {"tracing": {"samplingPercent": 150}}}},
            "addons.mesh.tracing.samplingPercent: 150 is invalid",
        ),
        # The collector is Jaeger's, not a setting of its own any more.
        (
            {"addons": {"mesh": {"tracing": {"collector": {"service": "x"}}}}},
            "addons.mesh.tracing.collector: unknown setting (allowed: samplingPercent)",
        ),
        ({"addons": {"jaeger": {"retentionDays": 0}}}, "addons.jaeger.retentionDays: 0 is invalid"),
        (
            {"addons": {"jaeger": {"enabled": False}}},
            "edge.operatorUis: jaeger is the jaeger add-on's UI (enable addons.jaeger, or leave "
            "jaeger out of operatorUis)",
        ),
    ],
)
def test_bad_tracing_settings_fail_with_one_line(overrides: dict[str, Any], expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from_values("production", deep_merge(BASE, overrides))
    message = str(caught.value)
    assert message.startswith(expected) and "\n" not in message, message
