"""Imports only go down (README "Code map"): the tools around a run (bench/, repro/) sit on the
report, the report and the entry points on the product, and there are no import cycles.
Imports under `if TYPE_CHECKING:` are annotations only and do not count."""

from __future__ import annotations

import ast
from pathlib import Path

import mia_bench

PKG = Path(mia_bench.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        parts = list(f.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = f
    return out


def _imports() -> dict[str, set[str]]:
    """module -> the mia_bench modules it imports (anywhere in the file, functions included)."""
    mods = _modules()
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        typing_only = {
            id(c)
            for n in ast.walk(tree)
            if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
            for c in ast.walk(n)
        }
        found: set[str] = set()
        for n in ast.walk(tree):
            if id(n) in typing_only:
                continue
            if isinstance(n, ast.Import):
                found.update(a.name for a in n.names)
            elif isinstance(n, ast.ImportFrom):
                base = n.module or ""
                if n.level:
                    pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                    pkg = pkg[: len(pkg) - n.level + 1]
                    base = ".".join([*pkg, base] if base else pkg)
                found.add(base)
                found.update(f"{base}.{a.name}" for a in n.names)
        # a module's own packages (`from mia_bench.report import plots`) are not edges
        edges[name] = {m for m in found if m in mods and not (name + ".").startswith(m + ".")}
    return edges


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_tools_and_report_import_only_downwards():
    edges = _imports()
    wrong = []
    for mod, targets in edges.items():
        room = _room(mod)
        for t in targets:
            up = _room(t)
            if up == "bench" and room != "bench":
                wrong.append((mod, t))  # nothing builds on the benchmark
            elif up == "repro" and room not in ("repro", "bench"):
                wrong.append((mod, t))  # only the benchmark builds on the reproduction tools
            elif up in ("cli", "callbacks", "__main__") and room in ("report", "repro", "bench"):
                wrong.append((mod, t))  # the tools use the product's modules, not its entry
            elif up == "report" and room not in ("report", "repro", "bench", "cli", "callbacks"):
                wrong.append((mod, t))  # the product below the entry points never reads reports
    assert wrong == []


def test_no_import_cycles():
    edges = _imports()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    assert cycles == []


def test_the_checks_see_imports_inside_functions():
    # plan.volume imports the override reader inside the function: an edge all the same
    assert "mia_bench.overrides" in _imports()["mia_bench.repro.plan"]
