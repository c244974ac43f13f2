"""The packages' layers, read from their source: no import circle, and each layer imports
only the ones below it.

    base        raysweep.config, .errors, .registry, .storage, .scores: the schema and
                what every side shares; imports neither torch nor Ray
    trainables  the trainer, its registries and checkpoints; imports only the base of raysweep
    raysweep    the rest: commands, search, sweep, tracking

Imports inside functions count as much as those at the top of a module: a lazy circle is
still a circle (and hides which layer owns what).
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("raysweep", "trainables")
# raysweep.tables: formatting of numbers and tables, importing nothing of raysweep (the cases' labels use it)
BASE = ("raysweep", "raysweep.config", "raysweep.errors", "raysweep.registry", "raysweep.storage", "raysweep.scores", "raysweep.tables")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imported(module: str, path: Path, known: dict) -> set[str]:
    """The modules of `known` that `module` imports (the nearest known one for a name
    imported from a module)."""
    def nearest(name: str):
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1] + [node.module or ""]).strip(".") if node.level else node.module
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        out.update(n for n in map(nearest, names) if n and n != module)
    return out


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {m: _imported(m, p, known) for m, p in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for v in graph:
        if v not in index:
            visit(v)
    return found


def in_base(module: str) -> bool:
    return any(module == b or module.startswith(b + ".") for b in BASE[1:]) or module == "raysweep"


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_between_or_inside_the_packages():
    graph = import_graph()
    assert len(graph) > 80 and "raysweep.config.load" in graph["raysweep.config.checks"]  # the graph is real
    assert cycles(graph) == []


def test_each_layer_imports_only_the_layers_below():
    graph = import_graph()
    wrong = []
    for module, imported in graph.items():
        for target in imported:
            if in_base(module) and not in_base(target):
                wrong.append(f"base {module} -> {target}")
            elif module.startswith("trainables.") and target.startswith("raysweep") and not in_base(target):
                wrong.append(f"trainables {module} -> {target}")
    assert wrong == []


def test_the_base_and_the_checkpoint_contracts_load_without_torch_or_ray():
    code = (
        "import sys, json\n"
        "import raysweep.config, raysweep.config.checks, raysweep.errors, raysweep.registry, raysweep.storage, raysweep.scores\n"
        "import trainables.checkpoint_files, trainables.report_keys\n"
        "print(json.dumps(sorted(m for m in ('torch', 'ray', 'optuna', 'timm', 'mlflow') if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True, env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert json.loads(out.stdout.splitlines()[-1]) == []
