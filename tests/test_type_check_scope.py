"""mypy follows only the pulumi_aws and pulumi_kubernetes subpackages pyproject.toml lists (the
rest are skipped: following all of them was half of a cold type check). A subpackage the code
uses but the list lacks would be typed Any and go unchecked, silently: these tests find every
use in the code mypy checks and fail on one the list does not follow."""

from __future__ import annotations

import ast
import functools
import importlib.util
import os
import tomllib
from collections.abc import Iterable, Iterator
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from offline.engine import PROJECT_DIR

SDKS = ("pulumi_aws", "pulumi_kubernetes")
# What mypy does not check (pyproject.toml's [tool.mypy] exclude, plus what is not ours).
NOT_CHECKED = {".venv", ".venv-checkov", "build", "node_modules", ".tools", ".git"}


def overrides() -> list[dict[str, object]]:
    config = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())
    return list(config["tool"]["mypy"]["overrides"])


def follow_mode(module: str, sections: list[dict[str, object]]) -> str:
    """The follow_imports mode mypy applies to `module`: a section naming it exactly wins over a
    pattern, and a longer pattern over a shorter one (mypy's config file documentation,
    "Per-module and global options"); `a.*` matches `a` itself and everything under it."""
    best: tuple[int, str] | None = None
    for section in sections:
        if "follow_imports" not in section:
            continue
        names = section["module"]
        assert isinstance(names, list)
        for name in names:
            if name == module:
                rank = 10_000
            elif name.endswith(".*") and (module == name[:-2] or fnmatchcase(module, name)):
                rank = len(name)
            else:
                continue
            if best is None or rank > best[0]:
                best = (rank, str(section["follow_imports"]))
    return best[1] if best else "normal"


def package_dir(sdk: str) -> Path:
    spec = importlib.util.find_spec(sdk)
    assert spec is not None and spec.origin is not None, sdk
    return Path(spec.origin).parent


@functools.cache
def subpackages(sdk: str) -> set[str]:
    return {p.parent.name for p in package_dir(sdk).glob("*/__init__.py")}


def sources() -> Iterator[Path]:
    # Folders mypy does not check are not entered (the virtualenvs alone hold 10,000 files).
    for root, dirs, files in os.walk(PROJECT_DIR):
        dirs[:] = [d for d in dirs if d not in NOT_CHECKED]
        yield from (Path(root) / name for name in files if name.endswith(".py"))


def modules_used(tree: ast.AST) -> set[str]:
    """Every `<sdk>.<subpackage>` a module reaches: `import pulumi_aws as aws` then
    `aws.ec2.Vpc`, `from pulumi_aws import ec2`, `import pulumi_aws.ec2`, `from pulumi_aws.ec2
    import Vpc`. A root-level name (`aws.Provider`) counts as the root."""
    aliases: dict[str, str] = {}
    used: set[str] = set()
    nodes = list(ast.walk(tree))  # walked once: a test module is tens of thousands of nodes
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".")[0]
                if root in SDKS:
                    used.add(".".join(alias.name.split(".")[:2]))
                    aliases[alias.asname or root] = alias.name if alias.asname else root
        elif isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] not in SDKS:
                continue
            if len(parts) > 1:
                used.add(".".join(parts[:2]))
            else:
                for alias in node.names:
                    used.add(f"{parts[0]}.{alias.name}")
    # A name bound to an alias (`cloud = aws`) is one too.
    for node in nodes:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
        ):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    aliases[target.id] = aliases[node.value.id]
    quoted = [node for text in quoted_types(nodes) for node in ast.walk(text)]
    for node in [*nodes, *quoted]:
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
        ):
            module = aliases[node.value.id]
            used.add(module if "." in module else f"{module}.{node.attr}")
    return used


