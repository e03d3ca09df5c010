"""Side-by-side comparison of search runs: aggregation over seeds, genotype stability, collapse.

Works on run directories written by ``nasbench-pc search`` (config.json, metrics.jsonl,
genotype.json), whether ``compare`` just ran them or they come from other machines, on any search
space: skip counts, the collapse verdict and the edges that stability compares come from the space
(:meth:`~nasbench_pc.interfaces.SearchSpace.stats` and ``edges``). One table holds the runs of one space:
memory, time and genotypes of different spaces are not comparable, so mixing them is refused.

Runs scored by evaluators (``compare --evaluate``, :mod:`nasbench_pc.results.evaluation`) carry their scores; each
metric
becomes a column (mean and std over seeds) and :func:`ranking` says, per metric, how well the supernet's own
accuracy orders the runs as that score does (Kendall tau over all runs).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import statistics
from collections.abc import Hashable
from dataclasses import asdict, dataclass, field
from typing import Any

from nasbench_pc import genotypes, registry
from nasbench_pc.errors import ConfigError
from nasbench_pc.networks.cost import genotype_cost
from nasbench_pc.records import Metric

# what a comparison reads and ranks, re-exported (``compare.load_run(path)`` reads a run as it did before runs.py)
from nasbench_pc.results.ranking import Rank as Rank
from nasbench_pc.results.ranking import ranking as ranking
from nasbench_pc.results.runs import RunSummary as RunSummary
from nasbench_pc.results.runs import attach_saved_bytes as attach_saved_bytes
from nasbench_pc.results.runs import expand_runs as expand_runs
from nasbench_pc.results.runs import load_run as load_run
from nasbench_pc.results.runs import sampler_column as sampler_column
from nasbench_pc.results.runs import saved_bytes_line as saved_bytes_line

# ------------------------------------------------------------------------------------------------------------
# genotype stability


def selected_edges(genotype: Any) -> set[Hashable]:
    """Where every kept edge is, as its space names it (DARTS: (cell, node, input))."""
    return {key for key, _ in genotypes.space_of(genotype).edges(genotype)}


def selected_ops(genotype: Any) -> set[tuple[Hashable, str]]:
    """(where, op) of every kept edge."""
    return set(genotypes.space_of(genotype).edges(genotype))


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def stability(genos: list[Any]) -> tuple[float, float] | None:
    """Mean pairwise Jaccard similarity of (selected edges, selected edge+op pairs) across runs;
    None with fewer than two runs. 1.0 means every seed derived the same cells."""
    if len(genos) < 2:
        return None
    pairs = list(itertools.combinations(genos, 2))
    edges = statistics.fmean(jaccard(selected_edges(a), selected_edges(b)) for a, b in pairs)
    ops = statistics.fmean(jaccard(selected_ops(a), selected_ops(b)) for a, b in pairs)
    return edges, ops


# ------------------------------------------------------------------------------------------------------------
# aggregation


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation; the deviation of one value is undefined (nan, null in JSON)."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else math.nan)


@dataclass
class MethodRow:
    method: str
    space: str
    seeds: list[int]
    sampler: str
    normalizer: str
    k: Any  # the sampler option the table shows (sampler_column), e.g. K of partial channels
    batch_size: int
    device: str
    memory_label: str
    memory_mib: tuple[float, float]
    step_seconds: tuple[float, float]
    epoch_seconds: tuple[float, float]
    search_hours: tuple[float, float]
    arch_acc: tuple[float, float]
    skip_connects: tuple[float, float]
    skip_edges: int  # the edges the skip count is out of (DARTS: the normal cell's 8)
    collapse_rule: str  # the space's collapse rule in words
    edge_stability: float | None
    op_stability: float | None
    best_seed: int
    best_genotype: Any
    collapsed_seeds: list[int]
    derived_params: int | None = None
    derived_macs: int | None = None
    baseline: str | None = None  # the method the ratios below divide by (the table's first unless chosen)
    memory_vs_baseline: float | None = None  # memory over the baseline's (same memory kind), else None
    time_vs_baseline: float | None = None  # step time over the baseline's
    metrics: tuple[Metric, ...] = ()  # the evaluators' metrics, in column order
    evaluations: dict[str, tuple[float, float]] = field(default_factory=dict)  # metric key -> (mean, std)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["best_genotype"] = genotypes.to_dict(self.best_genotype)
        data["evaluations"] = {m.key: {"label": m.label, "higher_is_better": m.higher_is_better,
                                       "mean": self.evaluations[m.key][0], "std": self.evaluations[m.key][1]}
                               for m in self.metrics}
        del data["metrics"]
        return data


def table_order(methods: list[str]) -> list[str]:
    """``methods`` (once each) in the order a comparison table lists them: the methods' registration order, then
    by name."""
    order = {name: i for i, name in enumerate(registry.available("method"))}
    return sorted(dict.fromkeys(methods), key=lambda m: (order.get(m, len(order)), m))


def check_baseline(baseline: str | None, methods: list[str]) -> None:
    """Refuse a ``baseline`` that is not one of the compared ``methods`` (in table order)."""
    if baseline is not None and baseline not in methods:
        raise ConfigError(f"--baseline {baseline!r} is not among the compared methods ({', '.join(methods)}), so "
                          f"there is nothing to divide the other methods' memory and step time by. Give one of "
                          f"those methods, or leave --baseline out to compare against the first"
                          f"{f' ({methods[0]})' if methods else ''}.")


def aggregate(runs: list[RunSummary], *, with_cost: bool = True, baseline: str | None = None,
              metrics: tuple[Metric, ...] = ()) -> list[MethodRow]:
    """One row per method, mean and std over its runs. Rows follow the methods' registration order, so a table
    rebuilt with --from matches the one printed when the runs were made. Memory and step time are also given as
    ratios to the ``baseline`` method's (default: the first row's; ConfigError if no run has that method).
    ``metrics`` are the evaluator metrics the runs were scored with (``RunSummary.scores``), one column each.
    The runs must share one search space (ConfigError otherwise)."""
    check_one_space({r.run_dir: r.space for r in runs})
    by_method: dict[str, list[RunSummary]] = {m: [] for m in table_order([r.method for r in runs])}
    for run in runs:
        by_method[run.method].append(run)
    check_baseline(baseline, list(by_method))
    rows = []
    for method, group in by_method.items():
        group.sort(key=lambda r: r.seed)
        best = max(group, key=lambda r: (r.arch_acc if not math.isnan(r.arch_acc) else -1.0, -r.seed))
        stab = stability([r.genotype for r in group])
        labels = {r.memory[0] for r in group}
        stats = [r.stats for r in group]
        first = group[0]
        row = MethodRow(
            method=method, space=first.space, seeds=[r.seed for r in group], sampler=first.sampler,
            normalizer=first.normalizer, k=first.k, batch_size=first.batch_size, device=first.device,
            memory_label=labels.pop() if len(labels) == 1 else "memory (mixed devices)",
            memory_mib=_mean_std([r.memory[1] for r in group]),
            step_seconds=_mean_std([r.step_seconds for r in group]),
            epoch_seconds=_mean_std([r.epoch_seconds for r in group]),
            search_hours=_mean_std([r.search_hours for r in group]),
            arch_acc=_mean_std([r.arch_acc for r in group]),
            skip_connects=_mean_std([float(st.skip_connects) for st in stats]),
            skip_edges=stats[0].edges, collapse_rule=stats[0].rule,
            edge_stability=stab[0] if stab else None, op_stability=stab[1] if stab else None,
            best_seed=best.seed, best_genotype=best.genotype,
            collapsed_seeds=[r.seed for r, st in zip(group, stats, strict=True) if st.collapsed],
            metrics=metrics,
            evaluations={m.key: _mean_std([r.scores.get(m.key, math.nan) for r in group]) for m in metrics})
        if with_cost:

            cost = genotype_cost(best.genotype)  # the space's default derived network (DARTS: CIFAR, C=36, 20 cells)
            row.derived_params, row.derived_macs = cost.params, cost.macs
        rows.append(row)
    base = next((r for r in rows if r.method == baseline), rows[0] if rows else None)
    if base is not None:
        for row in rows:
            row.baseline = base.method
            if base.memory_label == row.memory_label and base.memory_mib[0] > 0:
                row.memory_vs_baseline = row.memory_mib[0] / base.memory_mib[0]
            if base.step_seconds[0] > 0:
                row.time_vs_baseline = row.step_seconds[0] / base.step_seconds[0]
    return rows


def check_one_space(spaces: dict[str, str]) -> None:
    """Refuse a comparison over several search spaces; ``spaces`` maps each run (or method) to its space."""
    by_space: dict[str, list[str]] = {}
    for name, space in spaces.items():
        by_space.setdefault(space, []).append(name)
    if len(by_space) > 1:
        listed = "; ".join(f"{space}: {', '.join(names)}" for space, names in by_space.items())
        raise ConfigError(f"These runs come from different search spaces ({listed}). A comparison table holds one "
                          f"space, since memory, time and genotypes of different spaces do not compare. Compare each "
                          f"space on its own (--space NAME, or --from with the runs of one space).")


# ------------------------------------------------------------------------------------------------------------
# formatting


def _pm(pair: tuple[float, float], fmt: str, scale: float = 1.0) -> str:
    mean, std = pair
    if math.isnan(mean):
        return "-"
    if math.isnan(std):  # one seed: no spread to show
        return f"{mean * scale:{fmt}}"
    return f"{mean * scale:{fmt}} ± {std * scale:{fmt}}"


def columns(rows: list[MethodRow]) -> list[str]:
    """The table's header; the skip column says how many edges the space counts skips over, the ratio columns
    which method they divide by."""
    skips = f"skips (of {rows[0].skip_edges})" if rows else "skips"
    base = next((r.baseline for r in rows if r.baseline), "baseline")
    metrics = [m.label for m in (rows[0].metrics if rows else ())]
    return ["method", "sampler", "normalizer", sampler_column()[0], "batch", "memory", f"memory vs {base}", "step s",
            f"step vs {base}", "epoch s", "search cost", "arch acc %", *metrics, "params (eval)", "MACs (eval)",
            skips, "edge stability", "op stability", "seeds", "best genotype", "warning"]


def table_rows(rows: list[MethodRow]) -> list[list[str]]:
    out = []
    for r in rows:
        unit = "GPU-h" if r.device.startswith("cuda") else "CPU-h"
        warning = f"skip_connect collapse (seeds {', '.join(map(str, r.collapsed_seeds))})" if r.collapsed_seeds \
            else ""
        out.append([
            r.method, r.sampler, r.normalizer, "-" if r.k is None else str(r.k), str(r.batch_size),
            f"{_pm(r.memory_mib, '.0f')} MiB {r.memory_label}",
            "-" if r.memory_vs_baseline is None else f"{r.memory_vs_baseline:.2f}x",
            _pm(r.step_seconds, ".3f"),
            "-" if r.time_vs_baseline is None else f"{r.time_vs_baseline:.2f}x",
            _pm(r.epoch_seconds, ".1f"),
            f"{_pm(r.search_hours, '.4f')} {unit}",
            _pm(r.arch_acc, ".1f", 100),
            *(_pm(r.evaluations[m.key], m.fmt, 100 if m.percent else 1) for m in r.metrics),
            "-" if r.derived_params is None else f"{r.derived_params / 1e6:.2f}M",
            "-" if r.derived_macs is None else f"{r.derived_macs / 1e6:.0f}M",
            _pm(r.skip_connects, ".1f"),
            "-" if r.edge_stability is None else f"{r.edge_stability:.2f}",
            "-" if r.op_stability is None else f"{r.op_stability:.2f}",
            " ".join(map(str, r.seeds)),
            f"seed {r.best_seed}: {genotypes.to_text(r.best_genotype)}",
            warning,
        ])
    return out


RANKING_COLUMNS = ["score", "Kendall tau vs supernet acc", "runs"]


def ranking_rows(ranks: list[Rank]) -> list[list[str]]:
    return [[r.metric.label, "-" if math.isnan(r.tau) else f"{r.tau:+.2f}", str(r.runs)] for r in ranks]


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]


def to_markdown(rows: list[MethodRow], ranks: list[Rank] | None = None) -> str:
    lines = _markdown_table(columns(rows), table_rows(rows))
    if ranks:
        lines += ["", "Does the supernet's accuracy rank the runs as the stand-alone scores do? (1: same order, "
                  "-1: reversed, 0: unrelated)", "", *_markdown_table(RANKING_COLUMNS, ranking_rows(ranks))]
    return "\n".join(lines) + "\n"


def _csv(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def to_csv(rows: list[MethodRow]) -> str:
    return _csv(columns(rows), table_rows(rows))


def ranking_csv(ranks: list[Rank]) -> str:
    return _csv(RANKING_COLUMNS, ranking_rows(ranks))


def no_nan(value: Any) -> Any:
    """JSON has no NaN or infinity: missing measurements (and a -inf score, naswot's for a cell with no path from
    input to output) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: no_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [no_nan(v) for v in value]
    return value


def to_json(rows: list[MethodRow]) -> str:
    return json.dumps(no_nan([r.as_dict() for r in rows]), indent=2) + "\n"
