"""The add-on contract and the one component that installs any add-on.

An add-on is a typed description (`ClusterAddon`): the pinned chart, its namespace and Pod
Security level, the chart values from its typed settings, an optional IRSA policy for the
chart's service account, the add-ons it must come after, objects the chart reads (its Secrets),
and objects it creates once its chart is installed. `HelmAddon` turns one description into
resources, always in the same order: namespace (unless an earlier add-on made it) -> IRSA role
-> objects the chart reads -> `helm.v3.Release` -> the add-on's own objects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pulumi
import pulumi_kubernetes as k8s

from components.shared.conventions import IRSA_ANNOTATION, PodSecurityLevel, namespace
from components.shared.helm import HelmChart, helm_release
from components.shared.iam import IrsaRole, IrsaRoleArgs, OidcIssuer
from components.shared.urns import formerly

# The namespace the autoscaling controllers share (metrics-server, cluster autoscaler, VPA,
# prometheus-adapter): all restricted.
AUTOSCALING_NAMESPACE = "autoscaling-system"


# The monitoring add-on's name: charts that create a ServiceMonitor or PodMonitor need its CRDs.
MONITORING_ADDON = "monitoring"


def disruption_budget(replicas: int) -> dict[str, Any]:
    """A chart's PodDisruptionBudget values: only with a replica to spare (a disabled budget's
    bound would be a value the chart never reads)."""
    return {"enabled": True, "maxUnavailable": 1} if replicas > 1 else {"enabled": False}


class ClusterAddon(ABC):
    """One Helm-installed piece of cluster software, described; `HelmAddon` installs it."""

    # Short and stable: resource names derive from it (and IAM role names stop at 64 characters).
    name: ClassVar[str]
    chart: ClassVar[HelmChart]
    # The Helm release's name; the chart's name unless set.
    release: ClassVar[str | None] = None
    namespace: ClassVar[str]
    pod_security: ClassVar[PodSecurityLevel] = "restricted"
    # The chart's service account that assumes the add-on's IRSA role, if it calls AWS.
    service_account: ClassVar[str | None] = None
    # The namespace's sidecar injection (see shared/conventions.namespace): off for add-ons,
    # left to each pod for the ingress gateway.
    istio_injection: ClassVar[bool | None] = False
    # Further labels of the add-on's namespace (what other controllers select it by).
    namespace_labels: ClassVar[Mapping[str, str]] = {}
    # Add-ons that must be installed first (their CRDs or webhooks are used here).
    after: ClassVar[tuple[str, ...]] = ()
    # Type tokens the add-on's component was registered under before (see shared/urns.py).
    former_types: ClassVar[tuple[str, ...]] = ()

    def requires(self) -> tuple[str, ...]:
        """The add-ons to install first: `after`, and what this stack's settings add (the
        monitoring add-on's CRDs, for a chart that creates its own ServiceMonitor)."""
        return self.after

    @property
    @abstractmethod
    def enabled(self) -> bool:
        """Whether the stack's settings install this add-on."""

    @abstractmethod
    def values(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        """The chart values, from the add-on's typed settings (and its IRSA role, if any)."""

    def irsa_service_account(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        """The common chart shape of the service account that assumes the add-on's IRSA role."""
        return {
            "create": True,
            "name": self.service_account,
            "annotations": {IRSA_ANNOTATION: role_arn},
        }

    def irsa_policy(self) -> pulumi.Input[str] | None:
        """The inline IAM policy of the add-on's IRSA role; None for an add-on without AWS calls."""
        return None

    def prepare_objects(
        self, name: str, namespace: pulumi.Input[str], opts: pulumi.ResourceOptions
    ) -> list[pulumi.Resource]:
        """Objects the chart needs when it installs (the Secrets its pods read), made in its
        namespace before the release."""
        return []

    def release_waits_for(self) -> Sequence[pulumi.Input[pulumi.Resource]]:
        """Resources outside the add-ons that must exist before the chart installs (made
        elsewhere in the program, possibly later: see shared/ordering.py)."""
        return ()

    def install_objects(self, name: str, opts: pulumi.ResourceOptions) -> None:
        """Objects the add-on creates once its chart is installed (custom resources, say)."""
        return None


@dataclass(frozen=True)
class SelfMonitoredAddon(ClusterAddon):
    """A chart that, when `monitored`, creates its own ServiceMonitor or PodMonitor, whose kind
    only the monitoring add-on's CRDs define: it then installs after monitoring."""

    monitored: bool = field(default=False, kw_only=True)

    def requires(self) -> tuple[str, ...]:
        return (*self.after, MONITORING_ADDON) if self.monitored else self.after


@dataclass(frozen=True)
class CompanionAddon(ClusterAddon):
    """A chart installed exactly when another add-on is (node-exporter with monitoring,
    Istio's CRDs and CNI agent with the mesh): no settings of its own."""

    installed_with: bool

    @property
    def enabled(self) -> bool:
        return self.installed_with


@dataclass(frozen=True)
class HelmAddonArgs:
    addon: ClusterAddon
    # The cluster's OIDC issuer for IRSA roles; None on a cluster without AWS (an add-on with
    # an IRSA policy is then refused).
    oidc: OidcIssuer | None
    # Installed add-ons this one comes after.
    after: Sequence[pulumi.Resource] = ()
    # The namespace, when an earlier add-on already created it (one owner per namespace).
    existing_namespace: k8s.core.v1.Namespace | None = None
    # The permissions boundary every IAM role of the stack carries (None: none).
    permissions_boundary: pulumi.Input[str] | None = None


class HelmAddon(pulumi.ComponentResource):
    """Namespace -> IRSA role -> pinned Helm release -> the add-on's own objects."""

    role_arn: pulumi.Output[str] | None
    namespace: k8s.core.v1.Namespace
    addon_name: str
    namespace_name: str
    pod_security: PodSecurityLevel

    def __init__(
        self, name: str, args: HelmAddonArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        addon = args.addon
        super().__init__(
            "financial-planning:addons:HelmAddon", name, None, formerly(opts, *addon.former_types)
        )
        child = pulumi.ResourceOptions(parent=self)
        ns = args.existing_namespace or namespace(
            addon.namespace,
            pod_security=addon.pod_security,
            istio_injection=addon.istio_injection,
            labels=addon.namespace_labels,
            opts=child,
        )
        self.namespace = ns
        self.addon_name, self.pod_security = addon.name, addon.pod_security
        self.namespace_name = addon.namespace
        self.role_arn = None
        policy = addon.irsa_policy()
        if policy is not None:
            if addon.service_account is None:
                raise ValueError(f"add-on {addon.name} has an IRSA policy but no service account")
            if args.oidc is None:
                raise ValueError(f"add-on {addon.name} calls AWS: it needs an EKS cluster (IRSA)")
            self.role_arn = IrsaRole(
                f"{name}-operator",
                IrsaRoleArgs(
                    oidc=args.oidc,
                    namespace=addon.namespace,
                    service_account=addon.service_account,
                    inline_policy=policy,
                    permissions_boundary=args.permissions_boundary,
                ),
                opts=child,
            ).role_arn
        prepared = addon.prepare_objects(
            name,
            ns.metadata.name,
            pulumi.ResourceOptions(parent=self, depends_on=list(args.after) or None),
        )
        release = helm_release(
            addon.release or addon.chart.chart,
            addon.chart,
            namespace=ns.metadata.name,
            values=addon.values(self.role_arn),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*args.after, *prepared, *addon.release_waits_for()] or None,
            ),
        )
        addon.install_objects(name, pulumi.ResourceOptions(parent=self, depends_on=[release]))
        self.release = release
        self.register_outputs(
            {"release": release.name, "namespace": addon.namespace, "roleArn": self.role_arn}
        )
