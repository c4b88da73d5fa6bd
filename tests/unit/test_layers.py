"""Imports run down the layers, never up: each package may use those below it, not those above or beside it.

The layers, bottom to top (docs/architecture.md draws them):
0. `sharedcore` itself (the API group and its constants);
1. `api`: the pydantic models, the single source of the CRDs;
2. `kube` (Kubernetes I/O and the controllers' kit), `citydns` (questions to the city's DNS servers),
   `metrics`, `render` (pure): each apart from the others;
3. `sites`: the pair, roles and epochs;
4. `replication`: configuration copied to the standby, data replication measured;
5. `failover`: the Failover executor and its pure planner and steps;
6. `services`: the SharedService controller;
7. the entry points, which may use each other: `wiring`, `runner`, the CLIs, `plugin`, the packaging files.
"""

import ast
from pathlib import Path

import sharedcore

ROOT = Path(sharedcore.__file__).parent
LAYERS: dict[str, int] = {
    "sharedcore": 0,
    "api": 1,
    "kube": 2,
    "citydns": 2,
    "metrics": 2,
    "render": 2,
    "sites": 3,
    "replication": 4,
    "failover": 5,
    "services": 6,
}
ENTRY_POINTS = {
    "__main__",
    "cli",
    "manifests",
    "peer_identity",
    "plugin",
    "rbac",
    "runner",
    "wiring",
}
TOP = max(LAYERS.values()) + 1


def unit_of(module: str) -> str:
    """The package (or top-level module) a dotted name under `sharedcore` belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "sharedcore"


def layer_of(unit: str) -> int:
    if unit in ENTRY_POINTS:
        return TOP
    assert unit in LAYERS, f"sharedcore.{unit} has no layer: place it in LAYERS or ENTRY_POINTS"
    return LAYERS[unit]


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def imported(path: Path) -> set[str]:
    """Every `sharedcore` module `path` imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from sharedcore.x import y` imports the module y too, if y is one.
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] == "sharedcore" and is_module(name)}


def is_module(name: str) -> bool:
    path = ROOT.parent.joinpath(*name.split("."))
    return path.is_dir() or path.with_suffix(".py").exists()


def violations(root: Path = ROOT) -> list[str]:
    wrong = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path)
        own = unit_of(module)
        for target in sorted(imported(path)):
            other = unit_of(target)
            if other == own or (own in ENTRY_POINTS and other in ENTRY_POINTS):
                continue
            if layer_of(other) >= layer_of(own):
                wrong.append(f"{module} imports {target} ({other} is not below {own})")
    return wrong


def test_imports_run_down_the_layers() -> None:
    assert violations() == []


def test_every_package_has_a_layer() -> None:
    units = {unit_of(module_name(path)) for path in ROOT.rglob("*.py")}
    assert units <= set(LAYERS) | ENTRY_POINTS


def test_every_package_has_an_init() -> None:
    missing = [
        str(folder.relative_to(ROOT.parent))
        for folder in [ROOT, *ROOT.rglob("*")]
        if folder.is_dir() and any(folder.glob("*.py")) and not (folder / "__init__.py").exists()
    ]
    assert missing == []
