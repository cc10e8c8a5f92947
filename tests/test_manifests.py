"""Checks over what `make synth` renders, for every stack: YAML, schemas, custom resources, checkov.

These need the checkers `make test` installs (`.venv-checkov`, `node_modules`); they fail, never
skip, when one is missing.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from offline.engine import PROJECT_DIR, StackRun
from offline.synth import write_build
from stacks.environments import EKS_ENVIRONMENTS, ENVIRONMENTS
from stacks.settings_base import Settings

pytestmark = pytest.mark.manifests

# Custom resource kinds the program may render and the schema package of each API group,
# declared once for the validator, these tests and package.json's pins.
DECLARED_CUSTOM_RESOURCES = json.loads(
    (PROJECT_DIR / "tools" / "custom-resources.json").read_text()
)
CUSTOM_RESOURCE_KINDS = {
    (api_version, kind)
    for api_version, group in DECLARED_CUSTOM_RESOURCES.items()
    for kind in group["kinds"]
}
CHECKOV_PYTHON = Path(
    os.environ.get("CHECKOV_PYTHON", PROJECT_DIR / ".venv-checkov" / "bin" / "python")
)
CHECKOV_RUNS = PROJECT_DIR / "tools" / "checkov_runs.py"
CRD_VALIDATOR = PROJECT_DIR / "tools" / "validate-custom-resources.mjs"
WAIVERS = PROJECT_DIR / "tests" / "checkov-waivers.yaml"
YAMLLINT = YamlLintConfig("rules: {key-duplicates: enable, document-start: enable}")


@pytest.fixture(scope="session")
def rendered(
    runs: dict[str, StackRun], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("build")
    return {stack: write_build(run, out) / "manifests" for stack, run in runs.items()}


@pytest.fixture(params=ENVIRONMENTS)
def manifests(request: pytest.FixtureRequest, rendered: dict[str, Path]) -> Path:
    return rendered[request.param]


@pytest.fixture(scope="session")
def parsed(rendered: dict[str, Path]) -> dict[Path, list[Any]]:
    """Each rendered file's YAML documents, parsed once for the checks below (which only read
    them): three of them used to parse every file again. With PyYAML's libyaml parser (its
    wheel's; the safe constructor is the same Python class): a seventh of the pure-Python
    parser's time, and the same objects for every document of the three stacks (compared
    when it was introduced). yamllint checks the text with its own parser besides."""
    return {
        path: list(yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader))
        for directory in rendered.values()
        for path in sorted(directory.glob("*.yaml"))
    }


def documents(directory: Path, parsed: dict[Path, list[Any]]) -> list[tuple[Path, dict[str, Any]]]:
    """The directory's objects: one document per file (a second one fails here too)."""
    found = []
    for path in sorted(directory.glob("*.yaml")):
        [document] = parsed[path]
        assert isinstance(document, dict), f"{path}: not an object"
        found.append((path, document))
    return found


@pytest.fixture(scope="module", autouse=True)
def schemas_read_once() -> Iterator[None]:
    """kubernetes-validate reads and parses the kind's schema and its version's whole
    _definitions.json (1.4 MB) for every object it validates: most of the strict check's
    time. Its reader, memoized for this module: the files are the installed package's and
    jsonschema only reads what it is given. The validation itself is the library's, as is."""
    with pytest.MonkeyPatch.context() as patch:
        utils = kubernetes_validate.utils
        patch.setattr(utils, "schema_contents", functools.cache(utils.schema_contents))
        yield


def test_every_stack_renders_objects(manifests: Path) -> None:
    assert len(list(manifests.glob("*.yaml"))) > 30


def test_yaml_parses_with_no_duplicate_keys(manifests: Path, parsed: dict[Path, list[Any]]) -> None:
    for path in manifests.glob("*.yaml"):
        text = path.read_text()
        problems = [str(p) for p in linter.run(text, YAMLLINT)]
        assert problems == [], (path.name, problems)
        assert len(parsed[path]) == 1


def test_yamllint_would_catch_a_duplicate_key() -> None:
    problems = list(linter.run("---\na: 1\na: 2\n", YAMLLINT))
    assert [p.rule for p in problems] == ["key-duplicates"]


def undeclared_kinds(found: list[tuple[Path, dict[str, Any]]], version: str) -> list[str]:
    """Validate built-in kinds strictly; return the files whose kind has no schema and is not
    a declared custom resource."""
    unknown = []
    for path, document in found:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            if (document["apiVersion"], document["kind"]) not in CUSTOM_RESOURCE_KINDS:
                unknown.append(path.name)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{path.name}: {error.message} at {list(error.path)}")
    return unknown


def test_builtin_objects_validate_strictly(
    manifests: Path, runs: dict[str, StackRun], parsed: dict[Path, list[Any]]
) -> None:
    # Against the Kubernetes version the stack's cluster runs.
    version = runs[manifests.parent.name].namespace["settings"].kubernetes_version
    unknown = undeclared_kinds(documents(manifests, parsed), version)
    assert unknown == [], f"kinds with no schema that are not known custom resources: {unknown}"


