"""Everything a plugin author implements or returns, in one import: the protocols
(:mod:`nasbench_pc.protocols`) and the records (:mod:`nasbench_pc.records`).

``from nasbench_pc.interfaces import Method, SearchSpace`` is how plugins (the built-in ones too) import them; the
core imports the two modules directly.
"""

from nasbench_pc.protocols import ChannelSampler, EdgeNormalizer, Evaluator, SearchHooks, SearchSpace, Supernet
from nasbench_pc.records import NEEDS, CellStats, Method, Metric, NetworkSpec, SearchHParams, Shortcut, Stage, flag_for

__all__ = ["NEEDS", "CellStats", "ChannelSampler", "EdgeNormalizer", "Evaluator", "Method", "Metric", "NetworkSpec",
           "SearchHParams", "SearchHooks", "SearchSpace", "Shortcut", "Stage", "Supernet", "flag_for"]
