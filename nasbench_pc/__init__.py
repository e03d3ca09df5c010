"""nasbench-pc: a plugin-based harness for differentiable NAS around PC-DARTS."""

from nasbench_pc import derived, genotypes  # derived: registers the timm models (pc_darts_cifar, darts_cifar, ...)
from nasbench_pc.api import create_supernet, resolve_method
from nasbench_pc.errors import ConfigError, GenotypeError, NasbenchError, PluginError
from nasbench_pc.genotypes import KNOWN, PRIMITIVES, Genotype
from nasbench_pc.hookspecs import hookimpl
from nasbench_pc.interfaces import Method, SearchHParams
from nasbench_pc.registry import available, plugin_manager
from nasbench_pc.spaces import nas_bench_201  # noqa: F401  (registers the timm model nasbench201_cifar)

__version__ = "0.1.0"

__all__ = [
    "KNOWN",
    "PRIMITIVES",
    "ConfigError",
    "Genotype",
    "GenotypeError",
    "Method",
    "NasbenchError",
    "PluginError",
    "SearchHParams",
    "available",
    "create_supernet",
    "derived",
    "genotypes",
    "hookimpl",
    "plugin_manager",
    "resolve_method",
]