def test_strict_validation_rejects_an_unknown_field(rendered: dict[str, Path]) -> None:
    path = next(rendered["production"].glob("Deployment_*.yaml"))
    document = yaml.safe_load(path.read_text())
    document["spec"]["replica"] = 3
    with pytest.raises(kubernetes_validate.ValidationError, match="'replica' was unexpected"):
        kubernetes_validate.validate(document, "1.33", strict=True)


def validate_custom_resources(paths: list[Path]) -> list[dict[str, str]]:
    assert (PROJECT_DIR / "node_modules").is_dir(), "node_modules missing: run `make checkers`"
    result = subprocess.run(
        ["node", str(CRD_VALIDATOR), *map(str, paths)],
        check=True,
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
    )
    problems: list[dict[str, str]] = json.loads(result.stdout)
    return problems


def test_every_declared_schema_package_is_pinned_in_package_json() -> None:
    package = json.loads((PROJECT_DIR / "package.json").read_text())
    lock = json.loads((PROJECT_DIR / "package-lock.json").read_text())
    for group in DECLARED_CUSTOM_RESOURCES.values():
        if "schema" in group:
            assert (PROJECT_DIR / group["schema"]).is_file()
            continue
        name = group["package"]
        pinned = package["dependencies"].get(name, "")
        assert pinned[:1].isdigit(), f"{name} must be pinned to an exact version in package.json"
        assert lock["packages"][f"node_modules/{name}"]["version"] == pinned
        assert group["module"].startswith(f"{name}/")


@functools.cache
def local_schema_validator(schema: str) -> jsonschema.Draft202012Validator:
    """The validator of a local schema (tools/schemas/), built once: it never changes in a run."""
    return jsonschema.Draft202012Validator(json.loads((PROJECT_DIR / schema).read_text()))


def local_schema_problems(found: list[tuple[Path, dict[str, Any]]]) -> list[str]:
    """Objects of groups declared with a local JSON schema, checked against it."""
    problems: list[str] = []
    for path, document in found:
        group = DECLARED_CUSTOM_RESOURCES.get(document["apiVersion"], {})
        if "schema" not in group:
            continue
        validator = local_schema_validator(group["schema"])
        problems.extend(
            f"{path.name}: {error.message} at {list(error.path)}"
            for error in validator.iter_errors(document)
        )
    return problems


def packaged(found: list[tuple[Path, dict[str, Any]]]) -> list[Path]:
    """The files of custom resources whose schema is an npm package (the node validator's)."""
    return [
        path
        for path, document in found
        if (document["apiVersion"], document["kind"]) in CUSTOM_RESOURCE_KINDS
        and "package" in DECLARED_CUSTOM_RESOURCES[document["apiVersion"]]
    ]


@pytest.fixture(scope="session")
def custom_resource_problems(parsed: dict[Path, list[Any]]) -> dict[str, list[dict[str, str]]]:
    """The node validator's problems by file, over every stack's packaged custom resources in
    one run: node and the schema packages load once (most of a run's time), and the validator
    checks each file on its own (tools/validate-custom-resources.mjs)."""
    # A file of more than one document, or whose document is no object, fails its own stack's
    # tests (`documents`), not this run shared by every stack.
    paths = packaged(
        [
            (path, found[0])
            for path, found in parsed.items()
            if len(found) == 1 and isinstance(found[0], dict)
        ]
    )
    by_file: dict[str, list[dict[str, str]]] = {}
    for problem in validate_custom_resources(paths):
        by_file.setdefault(problem["file"], []).append(problem)
    assert set(by_file) <= set(map(str, paths)), by_file
    return by_file


def test_custom_resources_validate_against_their_schemas(
    manifests: Path,
    parsed: dict[Path, list[Any]],
    custom_resource_problems: dict[str, list[dict[str, str]]],
) -> None:
    found = documents(manifests, parsed)
    files = packaged(found)
    # The EKS stacks' ExternalSecrets and VPAs; the development stack's PostgreSQL Cluster.
    on_eks = manifests.parent.name in EKS_ENVIRONMENTS
    assert len(files) >= (2 if on_eks else 1)
    assert [p for path in files for p in custom_resource_problems.get(str(path), [])] == []
    local = [d for _, d in found if "schema" in DECLARED_CUSTOM_RESOURCES.get(d["apiVersion"], {})]
    assert len(local) >= (8 if on_eks else 0)
    assert local_schema_problems(found) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"updatePolicy": {"updateMode": "Sometimes"}}, "'Sometimes' is not one of"),
        ({"updatePolicy": {}}, "'updateMode' is a required property"),
        ({"targetRef": {"kind": "Deployment"}}, "'name' is a required property"),
        ({"resourcePolicies": []}, "Additional properties are not allowed"),
    ],
)
def test_the_local_vpa_schema_rejects_what_the_api_would(
    change: dict[str, Any], message: str
) -> None:
    vpa: dict[str, Any] = {
        "apiVersion": "autoscaling.k8s.io/v1",
        "kind": "VerticalPodAutoscaler",
        "metadata": {"name": "x", "namespace": "y"},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"}},
    }
    assert local_schema_problems([(Path("ok.yaml"), vpa)]) == []
    vpa["spec"] = {**vpa["spec"], **change}
    [problem] = local_schema_problems([(Path("bad.yaml"), vpa)])
    assert message in problem


