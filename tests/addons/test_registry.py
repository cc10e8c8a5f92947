"""The add-on pattern in isolation: one component per add-on, in the registry's order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pytest

from components.addons.base import ClusterAddon
from components.addons.registry import AddonOrderError, check_order, install_addons
from components.context import ClusterContext, StackContext, with_cluster
from components.shared.conventions import PodSecurityLevel
from components.shared.helm import HelmChart, release_values
from tests.harness import ISSUER, run_isolated
from tests.lookup import children_of, helm_release, inline_policy, irsa_role
from tools.chart_facts import value_files


@dataclass(frozen=True)
class Sample(ClusterAddon):
    """A made-up add-on: the pattern, not any real chart."""

    label: str
    on: bool = True
    needs: tuple[str, ...] = ()
    calls_aws: bool = False
    ns: str = "sample-system"
    level: PodSecurityLevel = "restricted"

    service_account = "sample"
    chart = HelmChart(chart="sample", version="1.2.3", repository="https://charts.example.com")

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.label

    @property
    def after(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.needs

    @property
    def release(self) -> str:  # type: ignore[override]
        return f"sample-{self.label}"

    @property
    def namespace(self) -> str:  # type: ignore[override]
        return self.ns

    @property
    def pod_security(self) -> PodSecurityLevel:  # type: ignore[override]
        return self.level

    @property
    def enabled(self) -> bool:
        return self.on

    def values(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        return {"serviceAccount": {"name": self.service_account, "role": role_arn}}

    def irsa_policy(self) -> str | None:
        if not self.calls_aws:
            return None
        statement = {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}
        return f'{{"Version": "2012-10-17", "Statement": [{statement}]}}'.replace("'", '"')


def install(*addons: ClusterAddon) -> Any:
    def build(context: StackContext, cluster: ClusterContext) -> Any:
        return install_addons(context.prefix, addons, cluster.oidc, with_cluster(context, cluster))

    return run_isolated(build)


def test_an_addon_gets_namespace_then_irsa_role_then_its_pinned_release() -> None:
    run = install(Sample("one", calls_aws=True))
    [component] = run.of_type("financial-planning:addons:HelmAddon")
    assert component.name == "financial-planning-harness-one"
    [namespace] = run.of_type("kubernetes:core/v1:Namespace")
    assert namespace.inputs["metadata"]["name"] == "sample-system"
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
        "restricted"
    )
    role = irsa_role(run, "sample-system", "sample")
    trust = role.inputs["assumeRolePolicy"]
    assert f"{ISSUER}:aud" in trust
    assert inline_policy(run, role)[0]["Action"] == "sts:GetCallerIdentity"
    release = helm_release(run, "sample")
    assert release.inputs["name"] == "sample-one"
    assert (release.inputs["version"], release.inputs["namespace"]) == ("1.2.3", "sample-system")
    assert release.inputs["values"]["serviceAccount"]["role"].endswith(role.id)
    # The release waits for its namespace and its role.
    assert {namespace.urn, role.urn} <= set(release.dependencies)
    assert {r.urn for r in children_of(run, component)} >= {namespace.urn, release.urn}


def test_an_addon_that_calls_no_aws_api_gets_no_role() -> None:
    run = install(Sample("one"))
    assert run.of_type("aws:iam/role:Role") == []
    inputs = helm_release(run, "sample").inputs
    # The null travels in the release's value file (components/shared/helm.py), not in values.
    assert "role" not in inputs["values"]["serviceAccount"]
    merged = release_values(inputs["values"], value_files(inputs, "sample"))
    assert merged["serviceAccount"] == {"name": "sample", "role": None}


def test_an_addon_installs_after_the_addons_it_names_and_disabled_ones_not_at_all() -> None:
    run = install(
        Sample("first", ns="first-system"),
        Sample("off", on=False, ns="off-system"),
        Sample("second", needs=("first",), ns="second-system"),
    )
    releases = {r.inputs["name"]: r for r in run.of_type("kubernetes:helm.sh/v3:Release")}
    assert set(releases) == {"sample-first", "sample-second"}
    namespaces = {n.inputs["metadata"]["name"] for n in run.of_type("kubernetes:core/v1:Namespace")}
    assert namespaces == {"first-system", "second-system"}
    # Depending on a component means depending on what it contains: the first release.
    assert releases["sample-first"].urn in releases["sample-second"].dependencies


def test_addons_sharing_a_namespace_create_it_once() -> None:
    run = install(Sample("first"), Sample("second"))
    [namespace] = run.of_type("kubernetes:core/v1:Namespace")
    releases = run.of_type("kubernetes:helm.sh/v3:Release")
    assert len(releases) == 2
    assert all(namespace.urn in r.dependencies for r in releases)


def test_addons_sharing_a_namespace_must_agree_on_its_pod_security_level() -> None:
    with pytest.raises(AddonOrderError, match="needs Pod Security 'privileged' in sample-system"):
        install(Sample("first"), Sample("second", level="privileged"))


@pytest.mark.parametrize(
    ("addons", "message"),
    [
        (
            [Sample("b", needs=("a",)), Sample("a")],
            "add-on b must come after a, which comes later in the registry (order: b, a)",
        ),
        ([Sample("b", needs=("nope",))], "add-on b must come after nope, which is not a known"),
        (
            [Sample("a", on=False), Sample("b", needs=("a",))],
            "add-on b must come after a, which is disabled",
        ),
        ([Sample("a"), Sample("a")], "add-on names must be unique: ['a', 'a']"),
    ],
)
def test_the_registry_refuses_an_order_it_cannot_install(
    addons: list[ClusterAddon], message: str
) -> None:
    with pytest.raises(AddonOrderError) as raised:
        check_order(addons)
    assert str(raised.value).startswith(message)
