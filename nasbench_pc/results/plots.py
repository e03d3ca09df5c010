"""PNG plots for ``nasbench-pc compare --plot DIR`` (matplotlib, the optional ``plot`` extra)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from nasbench_pc import registry
from nasbench_pc.errors import ConfigError
from nasbench_pc.records import Metric
from nasbench_pc.results.ranking import ranking
from nasbench_pc.results.runs import RunSummary, saved_bytes_line

if TYPE_CHECKING:  # compare draws with these plots; a type only, so the plots stay importable on their own
    from nasbench_pc.results.compare import MethodRow


def pyplot(purpose: str, option: str) -> Any:
    """matplotlib.pyplot on the Agg backend, or a clear error naming the optional ``plot`` extra."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError(
            f"{purpose} needs matplotlib, which is not installed. Install it with "
            f"`pip install nasbench-pc[plot]` (or `pip install matplotlib`), or leave out {option}."
        ) from None
    return plt


def _pyplot() -> Any:
    return pyplot("Plots", "--plot")


def _first_seed(runs: list[RunSummary]) -> dict[str, RunSummary]:
    chosen: dict[str, RunSummary] = {}
    for run in sorted(runs, key=lambda r: r.seed):
        chosen.setdefault(run.method, run)
    return chosen


def _first_cell(record: dict[str, Any]) -> str | None:
    """The first cell type of an ``arch_weights`` record (its first ``alphas_<cell>`` key; DARTS: normal)."""
    return next((key.removeprefix("alphas_") for key in record if key.startswith("alphas_")), None)


