"""Builds the cluster add-ons: the registry below, in order, each on the `HelmAddon` pattern.

To add one: write `components/addons/<name>.py` with a `ClusterAddon` (chart pin, namespace,
values from its settings, optional IRSA policy), give it settings in `stacks/addon_settings.py`
and defaults per environment, and list it here after the add-ons it needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from components.addons.base import ClusterAddon, HelmAddon
from components.addons.external_secrets import ExternalSecrets
from components.addons.registry import install_addons
from components.context import ClusterContext, StackContext, with_cluster
from components.data.secrets import SecretAccess
from stacks.addon_settings import AddonsSettings


@dataclass(frozen=True)
class ClusterAddons:
    installed: dict[str, HelmAddon]
    # The ClusterSecretStore the application's ExternalSecrets read from.
    secret_store: str


def addon_registry(
    context: StackContext,
    settings: AddonsSettings,
    *,
    secret_access: SecretAccess,
    app_namespaces: Sequence[str],
) -> list[ClusterAddon]:
    """Every add-on the platform knows, in installation order (enabled or not)."""
    return [
        ExternalSecrets(
            settings.external_secrets,
            region=context.region,
            access=secret_access,
            consumer_namespaces=app_namespaces,
        ),
    ]


def build_addons(
    context: StackContext,
    cluster: ClusterContext,
    settings: AddonsSettings,
    *,
    secret_access: SecretAccess,
    app_namespaces: Sequence[str],
) -> ClusterAddons:
    registry = addon_registry(
        context, settings, secret_access=secret_access, app_namespaces=app_namespaces
    )
    installed = install_addons(
        context.prefix, registry, cluster.oidc, with_cluster(context, cluster)
    )
    return ClusterAddons(installed=installed, secret_store=ExternalSecrets.store_name)
