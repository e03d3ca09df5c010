"""How well one scoring of the runs orders them as another does: Kendall's tau (:func:`kendall_tau`), and per
evaluator metric against the supernet's own accuracy (:func:`ranking`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nasbench_pc.records import Metric
from nasbench_pc.results.runs import RunSummary


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b between two scorings of the same items (ties counted as scipy.stats.kendalltau does);
    NaN where undefined: fewer than two items with both values, or one scoring constant."""
    pairs = [(a, b) for a, b in zip(x, y) if not (math.isnan(a) or math.isnan(b))]
    concordant = discordant = ties_x = ties_y = 0
    for i in range(len(pairs)):
        for j in range(i + 1, len(pairs)):
            # signs by comparison, not subtraction: two -inf scores (naswot of a cell with no path) are a tie
            dx = (pairs[i][0] > pairs[j][0]) - (pairs[i][0] < pairs[j][0])
            dy = (pairs[i][1] > pairs[j][1]) - (pairs[i][1] < pairs[j][1])
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif dx == dy:
                concordant += 1
            else:
                discordant += 1
    denominator = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denominator if denominator else math.nan


@dataclass(frozen=True)
class Rank:
    """How well the supernet's accuracy orders the runs as ``metric`` does: Kendall's tau over ``runs`` runs
    (1: the same order, -1: reversed, 0: unrelated; a lower-is-better metric is negated first)."""

    metric: Metric
    tau: float
    runs: int

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric.key, "label": self.metric.label, "kendall_tau": self.tau, "runs": self.runs}


def ranking(runs: list[RunSummary], metrics: tuple[Metric, ...]) -> list[Rank]:
    """Per metric, Kendall's tau between the runs' supernet accuracy (architecture split) and that metric, over
    every run scored by both."""
    ranks = []
    for metric in metrics:
        sign = 1.0 if metric.higher_is_better else -1.0
        pairs = [(r.arch_acc, sign * r.scores[metric.key]) for r in runs
                 if metric.key in r.scores and not math.isnan(r.arch_acc) and not math.isnan(r.scores[metric.key])]
        ranks.append(Rank(metric, kendall_tau([a for a, _ in pairs], [b for _, b in pairs]), len(pairs)))
    return ranks
