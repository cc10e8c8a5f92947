"""The cluster's Kubernetes minor: inside EKS standard support, supported by every version-bound
add-on, and upgraded in place (cluster, managed add-ons, node groups, autoscaler) one minor at
a time."""

from __future__ import annotations

import importlib
import inspect
from datetime import UTC, date, datetime

import pytest

from components.addons.cert_manager import CertManager
from components.addons.mesh import ISTIO_VERSION
from offline.diff import report
from offline.engine import StackRun
from stacks.aws_facts import EKS_KUBERNETES_RELEASES
from stacks.environments import DEFAULTS, EKS_ENVIRONMENTS
from stacks.settings import support_warning
from stacks.settings_base import invalid
from stacks.version_support import (
    AUTOSCALER_RELEASES,
    CERT_MANAGER_SUPPORT,
    ISTIO_SUPPORT,
)
from tests.conftest import RENDER_DATE, run_at, settings_error
from tests.lookup import helm_release

# The release calendar as the EKS User Guide states it ("Understand the Kubernetes version
# lifecycle on EKS", kubernetes-versions page, "Amazon EKS Kubernetes release calendar"):
# EKS release, end of standard support, end of extended support.
CALENDAR = {
    "1.33": ("2025-05-29", "2026-07-29", "2027-07-29"),
    "1.34": ("2025-10-02", "2026-12-02", "2027-12-02"),
    "1.35": ("2026-01-27", "2027-03-27", "2028-03-27"),
}
# The day the issue was filed: 1.33 and 1.34 are past standard support, 1.35 is inside it.
FILED = date(2026, 12, 3)


def test_the_calendar_is_the_eks_user_guides() -> None:
    for version, dates in CALENDAR.items():
        release = EKS_KUBERNETES_RELEASES[version]
        found = (
            release.released,
            release.end_of_standard_support,
            release.end_of_extended_support,
        )
        assert tuple(d.isoformat() for d in found) == dates


@pytest.mark.parametrize("version", ["1.33", "1.34"])
def test_a_minor_past_standard_support_is_refused(version: str) -> None:
    # With upgradePolicy STANDARD, EKS upgrades such a cluster itself at the end of standard
    # support and refuses a later request for the old minor (EKS never downgrades).
    message = settings_error("production", FILED, kubernetesVersion=version)
    ended = CALENDAR[version][1]
    assert message.startswith(f"kubernetesVersion: '{version}' ")
    if version in AUTOSCALER_RELEASES:
        assert f"left EKS standard support on {ended}" in message
    assert "allowed on 2026-12-03: 1.35" in message


def test_standard_support_ends_at_the_start_of_its_last_day() -> None:
    # "Billing for extended support starts at the beginning of the day that the version
    # reaches end of standard support" (same page): that day is no longer standard support.
    assert settings_error("production", date(2026, 12, 2), kubernetesVersion="1.34")
    release = EKS_KUBERNETES_RELEASES["1.34"]
    assert release.in_standard_support(date(2026, 12, 1))
    assert not release.in_standard_support(date(2026, 12, 2))


def test_a_minor_ending_within_90_days_is_warned() -> None:
    end = EKS_KUBERNETES_RELEASES["1.35"].end_of_standard_support
    assert support_warning("1.35", FILED) is None
    assert support_warning("1.35", date(2026, 12, 27)) is None  # 90 days left
    warning = support_warning("1.35", date(2026, 12, 28))
    assert warning is not None
    assert warning.startswith(f"kubernetesVersion: '1.35' leaves EKS standard support on {end}")
    assert "in 89 days" in warning and "one minor at a time" in warning


# The alarm sounds this long before a stack's minor leaves standard support: time to admit the
# next minor and upgrade one step (settings warn from 90 days; EKS upgrades by itself at 0).
ALARM_DAYS = 30


def support_alarm(today: date) -> list[str]:
    """Each EKS stack whose minor leaves standard support within ALARM_DAYS of `today`."""
    alarms = []
    for environment in EKS_ENVIRONMENTS:
        version = DEFAULTS[environment]["kubernetesVersion"]
        end = EKS_KUBERNETES_RELEASES[version].end_of_standard_support
        if (end - today).days < ALARM_DAYS:
            alarms.append(
                f"{environment} runs Kubernetes {version}, whose EKS standard support ends "
                f"{end} ({(end - today).days} days from {today}): admit the next minor and "
                "upgrade one minor at a time (docs/operations.md, "
                '"Kubernetes upgrades"), then move tests/conftest.py RENDER_DATE into its support'
            )
    return alarms


