"""The ordered registry: installs the enabled add-ons in order, each after those it names."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from components.addons.base import ClusterAddon, HelmAddon, HelmAddonArgs
from components.shared.iam import OidcIssuer


class AddonOrderError(ValueError):
    """An add-on's `after` names an add-on that is unknown, disabled or later in the order."""


def check_order(addons: Sequence[ClusterAddon]) -> None:
    """Every `after` of an enabled add-on names an enabled add-on earlier in the list."""
    names = [addon.name for addon in addons]
    if len(set(names)) != len(names):
        raise AddonOrderError(f"add-on names must be unique: {names}")
    installed: set[str] = set()
    for addon in addons:
        if not addon.enabled:
            continue
        for before in addon.requires():
            if before in installed:
                continue
            if before not in names:
                problem = "is not a known add-on"
            elif before in {a.name for a in addons if not a.enabled}:
                problem = "is disabled"
            else:
                problem = "comes later in the registry"
            raise AddonOrderError(
                f"add-on {addon.name} must come after {before}, which {problem} "
                f"(order: {', '.join(names)})"
            )
        installed.add(addon.name)


def install_addons(
    prefix: str,
    addons: Sequence[ClusterAddon],
    oidc: OidcIssuer,
    opts: pulumi.ResourceOptions,
    permissions_boundary: pulumi.Input[str] | None = None,
) -> dict[str, HelmAddon]:
    """One `HelmAddon` per enabled add-on, named `<prefix>-<add-on>`, in the registry's order."""
    check_order(addons)
    installed: dict[str, HelmAddon] = {}
    # The first add-on in a namespace creates it (and sets its Pod Security level).
    owners: dict[str, HelmAddon] = {}
    for addon in addons:
        if not addon.enabled:
            continue
        owner = owners.get(addon.namespace)
        if owner is not None and addon.pod_security != owner.pod_security:
            raise AddonOrderError(
                f"add-on {addon.name} needs Pod Security {addon.pod_security!r} in "
                f"{addon.namespace}, which {owner.addon_name} created as {owner.pod_security!r}"
            )
        component = HelmAddon(
            f"{prefix}-{addon.name}",
            HelmAddonArgs(
                addon,
                oidc,
                after=[installed[a] for a in addon.requires()],
                existing_namespace=owner.namespace if owner else None,
                permissions_boundary=permissions_boundary,
            ),
            opts=opts,
        )
        owners.setdefault(addon.namespace, component)
        installed[addon.name] = component
    return installed
