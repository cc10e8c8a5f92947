"""The fields of a protobuf message and of every message it reaches, read from `.proto` sources.

Used by tools/chart_facts.py to record, as data, which keys Istio's MeshConfig accepts (a chart
copies `meshConfig` into a ConfigMap whole; istiod then ignores unknown keys, see
tests/chart_checks.py). Only what a JSON/YAML document of the message needs is kept: each
field's JSON name and proto name (golang/protobuf's jsonpb accepts either), whether it repeats
or is a map, and its type (a scalar, a message, an enum with its values, or a well-known type).
The parser knows the proto3 subset the sources use: package, import, message, enum, oneof,
map, repeated/optional, reserved, option and field options.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

TOKEN = re.compile(
    r'\s+|//[^\n]*|/\*.*?\*/|(?P<string>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')'
    r"|(?P<word>[A-Za-z_.][A-Za-z0-9_.]*|-?[0-9][0-9A-Za-z_.+-]*)|(?P<symbol>[{}()<>=;,\[\]:])",
    re.DOTALL,
)
SCALARS = {
    "double",
    "float",
    "int32",
    "int64",
    "uint32",
    "uint64",
    "sint32",
    "sint64",
    "fixed32",
    "fixed64",
    "sfixed32",
    "sfixed64",
    "bool",
    "string",
    "bytes",
}
# google/protobuf's well-known types have JSON forms of their own (a Duration is "5s", a
# wrapper its bare value, a Struct any object); they are not walked.
WELL_KNOWN = "google.protobuf."


def tokens(text: str) -> Iterator[str]:
    position = 0
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"proto: cannot read {text[position : position + 40]!r}")
        position = match.end()
        found = match.group("string") or match.group("word") or match.group("symbol")
        if found:
            yield found


def json_name(name: str) -> str:
    """protoc's default JSON name: underscores dropped, the letter after one upper-cased."""
    parts = name.split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


@dataclass
class Field:
    name: str
    json: str
    type: str
    repeated: bool = False
    map_key: str | None = None


@dataclass
class Message:
    fields: list[Field] = field(default_factory=list)


@dataclass
class ProtoFile:
    package: str
    imports: list[str]
    messages: dict[str, Message]
    enums: dict[str, list[str]]


