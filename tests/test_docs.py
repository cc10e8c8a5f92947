"""The documentation is true to the tree: every `make` target and repository path that README.md
and docs/*.md name exists, the generated settings reference and stack-file schema are current
(`make docs`), and the schema accepts the committed stack files and refuses bad ones."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from offline import settings_docs
from offline.engine import PROJECT_DIR, StackRun
from stacks import environments
from stacks.environments import ENVIRONMENTS
from stacks.loader import SettingsError, any_settings_from_values
from tests.test_makefile import MAKEFILE, targets

DOCS = sorted([PROJECT_DIR / "README.md", *(PROJECT_DIR / "docs").glob("*.md")])
# A backticked word is a repository path when it starts with one of these (or is a top-level
# file): paths relative to something else are written from the repository's root.
TOP_LEVEL_DIRS = (
    "components",
    "stacks",
    "offline",
    "tests",
    "tools",
    "policy",
    "devloop",
    "bootstrap",
    "docs",
    ".github",
)
TOP_LEVEL_FILE = re.compile(
    r"^(Makefile|Pulumi(\.[\w<>-]+)?\.yaml|pyproject\.toml|requirements\.txt|package(-lock)?\.json"
    r"|README\.md|__main__\.py)$"
)
CODE_SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
# `make synth`, `STACK=x make synth`, `cd x && make test`: the word after `make`.
MAKE_CALL = re.compile(r"(?:^|&&|;)\s*(?:[A-Z_]+=\S*\s+)*make\s+(?:[A-Z_]+=\S*\s+)*([a-z][\w-]*)")


def named_targets(text: str) -> set[str]:
    """The make targets a page tells its reader to run: in code spans and in code blocks."""
    found = set()
    for span in CODE_SPAN.findall(FENCE.sub("", text)):
        found.update(MAKE_CALL.findall(span))
    for block in FENCE.findall(text):
        for line in block.splitlines():
            found.update(MAKE_CALL.findall(line.split("#", 1)[0]))
    return found


def named_paths(text: str) -> set[str]:
    """Repository paths a page names: backticked paths from the root, and relative links."""
    found = set()
    for span in CODE_SPAN.findall(text):
        word = span.strip()
        if " " in word or word.startswith("build/"):
            continue
        if (word.split("/", 1)[0] in TOP_LEVEL_DIRS and "/" in word) or TOP_LEVEL_FILE.match(word):
            found.add(word)
    return found


def named_links(page: Path, text: str) -> set[str]:
    """Relative links of a page, as paths from the repository's root."""
    found = set()
    for target in LINK.findall(CODE_SPAN.sub("", FENCE.sub("", text))):
        if "://" in target or target.startswith("mailto:"):
            continue
        found.add(str((page.parent / target).resolve().relative_to(PROJECT_DIR)))
    return found


def exists(root: Path, path: str) -> bool:
    """Whether `path` exists under `root`; `<placeholder>` parts match any name."""
    pattern = re.sub(r"<[^>]+>", "*", path.rstrip("/"))
    if "*" in pattern:
        return any(root.glob(pattern))
    return (root / pattern).exists()


def dangling(
    pages: Iterable[Path],
    make_targets: set[str],
    path_exists: Callable[[str], bool],
) -> list[str]:
    """Every make target or path a page names that is not there, as `page: what`."""
    problems = []
    for page in pages:
        text = page.read_text()
        where = page.relative_to(PROJECT_DIR)
        problems += [f"{where}: make {t}" for t in sorted(named_targets(text) - make_targets)]
        paths = named_paths(text) | named_links(page, text)
        problems += [f"{where}: {p}" for p in sorted(paths) if not path_exists(p)]
    return problems


def test_the_docs_name_only_targets_and_paths_that_exist() -> None:
    make_targets = targets(MAKEFILE)
    assert dangling(DOCS, make_targets, lambda p: exists(PROJECT_DIR, p)) == []