def arch_trajectories(runs: list[RunSummary], path: Path) -> Path | None:
    """Per method (first seed), per edge of the space's first cell type (DARTS: the normal cell): top row the
    edge's strength, max of softmax(alpha) over the ops but the space's zero op (DARTS' 'none'); bottom row its
    normalized beta (edge normalization only)."""
    chosen = {m: r for m, r in _first_seed(runs).items()
              if r.history and _first_cell(r.history[0].get("arch_weights") or {})}
    if not chosen:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(2, len(chosen), figsize=(4.5 * len(chosen) + 1.5, 7), squeeze=False)
    for col, (method, run) in enumerate(chosen.items()):
        space = registry.get("search_space", run.space)
        cell = _first_cell(run.history[0]["arch_weights"])
        epochs = [r["epoch"] for r in run.history]
        alphas = torch.tensor([r["arch_weights"][f"alphas_{cell}"] for r in run.history])  # (epochs, edges, ops)
        # rows one entry short: a supernet built without the zero op (the DARTS space's drop_none)
        ops = space.primitives if alphas.shape[2] == len(space.primitives) else [
            name for name in space.primitives if name != getattr(space, "zero_op", None)]
        allowed = [k for k, name in enumerate(ops) if name != getattr(space, "zero_op", None)]
        strength = alphas[:, :, allowed].max(dim=2).values
        colors = plt.cm.tab20(range(strength.shape[1]))
        top, bottom = axes[0][col], axes[1][col]
        for edge in range(strength.shape[1]):
            top.plot(epochs, strength[:, edge], color=colors[edge], label=f"edge {edge}")
        top.set_title(f"{method} (seed {run.seed}): alphas_{cell}")
        top.set_ylabel("max softmax(alpha) over ops")
        betas = [r["arch_weights"].get(f"edge_weights_{cell}") for r in run.history]
        if all(b is not None for b in betas):
            beta = torch.tensor(betas)
            for edge in range(beta.shape[1]):
                bottom.plot(epochs, beta[:, edge], color=colors[edge])
            bottom.set_ylabel("edge weight softmax(beta)")
        else:
            bottom.text(0.5, 0.5, "no edge normalization", ha="center", va="center", transform=bottom.transAxes)
            bottom.set_yticks([])
        bottom.set_xlabel("epoch")
    axes[0][-1].legend(fontsize=6, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def accuracy_curves(runs: list[RunSummary], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = dict(zip(dict.fromkeys(r.method for r in runs), plt.cm.tab10.colors))
    for run in runs:
        epochs = [r["epoch"] for r in run.history]
        ax.plot(epochs, [100 * r["arch_acc"] for r in run.history], color=colors[run.method],
                label=f"{run.method} s{run.seed} arch split")
        ax.plot(epochs, [100 * r["train_acc"] for r in run.history], color=colors[run.method], linestyle=":",
                linewidth=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy % (solid: architecture split, dotted: weight split)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def tracked_curves(runs: list[RunSummary], path: Path) -> Path | None:
    """The metrics the searches tracked after every epoch (``search --track``; a lookup's ground truth) above their
    skip-connect counts and the supernet's architecture-split accuracy, one colour per method; None when no run
    tracked anything."""
    keys = list(dict.fromkeys(k for run in runs for r in run.history for k in (r.get("tracked") or {})))
    if not keys:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(len(keys) + 1, 1, figsize=(7, 2.6 * (len(keys) + 1)), sharex=True, squeeze=False)
    colors = dict(zip(dict.fromkeys(r.method for r in runs), plt.cm.tab10.colors))
    for run in runs:
        epochs = [r["epoch"] for r in run.history]
        label = f"{run.method} s{run.seed}"
        for ax, key in zip(axes[:-1, 0], keys, strict=True):
            values = [(r.get("tracked") or {}).get(key, float("nan")) for r in run.history]
            percent = all(v != v or 0 <= v <= 1 for v in values)  # fractions are shown as percentages
            ax.plot(epochs, [100 * v if percent else v for v in values], color=colors[run.method], marker="o",
                    markersize=3, label=f"{label} (tracked)")
            ax.plot(epochs, [100 * r["arch_acc"] if percent else float("nan") for r in run.history],
                    color=colors[run.method], linestyle=":", linewidth=0.8)
            ax.set_ylabel(f"{key}{' %' if percent else ''}", fontsize=8)
        axes[-1, 0].plot(epochs, [r.get("skip_connects", float("nan")) for r in run.history],
                         color=colors[run.method], marker="o", markersize=3, label=label)
    axes[0, 0].set_title("The derived cell after each epoch (dotted: the supernet's architecture-split accuracy)",
                         fontsize=9)
    axes[0, 0].legend(fontsize=7)
    axes[-1, 0].set_ylabel("skip connections")
    axes[-1, 0].set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def memory_vs_batch(runs: list[RunSummary], path: Path, batches: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
                    ) -> Path:
    """Bytes saved for backward against batch size for each method's supernet (affine in the batch,
    measured at two batches)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, run in _first_seed(runs).items():
        fixed, per_example = saved_bytes_line(run)
        ax.plot(batches, [(fixed + per_example * b) / 2**30 for b in batches], marker="o", label=method)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("GiB saved for backward per step")
    ax.set_title("Search memory vs batch (each method's supernet as run)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def score_scatter(runs: list[RunSummary], metrics: tuple[Metric, ...], path: Path) -> Path:
    """One panel per evaluator metric: each run's supernet accuracy (x) against its score (y), a colour per
    method, with the Kendall tau of :func:`nasbench_pc.results.compare.ranking` in the panel's title."""
    plt = _pyplot()
    columns = min(3, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.4 * columns, 3.8 * rows), squeeze=False)
    colors = dict(zip(dict.fromkeys(r.method for r in runs), plt.cm.tab10.colors))
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    for ax, rank in zip(axes.flat, ranking(runs, metrics)):
        metric = rank.metric
        scale = 100 if metric.percent else 1
        values = []
        for method, color in colors.items():
            scored = [r for r in runs if r.method == method and metric.key in r.scores]
            ys = [scale * r.scores[metric.key] for r in scored]
            ax.scatter([100 * r.arch_acc for r in scored], ys, color=color, label=method)
            values += ys
        finite = [v for v in values if math.isfinite(v)]
        if finite and min(finite) > 0 and max(finite) / min(finite) > 100:
            ax.set_yscale("log")  # synflow spans orders of magnitude across cells
        tau = "-" if math.isnan(rank.tau) else f"{rank.tau:+.2f}"
        ax.set_title(f"{metric.label}: Kendall tau {tau} ({rank.runs} runs)", fontsize=9)
        ax.set_xlabel("supernet acc % (architecture split)")
        ax.set_ylabel(f"{metric.label} ({'higher' if metric.higher_is_better else 'lower'} is better)")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def comparison_plots(runs: list[RunSummary], rows: list[MethodRow], out: Path, metrics: tuple[Metric, ...] = ()
                     ) -> list[Path]:
    """Accuracy curves, memory against batch, architecture trajectories, each method's best cells (drawn by
    their search space) and, with evaluator ``metrics``, supernet accuracy against each score, as PNGs in ``out``;
    returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = [accuracy_curves(runs, out / "accuracy.png"), memory_vs_batch(runs, out / "memory_vs_batch.png")]
    trajectories = arch_trajectories(runs, out / "arch_trajectories.png")
    if trajectories:
        written.append(trajectories)
    tracked = tracked_curves(runs, out / "tracked.png")
    if tracked:
        written.append(tracked)
    if metrics:
        written.append(score_scatter(runs, metrics, out / "supernet_vs_scores.png"))
    for row in rows:
        space = registry.get("search_space", row.space)
        written.append(space.draw(row.best_genotype, out / f"cells_{row.method}.png",
                                  title=f"{row.method} (best seed {row.best_seed})"))
    return written
