"""Readable renderings of a NAS-Bench-201 cell: one text line per node, and a PNG diagram."""

from __future__ import annotations

from pathlib import Path

from nasbench_pc.plugins.nas_bench_201.genotype import Nb201Genotype
from nasbench_pc.results.plots import pyplot

_OP_COLORS = {"skip_connect": "#9e9e9e", "nor_conv_1x1": "#90caf9", "nor_conv_3x3": "#5c9ce6",
              "avg_pool_3x3": "#a5d6a7", "none": "#eeeeee"}


def cell_lines(genotype: Nb201Genotype) -> list[str]:
    """``node i = op(node j) + ...`` for nodes 1..3 ('none' edges left out; node 3 is the output)."""
    lines = []
    for node, edges in enumerate(genotype.nodes, start=1):
        terms = [f"{op}(node {j})" for op, j in edges if op != "none"]
        lines.append(f"node {node} = " + (" + ".join(terms) if terms else "0 (every edge is 'none')"))
    return lines


def save_png(genotype: Nb201Genotype, path: str | Path, title: str = "") -> Path:
    """Nodes 0..3 left to right; one labelled arc per edge that is not 'none' (arcs over longer spans bend
    further, so their labels do not sit on the nodes in between)."""
    plt = pyplot("Drawing a cell diagram", "--png")
    from matplotlib.patches import FancyArrowPatch

    path = Path(path)
    fig, ax = plt.subplots(figsize=(9, 4))
    pos = {i: (2.2 * i, 0.0) for i in range(4)}
    for node, edges in enumerate(genotype.nodes, start=1):
        for op, j in edges:
            if op == "none":
                continue
            (x0, y0), (x1, y1) = pos[j], pos[node]
            span = node - j
            rad = -0.35 * (span - 1) if span > 1 else 0.0
            ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>",
                                         mutation_scale=14, color="#555555", shrinkA=16, shrinkB=16, lw=1.2))
            ax.text((x0 + x1) / 2, (y0 + y1) / 2 - rad * (x1 - x0) / 2, op, fontsize=8, ha="center", va="center",
                    bbox=dict(boxstyle="round,pad=0.2", fc=_OP_COLORS.get(op, "white"), ec="none", alpha=0.95))
    for index, (x, y) in pos.items():
        label = "in" if index == 0 else ("out" if index == 3 else str(index))
        ax.text(x, y, f"{index}\n{label}", ha="center", va="center", fontsize=9,
                bbox=dict(boxstyle="round,pad=0.45", fc="#e3f2fd" if index == 0 else "#fff9c4", ec="#333333"))
    ax.set_aspect("equal")
    ax.set_xlim(-0.8, pos[3][0] + 0.8)
    ax.set_ylim(-2.0, 2.6)
    ax.axis("off")
    ax.set_title(title or genotype.to_str(), fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
