"""Which fields of a rendered Kubernetes object the cluster knows, for tools/chart_facts.py.

A chart that copies a value into an object with `toYaml` makes any key of that value a field of
the object; Kubernetes drops a field its schema does not know (a built-in kind's OpenAPI schema;
a custom resource's CRD schema, which the API server prunes by), so a misspelt key changes the
render and nothing in the cluster. The schemas here are kubernetes-validate's strict ones for
the cluster's minor version (every object property not in the schema refused) and, for custom
resources, the CRDs' `openAPIV3Schema` made strict the same way (except under
`x-kubernetes-preserve-unknown-fields`, which keeps anything).

One check the schemas cannot make is added: the keys of a container's `resources.limits` and
`resources.requests` are free in the schema (a map of quantities) but the API server accepts
only the standard container resources (cpu, memory, ephemeral-storage, hugepages-<size>) or a
qualified extended resource name with a `/` (kubernetes pkg/apis/core/validation/validation.go
`validateContainerResourceName`, pkg/apis/core/helper/helpers.go `standardContainerResources`),
so `memroy` is refused, not ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jsonschema
import referencing
import referencing.jsonschema

# A path inside an object or a values tree: mapping keys and list indexes.
Path = tuple[str | int, ...]
DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"
OBJECT_META = "/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
# Where `resources.requests` is a volume's (a PersistentVolumeClaim's `storage`), not a
# container's.
VOLUME_CLAIMS = ("volumeClaimTemplate", "volumeClaimTemplates", "ephemeral")


@dataclass(frozen=True)
class Problem:
    """A field of an object the cluster would drop or refuse."""

    path: Path
    # "unknown field", "invalid resource name" or the schema's message.
    reason: str

    @property
    def unknown(self) -> bool:
        """The field is ignored or refused by name (not a wrong value of a known field)."""
        return self.reason in ("unknown field", "invalid resource name")


def dotted(path: Sequence[str | int]) -> str:
    """`a.b[0].c`: how the facts name a path."""
    found = ""
    for part in path:
        found += f"[{part}]" if isinstance(part, int) else (f".{part}" if found else part)
    return found


def container_resource_name(name: str) -> bool:
    if "/" in name:
        prefix, _, rest = name.partition("/")
        return bool(prefix and rest)
    return name in CONTAINER_RESOURCES or name.startswith("hugepages-")


def walk(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, (*path, index))


def resource_name_problems(obj: Mapping[str, Any]) -> list[Problem]:
    found: list[Problem] = []
    if obj.get("kind") == "PersistentVolumeClaim":
        return found
    for path, node in walk(obj):
        if (
            len(path) >= 2
            and path[-2] == "resources"
            and path[-1] in ("limits", "requests")
            and isinstance(node, dict)
            and not any(part in VOLUME_CLAIMS for part in path)
        ):
            found += [
                Problem((*path, name), "invalid resource name")
                for name in node
                if not container_resource_name(str(name))
            ]
    return found


def strict(schema: Any) -> Any:
    """A CRD's OpenAPI v3 schema as strict JSON Schema: objects with properties refuse others
    (the API server prunes them) unless they preserve unknown fields; `nullable` allows null."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    found = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in found
        and "additionalProperties" not in found
        and not found.get("x-kubernetes-preserve-unknown-fields")
    ):
        found["additionalProperties"] = False
    if found.get("nullable") and isinstance(found.get("type"), str):
        found["type"] = [found["type"], "null"]
    return found


def crd_schemas(crds: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], Any]:
    """(apiVersion, kind) -> the strict JSON Schema of that custom resource."""
    found = {}
    for crd in crds:
        spec = crd["spec"]
        for version in spec["versions"]:
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if not schema:
                continue
            api_version = f"{spec['group']}/{version['name']}"
            body = strict(schema)
            properties = dict(body.get("properties") or {})
            properties.update(
                {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"$ref": OBJECT_META},
                }
            )
            found[(api_version, spec["names"]["kind"])] = {
                **body,
                "$id": f"https://kubernetes.io/api/crd/{api_version}/{spec['names']['kind']}",
                "type": "object",
                "properties": properties,
                "additionalProperties": False,
            }
    return found


