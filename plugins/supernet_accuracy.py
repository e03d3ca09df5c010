"""The ``supernet-accuracy`` evaluator: the supernet's own top-1 on the architecture split after the search's
last finished epoch (the reference ``infer`` on valid_queue), as the search recorded it in metrics.jsonl.

It scores the supernet, not the derived network: ``compare --evaluate`` ranks runs by it and by stand-alone
scores and reports how well one predicts the other (Kendall tau).
"""

from __future__ import annotations

from typing import Any

from nasbench_pc import hookimpl
from nasbench_pc.errors import ConfigError
from nasbench_pc.interfaces import Metric
from nasbench_pc.results.evaluation import EvaluationTarget


class SupernetAccuracy:
    description = "the supernet's top-1 on the search's architecture split, after its last finished epoch"
    needs = frozenset({"run"})
    options: dict[str, Any] = {}
    metrics = (Metric("supernet_acc", "supernet acc %", percent=True, fmt=".1f"),)

    def evaluate(self, target: EvaluationTarget) -> dict[str, float]:
        if not target.history or "arch_acc" not in target.history[-1]:
            raise ConfigError(f"{target.run_dir} has no finished search epoch with an architecture-split accuracy "
                              f"yet. Let the search finish an epoch (`nasbench-pc search --resume {target.run_dir}`).")
        return {"supernet_acc": float(target.history[-1]["arch_acc"])}


@hookimpl
def register_evaluators() -> dict[str, SupernetAccuracy]:
    return {"supernet-accuracy": SupernetAccuracy()}
