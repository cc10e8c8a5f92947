"""Waiting for a resource that the program makes later.

Pulumi orders resources by their dependencies, not by where the program registers them. A
resource may therefore wait for one registered further down, through an Output that resolves
once that resource exists: the engine holds the waiting resource's registration until then.
Used where two layers would otherwise form a loop of construction, though not of dependencies
(Jaeger's release, made with the add-ons, waits for the search bootstrap, made with the
workloads from the add-ons' roles).
"""

from __future__ import annotations

import asyncio

import pulumi


class LaterResource:
    """A resource named now and made later: `output` may go into `depends_on` at once;
    `resolve` hands over the resource once made. A program must resolve every LaterResource
    it creates (or its waiting resources would never register)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._made: asyncio.Future[pulumi.Resource] = asyncio.get_event_loop().create_future()
        self.output: pulumi.Output[pulumi.Resource] = pulumi.Output.from_input(self._made)

    def resolve(self, resource: pulumi.Resource) -> None:
        if self._made.done():
            raise ValueError(f"{self.what} was already made")
        self._made.set_result(resource)
