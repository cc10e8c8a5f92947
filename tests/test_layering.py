"""Imports between the layers' packages point down: a layer may use the shared building blocks
and the layers built before it (`components/platform.py`'s order), never one built after it."""

from __future__ import annotations

import ast

from offline.engine import PROJECT_DIR

COMPONENTS = PROJECT_DIR / "components"
# build_platform's order; `shared` (and context.py) come before every layer. The runner
# (delivery) needs only the foundation's network.
ORDER = (
    "shared",
    "foundation",
    "delivery",
    "data",
    "addons",
    "mesh",
    "observability",
    "workloads",
    "edge",
    "security",
)


def imported_packages(source: str) -> set[str]:
    """The `components.<package>` packages a module imports."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "components" and len(parts) > 1:
                found.add(parts[1])
    return found


def upward_imports(package: str, source: str) -> set[str]:
    """Layers after `package` that a module of it imports (`context` is everyone's)."""
    rank = ORDER.index(package)
    return {
        imported
        for imported in imported_packages(source)
        if imported in ORDER and ORDER.index(imported) > rank
    }


def test_every_layer_package_is_ordered() -> None:
    packages = {p.name for p in COMPONENTS.iterdir() if (p / "__init__.py").exists()}
    assert packages == set(ORDER)


def test_imports_between_layers_point_down() -> None:
    upward = {
        f"{path.relative_to(PROJECT_DIR)} imports components.{imported}"
        for package in ORDER
        for path in sorted((COMPONENTS / package).rglob("*.py"))
        for imported in upward_imports(package, path.read_text())
    }
    assert upward == set()


def test_an_upward_import_is_found() -> None:
    # Negative control: the add-ons importing the observability layer, as they once did.
    source = "from components.observability.alerts import SERVICE_ERRORS\nimport components.mesh\n"
    assert upward_imports("addons", source) == {"observability", "mesh"}
    assert upward_imports("security", source) == set()


def test_the_order_is_build_platforms() -> None:
    # The calls in components/platform.py come in ORDER (shared is no call).
    source = (COMPONENTS / "platform.py").read_text()
    body = source[source.index("def build_platform(") : source.index("def build_runner(")]
    calls = [f"build_{layer}(" if layer != "delivery" else "build_runner(" for layer in ORDER[1:]]
    positions = [body.index(call) for call in calls]
    assert positions == sorted(positions)
    assert len(body.splitlines()) <= 80


def test_platform_and_local_platform_are_the_only_top_level_modules() -> None:
    modules = {p.name for p in COMPONENTS.glob("*.py")}
    assert modules == {"__init__.py", "context.py", "platform.py", "local_platform.py"}
    # context.py is what every layer may use: it imports only the shared blocks.
    assert imported_packages((COMPONENTS / "context.py").read_text()) <= {"shared"}


def test_the_docs_diagram_lists_the_layers_in_order() -> None:
    text = (PROJECT_DIR / "README.md").read_text()
    diagram = text[text.index("settings (Pulumi.<stack>.yaml") :]
    found = [diagram.index(f"\n{layer} ") for layer in ORDER[1:] if layer != "delivery"]
    assert found == sorted(found)
