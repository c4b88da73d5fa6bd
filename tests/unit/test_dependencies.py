"""Each distribution a package imports is declared in its own pyproject.toml, not only installed by others."""

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    ROOT / "operator" / "sharedcore": ROOT / "pyproject.toml",
    ROOT / "testbed" / "sharedcore_testbed": ROOT / "testbed" / "pyproject.toml",
}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_distributions(package: Path) -> set[str]:
    modules = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module.split(".")[0])
    by_module = importlib.metadata.packages_distributions()
    return {
        _normal(dist)
        for module in modules - set(sys.stdlib_module_names) - {package.name}
        for dist in by_module.get(module, [module])
    }


def declared(pyproject: Path) -> set[str]:
    requirements = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return {_normal(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]) for requirement in requirements}


@pytest.mark.parametrize("package", list(PACKAGES), ids=lambda path: path.name)
def test_every_imported_distribution_is_declared(package: Path) -> None:
    assert imported_distributions(package) - declared(PACKAGES[package]) == set()
