"""`make docs`: the settings reference (docs/settings.md) and the stack files' JSON Schema
(docs/stack-file.schema.json), both generated from the pydantic settings models.

Types, enums, patterns, ranges and model defaults come from the models' own JSON Schema
(pydantic); a key's description is its field's `description`, or else the comment block written
just above the field in the model's source, which is where this code base explains its settings.
The defaults per environment are `stacks.environments.DEFAULTS`, which the loader merges under
every stack file. `--check` exits 1 when a committed file differs from what would be generated.
"""

from __future__ import annotations

import argparse
import ast
import functools
import inspect
import json
import sys
import textwrap
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from stacks.environments import DEFAULTS, TARGETS
from stacks.loader import MODELS, OTHER_NAMESPACES, STACK_FILE_KEYS
from stacks.secrets import NOT_SETTINGS

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_MD = ROOT / "docs" / "settings.md"
SCHEMA_JSON = ROOT / "docs" / "stack-file.schema.json"
SCHEMA_ID = "https://financial-planning.invalid/stack-file.schema.json"


def project_name() -> str:
    """The config namespace: `name` in Pulumi.yaml (read without a YAML library: one line)."""
    for line in (ROOT / "Pulumi.yaml").read_text().splitlines():
        if line.startswith("name:"):
            return line.split(":", 1)[1].strip()
    raise SystemExit("Pulumi.yaml: no `name:` line")


