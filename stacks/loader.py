"""Reads the current stack's configuration into `StackSettings`, or fails with one line per problem.

Pulumi hands a program its configuration as strings (structured values as JSON). This module is
the only place that reads it: components receive typed settings, never `pulumi.Config`.
"""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Union

import pulumi
import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from stacks.environments import DEFAULTS, TARGETS, Target
from stacks.local_settings import LocalStackSettings
from stacks.merge import deep_merge
from stacks.secrets import (
    FINDINGS_PAGER_KEY,
    NOT_SETTINGS,
    OPERATOR_SSO_CLIENT_SECRET,
    secret_config_keys,
)
from stacks.settings import StackSettings, support_warning
from stacks.settings_base import expects_bool, short

# A letter, then letters, digits and single hyphens between them: AWS identifiers derived from
# it (RDS, ElastiCache) refuse "--" and a trailing "-".
STACK_NAME_PATTERN = r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,11}"


# The project's directory, where `pulumi` finds Pulumi.yaml and the stack files beside it (the
# project sets no stackConfigDir).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The keys of a stack file (pulumi sdk/go/common/workspace/project.go, ProjectStack).
STACK_FILE_KEYS = ("config", "secretsprovider", "encryptedkey", "encryptionsalt", "environment")


def unknown_stack_file_key(document: Mapping[Any, Any], file_name: str) -> str | None:
    """The problem with a stack file's first top-level key that Pulumi does not know, if any:
    the CLI drops such a key silently (sdk/go/common/workspace/loaders.go re-marshals the
    file into ProjectStack), so a misspelt `config:` would leave the stack without settings."""
    for key in document:
        if key not in STACK_FILE_KEYS:
            guess = difflib.get_close_matches(str(key), STACK_FILE_KEYS, n=1)
            hint = f" (did you mean {guess[0]!r}?)" if guess else ""
            return (
                f"{file_name}: unknown key {short(key)}{hint} (allowed: "
                f"{', '.join(STACK_FILE_KEYS)})"
            )
    return None


def why_no_settings(stack: str, project: str, directory: Path) -> str:
    """Why the CLI handed the program no settings, from the stack file beside Pulumi.yaml where
    it can tell (an empty file, a misspelt top-level key), else what the file needs."""
    name = f"Pulumi.{stack}.yaml"
    needs = f"it needs a `config:` mapping with the stack's settings ({project}:<key>: <value>)"
    try:
        document = yaml.safe_load((directory / name).read_text())
    except (OSError, yaml.YAMLError):
        document = {}
    if document is None:
        return f"{name}: is empty (only comments or blanks): {needs}"
    if isinstance(document, dict):
        problem = unknown_stack_file_key(document, name)
        if problem is not None:
            return problem
    return (
        f"(stack): stack {stack!r} has no settings: {name} needs a `config:` mapping with "
        f"{project}:<key> values"
    )


class SettingsError(pulumi.RunError):
    """A stack setting is wrong. Raised before any resource is registered."""


def _parse(raw: Any) -> Any:
    # Structured values arrive as JSON text; scalars stay strings and pydantic coerces numbers
    # ("3" -> 3) so that "1.33" is not mistaken for a number. Booleans: see `cli_values`.
    if isinstance(raw, str) and raw.lstrip()[:1] in ("{", "["):
        return json.loads(raw)
    return raw


# The text the Pulumi CLI hands for a top-level YAML boolean, as pulumi's own Config.get_bool
# reads it (sdk/python/lib/pulumi/config.py `_get_bool`: "true"/"True", "false"/"False").
CLI_BOOLEANS = {"true": True, "True": True, "false": False, "False": False}


