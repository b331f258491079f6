"""The layers, checked on every run from the source (an AST walk; nothing is imported).

- no import circle anywhere in the plugin, counting imports inside functions too;
- ``core/`` never imports Qt or QGIS, nor the plugin's faces (gui, processing, the shell);
- inside ``core/`` imports only run down the stages: runtime → io → data → models → evaluate → predict /
  train → earthengine → the table (families) and what sits on it (label_training, jobs);
- only ``core/models/family.py`` and ``core/families.py`` may spell a family's name (no ``== "unet"``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "geodl_plugin"

# Stage of each core package or top-level core module; an import may only go to a stage at or below its own,
# and within a stage only between modules of one package (train and predict share a stage but never meet).
STAGES = {
    "runtime": 0,
    "io": 1,
    "data": 2,
    "models": 3,
    "evaluate": 4,
    "predict": 5,
    "train": 5,
    "earthengine": 6,
    "families": 7,
    "label_training": 8,
    "vertex_training": 8,
    "jobs": 9,
}
# Plain-Python leaves outside core that core may use: where the plugin's files are (metadata.txt's version).
CORE_MAY_IMPORT = {"geodl_plugin.paths"}
FAMILY_MODULES = {"geodl_plugin.core.models.family", "geodl_plugin.core.families"}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _imports(module: str) -> set[str]:
    path = MODULES[module]
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES)
    return found


GRAPH = {m: {t for t in _imports(m) if t in MODULES and t != m} for m in MODULES}


def _stage(module: str) -> tuple[int, str]:
    part = module.split(".")[2]
    return STAGES[part], part


def test_no_import_circle():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            # a package re-exporting its own submodules is not a circle
            if len(group) > 1 and not all(any(o.startswith(x + ".") or x.startswith(o + ".") for o in group if o != x) for x in group):
                circles.append(sorted(group))

    for v in MODULES:
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


def test_core_is_free_of_qt_qgis_and_the_faces():
    bad = []
    for module in (m for m in MODULES if m.startswith("geodl_plugin.core")):
        for target in _imports(module):
            top = target.split(".")[0]
            if top in ("qgis", "PyQt5", "PyQt6", "sip"):
                bad.append(f"{module} imports {target}")
            elif target.startswith("geodl_plugin.") and not target.startswith("geodl_plugin.core") and target not in CORE_MAY_IMPORT:
                bad.append(f"{module} imports {target}")
    assert not bad, bad


def test_core_imports_run_down_the_stages():
    bad = []
    for module, targets in GRAPH.items():
        if not module.startswith("geodl_plugin.core.") or module == "geodl_plugin.core":
            continue
        rank, part = _stage(module)
        for target in targets:
            if not target.startswith("geodl_plugin.core.") or target == "geodl_plugin.core":
                continue
            target_rank, target_part = _stage(target)
            if target_rank > rank or (target_rank == rank and target_part != part):
                bad.append(f"{module} ({part}) imports {target} ({target_part})")
    assert not bad, "imports up the stages:\n" + "\n".join(bad)


def test_every_core_stage_is_known():
    parts = {m.split(".")[2] for m in MODULES if m.startswith("geodl_plugin.core.")}
    assert parts <= set(STAGES), f"give these a stage in STAGES: {parts - set(STAGES)}"


def test_no_family_told_apart_by_its_name_outside_the_table():
    from geodl_plugin.core.models.family import ModelFamily

    names = "|".join(re.escape(f.value) for f in ModelFamily)
    pattern = re.compile(rf"""(==|!=|\bin\b)\s*\(?\s*["']({names})["']|["']({names})["']\s*(==|!=)""")
    bad = []
    for module, path in MODULES.items():
        if module in FAMILY_MODULES:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                bad.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not bad, "ask core/families.py instead:\n" + "\n".join(bad)
