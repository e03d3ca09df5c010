"""The core's folders are its layers (issue 21): a module imports only from its own layer or those below, no import
cycle exists, nothing imports a nasbench_pc module inside a function, and the internal machinery (``_``-prefixed
modules) is imported only inside its own package and by the built-in plugins.

Layers, bottom up: the kernel (the modules at the top of ``nasbench_pc/``: registry, records, protocols, settings,
api, genotypes, errors, ...), then ``supernet`` and ``runtime`` (side by side, neither importing the other), then
``search``, ``networks``, ``results`` and ``cli``. docs/architecture.md draws the same picture.
"""

from __future__ import annotations

import ast
import importlib
import warnings
from pathlib import Path

import pytest

import nasbench_pc

CORE = Path(nasbench_pc.__file__).parent
PLUGINS = Path(nasbench_pc.__file__).parent.parent / "plugins"
RANK = {"supernet": 1, "runtime": 1, "search": 2, "networks": 3, "results": 4, "cli": 5}
ENTRY_POINTS = {"nasbench_pc", "nasbench_pc.__main__"}  # the package and `python -m` may reach any layer


def layer(module: str) -> tuple[int, str]:
    """(rank, layer name) of a nasbench_pc module; the kernel is (0, 'kernel')."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in RANK:
        return RANK[parts[1]], parts[1]
    return 0, "kernel"


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(CORE.parent).with_suffix("").parts).removesuffix(".__init__")


def imports(source: str, module: str) -> list[tuple[int, str, bool]]:
    """(line, imported nasbench_pc module, at module level) for each import of ``source``, the imports under
    ``if TYPE_CHECKING:`` left out (annotations only, never executed)."""
    tree = ast.parse(source)
    type_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(
        node.test) for n in ast.walk(node)}
    top = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            names = [f"{base}.{a.name}" if base in ("nasbench_pc", "nasbench_pc.cli", "nasbench_pc.supernet",
                                                    "nasbench_pc.runtime", "nasbench_pc.search",
                                                    "nasbench_pc.networks", "nasbench_pc.results") else base
                     for a in node.names]
        for name in names:
            if name.startswith("nasbench_pc") and not name.startswith("nasbench_pc.plugins"):
                found.append((node.lineno, name, id(node) in top))
    return found


def violations(source: str, module: str) -> list[str]:
    """An upward import, a function-local import of nasbench_pc, or a private module of another package."""
    out = []
    for line, name, at_top in imports(source, module):
        if not at_top:
            out.append(f"line {line}: imports {name} inside a function")
        if module not in ENTRY_POINTS and layer(name)[0] > layer(module)[0]:
            out.append(f"line {line}: {layer(module)[1]} imports {name} of the {layer(name)[1]} layer above it")
        if layer(name)[0] == layer(module)[0] and layer(name)[1] != layer(module)[1]:
            out.append(f"line {line}: {layer(module)[1]} imports {name} of the {layer(name)[1]} layer beside it")
        private = [part for part in name.split(".")[1:] if part.startswith("_") and not part.startswith("__")]
        owner = name.rsplit(".", 1)[0]
        if private and not (module.startswith(owner) or module == name):
            out.append(f"line {line}: imports the internal {name} from outside {owner}")
    return out


def core_modules() -> dict[str, str]:
    return {module_name(path): path.read_text() for path in sorted(CORE.rglob("*.py"))
            if "plugins" not in path.relative_to(CORE).parts}


def test_every_module_imports_down_at_module_level_and_no_internal_of_another_package() -> None:
    found = {module: hits for module, source in core_modules().items() if (hits := violations(source, module))}
    assert found == {}


def dependency_graph() -> dict[str, set[str]]:
    """Module -> the core modules it imports at run time (a name imported from a package counts as the package)."""
    modules = core_modules()
    graph = {}
    for module, source in modules.items():
        deps = {name if name in modules else name.rsplit(".", 1)[0] for _, name, _ in imports(source, module)}
        graph[module] = {d for d in deps if d in modules and d != module}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first walk meets, as the modules around it. A package's own ``__init__`` (which runs
    before its modules) and the entry points are not counted as dependencies of the modules under them."""
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt in ENTRY_POINTS or node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state and module not in ENTRY_POINTS:
            visit(module, [module])
    return cycles


