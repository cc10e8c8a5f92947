"""What every settings model shares: camelCase keys, immutability, and keyed error messages."""

from __future__ import annotations

import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
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


class Settings(BaseModel):
    """Base of every settings model: camelCase keys, immutable, unknown keys rejected."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
    )
