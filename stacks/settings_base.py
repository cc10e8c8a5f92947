"""What every settings model shares: camelCase keys, immutability, and keyed error messages."""

from __future__ import annotations

import types
import typing
from collections.abc import Collection
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

WorkloadClass = Literal["general", "compute", "memory", "gpu"]
# An IAM role or user of the commercial partition (see stacks/aws_facts.py), in ASCII.
IAM_PRINCIPAL_PATTERN = r"^arn:aws:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/-]{1,512}$"
WORKLOAD_CLASSES: tuple[WorkloadClass, ...] = typing.get_args(WorkloadClass)


def invalid(field: str, value: Any, problem: str) -> PydanticCustomError:
    """An error about `field` (a key of the model being validated) with its value and the rule."""
    return PydanticCustomError(
        "invalid_setting",
        "{field}: {problem}",
        {"field": field, "value": value, "problem": problem},
    )


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


def _expects_int(annotation: Any) -> bool:
    """Whether a field holds a number but not a boolean (`replicas: true` is not 1)."""
    annotation = _bare(annotation)
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    options = [_bare(o) for o in typing.get_args(annotation)] if union else [annotation]
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
    def _no_booleans_for_numbers(cls, values: Any) -> Any:
        if isinstance(values, dict):
            for name, info in cls.model_fields.items():
                key = info.alias or name
                value = values.get(key, values.get(name))
                if isinstance(value, bool) and _expects_int(info.annotation):
                    raise invalid(key, value, f"{value} is a boolean, not a number")
        return values
