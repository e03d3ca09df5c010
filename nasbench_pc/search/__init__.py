"""The search layer: a method's bilevel search over a supernet, from its settings to its run folder.

- :mod:`~nasbench_pc.search.config`: :class:`SearchConfig`, everything that defines a search (``config.json``);
- :mod:`~nasbench_pc.search.presets`: a method's settings on a space turned into a complete config;
- :mod:`~nasbench_pc.search.streams`: the weight and architecture data streams;
- :mod:`~nasbench_pc.search.architect`: the architecture step (first or second order);
- :mod:`~nasbench_pc.search.loop`: the search loop and its run directory;
- :mod:`~nasbench_pc.search.checkpoint`: its checkpoint and config on disk, read back by ``--resume``;
- :mod:`~nasbench_pc.search.budget`: what a search step costs (memory, time) and the batch that fits;
- :mod:`~nasbench_pc.search.runspec`: whether a run folder holds the search asked for (reuse across machines).
"""

from nasbench_pc import _moved
from nasbench_pc.search.checkpoint import load_run_config, save_checkpoint
from nasbench_pc.search.config import SearchConfig
from nasbench_pc.search.loop import AlreadyFinished, Reporter, Search, SearchResult, learning_rate, run_search
from nasbench_pc.search.streams import BatchStream, derived_seed

__getattr__ = _moved.old_names(__name__, {  # the names nasbench_pc.search (a module) had before issue 21
    "CHECKPOINT_FORMAT": "nasbench_pc.search.checkpoint:CHECKPOINT_FORMAT",
    **{name: f"nasbench_pc.search.loop:{name}"
       for name in ("EpochProgress", "GENOTYPE_HISTORY", "RUN_FILES", "alpha_entropy")},
})

__all__ = ["AlreadyFinished", "BatchStream", "Reporter", "Search", "SearchConfig", "SearchResult", "derived_seed",
           "learning_rate", "load_run_config", "run_search", "save_checkpoint"]
