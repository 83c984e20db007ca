"""The package's layers hold: no import cycle anywhere (imports inside functions included: they hide cycles, they
do not remove them), and no module imports a layer above its own. Read from the source with ``ast``: nothing is
imported, so the test needs neither torch nor the extras."""
import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "gtr"

# Lowest first. A module may import its own layer and the ones below it.
LAYERS = {
    "base": ("gtr.errors", "gtr.files"),
    "core": ("gtr.models", "gtr.sampling", "gtr.tokenizers", "gtr.weights", "gtr.data", "gtr.text", "gtr.images"),
    "config": ("gtr.config",),
    "eval": ("gtr.eval", "gtr.training"),
    "jobs": ("gtr.jobs", "gtr.tracking"),
    "study": ("gtr.study",),
    "entry points": ("gtr.cli", "gtr"),
}
# Each exception with its reason. The text-to-image scenes are drawn so that GenEval's own position rule holds on
# their ground truth: the data generator calls the evaluator's rule rather than a copy of it.
ALLOWED = {("gtr.data.scene_prompts", "gtr.eval.geneval.rules")}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (``from a.b import c`` counts as a.b.c when that is a module)."""
    mods = modules()

    def owner(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {m: set() for m in mods}
    for module, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            graph[module] |= {t for t in map(owner, targets) if t and t != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer_of(module: str) -> int:
    matches = [(len(prefix), rank) for rank, prefixes in enumerate(LAYERS.values()) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} is in no layer: add it to LAYERS in {Path(__file__).name}"
    return max(matches)[1]


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_no_module_imports_a_layer_above_its_own():
    names = list(LAYERS)
    upward = [f"{m} ({names[layer_of(m)]}) imports {t} ({names[layer_of(t)]})"
              for m, targets in import_graph().items() for t in sorted(targets)
              if layer_of(t) > layer_of(m) and (m, t) not in ALLOWED]
    assert upward == []


def test_the_checks_can_fail():
    """A cycle and an upward import are found when present."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer_of("gtr.jobs.generate") > layer_of("gtr.config.schema") > layer_of("gtr.sampling.executor")
