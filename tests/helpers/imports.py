"""lorag's own import graph, read from the source with ast: modules, layers, circles and imports that run upward.

Every ``import lorag.x`` / ``from lorag.x import y`` counts, at module top or inside a function (an import
inside a function still ties the two modules together). Run ``python -m tests.helpers.imports [ROOT]`` for the
figures; tests/test_layers.py holds the package to them.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

# Wings from the ground up: a module may import its own wing and the wings below it, never one above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("lorag.errors", "lorag.atomic", "lorag.limits", "lorag.legacy", "lorag.crashlog"),
    ("lorag.config", "lorag.config_io", "lorag.config_diagnostics", "lorag.config_default"),
    ("lorag.registry",),
    ("lorag.inspect",),
    ("lorag.generate", "lorag.build"),
    ("lorag.rag",),
    ("lorag.server", "lorag.demo"),
    ("lorag.cli", "lorag.__main__"),
)


def module_name(root: Path, path: Path) -> str:
    """Dotted module name of a file under ``root`` (the folder that holds the ``lorag`` package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module → the lorag modules it imports (packages resolved to their __init__ module)."""
    files = {module_name(root, p): p for p in sorted((root / "lorag").rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets: set[str] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for target in _imported(node, package):
                if target in files:
                    targets.add(target)
                elif target.rpartition(".")[0] in files:  # from pkg import name: the name may be an attribute
                    targets.add(target.rpartition(".")[0])
        graph[name] = targets - {name}
    return graph


def _imported(node: ast.AST, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("lorag")]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
        if base.startswith("lorag"):
            return [f"{base}.{a.name}" for a in node.names]
    return []


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
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
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def layer_of(module: str) -> int:
    """Index in LAYERS of the wing that holds ``module`` (-1 when no wing names it)."""
    for i, wing in enumerate(LAYERS):
        if any(module == w or module.startswith(w + ".") for w in wing):
            return i
    return -1


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) pairs where a lower wing imports a higher one."""
    return sorted((a, b) for a, targets in graph.items() for b in targets
                  if layer_of(a) >= 0 and layer_of(b) > layer_of(a))


def floors(graph: dict[str, set[str]]) -> int:
    """Number of floors when each module stands one above the highest module it imports (circles share one)."""
    group_of = {m: tuple(g) for g in circles(graph) for m in g}
    height: dict[str, int] = {}

    def h(m: str, seen: frozenset[str]) -> int:
        if m in height:
            return height[m]
        inside = set(group_of.get(m, (m,)))
        below = [t for g in inside for t in graph.get(g, ()) if t not in inside and t not in seen]
        value = 1 + max((h(t, seen | inside) for t in below), default=0)
        for g in inside:
            height[g] = value
        return value

    return max((h(m, frozenset()) for m in graph), default=0)


def main(root: Path) -> None:
    graph = import_graph(root)
    found = circles(graph)
    up = upward_imports(graph)
    print(f"modules {len(graph)}, imports {sum(len(t) for t in graph.values())}, floors {floors(graph)}, "
          f"circles {len(found)} ({sum(len(c) for c in found)} modules), upward imports {len(up)}")
    for group in found:
        print("  circle:", " ↔ ".join(group))
    for a, b in up:
        print(f"  upward: {a} -> {b}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd())