class Parser:
    def __init__(self, text: str) -> None:
        self.items = list(tokens(text))
        self.at = 0
        self.package = ""
        self.imports: list[str] = []
        self.messages: dict[str, Message] = {}
        self.enums: dict[str, list[str]] = {}

    def peek(self) -> str:
        return self.items[self.at] if self.at < len(self.items) else ""

    def next(self) -> str:
        found = self.peek()
        self.at += 1
        return found

    def expect(self, token: str) -> None:
        found = self.next()
        if found != token:
            raise ValueError(f"proto: expected {token!r}, found {found!r}")

    def skip_statement(self) -> None:
        depth = 0
        while True:
            token = self.next()
            if token in ("{", "[", "("):
                depth += 1
            elif token in ("}", "]", ")"):
                depth -= 1
            if token == ";" and depth == 0:
                return
            if token == "}" and depth == 0:
                return
            if not token:
                return

    def skip_block(self) -> None:
        self.expect("{")
        depth = 1
        while depth:
            token = self.next()
            if not token:
                raise ValueError("proto: unterminated block")
            depth += {"{": 1, "}": -1}.get(token, 0)

    def parse(self) -> ProtoFile:
        while self.peek():
            token = self.next()
            if token == "package":
                self.package = self.next()
                self.expect(";")
            elif token == "import":
                path = self.next()
                if path in ("public", "weak"):
                    path = self.next()
                self.imports.append(path.strip("\"'"))
                self.expect(";")
            elif token == "message":
                self.message(self.package)
            elif token == "enum":
                self.enum(self.package)
            elif token in ("service", "extend"):
                self.next()
                self.skip_block()
            elif token in ("syntax", "option", "edition"):
                self.skip_statement()
            elif token != ";":
                raise ValueError(f"proto: unexpected {token!r}")
        return ProtoFile(self.package, self.imports, self.messages, self.enums)

    def message(self, scope: str) -> None:
        name = f"{scope}.{self.next()}".lstrip(".")
        found = self.messages[name] = Message()
        self.expect("{")
        self.body(name, found, "}")

    def body(self, scope: str, message: Message, end: str) -> None:
        while True:
            token = self.peek()
            if token == end:
                self.next()
                return
            if token == "message":
                self.next()
                self.message(scope)
            elif token == "enum":
                self.next()
                self.enum(scope)
            elif token == "oneof":
                self.next()
                self.next()
                self.expect("{")
                self.body(scope, message, "}")
            elif token in ("option", "reserved", "extensions"):
                self.skip_statement()
            elif token == "extend":
                self.next()
                self.next()
                self.skip_block()
            elif token == ";":
                self.next()
            else:
                message.fields.append(self.field(scope))

    def field(self, scope: str) -> Field:
        token = self.next()
        repeated = False
        map_key = None
        if token in ("repeated", "optional", "required"):
            repeated = token == "repeated"
            token = self.next()
        if token == "map":
            self.expect("<")
            map_key = self.next()
            self.expect(",")
            token = self.next()
            self.expect(">")
        name = self.next()
        self.expect("=")
        self.next()
        json = json_name(name)
        if self.peek() == "[":
            self.next()
            options = []
            while (option := self.next()) != "]":
                options.append(option)
            if "json_name" in options:
                json = options[options.index("json_name") + 2].strip("\"'")
        self.expect(";")
        return Field(name, json, f"{scope}\n{token}", repeated, map_key)

    def enum(self, scope: str) -> None:
        name = f"{scope}.{self.next()}".lstrip(".")
        values: list[str] = []
        self.expect("{")
        while (token := self.next()) != "}":
            if token in ("option", "reserved"):
                self.skip_statement()
            elif token == ";":
                continue
            else:
                values.append(token)
                self.skip_statement()
        self.enums[name] = values


def load(read: Callable[[str], str], root: str) -> dict[str, ProtoFile]:
    """Every file `root` imports (transitively), but google's own, by path."""
    files: dict[str, ProtoFile] = {}
    pending = [root]
    while pending:
        path = pending.pop()
        if path in files or path.startswith("google/"):
            continue
        files[path] = Parser(read(path)).parse()
        pending += files[path].imports
    return files


def resolve(reference: str, messages: set[str], enums: set[str]) -> str:
    """protoc's name resolution: `reference` was written in `scope` (innermost first)."""
    scope, name = reference.split("\n")
    if name in SCALARS:
        return name
    if name.startswith("."):
        return name[1:]
    if name.startswith(WELL_KNOWN):
        return name
    parts = scope.split(".") if scope else []
    for end in range(len(parts), -1, -1):
        candidate = ".".join([*parts[:end], name])
        if candidate in messages or candidate in enums:
            return candidate
    raise ValueError(f"proto: unknown type {name} in {scope}")


def schema(read: Callable[[str], str], root: str, message: str) -> dict[str, Any]:
    """`message` and every message and enum it reaches, as JSON-able data:
    {"root": message, "messages": {name: {json name: {"name", "type", "repeated", "map"}}},
    "enums": {name: [values]}}."""
    files = load(read, root)
    messages = {name: m for f in files.values() for name, m in f.messages.items()}
    enums = {name: v for f in files.values() for name, v in f.enums.items()}
    found_messages: dict[str, Any] = {}
    found_enums: dict[str, list[str]] = {}
    pending = [message]
    while pending:
        name = pending.pop()
        if name in found_messages:
            continue
        fields = {}
        for item in messages[name].fields:
            kind = resolve(item.type, set(messages), set(enums))
            fields[item.json] = {
                "name": item.name,
                "type": kind,
                "repeated": item.repeated,
                "map": item.map_key is not None,
            }
            if kind in messages:
                pending.append(kind)
            elif kind in enums:
                found_enums[kind] = enums[kind]
        found_messages[name] = dict(sorted(fields.items()))
    return {
        "root": message,
        "messages": dict(sorted(found_messages.items())),
        "enums": dict(sorted(found_enums.items())),
    }
