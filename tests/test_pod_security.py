"""The restricted pod contract, in one place, for every pod spec the program writes: the
services' workloads and the security contexts it sets in add-on chart values.

No privileged container, no host namespace, no added capability, no privilege escalation;
every container drops ALL, runs as non-root with the RuntimeDefault seccomp profile.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from offline.engine import StackRun
from offline.synth import kubernetes_objects

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


def pod_specs(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if obj["kind"] == "Pod":
        yield obj["spec"]
    elif obj["kind"] == "CronJob":
        yield obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    elif obj["kind"] in WORKLOAD_KINDS:
        yield obj["spec"]["template"]["spec"]


def pod_problems(name: str, pod: dict[str, Any]) -> list[str]:
    found = [f"{name}: {key}" for key in HOST_NAMESPACES if pod.get(key)]
    pod_context = pod.get("securityContext") or {}
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        where = f"{name}/{container['name']}"
        context = container.get("securityContext") or {}
        if context.get("privileged"):
            found.append(f"{where}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{where}: privilege escalation not forbidden")
        capabilities = context.get("capabilities") or {}
        if capabilities.get("add"):
            found.append(f"{where}: adds {capabilities['add']}")
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(f"{where}: does not drop ALL capabilities")
        if not (context.get("runAsNonRoot") or pod_context.get("runAsNonRoot")):
            found.append(f"{where}: may run as root")
        seccomp = context.get("seccompProfile") or pod_context.get("seccompProfile") or {}
        if seccomp.get("type") != "RuntimeDefault":
            found.append(f"{where}: no RuntimeDefault seccomp profile")
    return found


def values_problems(chart: str, value: Any, path: str = "") -> list[str]:
    """What the program itself sets in a chart's values: never privileged, never a host
    namespace, never an added capability or privilege escalation."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{chart}:{path}.{key}"
            if key in HOST_NAMESPACES and item is True:
                found.append(f"{where}: true")
            if key == "privileged" and item is True:
                found.append(f"{where}: true")
            if key == "allowPrivilegeEscalation" and item is True:
                found.append(f"{where}: true")
            if key == "capabilities" and isinstance(item, dict) and item.get("add"):
                found.append(f"{where}.add: {item['add']}")
            found.extend(values_problems(chart, item, f"{path}.{key}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(values_problems(chart, item, f"{path}[{index}]"))
    return found


def workloads(run: StackRun) -> list[dict[str, Any]]:
    return [o for o in kubernetes_objects(run) if o["kind"] in WORKLOAD_KINDS]


def test_every_workload_and_every_chart_value_keeps_the_restricted_contract(
    stack_run: StackRun,
) -> None:
    found = workloads(stack_run)
    assert len(found) >= 8
    problems = [
        p
        for obj in found
        for pod in pod_specs(obj)
        for p in pod_problems(obj["metadata"]["name"], pod)
    ]
    releases = stack_run.of_type("kubernetes:helm.sh/v3:Release")
    assert len(releases) >= 5
    for release in releases:
        problems.extend(values_problems(release.inputs["chart"], release.inputs["values"]))
    assert problems == []


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda pod, c: c["securityContext"].update(privileged=True), "privileged"),
        (lambda pod, c: pod.update(hostNetwork=True), "hostNetwork"),
        (lambda pod, c: pod.update(hostPID=True), "hostPID"),
        (lambda pod, c: c["securityContext"]["capabilities"].update(add=["NET_ADMIN"]), "adds"),
        (
            lambda pod, c: c["securityContext"].update(allowPrivilegeEscalation=True),
            "escalation",
        ),
        (
            lambda pod, c: c["securityContext"].update(seccompProfile={"type": "Unconfined"}),
            "seccomp",
        ),
    ],
)
def test_a_workload_breaking_the_contract_is_caught(
    production: StackRun, change: Any, needle: str
) -> None:
    deployment = copy.deepcopy(next(o for o in workloads(production) if o["kind"] == "Deployment"))
    [pod] = pod_specs(deployment)
    assert pod_problems("x", pod) == []
    change(pod, pod["containers"][0])
    found = pod_problems("x", pod)
    assert found and any(needle in p for p in found), found


def test_chart_values_that_break_the_contract_are_caught() -> None:
    assert values_problems("ok", {"securityContext": {"privileged": False}}) == []
    assert values_problems("bad", {"a": {"securityContext": {"privileged": True}}}) == [
        "bad:.a.securityContext.privileged: true"
    ]
    assert values_problems("bad", {"hostNetwork": True}) == ["bad:.hostNetwork: true"]
    assert values_problems("bad", {"capabilities": {"add": ["SYS_ADMIN"]}}) == [
        "bad:.capabilities.add: ['SYS_ADMIN']"
    ]