def test_a_kind_with_no_schema_that_is_no_declared_custom_resource_fails(tmp_path: Path) -> None:
    # The strict built-in check's other branch: kubernetes-validate knows no schema for it, and
    # it is not declared, so the render check refuses it.
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(widget, "1.33", strict=True)
    assert ("example.com/v1", "Widget") not in CUSTOM_RESOURCE_KINDS
    assert undeclared_kinds([(tmp_path / "w.yaml", widget)], "1.33") == ["w.yaml"]


def test_custom_resource_validator_rejects_bad_and_unknown_objects(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "external-secrets.io/v1",
                "kind": "ExternalSecret",
                "metadata": {"name": "x"},
                "spec": {"secretStoreRef": {"name": "s"}, "data": [{"secretKey": "k"}]},
            }
        )
    )
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(
        yaml.safe_dump(
            {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "y"}}
        )
    )
    problems = validate_custom_resources([broken, unknown])
    assert [
        (p["name"], "remoteRef" in p["error"] or "no schema" in p["error"]) for p in problems
    ] == [("x", True), ("y", True)]
    # Each problem names its file: custom_resource_problems sorts them by stack so.
    assert [p["file"] for p in problems] == [str(broken), str(unknown)]


class Waiver(Settings):
    check: str
    resources: list[str]
    reason: str


def load_waivers() -> list[Waiver]:
    return [Waiver.model_validate(entry) for entry in yaml.safe_load(WAIVERS.read_text())]


# A pod that checkov must flag: the negative control, checked in the same run as the stacks.
PRIVILEGED_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "bad", "namespace": "x"},
    "spec": {
        "containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]
    },
}
NEGATIVE_CONTROL = "negative-control"


@pytest.fixture(scope="session")
def checkov_failures(
    rendered: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[tuple[str, str]]]:
    """checkov's failed checks per directory (each stack, and the negative control): one run
    per directory, as the CLI's `--directory` makes it, inside one checkov process."""
    assert CHECKOV_PYTHON.exists(), f"{CHECKOV_PYTHON} missing: run `make checkers`"
    control = tmp_path_factory.mktemp(NEGATIVE_CONTROL)
    (control / "bad.yaml").write_text(yaml.safe_dump(PRIVILEGED_POD, explicit_start=True))
    directories = {**rendered, NEGATIVE_CONTROL: control}
    result = subprocess.run(
        [str(CHECKOV_PYTHON), str(CHECKOV_RUNS), *map(str, directories.values())],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    failures = {}
    for name, directory in directories.items():
        summary = report[str(directory)]["summary"]
        # checkov skips what it cannot parse: make sure it read every object.
        assert summary["parsing_errors"] == 0, name
        assert summary["resource_count"] >= len(list(directory.glob("*.yaml"))), name
        # Checks ran at all (an empty registry would pass everything silently).
        assert summary["passed"] > 0, name
        failures[name] = [(check, resource) for check, resource in report[str(directory)]["failed"]]
    return failures


def test_checkov_finds_nothing_that_is_not_waived(
    checkov_failures: dict[str, list[tuple[str, str]]],
) -> None:
    waivers = load_waivers()
    used: set[int] = set()
    unwaived = []
    for stack, failures in checkov_failures.items():
        if stack == NEGATIVE_CONTROL:
            continue
        for check_id, resource in failures:
            matches = [
                i
                for i, w in enumerate(waivers)
                if w.check == check_id
                and any(fnmatch.fnmatchcase(resource, p) for p in w.resources)
            ]
            if matches:
                used.update(matches)
            else:
                unwaived.append(f"{stack}: {check_id} {resource}")
    assert unwaived == []
    assert [w.check for i, w in enumerate(waivers) if i not in used] == [], "stale waivers"
    assert all(len(w.reason) > 80 for w in waivers)


def test_checkov_fails_a_privileged_pod(
    checkov_failures: dict[str, list[tuple[str, str]]],
) -> None:
    failed = {check for check, _ in checkov_failures[NEGATIVE_CONTROL]}
    # Resource checks (privileged container, privilege escalation) and a graph check (a pod in
    # a namespace without a NetworkPolicy: CKV2_K8S_6), so both kinds of checkov check run.
    assert {"CKV_K8S_16", "CKV_K8S_20", "CKV2_K8S_6"} <= failed