def cli_values(model: type[BaseModel], values: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level values as the model should see them, from what the Pulumi CLI hands over.

    - A YAML null (which the CLI hands as "") or an empty value is absent: the environment's
      default applies, or the setting is reported missing. It never becomes the text "None".
    - A boolean setting's "true"/"false" text is that boolean; any other text ("yes", "on")
      stays text, and the settings refuse it (stacks/settings_base.py, strict booleans).
    """
    booleans = {
        info.alias or name
        for name, info in model.model_fields.items()
        if expects_bool(info.annotation)
    }
    result: dict[str, Any] = {}
    for key, value in values.items():
        if value is None or value == "":
            continue
        if key in booleans and isinstance(value, str) and value in CLI_BOOLEANS:
            value = CLI_BOOLEANS[value]
        result[key] = value
    return result


# The settings model of each target (see stacks.environments).
MODELS: dict[Target, type[StackSettings] | type[LocalStackSettings]] = {
    "eks": StackSettings,
    "kubeconfig": LocalStackSettings,
}

# Namespaces a stack file may hold besides the project's own: providers' and the engine's.
OTHER_NAMESPACES = frozenset({"aws", "kubernetes", "pulumi", "random"})


def foreign_config_keys(project: str) -> list[str]:
    """Config keys of no known namespace: a misspelt project name would hide a setting."""
    from pulumi.runtime import config as runtime_config

    raw = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return sorted(
        key
        for key in raw
        if key.split(":", 1)[0] != project and key.split(":", 1)[0] not in OTHER_NAMESPACES
    )


def project_config(project: str) -> dict[str, Any]:
    """Every configuration value of `project`'s namespace, keyed without the namespace."""
    from pulumi.runtime import config as runtime_config

    raw: dict[str, Any] = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefix = f"{project}:"
    return {
        key[len(prefix) :]: _parse(value) for key, value in raw.items() if key.startswith(prefix)
    }


AnySettings = StackSettings | LocalStackSettings


def render_date() -> date:
    """The day a stack is rendered (UTC): EKS support is judged as of this day."""
    return datetime.now(UTC).date()


def settings_from_values(
    stack: str, values: Mapping[str, Any], today: date | None = None
) -> StackSettings:
    """An EKS stack's settings from `values` (see `any_settings_from_values`)."""
    settings = any_settings_from_values(stack, values, today)
    if not isinstance(settings, StackSettings):
        raise SettingsError(
            f"environment: {settings.environment!r} deploys onto an existing cluster, not EKS"
        )
    return settings


def environment_of(stack: str, values: Mapping[str, Any]) -> Any:
    """The environment a stack's values (camelCase keys) name: their `environment`, or else the
    stack's name (a YAML null or an empty value is absent). Not validated: any YAML value."""
    environment = values.get("environment")
    return stack if environment in ("", None) else environment


def any_settings_from_values(
    stack: str, values: Mapping[str, Any], today: date | None = None
) -> AnySettings:
    """Environment defaults merged with `values` (camelCase), validated by the model of the
    environment's target (EKS, or an existing cluster by kubeconfig context) as of `today`
    (default: the render date), which decides whether EKS still supports the stack's minor.

    Secret keys are not settings: they are read by `load_secrets` and skipped here.
    """
    values = {key: value for key, value in values.items() if key not in NOT_SETTINGS}
    if values.get("environment") in ("", None):
        values = {key: value for key, value in values.items() if key != "environment"}
    if not re.fullmatch(STACK_NAME_PATTERN, stack):
        # Resource names derive from it and meet AWS limits (IAM roles 64, OpenSearch 28).
        raise SettingsError(
            f"stack: {stack!r} is not a usable stack name (allowed: lowercase "
            "letters, digits and single '-' between them, starting with a letter, 12 at most)"
        )
    environment = environment_of(stack, values)
    if not isinstance(environment, str) or environment not in DEFAULTS:
        raise SettingsError(
            f"environment: {short(environment)} has no defaults "
            f"(allowed: {', '.join(DEFAULTS)}; set it when the stack is not named after one)"
        )
    model = MODELS[TARGETS[environment]]
    values = cli_values(model, values)
    merged = deep_merge(DEFAULTS[environment], {**values, "environment": environment})
    try:
        return model.model_validate(merged, context={"today": today or render_date()})
    except ValidationError as error:
        raise SettingsError("\n".join(format_errors(error, model))) from None


def load_settings() -> AnySettings:
    """The current stack's settings, from `pulumi.Config` values of this project.

    Also checks that every secret key is set, and set as a secret, so that all problems of a
    stack file are reported together before anything is registered.
    """
    from pulumi.runtime import config as runtime_config

    project = pulumi.get_project()
    values = project_config(project)
    problems = [
        f"{short(key)}: not a setting of project {project!r} (misspelt namespace?)"
        for key in foreign_config_keys(project)
    ]
    if not values and not problems:
        # An empty or comment-only stack file, or `config:` misspelt: one line, not one per
        # required setting, naming the misspelt key where the stack file shows it.
        raise SettingsError(why_no_settings(pulumi.get_stack(), project, PROJECT_ROOT))
    settings: AnySettings | None = None
    try:
        settings = any_settings_from_values(pulumi.get_stack(), values)
    except SettingsError as error:
        problems.extend(str(error).splitlines())
    # Where the settings were refused, the environment is only the stack file's word (perhaps
    # not even a string): the secrets checked are then those every stack of it needs.
    environment = (
        settings.environment
        if settings is not None
        else str(values.get("environment", pulumi.get_stack()))
    )
    for key in required_secret_keys(environment, settings):
        if key not in values:
            problems.append(
                f"{key}: required secret is missing "
                f"(set it with: pulumi config set --secret {key} <value>)"
            )
        elif not runtime_config.is_config_secret(f"{project}:{key}"):
            problems.append(
                f"{key}: is stored in plain text "
                f"(set it again with: pulumi config set --secret {key} <value>)"
            )
    if problems or settings is None:
        raise SettingsError("\n".join(problems))
    if isinstance(settings, StackSettings):
        warning = support_warning(settings.kubernetes_version, render_date())
        if warning is not None:
            pulumi.log.warn(warning)
    return settings


def required_secret_keys(environment: str, settings: AnySettings | None = None) -> list[str]:
    """The secret keys a stack of `environment` must set: the platform's only on EKS, the
    findings pager's only where GuardDuty is on (known once the settings are)."""
    keys = list(secret_config_keys(with_platform=TARGETS.get(environment, "eks") == "eks"))
    if isinstance(settings, StackSettings):
        if settings.security.guard_duty:
            keys.append(FINDINGS_PAGER_KEY)
        if settings.edge.operator_login is not None:
            keys.append(OPERATOR_SSO_CLIENT_SECRET)
    return keys


def load_secrets(settings: AnySettings) -> dict[str, pulumi.Output[str]]:
    """The secret config values, as secret Outputs (checked present by `load_settings`)."""
    config = pulumi.Config()
    keys = required_secret_keys(settings.environment, settings)
    return {key: config.require_secret(key) for key in keys}


def format_errors(error: ValidationError, model: type[BaseModel] = StackSettings) -> list[str]:
    details = error.errors()
    # A bad dict key (an unknown service, say) makes pydantic also report every field of its
    # value as missing: report the key once and nothing below it.
    bad_keys = [d["loc"][:-1] for d in details if d["loc"] and d["loc"][-1] == "[key]"]
    lines = []
    for detail in details:
        loc = detail["loc"]
        if loc[-1:] == ("[key]",):
            # pydantic places the key itself before "[key]": the mapping is what holds it.
            where = key_path(loc[:-2]) or "(stack)"
            ctx = detail.get("ctx") or {}
            if "pattern" in ctx:
                lines.append(
                    f"{where}: key {short(detail['input'])} does not match {ctx['pattern']}"
                )
            elif "expected" in ctx:
                lines.append(
                    f"{where}: unknown key {short(detail['input'])} (allowed: {ctx['expected']})"
                )
            else:
                lines.append(f"{where}: key {short(detail['input'])} is invalid: {detail['msg']}")
        elif not any(loc[: len(prefix)] == prefix for prefix in bad_keys):
            lines.append(_format_one(detail, model))
    return lines


def key_path(parts: Sequence[Any]) -> str:
    """A location as a dotted path with list positions in brackets (`access.sres[0]`); a part
    that is no plain name is quoted (and cut short)."""
    shown = ""
    for part in parts:
        if isinstance(part, int):
            shown += f"[{part}]"
            continue
        text = str(part)
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", text):
            text = repr(text if len(text) <= 40 else text[:37] + "...")
        shown += f".{text}" if shown else text
    return shown


def field_parts(field: str) -> list[str | int]:
    """A key path as our validators write it (`platformAdmins[0].x`), as location parts."""
    parts: list[str | int] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[([0-9]+)\]", field):
        parts.append(int(index) if index else name)
    return parts


# What a pattern-checked setting takes, in words (the patterns are those of the settings types).
_POSTGRES_NAME = "lower-case letters, digits and _, starting with a letter, at most {} characters"
_HOST = "a lower-case host (letters, digits, . and -)"
PATTERN_HINTS = {
    r"^[a-z][a-z0-9_]{0,15}$": _POSTGRES_NAME.format(16),
    r"^[a-z][a-z0-9_]{0,62}$": _POSTGRES_NAME.format(63),
    r"^https://[a-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$": (
        f"https://, then {_HOST}, an optional :port and a path of letters, digits and . _ ~ / -"
    ),
    r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?(/.*)?$": (
        f"http:// or https://, then {_HOST}, an optional :port and path"
    ),
}