def _models(root: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every settings model reachable from `root`, by class name (the JSON Schema's $defs)."""
    found: dict[str, type[BaseModel]] = {}

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation.__name__ in found:
                if found[annotation.__name__] is not annotation:
                    raise SystemExit(f"two settings models named {annotation.__name__}")
                return
            found[annotation.__name__] = annotation
            for field in annotation.model_fields.values():
                visit(field.annotation)
            return
        for arg in typing.get_args(annotation):
            visit(arg)

    visit(root)
    return found


@functools.cache
def _source(model: type[BaseModel]) -> str | None:
    """`model`'s class source, read once per process: inspect parses the whole module to find
    one class, and each model is looked up several times: that was most of `make docs`' time."""
    try:
        return textwrap.dedent(inspect.getsource(model))
    except (OSError, TypeError):
        return None


def _comments(model: type[BaseModel]) -> dict[str, str]:
    """The comment block just above each field of `model`'s class body, by field name."""
    source = _source(model)
    if source is None:
        return {}
    lines = source.splitlines()
    tree = ast.parse(source)
    found: dict[str, str] = {}
    for node in tree.body[0].body if isinstance(tree.body[0], ast.ClassDef) else []:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            block: list[str] = []
            row = node.lineno - 2
            while row >= 0 and lines[row].strip().startswith("#"):
                block.insert(0, lines[row].strip().lstrip("#").strip())
                row -= 1
            if block:
                found[node.target.id] = " ".join(block)
    return found


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON Schema by alias, each property described by its field or its comment."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    models = _models(model)
    defs = schema.get("$defs", {})
    for name, cls in models.items():
        target = schema if cls is model else defs.get(name)
        if target is None:
            continue
        comments = _comments(cls)
        for field_name, field in cls.model_fields.items():
            prop = target.get("properties", {}).get(field.alias or field_name)
            description = field.description or comments.get(field_name)
            if prop is not None and description and "description" not in prop:
                prop["description"] = description
    return schema


# A Unicode property class (`\p{L}`: IAM's tag pattern). pydantic's regex engine reads it;
# Python's `re` and an ECMA-262 engine without the `u` flag refuse the whole pattern, so the
# schema leaves such a pattern out (the program still applies it).
UNICODE_CLASS = "\\p{"


def _for_stack_files(node: Any) -> Any:
    """A model's schema as a stack file meets it. A stack file states only what differs from
    its environment's defaults, so no key is required by itself (the program still refuses a
    merged result that lacks one); a map whose keys have a pattern refuses any other key, as
    the model does (pydantic's schema leaves them open)."""
    if isinstance(node, dict):
        fixed = {k: _for_stack_files(v) for k, v in node.items() if k != "required"}
        if UNICODE_CLASS in str(fixed.get("pattern", "")):
            del fixed["pattern"]
        patterns = fixed.get("patternProperties", {})
        if any(UNICODE_CLASS in key for key in patterns):
            # Keys whose pattern no portable engine reads: any key, the program checks it.
            [fixed["additionalProperties"]] = patterns.values()
            del fixed["patternProperties"]
        if "patternProperties" in fixed and "additionalProperties" not in fixed:
            fixed["additionalProperties"] = False
        if "$ref" in fixed and len(fixed) > 1:
            # Draft 7 ignores every keyword beside `$ref`: keep the description and default
            # (an editor's hover and completion) on a wrapper instead.
            fixed = {"allOf": [{"$ref": fixed.pop("$ref")}], **fixed}
        return fixed
    if isinstance(node, list):
        return [_for_stack_files(v) for v in node]
    return node


def stack_file_schema() -> dict[str, Any]:
    """The JSON Schema of a `Pulumi.<stack>.yaml`: its `config:` map under the project's
    namespace, for either settings model (EKS or an existing cluster)."""
    project = project_name()
    secret = {
        "type": "object",
        "properties": {"secure": {"type": "string", "minLength": 1}},
        "required": ["secure"],
        "additionalProperties": False,
        "description": "A secret: set it with `pulumi config set --secret`.",
    }
    defs: dict[str, Any] = {"secret": secret}
    variants = []
    for target, model in sorted(MODELS.items()):
        schema = _for_stack_files(model_schema(model))
        for name, definition in schema.pop("$defs", {}).items():
            defs[name] = definition
        properties = {f"{project}:{key}": value for key, value in schema["properties"].items()}
        properties.update(
            {f"{project}:{key}": {"$ref": "#/$defs/secret"} for key in sorted(NOT_SETTINGS)}
        )
        defs[f"config-{target}"] = {
            "type": "object",
            "title": f"config of a stack on {target} ({model.__name__})",
            "properties": properties,
            "patternProperties": {
                f"^({'|'.join(sorted(OTHER_NAMESPACES))}):": {},
            },
            "additionalProperties": False,
        }
        variants.append({"$ref": f"#/$defs/config-{target}"})
    return {
        # Draft 7: what the YAML language server supports (its README, "Supports JSON Schema 7
        # and below"); `$defs` is reached by JSON pointer, which every draft resolves.
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": SCHEMA_ID,
        "title": f"Pulumi stack file of project {project} (generated by `make docs`)",
        "type": "object",
        # The keys of a stack file the engine reads (stacks/loader.py, STACK_FILE_KEYS).
        "properties": {
            **{
                key: {"type": "string"}
                for key in STACK_FILE_KEYS
                if key not in ("config", "environment")
            },
            "environment": {"description": "Pulumi ESC environments the stack imports."},
            "config": {"anyOf": variants},
        },
        "additionalProperties": False,
        "$defs": dict(sorted(defs.items())),
    }


# --- docs/settings.md -----------------------------------------------------------------------


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = {
            **defs[schema["$ref"].rsplit("/", 1)[1]],
            **{k: v for k, v in schema.items() if k != "$ref"},
        }
    return schema


def _nullable(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    options = schema.get("anyOf")
    if options and any(o.get("type") == "null" for o in options):
        rest = [o for o in options if o.get("type") != "null"]
        if len(rest) == 1:
            merged = {**rest[0], **{k: v for k, v in schema.items() if k != "anyOf"}}
            return merged, True
    return schema, False


def _type(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    schema, nullable = _nullable(schema)
    if "$ref" in schema:
        text = "object"
    elif "enum" in schema:
        text = " \\| ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    elif "const" in schema:
        text = f"`{json.dumps(schema['const'])}`"
    elif schema.get("type") == "array":
        text = f"list of {_type(schema.get('items', {}), defs)}"
    elif schema.get("type") == "object" and "additionalProperties" in schema:
        value = schema["additionalProperties"]
        text = f"map to {_type(value, defs) if isinstance(value, dict) else 'any'}"
    elif schema.get("type") == "object" and "patternProperties" in schema:
        [value] = schema["patternProperties"].values()
        text = f"map to {_type(value, defs)}"
    elif "anyOf" in schema:
        text = " or ".join(_type(o, defs) for o in schema["anyOf"])
    else:
        text = str(schema.get("type", "any"))
    return f"{text} or null" if nullable else text


def _constraints(schema: dict[str, Any]) -> str:
    schema, _ = _nullable(schema)
    parts = []
    for key, label in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
        ("minLength", "length >="),
        ("maxLength", "length <="),
        ("minItems", "items >="),
        ("maxItems", "items <="),
    ):
        if key in schema:
            parts.append(f"{label} {schema[key]}")
    if "pattern" in schema:
        parts.append(f"pattern `{schema['pattern']}`")
    names = schema.get("propertyNames", {})
    if "enum" in names:
        parts.append("keys: " + ", ".join(f"`{k}`" for k in names["enum"]))
    elif "pattern" in names:
        parts.append(f"keys match `{names['pattern']}`")
    for key_pattern, value in schema.get("patternProperties", {}).items():
        parts.append(f"keys match `{key_pattern}`")
        if "pattern" in value:
            parts.append(f"values match `{value['pattern']}`")
    for key, label in (("minLength", "key length >="), ("maxLength", "key length <=")):
        if key in names:
            parts.append(f"{label} {names[key]}")
    items = schema.get("items", {})
    if isinstance(items, dict) and "pattern" in items:
        parts.append(f"items match `{items['pattern']}`")
    return "; ".join(parts).replace("|", "\\|")


def _value(value: Any) -> str:
    if value is _ABSENT:
        return ""
    text = json.dumps(value, separators=(", ", ": "))
    if len(text) > 48:
        text = text[:45] + "..."
    return f"`{text}`".replace("|", "\\|")


_ABSENT = object()
_VARIES = object()


def _lookup(data: Any, path: list[str]) -> Any:
    """The value at `path` in an environment's defaults; `*` steps into every key of a map."""
    if not path:
        return data
    head, rest = path[0], path[1:]
    if not isinstance(data, dict):
        return _ABSENT
    if head == "*":
        found = [_lookup(v, rest) for v in data.values()]
        found = [f for f in found if f is not _ABSENT]
        if not found:
            return _ABSENT
        first = found[0]
        return first if all(f == first for f in found) else _VARIES
    return _lookup(data[head], rest) if head in data else _ABSENT


def _map_of_models(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The value schema of a map whose values are settings models, else None."""
    if schema.get("type") != "object":
        return None
    values = [schema.get("additionalProperties"), *schema.get("patternProperties", {}).values()]
    found = [v for v in values if isinstance(v, dict) and "$ref" in v]
    return found[0] if found else None


def _rows(
    schema: dict[str, Any], defs: dict[str, Any], prefix: list[str]
) -> Iterator[tuple[list[str], dict[str, Any]]]:
    for key, prop in _resolve(schema, defs).get("properties", {}).items():
        path = [*prefix, key]
        yield path, prop
        inner, _ = _nullable(prop)
        if "$ref" in inner:
            yield from _rows(inner, defs, path)
        elif (value := _map_of_models(inner)) is not None:
            yield from _rows(value, defs, [*path, "*"])
        elif inner.get("type") == "array" and "$ref" in inner.get("items", {}):
            yield from _rows(inner["items"], defs, [*path, "[]"])


def _table(model: type[BaseModel], environments: list[str]) -> list[str]:
    schema = model_schema(model)
    defs = schema.get("$defs", {})
    head = ["key", "type", "constraints", "model default", *environments, "description"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for path, prop in _rows(schema, defs, []):
        shown = ".".join("<name>" if p == "*" else p for p in path).replace(".[]", "[]")
        per_env = []
        for environment in environments:
            value = _ABSENT if "[]" in path else _lookup(DEFAULTS[environment], path)
            per_env.append("varies by name" if value is _VARIES else _value(value))
        inner, _ = _nullable(prop)
        if _map_of_models(inner) is not None:
            per_env = ["" for _ in environments]  # its keys' rows carry the values
            type_text = "map to object"
            description = prop.get("description", "")
        elif "$ref" in inner:
            described = _resolve(inner, defs)
            per_env = ["" for _ in environments]  # its keys' rows carry the values
            type_text = "object"
            description = prop.get("description") or described.get("description", "")
        else:
            type_text = _type(prop, defs)
            description = prop.get("description", "")
        model_default = _value(prop["default"]) if "default" in prop else "required"
        cells = [
            f"`{shown}`",
            type_text,
            _constraints(prop),
            model_default,
            *per_env,
            " ".join(description.split()).replace("|", "\\|"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def settings_markdown() -> str:
    project = project_name()
    out = [
        "# Stack settings reference",
        "",
        "<!-- Generated by `make docs` (offline/settings_docs.py) from the settings models: "
        "do not edit. -->",
        "",
        f"Every key below is written in a stack file as `{project}:<key>` (top-level keys) "
        "with its nested keys beneath it. A stack file states only what differs from its "
        "environment's defaults (`stacks/environments/<environment>.py`); the columns per "
        'environment show those defaults (empty: none). "model default" applies where the '
        'environment sets nothing; "required" means the merged settings must hold the key. '
        '`<name>` stands for a map\'s key (a service, a traffic class, ...); "varies by name" '
        "means the environment's default differs between them. Rules that span keys (sizes, "
        "capacity, EKS's calendar, production's minimums) are checked by the program and "
        "described in [stack-files.md](stack-files.md); secrets are listed there too.",
        "",
    ]
    for target, model in sorted(MODELS.items()):
        environments = [e for e in DEFAULTS if TARGETS[e] == target]
        title = "EKS stacks" if target == "eks" else "Stacks on an existing cluster"
        out += [
            f"## {title} ({', '.join(environments)}): `{model.__module__}.{model.__name__}`",
            "",
            *_table(model, environments),
            "",
        ]
    return "\n".join(out)


def generated() -> dict[Path, str]:
    return {
        SETTINGS_MD: settings_markdown(),
        SCHEMA_JSON: json.dumps(stack_file_schema(), indent=2, sort_keys=False) + "\n",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a file is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in generated().items():
        relative = path.relative_to(ROOT)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(relative))
        elif not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"make docs: wrote {relative}")
        else:
            print(f"make docs: {relative} is up to date")
    if stale:
        print(f"stale: {', '.join(stale)} (run `make docs`)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
