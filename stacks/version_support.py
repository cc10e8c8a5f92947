"""Which Kubernetes minors the platform's version-bound pieces support, each from its source.

The cluster's minor (`kubernetesVersion`) must be one that every enabled piece supports and that
EKS still gives standard support (stacks/aws_facts.py). A new minor is admitted by adding it
here once each source lists it; the components' pins are held to these releases by tests.
"""

from __future__ import annotations

from dataclasses import dataclass

# The cluster autoscaler release for each minor: its minor must be the cluster's (autoscaler
# FAQ; EKS User Guide, "Update existing cluster to new Kubernetes version", step 4). Newest patch
# of each line, from kubernetes/autoscaler's tags: cluster-autoscaler-1.34.5 and
# cluster-autoscaler-1.35.2 (both 2026-07-22), images promoted to
# registry.k8s.io/autoscaling/cluster-autoscaler.
AUTOSCALER_RELEASES: dict[str, str] = {"1.34": "v1.34.5", "1.35": "v1.35.2"}


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
