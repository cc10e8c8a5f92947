"""What every settings model shares: camelCase keys, immutability, and keyed error messages."""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Collection
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

WorkloadClass = Literal["general", "compute", "memory", "gpu"]
WORKLOAD_CLASSES: tuple[WorkloadClass, ...] = typing.get_args(WorkloadClass)


def invalid(field: str, value: Any, problem: str) -> PydanticCustomError:
    """An error about `field` (a key of the model being validated) with its value and the rule."""
    return PydanticCustomError(
        "invalid_setting",
        "{field}: {problem}",
        {"field": field, "value": value, "problem": problem},
    )


def refuse(value: Any, problem: str) -> PydanticCustomError:
    """An error about the value at the key being validated (a rule of a type, not of a model:
    the formatter names the key from where pydantic found it)."""
    return invalid("", value, problem)


def short(value: Any, limit: int = 60) -> str:
    """A value as an error message shows it: its repr, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def check_one_of(field: str, value: Any, allowed: Collection[str], what: str) -> None:
    """Refuse `value` unless it is one of `allowed`, naming them (sorted)."""
    if value not in allowed:
        raise invalid(
            field, value, f"{short(value)} is not a {what} (allowed: {', '.join(sorted(allowed))})"
        )


def _bare(annotation: Any) -> Any:
    """The type inside any `Annotated[...]` layers."""
    while hasattr(annotation, "__metadata__"):
        annotation = annotation.__origin__
    return annotation


def _options(annotation: Any) -> list[Any]:
    """The types a field may hold (the members of a union, `Annotated` layers removed)."""
    annotation = _bare(annotation)
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    return [_bare(o) for o in typing.get_args(annotation)] if union else [annotation]


def expects_bool(annotation: Any) -> bool:
    """Whether a field holds a boolean (perhaps or None)."""
    return bool in _options(annotation)


def _bool_values(annotation: Any) -> bool:
    """Whether a field is a mapping whose values are booleans (feature flags)."""
    options = _options(annotation)
    return any(
        typing.get_origin(o) is dict and _bare(typing.get_args(o)[-1]) is bool for o in options
    )


# Booleans are strict: pydantic's lax mode would read "yes", "on", "1", 1 and "t" as true, so
# `protect: "yes"` would pass for a boolean. A boolean setting takes true or false only; the
# loader turns the text the Pulumi CLI hands for a top-level YAML boolean ("true"/"false", as
# pulumi's own Config.get_bool takes them) into one before validation.
def _not_a_boolean(key: str, value: Any) -> PydanticCustomError:
    return invalid(key, value, f"{short(value)} is not a boolean (allowed: true or false)")


def _expects_int(annotation: Any) -> bool:
    """Whether a field holds a number but not a boolean (`replicas: true` is not 1)."""
    options = _options(annotation)
    return any(o in (int, float) for o in options) and bool not in options


class Settings(BaseModel):
    """Base of every settings model: camelCase keys, immutable, unknown keys rejected."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _strict_booleans(cls, values: Any) -> Any:
        """Numbers are not booleans, and booleans are only booleans (see `_not_a_boolean`)."""
        if isinstance(values, dict):
            for name, key, kind in _scalar_fields(cls):
                if key not in values and name not in values:
                    continue
                value = values.get(key, values.get(name))
                if kind == "number" and isinstance(value, bool):
                    raise invalid(key, value, f"{value} is a boolean, not a number")
                null_allowed = value is None and kind == "boolean or null"
                is_flag = kind in ("boolean", "boolean or null")
                if is_flag and not isinstance(value, bool) and not null_allowed:
                    raise _not_a_boolean(key, value)
                if kind == "booleans" and isinstance(value, dict):
                    for flag, setting in value.items():
                        if not isinstance(setting, bool):
                            raise _not_a_boolean(f"{key}.{flag}", setting)
        return values


@functools.cache
def _scalar_fields(model: type[Settings]) -> list[tuple[str, str, str]]:
    """(name, key, kind) of the fields whose values the strict checks above look at."""
    fields = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        if _expects_int(info.annotation):
            fields.append((name, key, "number"))
        elif expects_bool(info.annotation):
            optional = type(None) in _options(info.annotation)
            fields.append((name, key, "boolean or null" if optional else "boolean"))
        elif _bool_values(info.annotation):
            fields.append((name, key, "booleans"))
    return fields
