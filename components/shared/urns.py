"""Stable URNs across refactoring: a URN change is a delete and re-create on `pulumi up`.

A component whose type token changes (it moved to another layer's folder, say) declares the
types it was registered under before. The engine then finds the existing resource under the old
URN, and every child inherits the alias, so nothing in AWS or the cluster moves. The URN snapshot
(`tests/snapshots/`) lists each alias, so a reviewer can tell a move from a re-creation.
"""

from __future__ import annotations

import pulumi


def formerly(opts: pulumi.ResourceOptions | None, *types: str) -> pulumi.ResourceOptions:
    """`opts` plus one alias per earlier type token of the component being registered.

    An alias may be dropped once every stack has run `pulumi up` with it.
    """
    aliases: list[pulumi.Input[str | pulumi.Alias]] = [pulumi.Alias(type_=t) for t in types]
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=aliases))