def test_the_support_alarm_for_the_real_calendar() -> None:
    # The one test that reads the real date (every other renders as of RENDER_DATE).
    assert support_alarm(datetime.now(UTC).date()) == []


def test_the_support_alarm_sounds_thirty_days_before_the_end() -> None:
    end = EKS_KUBERNETES_RELEASES["1.35"].end_of_standard_support
    assert support_alarm(date(2027, 2, 25)) == []  # 30 days left
    [production, staging] = support_alarm(date(2027, 2, 26))
    assert production.startswith(
        f"production runs Kubernetes 1.35, whose EKS standard support ends {end} (29 days"
    )
    assert staging.startswith("staging runs Kubernetes 1.35")


def test_the_suite_renders_as_of_a_fixed_day_and_the_program_as_of_today() -> None:
    from stacks import loader

    assert loader.render_date() == RENDER_DATE
    assert loader.render_date.__module__ != "stacks.loader"  # the fixture's stand-in
    # The program (and `make synth`, `make diff`) judge support on the real day.
    assert "datetime.now(UTC)" in inspect.getsource(importlib.import_module("stacks.loader"))


def test_the_version_bound_add_ons_support_the_minor(stack_run: StackRun) -> None:
    version = stack_run.namespace["settings"].kubernetes_version
    # The pins are of the release lines whose support the facts state.
    assert CertManager.chart.version.startswith(f"{CERT_MANAGER_SUPPORT.release}.")
    assert ISTIO_VERSION.startswith(f"{ISTIO_SUPPORT.release}.")
    assert version in CERT_MANAGER_SUPPORT.minors
    assert version in ISTIO_SUPPORT.minors
    autoscaler = helm_release(stack_run, "cluster-autoscaler").inputs["values"]
    assert autoscaler["image"]["tag"] == AUTOSCALER_RELEASES[version].image
    assert autoscaler["image"]["tag"].startswith(f"v{version}.")


def test_an_add_on_that_does_not_support_the_minor_is_refused() -> None:
    from stacks.settings import check_supported_by
    from stacks.version_support import SupportedMinors

    narrow = SupportedMinors("v9.9", ("1.33", "1.34"), "a project's table")
    with pytest.raises(type(invalid("k", 1, "p"))) as caught:
        check_supported_by("addons.certManager", "1.35", narrow)
    assert "outside what v9.9 supports (1.33, 1.34; a project's table)" in str(caught.value)
    check_supported_by("addons.certManager", "1.35", CERT_MANAGER_SUPPORT)


def _render(day: date, version: str) -> dict[str, dict[str, object]]:
    run = run_at(day, "production", kubernetesVersion=version)
    return {r.urn: r.to_json() for r in run.resources}


def test_an_upgrade_is_one_in_place_update_of_cluster_add_ons_groups_and_autoscaler() -> None:
    # 1.34 -> 1.35, rendered on a day both were in standard support (2026-11-01): what
    # `make diff` shows for the upgrade. Nothing is replaced, no URN changes.
    before, after = _render(date(2026, 11, 1), "1.34"), _render(date(2026, 11, 1), "1.35")
    assert before.keys() == after.keys()
    text, dangerous = report(before, after)
    assert not dangerous
    lines = text.splitlines()
    assert not [line for line in lines if not line.startswith("updated")], text
    changed = {line.split(": ")[1]: line.rsplit(": ", 1)[1] for line in lines}
    kinds = {urn.split("::")[2].split("$")[-1] for urn in changed}
    assert kinds == {
        "aws:eks/cluster:Cluster",
        "aws:eks/addon:Addon",
        "aws:eks/nodeGroup:NodeGroup",
        "kubernetes:helm.sh/v3:Release",
    }
    cluster = [u for u in changed if u.endswith("::financial-planning-production")]
    assert [changed[u] for u in cluster] == ["version"]
    # kube-proxy and CoreDNS follow the minor (GetAddonVersion's default for it).
    addons = {u.rsplit("-", 1)[-1]: p for u, p in changed.items() if "eks/addon" in u}
    assert addons == {"proxy": "addonVersion", "coredns": "addonVersion"}
    # The autoscaler's image and chart, both of the minor (stacks/version_support.py).
    releases = [p for u, p in changed.items() if "helm.sh" in u]
    assert releases == ["values.image.tag, version"]
    groups = [line for line in lines if "eks/nodeGroup" in line]
    assert len(groups) == 4 and all("[rolls nodes]" in line for line in groups)
