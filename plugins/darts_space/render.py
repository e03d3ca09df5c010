"""Readable renderings of a DARTS genotype's two cells: text lines for the terminal, a PNG diagram.

Inputs are named as in the DARTS figures: ``c_{k-2}`` and ``c_{k-1}`` (the two previous cells),
intermediate nodes ``0..steps-1``, and ``c_{k}`` the cell output (concat of the listed nodes).
"""

from __future__ import annotations

from pathlib import Path

from nasbench_pc.plots import pyplot
from nasbench_pc.plugins.darts_space.genotype import Genotype

CELLS = ("normal", "reduce")


def state_name(index: int) -> str:
    """Name of cell state ``index``: 0 and 1 are the cell inputs, 2.. the intermediate nodes."""
    return ("c_{k-2}", "c_{k-1}")[index] if index < 2 else str(index - 2)


def _ref(index: int) -> str:
    return state_name(index) if index < 2 else f"node {index - 2}"


def cell_lines(genotype: Genotype, cell: str) -> list[str]:
    """One line per intermediate node: ``node 0 = sep_conv_3x3(c_{k-1}) + skip_connect(c_{k-2})``."""
    edges = getattr(genotype, cell)
    return [
        f"node {i} = " + " + ".join(f"{op}({_ref(src)})" for op, src in edges[2 * i: 2 * i + 2])
        for i in range(len(edges) // 2)
    ]


def cell_output(genotype: Genotype, cell: str) -> str:
    """The cell's output: ``c_{k} = concat(node 0, node 1, node 2, node 3)``."""
    return f"c_{{k}} = concat({', '.join(_ref(i) for i in getattr(genotype, f'{cell}_concat'))})"


_OP_COLORS = {
    "skip_connect": "#9e9e9e", "max_pool_3x3": "#80cbc4", "avg_pool_3x3": "#a5d6a7",
    "sep_conv_3x3": "#90caf9", "sep_conv_5x5": "#5c9ce6", "dil_conv_3x3": "#ffcc80", "dil_conv_5x5": "#f4a460",
}


def save_png(genotype: Genotype, path: str | Path, title: str = "") -> Path:
    """Draw both cells (inputs left, nodes in the middle, output right; one labelled arrow per edge)."""
    plt = pyplot("Drawing a cell diagram", "--png")
    from matplotlib.patches import FancyArrowPatch

    path = Path(path)
    fig, axes = plt.subplots(2, 1, figsize=(11, 8.5))
    for ax, cell in zip(axes, CELLS, strict=True):
        edges = getattr(genotype, cell)
        concat = getattr(genotype, f"{cell}_concat")
        steps = len(edges) // 2
        pos = {0: (0.0, 3.0), 1: (0.0, 0.0)}
        for i in range(steps):
            pos[i + 2] = (1.8 * (i + 1), 2.3 if i % 2 else 0.7)
        out = (1.8 * (steps + 1), 1.5)
        for j, (op, src) in enumerate(edges):
            (x0, y0), (x1, y1) = pos[src], pos[j // 2 + 2]
            rad = 0.2 if j % 2 else -0.2
            ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>",
                                         mutation_scale=14, color="#555555", shrinkA=16, shrinkB=16, lw=1.2))
            # midpoint of matplotlib's arc3 Bezier (equal aspect, so data and display directions agree)
            ax.text((x0 + x1) / 2 + rad * (y1 - y0) / 2, (y0 + y1) / 2 - rad * (x1 - x0) / 2, op, fontsize=7.5,
                    ha="center", va="center",
                    bbox=dict(boxstyle="round,pad=0.2", fc=_OP_COLORS.get(op, "white"), ec="none", alpha=0.9))
        for i in concat:
            ax.add_patch(FancyArrowPatch(pos[i], out, arrowstyle="-|>", mutation_scale=12, color="#bbbbbb",
                                         shrinkA=16, shrinkB=18, lw=1.0, linestyle="--"))
        for index, (x, y) in pos.items():
            ax.text(x, y, state_name(index), ha="center", va="center", fontsize=10,
                    bbox=dict(boxstyle="round,pad=0.45", fc="#e3f2fd" if index < 2 else "#fff9c4", ec="#333333"))
        ax.text(*out, "c_{k}", ha="center", va="center", fontsize=10,
                bbox=dict(boxstyle="round,pad=0.45", fc="#c8e6c9", ec="#333333"))
        ax.set_aspect("equal")
        ax.set_xlim(-0.8, out[0] + 0.8)
        ax.set_ylim(-0.8, 3.8)
        ax.set_title(f"{cell} cell", fontsize=12)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
