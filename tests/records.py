"""Hand-made recorded resources, for tests of the graph tools (estimate, first up)."""

from __future__ import annotations

from offline.engine import RecordedResource

STACK = "urn:pulumi:s::p::pulumi:pulumi:Stack::p-s"


def node(
    name: str,
    type_: str,
    *,
    custom: bool = True,
    parent: str = STACK,
    dependencies: tuple[str, ...] = (),
    provider: str = "",
) -> RecordedResource:
    return RecordedResource(
        urn=f"urn:pulumi:s::p::{type_}::{name}",
        type=type_,
        name=name,
        parent=parent,
        custom=custom,
        protect=False,
        provider=provider,
        dependencies=list(dependencies),
        ignore_changes=[],
        inputs={},
    )
