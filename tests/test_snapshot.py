"""The URN snapshot: every render keeps the URNs committed in tests/snapshots/, or says why not.

A URN change makes `pulumi up` delete and re-create the resource (and fail on a protected one)
unless an alias names the old URN. When a change is intended, `make snapshot` rewrites the
snapshot and the diff shows reviewers each moved, created, deleted or re-created resource.
"""

from __future__ import annotations

import pulumi
import pytest

from offline.engine import StackRun, run_program
from offline.snapshot import Entry, compare, entries, parse, render, snapshot_path
from stacks.environments import ENVIRONMENTS

STACK = "urn:pulumi:s::p::"


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_render_keeps_the_committed_urns(stack: str, runs: dict[str, StackRun]) -> None:
    stack_run = runs[stack]
    committed = parse(snapshot_path(stack_run.stack).read_text())
    difference = compare(committed, entries(stack_run))
    assert difference.empty, (
        f"{stack_run.stack} differs from its URN snapshot (if intended, run `make snapshot` and "
        f"explain each line in the change):\n{difference.report()}"
    )


def test_snapshot_round_trips() -> None:
    found = [
        Entry(f"{STACK}a:b:C::one", True, (f"{STACK}a:old:C::one",)),
        Entry(f"{STACK}a:b:C$x:y:Z::two", False),
    ]
    assert parse(render("s", found)) == found


def test_an_aliased_move_is_kept_and_a_urn_change_without_alias_is_a_recreation() -> None:
    old = [Entry(f"{STACK}a:old:C::one", True), Entry(f"{STACK}a:old:C$x:y:Z::two", True)]
    moved = Entry(f"{STACK}a:new:C::one", True, (f"{STACK}a:old:C::one",))
    recreated = Entry(f"{STACK}a:new:C$x:y:Z::two", True)
    difference = compare(old, [moved, recreated])
    assert difference.moved == [(f"{STACK}a:old:C::one", f"{STACK}a:new:C::one")]
    assert difference.recreated == [(old[1], recreated)]
    assert difference.created == [] and difference.deleted == []
    assert "re-created (URN changed, no alias) [PROTECTED: the update fails]" in (
        difference.report()
    )


@pytest.mark.parametrize(
    ("current", "field", "expected"),
    [
        ([], "deleted", [Entry(f"{STACK}a:b:C::one", True)]),
        (
            [Entry(f"{STACK}a:b:C::one", True), Entry(f"{STACK}a:b:C::new", False)],
            "created",
            [Entry(f"{STACK}a:b:C::new", False)],
        ),
        ([Entry(f"{STACK}a:b:C::one", False)], "protection", [(f"{STACK}a:b:C::one", False)]),
    ],
)
def test_deletions_creations_and_protection_changes_are_differences(
    current: list[Entry], field: str, expected: list[object]
) -> None:
    difference = compare([Entry(f"{STACK}a:b:C::one", True)], current)
    assert getattr(difference, field) == expected
    assert not difference.empty


def test_the_engine_records_real_urns_and_the_aliases_children_inherit() -> None:
    def program() -> None:
        outer = pulumi.ComponentResource(
            "test:new:Outer",
            "outer",
            opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(type_="test:old:Outer")]),
        )
        inner = pulumi.ComponentResource(
            "test:new:Inner", "outer-inner", opts=pulumi.ResourceOptions(parent=outer)
        )
        pulumi.ComponentResource(
            "test:new:Leaf",
            "leaf",
            opts=pulumi.ResourceOptions(parent=inner, aliases=[pulumi.Alias(name="old-leaf")]),
        )

    run = run_program(program, project="p", stack="s")
    by_name = {r.name: r for r in run.resources}
    assert by_name["outer"].urn == f"{STACK}test:new:Outer::outer"
    assert by_name["outer"].aliases == [f"{STACK}test:old:Outer::outer"]
    assert by_name["outer-inner"].urn == f"{STACK}test:new:Outer$test:new:Inner::outer-inner"
    assert by_name["outer-inner"].aliases == [f"{STACK}test:old:Outer$test:new:Inner::outer-inner"]
    leaf = f"{STACK}test:new:Outer$test:new:Inner$test:new:Leaf"
    old_chain = f"{STACK}test:old:Outer$test:new:Inner$test:new:Leaf"
    assert by_name["leaf"].urn == f"{leaf}::leaf"
    assert by_name["leaf"].aliases == sorted(
        [f"{leaf}::old-leaf", f"{old_chain}::leaf", f"{old_chain}::old-leaf"]
    )


def test_the_engine_refuses_two_resources_with_one_urn() -> None:
    def program() -> None:
        pulumi.ComponentResource("test:a:Same", "twice")
        pulumi.ComponentResource("test:a:Same", "twice")

    with pytest.raises(Exception, match="duplicate URN urn:pulumi:s::p::test:a:Same::twice"):
        run_program(program, project="p", stack="s")
