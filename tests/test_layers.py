"""The package's shape: no import circles, no import from a lower wing to a higher one, no oversized module."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.imports import LAYERS, circles, import_graph, layer_of, upward_imports

ROOT = Path(__file__).resolve().parents[1]
GRAPH = import_graph(ROOT)


def test_no_import_circles() -> None:
    assert circles(GRAPH) == []


def test_no_upward_imports() -> None:
    assert upward_imports(GRAPH) == []


def test_every_module_stands_in_a_wing() -> None:
    assert [m for m in GRAPH if m != "lorag" and layer_of(m) < 0] == []
    assert len(LAYERS) == 8


def test_serving_never_imports_building() -> None:
    serving = [m for m in GRAPH if m.startswith(("lorag.generate", "lorag.inspect", "lorag.registry"))]
    assert sorted((m, t) for m in serving for t in GRAPH[m] if t.startswith("lorag.build")) == []


def test_modules_stay_small() -> None:
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
             for p in (ROOT / "lorag").rglob("*.py")}
    assert {p: n for p, n in sizes.items() if n > 350} == {}