def quoted_types(nodes: list[ast.AST]) -> list[ast.AST]:
    """Types written as strings, which mypy reads as types: quoted annotations and the first
    argument of `cast("aws.sqs.Queue", ...)`. (Type comments: ruff's UP rules leave none.)"""
    texts: list[ast.expr] = []
    for node in nodes:
        if isinstance(node, (ast.arg, ast.AnnAssign)) and node.annotation is not None:
            texts.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns:
            texts.append(node.returns)
        elif isinstance(node, ast.Call) and node.args:
            function = node.func
            name = (
                function.attr
                if isinstance(function, ast.Attribute)
                else getattr(function, "id", "")
            )
            if name == "cast":
                texts.append(node.args[0])
    found: list[ast.AST] = []
    for text in texts:
        for node in ast.walk(text):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                try:
                    found.append(ast.parse(node.value, mode="eval"))
                except SyntaxError:
                    continue
    return found


def unfollowed(used: Iterable[str], sections: list[dict[str, object]]) -> set[str]:
    """The modules in `used` that mypy would skip: a subpackage not followed, or (for a name at
    the package's root) the root itself."""
    missing = set()
    for module in used:
        sdk, _, name = module.partition(".")
        target = module if name in subpackages(sdk) else sdk
        if follow_mode(target, sections) != "normal":
            missing.add(target)
    return missing


def test_every_sdk_subpackage_the_code_uses_is_type_checked() -> None:
    sections = overrides()
    used: dict[str, set[str]] = {}
    for path in sources():
        for module in modules_used(ast.parse(path.read_text(), str(path))):
            used.setdefault(module, set()).add(str(path.relative_to(PROJECT_DIR)))
    assert "pulumi_aws.ec2" in used and "pulumi_kubernetes.core" in used  # the scan finds uses
    missing = unfollowed(used, sections)
    assert missing == set(), {m: sorted(used.get(m, ())) for m in missing}


@pytest.mark.parametrize("sdk", SDKS)
def test_every_module_at_an_sdks_root_is_type_checked(sdk: str) -> None:
    """Names at the root (`aws.Provider`, `aws.get_caller_identity_output`) come from the root's
    own modules: all of them are followed, so an SDK upgrade that adds one fails here."""
    sections = overrides()
    assert follow_mode(sdk, sections) == "normal"
    roots = {p.stem for p in package_dir(sdk).glob("*.py") if p.stem != "__init__"}
    assert roots, sdk
    skipped = {m for m in roots if follow_mode(f"{sdk}.{m}", sections) != "normal"}
    assert skipped == set()


def test_every_listed_subpackage_exists() -> None:
    """A misspelt entry would follow nothing and leave the real subpackage skipped."""
    listed = [
        name
        for section in overrides()
        if section.get("follow_imports") == "normal"
        for name in section["module"]  # type: ignore[attr-defined]
    ]
    for name in listed:
        sdk, _, rest = name.removesuffix(".*").partition(".")
        if rest:
            assert rest in subpackages(sdk) or (package_dir(sdk) / f"{rest}.py").exists(), name


@pytest.mark.parametrize(
    "code",
    [
        "import pulumi_aws as cloud\ncloud.sqs.Queue('q')\n",
        "from pulumi_aws import sqs\n",
        "import pulumi_aws.sqs\n",
        "from pulumi_aws.sqs import Queue\n",
        "import pulumi_kubernetes as kube\nkube.coordination.v1.Lease('l')\n",
        "import pulumi_aws as aws\ndef f(q: 'aws.sqs.Queue') -> None: ...\n",
        "import pulumi_aws as aws\ndef f() -> 'list[aws.sqs.Queue]': ...\n",
        "import pulumi_aws as aws\nq: 'aws.sqs.Queue'\n",
        "import typing\nimport pulumi_aws as aws\nq = typing.cast('aws.sqs.Queue', None)\n",
        "import pulumi_aws as aws\ncloud = aws\ncloud.sqs.Queue('q')\n",
    ],
)
def test_a_use_of_an_unlisted_subpackage_is_found(code: str) -> None:
    """Negative control: each way of reaching a subpackage the list leaves out is reported."""
    missing = unfollowed(modules_used(ast.parse(code)), overrides())
    assert missing in ({"pulumi_aws.sqs"}, {"pulumi_kubernetes.coordination"})


def test_a_followed_subpackage_and_a_root_name_are_not_reported() -> None:
    code = "import pulumi_aws as aws\naws.ec2.Vpc('v')\naws.Provider('p')\n"
    assert unfollowed(modules_used(ast.parse(code)), overrides()) == set()
