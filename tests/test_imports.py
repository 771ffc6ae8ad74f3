"""The package's import graph, walked from the source (every ``import`` statement, those
inside functions too): no import cycle between modules, no module importing a layer
above its own (``LAYERS``), and no private name (``_x``)
imported from another module. A package's own ``__init__`` re-exporting its children is
not a cycle; the C++ extension ``_core`` and the ``_util``/``_version`` modules are
modules, not private names."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "chromaformer"

#: The package's layers, lowest first: a module imports its own layer and those below.
#: The package root (the public face, lazy) sits above them all; nothing imports it.
LAYERS = [
    ("errors", "_version", "_util"),  # helpers every layer shares
    ("layout",),  # facts: marks, bins, names
    ("contract", "pretrained", "metrics"),  # the ONNX contract, shipped models, metrics
    ("formats",),  # every file format, read and written
    ("data", "simulate"),  # data sets: bundled, loaded, simulated
    ("models",),  # networks and configs
    ("families",),  # what each model family tells the engines
    ("training", "export", "scoring"),  # the engines
    ("explain",),  # attributions and what-if, over the scorer
    ("prepare",),  # a lab's tracks -> inputs
    ("demo",),
    ("cli",),
]


def layer_of(module: str) -> int:
    top = module.split(".")[1]
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"{module}: in no layer of LAYERS")


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = list(p.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _loaded_on_import(tree: ast.AST) -> list[ast.AST]:
    """The nodes that run when the module is imported: not function bodies, not
    ``if TYPE_CHECKING:`` blocks."""
    out: list[ast.AST] = []
    todo = list(ast.iter_child_nodes(tree))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        out.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return out


def _graph(on_import: bool = False) -> tuple[dict[str, set[str]], list[str]]:
    """Module -> the package's modules it imports (``on_import``: only those its import
    itself loads), and the private names imported across modules."""
    mods = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    private = []
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text())
        for node in _loaded_on_import(tree) if on_import else ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if not target.startswith("chromaformer"):
                    continue
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    dep = full if full in mods else target
                    if dep in mods and dep != mod and not mod.startswith(dep + "."):
                        graph[mod].add(dep)
                    name = alias.name
                    if name.startswith("_") and not name.startswith("__") and full not in mods:
                        if name != "_core":  # the C++ extension module
                            private.append(f"{mod} imports {target}.{name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in mods and alias.name != mod:
                        graph[mod].add(alias.name)
    return graph, private


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
                found.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_the_walk_sees_the_package():
    graph, _ = _graph()
    assert "chromaformer.training.engine" in graph["chromaformer.training.cv"]
    assert "chromaformer._util.atomic" in graph["chromaformer.scoring.engine"]
    # a cycle made on purpose is found
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    graph, _ = _graph()
    assert _cycles(graph) == []


def test_no_private_name_is_imported_across_modules():
    _, private = _graph()
    assert private == []


def test_the_helpers_import_nothing_above_them():
    """``_util`` and ``_version`` are the bottom layer: they import only ``errors``."""
    graph, _ = _graph()
    for mod, deps in graph.items():
        if mod.startswith("chromaformer._util") or mod == "chromaformer._version":
            above = {d for d in deps if not d.startswith("chromaformer._util")}
            assert above <= {"chromaformer.errors"}, (mod, above)


def _upward(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for mod, deps in graph.items():
        if mod == "chromaformer":
            continue
        for dep in deps:
            if dep == "chromaformer" or layer_of(dep) > layer_of(mod):
                found.append(f"{mod} -> {dep}")
    return sorted(found)


def test_no_module_imports_a_layer_above_its_own():
    graph, _ = _graph()
    assert {m.split(".")[1] for m in graph if m != "chromaformer"} <= {
        n for names in LAYERS for n in names
    }
    assert _upward(graph) == []
    # an arrow made on purpose is found
    made = {"chromaformer.formats.text": {"chromaformer.scoring.engine"}}
    assert _upward(made) == ["chromaformer.formats.text -> chromaformer.scoring.engine"]


def test_functions_named_as_their_subpackage_stay_callable():
    """``chromaformer.prepare`` and ``chromaformer.explain`` are functions and the
    subpackages they live in; once the subpackage is imported (by any import, or by the
    first lazy access) the name is the module, and calling it calls the function."""
    import subprocess
    import sys

    code = (
        "import chromaformer as cf\n"
        "first = cf.explain\n"
        "from chromaformer.prepare.real import E116\n"
        "import inspect\n"
        "assert inspect.isfunction(first), first\n"
        "for f in (cf.explain, cf.prepare):\n"
        "    assert callable(f), f\n"
        "try:\n"
        "    cf.prepare([], 'none.bed', 'out.csv')\n"
        "except cf.DataError as err:\n"
        "    print(err)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip(), "prepare was called and refused its arguments"
