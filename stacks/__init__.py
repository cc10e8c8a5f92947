"""Typed stack settings, per-environment defaults and their loader."""

from stacks.loader import SettingsError, load_secrets, load_settings, settings_from_values
from stacks.settings import StackSettings

__all__ = [
    "SettingsError",
    "StackSettings",
    "load_secrets",
    "load_settings",
    "settings_from_values",
]