def test_the_readme_is_short_and_links_every_page() -> None:
    readme = (PROJECT_DIR / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    pages = {str(page.relative_to(PROJECT_DIR)) for page in DOCS if page.parent.name == "docs"}
    assert pages <= named_links(PROJECT_DIR / "README.md", readme)
    # No path outside the clone (the product description lives outside the repository).
    assert "../" not in readme and all("../" not in page.read_text() for page in DOCS)


def test_the_docs_really_name_targets_and_paths() -> None:
    # The extraction finds what the pages say, so the test above has something to check.
    readme = (PROJECT_DIR / "README.md").read_text()
    assert {"synth", "test", "docs", "diff", "dev-up", "help"} <= named_targets(readme)
    everything = "\n".join(page.read_text() for page in DOCS)
    assert {"components/platform.py", "stacks/catalog.py", "offline/estimate.py"} <= named_paths(
        everything
    )
    assert "docs/settings.md" in named_links(PROJECT_DIR / "README.md", readme)


def test_a_removed_target_or_path_is_reported(tmp_path: Path) -> None:
    # Negative controls: the Makefile without the `synth` rule, and the tree without a file the
    # docs name, each make the check fail and name what is missing.
    makefile = tmp_path / "Makefile"
    without = re.sub(r"^synth: .*\n(\t.*\n)+", "", MAKEFILE.read_text(), flags=re.MULTILINE)
    makefile.write_text(re.sub(r"^(\.PHONY:.*?) synth ", r"\1 ", without, flags=re.MULTILINE))
    without_synth = targets(makefile)
    assert "synth" not in without_synth and "synth-all" in without_synth
    found = dangling(DOCS, without_synth, lambda p: exists(PROJECT_DIR, p))
    assert "README.md: make synth" in found

    removed = "offline/estimate.py"
    found = dangling(DOCS, targets(MAKEFILE), lambda p: p != removed and exists(PROJECT_DIR, p))
    assert found and all(line.endswith(removed) for line in found), found
    found = dangling(DOCS, targets(MAKEFILE), lambda p: p != "docs/data.md")
    assert "README.md: docs/data.md" in found


def test_make_docs_is_current_and_idempotent() -> None:
    first = settings_docs.generated()
    assert first == settings_docs.generated()
    stale = [
        str(path.relative_to(PROJECT_DIR))
        for path, text in first.items()
        if not path.exists() or path.read_text() != text
    ]
    assert stale == [], f"run `make docs`: {stale} differ from the settings models"
    assert settings_docs.main(["--check"]) == 0


def test_a_changed_model_makes_the_reference_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    # Negative control: a different default in an environment changes the generated text.
    before = settings_docs.settings_markdown()
    changed = json.loads(json.dumps(environments.DEFAULTS["staging"]))
    changed["nodeGroups"]["general"]["maxSize"] = 7
    monkeypatch.setitem(environments.DEFAULTS, "staging", changed)
    assert settings_docs.settings_markdown() != before


def test_the_reference_lists_every_key_of_the_models() -> None:
    text = settings_docs.SETTINGS_MD.read_text()
    for key in (
        "nodeGroups.gpu.maxSize",
        "addons.mesh.traffic.classes.<name>.timeout",
        "data.database.disasterRecovery.everyHours",
        "kubeContext",
    ):
        assert f"| `{key}` |" in text, key
    # Defaults per environment are the environment modules' values.
    production, staging = (
        environments.DEFAULTS[name]["nodeGroups"]["general"]["maxSize"]
        for name in ("production", "staging")
    )
    row = f"| `nodeGroups.general.maxSize` | integer | >= 1; <= 1000 | required | `{production}` |"
    assert f"{row} `{staging}` |" in text


# --- the stack files' JSON Schema -------------------------------------------------------------

SCHEMA = json.loads(settings_docs.SCHEMA_JSON.read_text())
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)
STACK_FILES = [
    PROJECT_DIR / f"Pulumi.{name}.yaml"
    for name in ENVIRONMENTS
    if (PROJECT_DIR / f"Pulumi.{name}.yaml").exists()
]


def _walk(node: Any) -> list[dict[str, Any]]:
    """Every object in a JSON document."""
    if isinstance(node, dict):
        return [node, *(found for value in node.values() for found in _walk(value))]
    if isinstance(node, list):
        return [found for value in node for found in _walk(value)]
    return []


def project_name() -> str:
    return str(yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())["name"])


