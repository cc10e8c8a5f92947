"""The mesh's tracing: a sampling rate per environment, spans to the collector a stack names."""

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
from tests.lookup import app_objects, helm_release, objects
from tests.test_settings import BASE

COLLECTOR = {"namespace": "observability", "service": "jaeger-collector"}
HOST = "jaeger-collector.observability.svc.cluster.local"


@pytest.fixture(scope="module")
def traced() -> StackRun:
    return run_with("staging", addons={"mesh": {"tracing": {"collector": COLLECTOR}}})


def test_sampling_is_a_setting_per_environment(stack_run: StackRun) -> None:
    tracing = stack_run.namespace["settings"].addons.mesh.tracing
    assert tracing.sampling_percent == {"production": 1.0, "staging": 10.0}[stack_run.stack]
    # No collector named yet: no spans, no provider, no Telemetry.
    assert tracing.collector is None
    assert (
        "extensionProviders" not in helm_release(stack_run, "istiod").inputs["values"]["meshConfig"]
    )
    assert objects(stack_run, "Telemetry") == {}


def test_a_named_collector_gets_every_proxys_spans(traced: StackRun, tmp_path: Path) -> None:
    mesh = helm_release(traced, "istiod").inputs["values"]["meshConfig"]
    [provider] = mesh["extensionProviders"]
    assert provider["opentelemetry"] == {"service": HOST, "port": 4317}
    [telemetry] = objects(traced, "Telemetry").values()
    assert telemetry["metadata"]["namespace"] == "istio-system"
    [tracing] = telemetry["spec"]["tracing"]
    assert tracing["providers"] == [{"name": provider["name"]}]
    assert tracing["randomSamplingPercentage"] == 10.0
    # Every service's proxy may reach it: its Sidecar knows the host, its policy opens the port.
    for name, sidecar in app_objects(traced, "Sidecar").items():
        assert f"observability/{HOST}" in sidecar["spec"]["egress"][0]["hosts"], name
    for name, policy in app_objects(traced, "NetworkPolicy").items():
        if not name.endswith("-egress"):
            continue
        assert {
            "to": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "observability"}
                    }
                }
            ],
            "ports": [{"port": 4317, "protocol": "TCP"}],
        } in policy["spec"]["egress"], name
    # The Telemetry validates against Istio's published schema.
    manifests = write_build(traced, tmp_path) / "manifests"
    files = [str(p) for p in manifests.glob("Telemetry_*.yaml")]
    result = subprocess.run(
        ["node", str(PROJECT_DIR / "tools" / "validate-custom-resources.mjs"), *files],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("tracing", "expected"),
    [
        ({"samplingPercent": 0.001}, "addons.mesh.tracing.samplingPercent: 0.001 is finer than"),
        ({"samplingPercent": 150}, "addons.mesh.tracing.samplingPercent: 150 is invalid"),
        (
            {"collector": {"namespace": "Observability", "service": "jaeger"}},
            "addons.mesh.tracing.collector.namespace: 'Observability' is invalid",
        ),
    ],
)
def test_bad_tracing_settings_fail_with_one_line(tracing: dict[str, Any], expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from_values(
            "production", deep_merge(BASE, {"addons": {"mesh": {"tracing": tracing}}})
        )
    message = str(caught.value)
    assert message.startswith(expected) and "\n" not in message, message