def test_no_import_cycle() -> None:
    graph = dependency_graph()
    assert "nasbench_pc.search.config" in graph["nasbench_pc.search.loop"]  # the graph sees real imports
    assert "nasbench_pc.results.runs" in graph["nasbench_pc.results.evaluation"]
    assert find_cycles(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {"nasbench_pc.results.compare": {"nasbench_pc.results.evaluation"},
             "nasbench_pc.results.evaluation": {"nasbench_pc.results.compare"}}
    assert find_cycles(graph) == [["nasbench_pc.results.compare", "nasbench_pc.results.evaluation",
                                   "nasbench_pc.results.compare"]]


def test_built_in_plugins_use_only_the_public_kit_besides_the_stacked_fast_path() -> None:
    """Built-in plugins may reach the stacked fast path (their ops have stacked variants); nothing else private."""
    found = {}
    for path in sorted(PLUGINS.rglob("*.py")):
        for line, name, _ in imports(path.read_text(), "nasbench_pc.plugins"):
            private = [p for p in name.split(".")[1:] if p.startswith("_") and not p.startswith("__")]
            if private and name != "nasbench_pc.supernet._stacking":
                found.setdefault(str(path.relative_to(PLUGINS)), []).append(f"line {line}: {name}")
    assert found == {}


@pytest.mark.parametrize("module, source, complaint", [
    ("nasbench_pc.search.loop", "from nasbench_pc.results.compare import load_run\n",
     "line 1: search imports nasbench_pc.results.compare of the results layer above it"),
    ("nasbench_pc.supernet.mixed_op", "from nasbench_pc.runtime import devices\n",
     "line 1: supernet imports nasbench_pc.runtime.devices of the runtime layer beside it"),
    ("nasbench_pc.results.plots", "def f():\n    from nasbench_pc.results.compare import ranking\n",
     "line 2: imports nasbench_pc.results.compare inside a function"),
    ("nasbench_pc.search.loop", "from nasbench_pc.supernet import _stacking\n",
     "line 1: imports the internal nasbench_pc.supernet._stacking from outside nasbench_pc.supernet"),
    ("nasbench_pc.registry", "from nasbench_pc.cli import main\n",
     "line 1: kernel imports nasbench_pc.cli.main of the cli layer above it"),
])
def test_the_check_finds_what_it_forbids(module: str, source: str, complaint: str) -> None:
    assert complaint in violations(source, module)


def test_type_checking_imports_are_annotations_not_dependencies() -> None:
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from nasbench_pc.results.compare import X\n"
    assert violations(source, "nasbench_pc.results.plots") == []



@pytest.mark.parametrize("module, old, home, path", [
    ("nasbench_pc.networks.train", "lr_at", "nasbench_pc.networks.recipes", "learning_rate"),
    ("nasbench_pc.networks.train", "recipe_hparams", "nasbench_pc.networks.recipes", "recipe_hparams"),
    ("nasbench_pc.networks.train", "network_shape", "nasbench_pc.networks.recipes", "TrainConfig.model_options"),
    ("nasbench_pc.runtime.runkit", "lr_at", "nasbench_pc.runtime.runkit", "scheduled_lr"),
    ("nasbench_pc.results.evaluation", "kendall_tau", "nasbench_pc.results.ranking", "kendall_tau"),
    ("nasbench_pc.search", "CHECKPOINT_FORMAT", "nasbench_pc.search.checkpoint", "CHECKPOINT_FORMAT"),
    ("nasbench_pc.search", "EpochProgress", "nasbench_pc.search.loop", "EpochProgress"),
    ("nasbench_pc.search.budget", "BenchShape", "nasbench_pc.search.budget", "SupernetShape"),
    ("nasbench_pc.cli", "report_error", "nasbench_pc.cli._main", "report_error"),
])
def test_a_name_that_moved_inside_the_core_still_answers_with_a_warning(module: str, old: str, home: str,
                                                                        path: str) -> None:
    expected: object = importlib.import_module(home)
    for part in path.split("."):
        expected = getattr(expected, part)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = getattr(importlib.import_module(module), old)
    assert value is expected
    assert [str(w.message) for w in caught] == [
        f"{module}.{old} is now {home}.{path}; use that name (the old one will be removed)."]


def test_a_name_the_core_never_had_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'nasbench_pc.networks.train' has no attribute 'lr_att'"):
        importlib.import_module("nasbench_pc.networks.train").lr_att  # noqa: B018