def test_the_schema_is_valid_and_uses_the_project_namespace() -> None:
    # Draft 7, the newest the YAML language server supports; no keyword of a later draft.
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    # Every pattern compiles as a plain regular expression (no `\p{...}` class, which an
    # ECMA-262 engine without the `u` flag, and Python's `re`, refuse).
    text = json.dumps(SCHEMA)
    patterns = re.findall(r'"pattern": ("(?:[^"\\]|\\.)*")', text)
    keys = [key for node in _walk(SCHEMA) for key in node.get("patternProperties", {})]
    assert patterns and all(re.compile(p) for p in [*map(json.loads, patterns), *keys])
    later = {"prefixItems", "unevaluatedProperties", "dependentSchemas", "$dynamicRef"}
    assert not later & set(re.findall(r'"(\$?[A-Za-z]+)":', json.dumps(SCHEMA)))
    prefix = f"{project_name()}:"
    for variant in SCHEMA["properties"]["config"]["anyOf"]:
        config = SCHEMA["$defs"][variant["$ref"].rsplit("/", 1)[1]]
        assert config["properties"] and all(k.startswith(prefix) for k in config["properties"])


def test_the_stack_files_start_with_the_schema_modeline() -> None:
    for path in STACK_FILES:
        first = path.read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=docs/stack-file.schema.json", path


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_the_schema_accepts_each_stack_file(path: Path) -> None:
    errors = [e.message for e in VALIDATOR.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


def test_every_environment_has_its_stack_file() -> None:
    assert {p.name for p in STACK_FILES} >= {"Pulumi.production.yaml", "Pulumi.staging.yaml"}


def staging_with(config: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((PROJECT_DIR / "Pulumi.staging.yaml").read_text())
    document["config"] = {**document["config"], **config}
    return document


def program_refuses(document: dict[str, Any]) -> bool:
    """Whether the program's loader refuses the stack file's settings (secrets left out)."""
    prefix = f"{project_name()}:"
    values = {
        key[len(prefix) :]: value
        for key, value in document["config"].items()
        if key.startswith(prefix) and not (isinstance(value, dict) and "secure" in value)
    }
    if any(not key.startswith(prefix) for key in document["config"]):
        return True  # the loader refuses a foreign namespace (stacks.loader.foreign_config_keys)
    try:
        any_settings_from_values("staging", values)
    except SettingsError:
        return True
    return False


NG = "financial-planning:nodeGroups"
BAD_STACK_FILES: dict[str, dict[str, Any]] = {
    "misspelt key": {NG: {"general": {"maxSze": 6}}},
    "wrong type": {NG: {"general": {"minSize": "two"}}},
    "out of range": {NG: {"general": {"diskSizeGib": 10}}},
    "not an enum value": {"financial-planning:natGateways": "everyAz"},
    "foreign namespace": {"financial-plannin:region": "us-east-1"},
    "secret in plain text": {"financial-planning:openaiApiKey": "sk-plain"},
}


@pytest.mark.parametrize("name", BAD_STACK_FILES)
def test_the_schema_rejects_a_bad_stack_file(name: str) -> None:
    document = staging_with(BAD_STACK_FILES[name])
    assert not VALIDATOR.is_valid(document)
    # The schema's verdict is the program's: the loader refuses the same file.
    if name != "secret in plain text":  # refused by load_settings' secret check instead
        assert program_refuses(document)


def test_the_good_file_passes_the_program_too() -> None:
    # Control for the test above: the unchanged staging file is accepted by both.
    document = staging_with({})
    assert VALIDATOR.is_valid(document)
    assert not program_refuses(document)


def test_every_paging_alert_of_ours_has_a_runbook(production: StackRun) -> None:
    """Each alert the program defines that pages (severity critical, routed to PagerDuty) has
    its runbook: a `### \\`Name\\`` heading in docs/operations.md."""
    operations = (PROJECT_DIR / "docs" / "operations.md").read_text()
    headings = set(re.findall(r"^### `([A-Za-z]+)`", operations, re.MULTILINE))
    paging = {
        rule["alert"]
        for resource in production.of_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
        for group in resource.inputs["spec"]["groups"]
        for rule in group["rules"]
        if "alert" in rule and rule.get("labels", {}).get("severity") == "critical"
    }
    assert len(paging) >= 4  # the rules were found
    assert sorted(paging - headings) == []
