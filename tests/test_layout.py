"""The package's layout keeps its promises: the README's module table lists exactly the modules there
are, only the Keras engine imports Keras or TensorFlow, and nothing below the command line imports it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from .conftest import REPOSITORY

PACKAGE = REPOSITORY / "rnngen"
KERAS_ENGINE = PACKAGE / "train" / "keras_engine"


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_readme_module_table_lists_every_module_and_package() -> None:
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("The project's layout") :]
    end = table.find("\n\n", table.index("| module"))
    table = table if end == -1 else table[:end]
    listed = set(re.findall(r"^\| `([^`]+)` \|", table, flags=re.MULTILINE))
    present = {str(path.relative_to(PACKAGE)) for path in modules() if path.name not in {"__init__.py", "__main__.py"}}
    present |= {f"{path.parent.relative_to(PACKAGE)}/" for path in PACKAGE.rglob("*/__init__.py")}
    assert listed == present, f"missing from the README: {sorted(present - listed)}; gone: {sorted(listed - present)}"


def test_only_the_keras_engine_imports_keras_or_tensorflow() -> None:
    for path in modules():
        if KERAS_ENGINE in path.parents:
            continue
        heavy = {name for name in imported_modules(path) if name.split(".")[0] in {"keras", "tensorflow"}}
        assert not heavy, f"{path.relative_to(REPOSITORY)} imports {sorted(heavy)}"


def test_nothing_but_the_entry_points_imports_the_command_line() -> None:
    entry_points = {PACKAGE / "__main__.py"}
    for path in modules():
        if path in entry_points or PACKAGE / "cli" in path.parents:
            continue
        assert not any(name.startswith("rnngen.cli") for name in imported_modules(path)), path
