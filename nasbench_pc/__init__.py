"""nasbench-pc: a plugin-based harness for differentiable NAS around PC-DARTS."""

from typing import Any

from nasbench_pc import _moved, genotypes
from nasbench_pc.api import create_supernet, resolve_method
from nasbench_pc.errors import ConfigError, GenotypeError, NasbenchError, PluginError
from nasbench_pc.hookspecs import hookimpl
from nasbench_pc.records import Method, SearchHParams
from nasbench_pc.registry import available, load_plugins, plugin_manager

__version__ = "0.1.0"

_moved.install()  # nasbench_pc.train, .evaluation, .mixed_op, ...: the flat module paths of earlier releases

__all__ = [
    "ConfigError",
    "GenotypeError",
    "Method",
    "NasbenchError",
    "PluginError",
    "SearchHParams",
    "available",
    "create_supernet",
    "genotypes",
    "hookimpl",
    "plugin_manager",
    "resolve_method",
]

# Loading the plugins registers their timm models (darts_cifar, nasbench201_cifar, ...), so that
# `import nasbench_pc` is all `timm.create_model` needs. A broken plugin does not break the import:
# its error is raised again where the plugins are used.
load_plugins()


def __getattr__(name: str) -> Any:
    """``nasbench_pc.KNOWN``, ``PRIMITIVES``, ``Genotype``: the default search space's (DARTS') exports, as the
    DARTS-only releases had them here (PEP 562; looked up in the registry, never imported from a plugin)."""
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return genotypes.default_export(name)
    except AttributeError:
        raise AttributeError(f"module 'nasbench_pc' has no attribute {name!r}") from None