def _format_one(detail: ErrorDetails, model: type[BaseModel]) -> str:
    loc: list[Any] = list(detail["loc"])
    ctx = detail.get("ctx") or {}
    if detail["type"] == "invalid_setting":
        # Raised by our own validators: they name the key, the value and the rule.
        # Field validators and types already stand at their key; model validators name it in
        # ctx (relative to the model).
        field = field_parts(str(ctx["field"]))
        if field and [str(p) for p in loc[-len(field) :]] != [str(p) for p in field]:
            loc.extend(field)
        return (key_path(loc) or "(stack)") + f": {ctx['problem']}"
    key = key_path(loc) or "(stack)"
    if detail["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, detail["loc"][:-1])
        guess = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean {guess[0]!r}?" if guess else ""
        return f"{key}: unknown setting (allowed: {', '.join(allowed)}){hint}"
    if detail["type"] == "missing":
        return f"{key}: required setting is missing"
    message = detail["msg"]
    rule = f"{message[0].lower()}{message[1:]}"
    if detail["input"] is None:
        # A YAML null (or a key with nothing after it): say so, not Python's None.
        return f"{key}: is empty (null): {rule}"
    if detail["type"] == "string_pattern_mismatch" and ctx.get("pattern") in PATTERN_HINTS:
        rule = f"allowed: {PATTERN_HINTS[ctx['pattern']]}"
    # pydantic's own messages state the rule ("Input should be ..."); prefix key and value.
    return f"{key}: {short(detail['input'])} is invalid: {rule}"


def _allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The camelCase keys of the settings model found at `loc` below `model`."""
    annotation: Any = model
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {f.alias or name: f.annotation for name, f in annotation.model_fields.items()}
            annotation = fields.get(str(part))
        else:  # a list or dict: step into its item type
            args = typing.get_args(annotation)
            annotation = args[-1] if args else None
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or name for name, f in annotation.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) in (typing.Annotated, Union, types.UnionType):
        annotation = typing.get_args(annotation)[0]
    return annotation
