"""Dependencies point inward: the build fails when a module imports a layer it must not."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# For each layer, the top-level packages its modules may never import.
FORBIDDEN = {
    "domain": frozenset({"api", "infra", "workers", "taskyard"}),
    "infra": frozenset({"api", "workers", "taskyard"}),
    "api": frozenset({"workers", "taskyard"}),
    "workers": frozenset({"api", "taskyard"}),
}


def module_name(path: Path) -> str:
    """The dotted module name of a file under the repository root."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every absolute module name that `source` imports, relative imports resolved."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = [*base, node.module] if node.module else base
            # `from .. import x` may import the module x, so it names x, not only its parent.
            names = [[]] if node.module else [[a.name] for a in node.names]
            found.update(".".join([*target, *name]) for name in names)
    return found


def violations(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """`module imports target` for each import that breaks the layer rules."""
    forbidden = FORBIDDEN.get(module.split(".")[0], frozenset())
    imports = imported_modules(source, module, is_package=is_package)
    return sorted(f"{module} imports {t}" for t in imports if t.split(".")[0] in forbidden)


def layer_files() -> list[Path]:
    """Every Python file of the four layers."""
    return sorted(path for layer in FORBIDDEN for path in (ROOT / layer).rglob("*.py"))


def test_the_layers_hold_python_files() -> None:
    counts = {layer: len(list((ROOT / layer).rglob("*.py"))) for layer in FORBIDDEN}
    assert all(counts.values()), counts


def test_no_layer_imports_what_it_must_not() -> None:
    broken = [
        line
        for path in layer_files()
        for line in violations(
            path.read_text(), module_name(path), is_package=path.name == "__init__.py"
        )
    ]
    assert broken == [], "layer rules broken:\n" + "\n".join(broken)


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("from infra.db.models import Base", "domain.health"),
        ("import api.app", "domain.health"),
        ("import os, workers.settings as w", "domain.health"),
        ("def f():\n    from taskyard import cli", "domain.health"),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import infra", "domain.x"),
        ("from api.errors import ErrorCode", "infra.probes"),
        ("from ...api import errors", "infra.db.engine"),
        ("from .. import api", "infra.probes"),
        ("from workers.heartbeat import beat_forever", "api.health"),
        ("from taskyard.commands import serve", "api.app"),
        ("from api.context import Context", "workers.system"),
        ("import taskyard.cli", "workers.settings"),
    ],
)
def test_the_checker_catches_a_forbidden_import(source: str, module: str) -> None:
    assert violations(source, module)


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("from domain.errors import NotFound", "infra.probes"),
        ("from infra.settings import Settings", "api.app"),
        ("from infra.queue import serialize", "workers.settings"),
        ("from domain.health import check_health", "api.system.queries"),
        ("from . import health", "domain.system"),
        ("from .models import Viewer", "domain.identity.rules"),
        ("import apistar", "domain.x"),
        ("from api.app import create_app", "taskyard.commands"),
    ],
)
def test_the_checker_allows_inward_imports(source: str, module: str) -> None:
    assert violations(source, module) == []


def test_relative_imports_resolve_from_a_package_init() -> None:
    assert imported_modules("from .models import Base", "infra.db", is_package=True) == {
        "infra.db.models"
    }
