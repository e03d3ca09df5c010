"""Readable renderings of a chain cell: one text line per node, and a PNG diagram."""

from __future__ import annotations

from pathlib import Path

from chain_space.genotype import ChainGenotype
from nasbench_pc.results.plots import pyplot

_OP_COLORS = {"skip_connect": "#9e9e9e", "conv_3x3": "#90caf9", "avg_pool_3x3": "#a5d6a7"}


def cell_lines(genotype: ChainGenotype) -> list[str]:
    """``node i = op(node i-1)`` for every node after the input (the last node is the cell output)."""
    return [f"node {i} = {op}(node {i - 1})" for i, op in enumerate(genotype.ops, start=1)]


def save_png(genotype: ChainGenotype, path: str | Path, title: str = "") -> Path:
    """Nodes left to right, one labelled arrow per edge."""
    plt = pyplot("Drawing a cell diagram", "--png")
    from matplotlib.patches import FancyArrowPatch

    path = Path(path)
    last = len(genotype.ops)
    fig, ax = plt.subplots(figsize=(2.2 * last + 2, 1.8))
    for i, op in enumerate(genotype.ops):
        ax.add_patch(FancyArrowPatch((2.2 * i, 0), (2.2 * (i + 1), 0), arrowstyle="-|>", mutation_scale=14,
                                     color="#555555", shrinkA=16, shrinkB=16, lw=1.2))
        ax.text(2.2 * i + 1.1, 0.35, op, fontsize=8, ha="center", va="center",
                bbox=dict(boxstyle="round,pad=0.2", fc=_OP_COLORS.get(op, "white"), ec="none"))
    for i in range(last + 1):
        label = "\nin" if i == 0 else ("\nout" if i == last else "")
        ax.text(2.2 * i, 0, f"{i}{label}", ha="center", va="center", fontsize=9,
                bbox=dict(boxstyle="round,pad=0.45", fc="#e3f2fd" if i == 0 else "#fff9c4", ec="#333333"))
    ax.set_aspect("equal")
    ax.set_xlim(-0.8, 2.2 * last + 0.8)
    ax.set_ylim(-0.5, 0.6)
    ax.axis("off")
    ax.set_title(title or genotype.to_text(), fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
