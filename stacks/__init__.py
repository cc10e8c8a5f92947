"""Typed stack settings, per-environment defaults and their loader."""

from stacks.loader import (
    AnySettings,
    SettingsError,
    any_settings_from_values,
    load_secrets,
    load_settings,
    settings_from_values,
)
from stacks.local_settings import LocalStackSettings
from stacks.settings import StackSettings

__all__ = [
    "AnySettings",
    "LocalStackSettings",
    "SettingsError",
    "StackSettings",
    "any_settings_from_values",
    "load_secrets",
    "load_settings",
    "settings_from_values",
]