class Schemas:
    """The strict schema of every kind a render holds, at one Kubernetes minor version."""

    def __init__(self, kube_version: str, crds: Sequence[Mapping[str, Any]] = ()) -> None:
        root = resources.files("kubernetes_validate") / "kubernetes-json-schema"
        self.directory = root / f"v{kube_version}.0-local-strict"
        if not self.directory.is_dir():
            raise SystemExit(f"kubernetes-validate has no strict schemas for {kube_version}")
        self.kube_version = kube_version
        definitions = json.loads((self.directory / "_definitions.json").read_text())
        self.registry: referencing.Registry[Any] = referencing.Registry().with_resource(
            DEFINITIONS_ID, referencing.jsonschema.DRAFT202012.create_resource(definitions)
        )
        self.custom = crd_schemas(crds)
        self.validators: dict[tuple[str, str], jsonschema.Draft202012Validator | None] = {}
        self.problem_cache: dict[str, list[Problem]] = {}

    def add_crds(self, crds: Sequence[Mapping[str, Any]]) -> None:
        for key, schema in crd_schemas(crds).items():
            self.custom.setdefault(key, schema)
            # A kind looked up before its CRD was added was cached as unknown.
            if self.validators.get(key, schema) is None:
                del self.validators[key]
        self.problem_cache.clear()

    def validator(self, api_version: str, kind: str) -> jsonschema.Draft202012Validator | None:
        key = (api_version, kind)
        if key not in self.validators:
            schema = self.custom.get(key)
            if schema is None:
                # kubernetes-validate's file name: the group's first label and the version.
                group, _, version = api_version.rpartition("/")
                name = f"{kind.lower()}-{group.split('.')[0]}-{version}" if group else None
                path = self.directory / f"{name or kind.lower() + '-' + version}.json"
                schema = json.loads(path.read_text()) if path.is_file() else None
            self.validators[key] = (
                jsonschema.Draft202012Validator(schema, registry=self.registry)
                if schema is not None
                else None
            )
        return self.validators[key]

    def known(self, obj: Mapping[str, Any]) -> bool:
        return self.validator(str(obj.get("apiVersion")), str(obj.get("kind"))) is not None

    def problems(self, obj: Mapping[str, Any]) -> list[Problem]:
        """Every field of `obj` the cluster would drop or refuse ([] for a kind without a
        schema: `known` tells them apart)."""
        key = json.dumps(obj, sort_keys=True)
        if key not in self.problem_cache:
            validator = self.validator(str(obj.get("apiVersion")), str(obj.get("kind")))
            found = [] if validator is None else schema_problems(validator, obj)
            self.problem_cache[key] = sorted(
                {*found, *resource_name_problems(obj)}, key=lambda p: (dotted(p.path), p.reason)
            )
        return self.problem_cache[key]

    def definition_problems(self, definition: str, value: Any) -> list[Problem]:
        """Problems of `value` as the named Kubernetes definition (io.k8s.api.core.v1....)."""
        schema = {
            "$id": "https://kubernetes.io/api/definition",
            "$ref": f"/api/_definitions.json#/$defs/{definition}",
        }
        validator = jsonschema.Draft202012Validator(schema, registry=self.registry)
        found = schema_problems(validator, value)
        if definition.endswith(".ResourceRequirements") and isinstance(value, dict):
            found += resource_name_problems({"resources": value})
            found = [
                Problem(p.path[1:], p.reason) if p.path[:1] == ("resources",) else p for p in found
            ]
        return sorted(set(found), key=lambda p: (dotted(p.path), p.reason))


def schema_problems(validator: jsonschema.Draft202012Validator, value: Any) -> list[Problem]:
    found: set[Problem] = set()
    pending = list(validator.iter_errors(value))
    while pending:
        error = pending.pop()
        path: Path = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and error.validator_value is False:
            known = set((error.schema or {}).get("properties") or {})
            instance = error.instance if isinstance(error.instance, dict) else {}
            found.update(
                Problem((*path, key), "unknown field") for key in instance if key not in known
            )
        else:
            # A wrong value of a known field (for oneOf/anyOf, that no branch fits).
            found.add(Problem(path, error.message.split("\n")[0][:200]))
    return sorted(found, key=lambda p: (dotted(p.path), p.reason))


def under(path: Path, problems: Sequence[Problem]) -> bool:
    """Whether `path` is at or inside a field the cluster ignores or refuses by name."""
    return any(p.unknown and path[: len(p.path)] == p.path for p in problems)
