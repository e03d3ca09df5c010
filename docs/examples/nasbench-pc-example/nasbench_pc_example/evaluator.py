# nasbench_pc_example/evaluator.py
"""The ``param-count`` evaluator: the parameters of the network a search's genotype derives.

The network is the genotype's search space's first derived network, at the width and depth of the supernet that
found it (what ``EvaluationTarget.network`` builds), so every run of a comparison is measured at one size. Fewer
parameters rank higher. It reads nothing but the genotype: no data, no run folder, no benchmark.
"""

from __future__ import annotations

from typing import Any

from nasbench_pc import hookimpl
from nasbench_pc.errors import ConfigError
from nasbench_pc.interfaces import Metric
from nasbench_pc.results.evaluation import EvaluationTarget


class ParamCount:
    """See :class:`nasbench_pc.interfaces.Evaluator` for what each attribute is for."""

    description = "parameters of the derived network at the supernet's width and depth (fewer is better)"
    needs: frozenset[str] = frozenset()
    options: dict[str, Any] = {"num_classes": 10, "in_channels": 3}
    metrics = (Metric("params", "params (search shape)", higher_is_better=False, fmt=",.0f"),)

    def evaluate(self, target: EvaluationTarget, *, num_classes: int, in_channels: int) -> dict[str, float]:
        if num_classes < 1 or in_channels < 1:
            raise ConfigError(f"param-count needs at least one class and one input channel, got num_classes="
                              f"{num_classes} and in_channels={in_channels}. Write --evaluate "
                              f"param-count:num_classes=10,in_channels=3.")
        network = target.network(num_classes, in_channels)
        return {"params": float(sum(p.numel() for p in network.parameters()))}


@hookimpl
def register_evaluators() -> dict[str, ParamCount]:
    return {"param-count": ParamCount()}
