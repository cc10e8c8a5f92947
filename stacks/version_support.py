"""Which Kubernetes minors the platform's version-bound pieces support, each from its source.

The cluster's minor (`kubernetesVersion`) must be one that every enabled piece supports and that
EKS still gives standard support (stacks/aws_facts.py). A new minor is admitted by adding it
here once each source lists it; the components' pins are held to these releases by tests.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AutoscalerRelease:
    """The cluster autoscaler for one Kubernetes minor: its image and the chart that installs it.

    The chart's ClusterRole is written for the chart's appVersion; an image of a later minor
    may watch API groups that ClusterRole does not grant, and then never gets past its informer
    cache sync (tests/addons/test_autoscaling_addons.py holds each pair to its facts).
    """

    # registry.k8s.io/autoscaling/cluster-autoscaler tag: its minor must be the cluster's
    # (autoscaler FAQ; EKS User Guide, "Update existing cluster to new Kubernetes version").
    image: str
    # The kubernetes/autoscaler chart `cluster-autoscaler`, released under the tag
    # cluster-autoscaler-chart-<version>.
    chart: str
    # `appVersion` of cluster-autoscaler/charts/cluster-autoscaler/Chart.yaml at that tag.
    chart_app_version: str
    # Whether the chart's templates/clusterrole.yaml (same tag) grants get/list/watch on
    # resource.k8s.io resourceslices, deviceclasses and resourceclaims.
    chart_reads_dra: bool
    # Whether the image insists on Dynamic Resource Allocation (its informers for those
    # resources must sync before it does anything): config/flags/flags.go at the image's tag.
    image_requires_dra: bool


# Newest patch of each autoscaler line, from kubernetes/autoscaler's tags
# (cluster-autoscaler-1.34.5 and cluster-autoscaler-1.35.2, both 2026-07-22). The charts:
# - 9.53.0 (2025-12-03): appVersion 1.34.2, no resource.k8s.io rule in its ClusterRole.
# - 9.59.0 (2026-07-21): appVersion 1.35.0, the resource.k8s.io rule (added in 9.54.0,
#   commit d4a3ca1d9b); its values keep every key this program sets (values.yaml diffed
#   against 9.53.0: only new keys).
# - cluster-autoscaler-1.34.5 flags.go: --enable-dynamic-resource-allocation defaults to false;
#   cluster-autoscaler-1.35.2 flags.go:231 defaults it to true ("locked to true", main.go:301
#   exits otherwise) and main.go:291 waits for every informer's cache before its first loop.
AUTOSCALER_RELEASES: dict[str, AutoscalerRelease] = {
    "1.34": AutoscalerRelease("v1.34.5", "9.53.0", "1.34.2", False, False),
    "1.35": AutoscalerRelease("v1.35.2", "9.59.0", "1.35.0", True, True),
}


def minor_of(version: str) -> str:
    """`1.35` of `v1.35.2` or `1.35.0`."""
    return ".".join(version.removeprefix("v").split(".")[:2])


def autoscaler_release_problems(minor: str, release: AutoscalerRelease) -> list[str]:
    """Why this image and chart cannot run the autoscaler of `minor` together (none: they can)."""
    problems = []
    if minor_of(release.image) != minor:
        problems.append(f"image {release.image} is not of Kubernetes {minor}")
    if minor_of(release.chart_app_version) != minor:
        problems.append(
            f"chart {release.chart} is written for {release.chart_app_version}, "
            f"not Kubernetes {minor}"
        )
    if release.image_requires_dra and not release.chart_reads_dra:
        problems.append(
            f"image {release.image} waits for resource.k8s.io informers that chart "
            f"{release.chart}'s ClusterRole does not let it list"
        )
    return problems


@dataclass(frozen=True)
class SupportedMinors:
    """The Kubernetes minors one release line of a chart supports, as its project states."""

    # The release line the statement is about (the component's pin must be of it).
    release: str
    minors: tuple[str, ...]
    source: str


# cert-manager's supported releases table: 1.20 supports Kubernetes 1.32 to 1.35
# (cert-manager/website content/docs/releases/README.md, pull request #2007, 2026-03-10).
CERT_MANAGER_SUPPORT = SupportedMinors(
    release="v1.20",
    minors=("1.32", "1.33", "1.34", "1.35"),
    source="cert-manager.io/docs/releases (supported releases table)",
)
# Istio's support status data: 1.30 supports Kubernetes 1.32 to 1.36
# (istio/istio.io data/compatibility/supportStatus.yml, k8sVersions of "1.30").
ISTIO_SUPPORT = SupportedMinors(
    release="1.30",
    minors=("1.32", "1.33", "1.34", "1.35", "1.36"),
    source="istio.io/latest/docs/releases/supported-releases (support status of Istio releases)",
)

# The minors this program is checked against: each has an autoscaler release.
CHECKED_KUBERNETES_VERSIONS: tuple[str, ...] = tuple(AUTOSCALER_RELEASES)
