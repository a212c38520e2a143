"""The tree shows the architecture, and this test keeps it so: stages -> pipeline, each
pipeline unit imports only from units below it, the search engine imports nothing of the
CNN side (not even torch), and no module imports itself back through others."""
from __future__ import annotations

import ast
import subprocess
import sys

from tests.helpers import ROOT

#: Lower numbers are lower layers; a unit may import its own modules and lower layers only.
FOUNDATION = ("errors", "fileio", "interrupts", "runtime", "validation")
LAYERS = {
    "foundation": 0,
    "search": 1, "data": 1, "nn": 1,
    "train": 2,
    "genome": 3,
    "deploy": 4,
    "params": 5,
    "tracking": 6,
}


def module_name(path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path) -> set[str]:
    """Every `pipeline`/`stages` module a file imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in ("pipeline", "stages")}


def graph() -> dict[str, set[str]]:
    files = sorted((ROOT / "pipeline").rglob("*.py")) + sorted((ROOT / "stages").rglob("*.py"))
    modules = {module_name(f): f for f in files}
    edges = {}
    for name, path in modules.items():
        targets = set()
        for imported in imports_of(path):
            while imported and imported not in modules:  # `from pkg import name` of a function
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        edges[name] = targets
    return edges


def unit(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "pipeline" or len(parts) == 1:
        return parts[0]
    return "foundation" if parts[1] in FOUNDATION else parts[1]


def test_every_unit_has_a_layer():
    units = {unit(m) for m in graph() if m.startswith("pipeline.")}
    assert units == set(LAYERS), units ^ set(LAYERS)


def test_imports_point_down_the_layers_only():
    wrong = []
    for module, targets in graph().items():
        for target in targets:
            if module.startswith("pipeline") and target.startswith("stages"):
                wrong.append(f"{module} -> {target} (the library must not import the stages)")
            elif module.startswith("pipeline") and target != "pipeline":
                here, there = unit(module), unit(target)
                if here != there and LAYERS[there] >= LAYERS[here]:
                    wrong.append(f"{module} -> {target} ({here} is layer {LAYERS[here]}, {there} is {LAYERS[there]})")
    assert not wrong, "\n".join(sorted(wrong))


def test_the_search_engine_imports_nothing_of_the_cnn_side():
    cnn_side = {"nn", "train", "data", "genome", "deploy", "params", "tracking"}
    leaks = [f"{m} -> {t}" for m, ts in graph().items() if unit(m) == "search" for t in ts if unit(t) in cnn_side]
    assert not leaks, leaks


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for target in edges.get(node, ()):
            if state.get(target) == 1:
                raise AssertionError("cycle: " + " -> ".join(stack[stack.index(target):] + [target]))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_the_engine_runs_where_torch_is_missing():
    """A lookup-table benchmark needs no torch: import and run the engine with torch blocked."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from tests.test_engine import Quadratic\n"
        "from pipeline.search import SearchSettings, run_search\n"
        "settings = SearchSettings(algorithm='ga', population=4, generations=1, backend='serial')\n"
        "print(run_search(Quadratic(), settings, 0, log=lambda m: None).best.result.score)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout) <= 0
