"""The module paths of the releases before the core had layers, kept importing (deprecated).

``nasbench_pc.train``, ``nasbench_pc.evaluation``, ``nasbench_pc.mixed_op`` and the rest of the flat modules moved
into the layer packages (``networks``, ``results``, ``supernet``, ``search``, ``runtime``). Code written against
the old paths keeps working: importing one gives the module at its new home (the same module object, so a patch
through either name patches both) and a DeprecationWarning naming that home. New code imports the new paths.

A name that moved or was renamed inside a module keeps answering too: the module's ``__getattr__`` is
:func:`old_names`, which finds it at its new home and warns the same way.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

MOVED = {
    "nasbench_pc.mixed_op": "nasbench_pc.supernet",  # MixedOp and run_cell now live in two modules of the kit
    "nasbench_pc.stacking": "nasbench_pc.supernet._stacking",
    "nasbench_pc.layout_check": "nasbench_pc.supernet._layout_check",
    "nasbench_pc._timm_head": "nasbench_pc.supernet.timm_head",
    "nasbench_pc.architect": "nasbench_pc.search.architect",
    "nasbench_pc.presets": "nasbench_pc.search.presets",
    "nasbench_pc.bench": "nasbench_pc.search.budget",
    **{f"nasbench_pc.{name}": f"nasbench_pc.runtime.{name}"
       for name in ("data", "devices", "distributed", "files", "interrupt", "profiling", "rundir", "runkit")},
    **{f"nasbench_pc.{name}": f"nasbench_pc.networks.{name}" for name in ("cost", "export", "train")},
    **{f"nasbench_pc.{name}": f"nasbench_pc.results.{name}" for name in ("compare", "evaluation", "plots")},
}


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target
        self.spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(f"{spec.name} moved to {self.target}; import it from there (the old path will be removed).",
                      DeprecationWarning, stacklevel=2)
        module = importlib.import_module(self.target)
        self.spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self.spec  # the import system set the alias's spec; the module keeps its own


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(MOVED[fullname]))


def install() -> None:
    if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())


def old_names(module: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` answering the names ``module`` had in earlier releases.

    ``names`` maps each old name to ``"new.module:attribute"`` (a dotted attribute path, e.g. a class's method);
    reading an old name gives the object at its new home and a DeprecationWarning naming it.
    """

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        home, _, path = names[name].partition(":")
        warnings.warn(f"{module}.{name} is now {home}.{path}; use that name (the old one will be removed).",
                      DeprecationWarning, stacklevel=2)
        value: Any = importlib.import_module(home)
        for part in path.split("."):
            value = getattr(value, part)
        return value

    return __getattr__
