"""The URN snapshot: each stack's sorted URNs, with `protect` and aliases, committed to the repo.

A URN change is a replacement on `pulumi up` (and a failed update when the resource is
protected), unless an alias names the old URN. The snapshot makes every such change visible in
review: `tests/test_snapshot.py` compares each render with its snapshot and prints which
resources a change moves, creates, deletes or re-creates.

    python -m offline.snapshot            # rewrite every stack's snapshot (`make snapshot`)
    python -m offline.snapshot --check    # compare only; exit 1 and print the difference
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from offline.engine import PROJECT_DIR, StackRun, run_stack
from stacks.environments import ENVIRONMENTS

SNAPSHOT_DIR = PROJECT_DIR / "tests" / "snapshots"
HEADER = (
    "# URNs of stack {stack}, sorted: `P` protected, `-` not; each `<-` line is an alias\n"
    "# (an earlier URN the resource answers to). Rewrite with `make snapshot`.\n"
)


@dataclass(frozen=True)
class Entry:
    urn: str
    protect: bool
    aliases: tuple[str, ...] = ()

    @property
    def type_and_name(self) -> tuple[str, str]:
        parts = self.urn.split("::")
        return parts[2].split("$")[-1], parts[3]


def entries(run: StackRun) -> list[Entry]:
    return sorted(
        (Entry(r.urn, r.protect, tuple(r.aliases)) for r in run.resources), key=lambda e: e.urn
    )


def render(stack: str, found: list[Entry]) -> str:
    lines = [HEADER.format(stack=stack)]
    for entry in found:
        lines.append(f"{'P' if entry.protect else '-'} {entry.urn}\n")
        lines.extend(f"  <- {alias}\n" for alias in entry.aliases)
    return "".join(lines)


def parse(text: str) -> list[Entry]:
    found: list[Entry] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        if line.startswith("  <- ") and found:
            last = found[-1]
            found[-1] = Entry(last.urn, last.protect, (*last.aliases, line[5:]))
        elif line[:2] in ("P ", "- "):
            found.append(Entry(line[2:], line[0] == "P"))
        else:
            raise ValueError(f"snapshot line {number} is not understood: {line!r}")
    return found


@dataclass
class Difference:
    """How a render differs from its snapshot, in the terms of `pulumi up`."""

    moved: list[tuple[str, str]] = field(default_factory=list)  # (old, new), alias covers it
    created: list[Entry] = field(default_factory=list)
    deleted: list[Entry] = field(default_factory=list)
    recreated: list[tuple[Entry, Entry]] = field(default_factory=list)  # URN changed, no alias
    protection: list[tuple[str, bool]] = field(default_factory=list)  # (urn, now protected)
    aliases: list[str] = field(default_factory=list)  # URNs whose alias list changed

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.moved,
                self.created,
                self.deleted,
                self.recreated,
                self.protection,
                self.aliases,
            )
        )

    def report(self) -> str:
        lines: list[str] = []

        def mark(entry: Entry) -> str:
            return " [PROTECTED: the update fails]" if entry.protect else ""

        for old, new in self.recreated:
            lines.append(f"re-created (URN changed, no alias){mark(old)}: {old.urn} -> {new.urn}")
        lines.extend(
            f"deleted{' [PROTECTED: the update fails]' if e.protect else ''}: {e.urn}"
            for e in self.deleted
        )
        lines.extend(f"created: {e.urn}" for e in self.created)
        lines.extend(f"moved by alias (kept): {old} -> {new}" for old, new in self.moved)
        lines.extend(
            f"protection {'added' if now else 'removed'}: {urn}" for urn, now in self.protection
        )
        lines.extend(f"aliases changed: {urn}" for urn in self.aliases)
        return "\n".join(lines)


def compare(snapshot: list[Entry], current: list[Entry]) -> Difference:
    old = {e.urn: e for e in snapshot}
    difference = Difference()
    claimed: set[str] = set()
    created: list[Entry] = []
    for entry in current:
        before = old.get(entry.urn)
        if before is not None:
            claimed.add(entry.urn)
            if before.protect != entry.protect:
                difference.protection.append((entry.urn, entry.protect))
            if before.aliases != entry.aliases:
                difference.aliases.append(entry.urn)
            continue
        matches = [alias for alias in entry.aliases if alias in old]
        if matches:
            claimed.update(matches)
            difference.moved.extend((alias, entry.urn) for alias in matches)
        else:
            created.append(entry)
    gone = [e for urn, e in old.items() if urn not in claimed]
    by_identity = {e.type_and_name: e for e in gone}
    for entry in created:
        previous = by_identity.pop(entry.type_and_name, None)
        if previous is not None:
            difference.recreated.append((previous, entry))
        else:
            difference.created.append(entry)
    difference.deleted = sorted(by_identity.values(), key=lambda e: e.urn)
    return difference


def snapshot_path(stack: str) -> Path:
    return SNAPSHOT_DIR / f"{stack}.urns"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    status = 0
    for stack in ENVIRONMENTS:
        current = entries(run_stack(stack))
        path = snapshot_path(stack)
        if args.check:
            difference = compare(parse(path.read_text()), current)
            if not difference.empty:
                print(f"{stack}:\n{difference.report()}")
                status = 1
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(stack, current))
            print(f"{path.relative_to(PROJECT_DIR)}: {len(current)} URNs")
    return status


if __name__ == "__main__":
    sys.exit(main())
