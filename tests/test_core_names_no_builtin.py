"""The core (``nasbench_pc/``, the installed package less ``nasbench_pc.plugins``) names no built-in plugin: it imports
none, and no string in its code is the name of a built-in method, search space, channel sampler, edge normalizer,
candidate op or shape option. What the core needs to know about them, the plugins declare as data (docs/plugins.md).

The names come from the registry, from the plugins whose modules are the built-in ones (``nasbench_pc.plugins.*``),
so a new built-in plugin's names are covered the day it lands. Docstrings are prose and not checked.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import nasbench_pc
from nasbench_pc import registry

CORE = Path(nasbench_pc.__file__).parent
#: The core's own words that a built-in also uses: ``init_channels`` and ``layers`` are the core's generic width and
#: depth (``-C`` / ``--layers``, TrainHParams, ExportSpec), which each network spec maps to its own keywords
#: (NetworkSpec.width / depth); ``steps`` is what the progress bars count (optimisation steps), not DARTS' nodes.
CORE_WORDS = {"init_channels", "layers", "steps"}


def builtin_names() -> set[str]:
    """Every name a built-in plugin registers or declares: methods, spaces, samplers, normalizers, executors, the
    spaces' ops and shape options, the samplers' options."""
    built_in = {info.name for info in registry.loaded_plugins() if info.module.startswith("nasbench_pc.plugins")}
    registered = {kind: [name for plugin, names in registry.registered_by(kind).items() if plugin in built_in
                         for name in names] for kind in ("method", "search_space", "sampler", "normalizer", "executor")}
    names = {name for kind_names in registered.values() for name in kind_names}
    for name in registered["search_space"]:
        space = registry.get("search_space", name)
        names.update(space.primitives)
        names.update(space.options)
    for name in registered["sampler"]:
        names.update(inspect.signature(registry.get("sampler", name)).parameters)
    return names - CORE_WORDS


def mentions(source: str, names: set[str]) -> list[str]:
    """Where ``source`` imports a built-in plugin or holds one of ``names`` as a string (docstrings left out)."""
    tree = ast.parse(source)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if _plugin_module(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found += [f"line {node.lineno}: from {node.module} import ..." for m in modules[:1]
                      if any(_plugin_module(name) for name in modules)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings \
                and node.value in names:
            found.append(f"line {node.lineno}: {node.value!r}")
    return found


def _plugin_module(name: str) -> bool:
    return name == "plugins" or name.startswith("plugins.") or name.startswith("nasbench_pc.plugins")


def test_the_names_are_those_of_the_built_ins() -> None:
    names = builtin_names()
    assert {"darts", "darts-1st", "pc-darts", "pc-only", "en-only", "nas-bench-201", "full", "partial", "edge",
            "none", "skip_connect", "sep_conv_3x3", "nor_conv_3x3", "cells_per_stage", "stem", "checkpoint_cells",
            "k"} <= names
    assert not names & CORE_WORDS


def test_no_core_module_imports_a_built_in_plugin_or_names_one() -> None:
    names = builtin_names()
    found = {str(path.relative_to(CORE)): hits for path in sorted(CORE.rglob("*.py"))
             if "plugins" not in path.relative_to(CORE).parts and (hits := mentions(path.read_text(), names))}
    assert found == {}


@pytest.mark.parametrize(("source", "expected"), [
    ('METHOD = "pc-darts"\n', ["line 1: 'pc-darts'"]),
    ('def f(ops):\n    return [o for o in ops if o != "none"]\n', ["line 2: 'none'"]),
    ('options = {"cells_per_stage": 5}\n', ["line 1: 'cells_per_stage'"]),
    ("from nasbench_pc.plugins.darts_space.genotype import KNOWN\n", ["line 1: from nasbench_pc.plugins.darts_space"
                                                                       ".genotype import ..."]),
    ("from nasbench_pc import plugins\n", ["line 1: from nasbench_pc import ..."]),
    ("import nasbench_pc.plugins.pc_darts\n", ["line 1: import nasbench_pc.plugins.pc_darts"]),
    ('"""A docstring may say darts."""\nx = f"{1} darts"\n', []),
])
def test_the_check_finds_a_built_in_name_put_back(source: str, expected: list[str]) -> None:
    assert mentions(source, builtin_names()) == expected
