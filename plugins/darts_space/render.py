"""Readable renderings of a DARTS genotype's two cells: text lines for the terminal, a PNG diagram.

Inputs are named as in the DARTS figures: ``c_{k-2}`` and ``c_{k-1}`` (the two previous cells),
intermediate nodes ``0..steps-1``, and ``c_{k}`` the cell output (concat of the listed nodes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nasbench_pc.plugins.darts_space.genotype import Genotype, is_sparse
from nasbench_pc.results.plots import pyplot

CELLS = ("normal", "reduce")


def state_name(index: int) -> str:
    """Name of cell state ``index``: 0 and 1 are the cell inputs, 2.. the intermediate nodes."""
    return ("c_{k-2}", "c_{k-1}")[index] if index < 2 else str(index - 2)


def _ref(index: int) -> str:
    return state_name(index) if index < 2 else f"node {index - 2}"


def node_inputs(genotype: Genotype, cell: str) -> dict[int, list[tuple[str, int]]]:
    """Each intermediate node (state index, 2..) that has ops, with its (op, input) pairs: two per node in a DARTS
    genotype, those listed in a sparse one (FairDARTS), nodes in the order they are first listed."""
    edges = getattr(genotype, cell)
    nodes: dict[int, list[tuple[str, int]]] = {}
    for j, edge in enumerate(edges):
        node, (op, src) = (edge[1], (edge[0], edge[2])) if len(edge) == 3 else (j // 2 + 2, edge)
        nodes.setdefault(node, []).append((op, src))
    return nodes


def cell_outputs(genotype: Genotype, cell: str) -> list[int]:
    """The states the cell concatenates: its ``*_concat`` list, or in a sparse genotype the nodes that have ops."""
    return list(node_inputs(genotype, cell)) if is_sparse(genotype) else list(getattr(genotype, f"{cell}_concat"))


def cell_lines(genotype: Genotype, cell: str) -> list[str]:
    """One line per intermediate node: ``node 0 = sep_conv_3x3(c_{k-1}) + skip_connect(c_{k-2})`` (in a sparse
    genotype only the nodes that have ops, each with what it reads)."""
    nodes = node_inputs(genotype, cell)
    present = {0, 1, *nodes}
    return [f"node {node - 2} = " + " + ".join(f"{op}({_ref(src)})" + ("" if src in present else " [not run: "
                                               f"{_ref(src)} has no op]") for op, src in inputs)
            for node, inputs in sorted(nodes.items())]


def cell_output(genotype: Genotype, cell: str) -> str:
    """The cell's output: ``c_{k} = concat(node 0, node 1, node 2, node 3)``."""
    return f"c_{{k}} = concat({', '.join(_ref(i) for i in cell_outputs(genotype, cell))})"


_OP_COLORS = {
    "skip_connect": "#9e9e9e", "max_pool_3x3": "#80cbc4", "avg_pool_3x3": "#a5d6a7",
    "sep_conv_3x3": "#90caf9", "sep_conv_5x5": "#5c9ce6", "dil_conv_3x3": "#ffcc80", "dil_conv_5x5": "#f4a460",
}


_STEP = 3.0  # columns apart, in data units


def _arc(ax: Any, start: tuple[float, float], end: tuple[float, float], bend: float,
         **style: Any) -> tuple[float, float]:
    """A quadratic Bezier arrow from ``start`` to ``end`` through a control point ``bend`` above (below, if
    negative) their middle; returns the curve's apex, where a label sits clear of the nodes on the axis."""
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path as MplPath

    (x0, y0), (x1, y1) = start, end
    control = ((x0 + x1) / 2, (y0 + y1) / 2 + bend)
    curve = MplPath([start, control, end], [MplPath.MOVETO, MplPath.CURVE3, MplPath.CURVE3])
    ax.add_patch(FancyArrowPatch(path=curve, arrowstyle="-|>", mutation_scale=12, shrinkA=0, shrinkB=0, **style))
    return (x0 + 2 * control[0] + x1) / 4, (y0 + 2 * control[1] + y1) / 4


def _sides(first: int, second: int) -> tuple[float, float]:
    """Above (+1) or below (-1) for the two edges into a node: an edge from c_{k-2} (drawn top left) arcs over,
    one from c_{k-1} (bottom left) under, and the two never take the same side."""
    prefer = {0: 1.0, 1: -1.0}
    a, b = prefer.get(first, 0.0), prefer.get(second, 0.0)
    if a == b:
        return 1.0, -1.0
    if a == 0.0:
        return -b, b
    if b == 0.0:
        return a, -a
    return a, b


def draw_cell(ax: Any, genotype: Genotype, cell: str) -> tuple[list[Any], list[Any]]:
    """One cell, layered left to right as the reference's graphviz drawings: the inputs, then node 0, 1, ...
    in a row, then the output. Every edge arcs over (or under) the nodes between its ends, higher the longer
    it is, with its op at the apex, so no label sits on a node; the two edges into a node leave on opposite
    sides. Returns the node texts and the label texts (their boxes are what a test checks)."""
    nodes_in = node_inputs(genotype, cell)
    concat = cell_outputs(genotype, cell)
    steps = max([*nodes_in, *concat, 5]) - 1  # a sparse cell may leave nodes out; they are drawn without inputs
    pos = {0: (0.0, 1.4), 1: (0.0, -1.4)}
    pos.update({i + 2: (_STEP * (i + 1), 0.0) for i in range(steps)})
    out = (_STEP * (steps + 1), 0.0)
    labels = []
    for node, inputs in nodes_in.items():
        sides = _sides(inputs[0][1], inputs[1][1]) if len(inputs) == 2 else [
            (1.0 if k % 2 == 0 else -1.0) * (-1.0 if src == 1 else 1.0) for k, (_, src) in enumerate(inputs)]
        for (op, src), side in zip(inputs, sides, strict=True):
            span = node - max(src, 1)  # columns crossed (both inputs sit in column 0)
            # an edge from a node that has no op is built but never run (a sparse cell): dotted
            style = dict(color="#555555", lw=1.1) if src < 2 or src in nodes_in else dict(
                color="#aaaaaa", lw=1.0, linestyle=":")
            apex = _arc(ax, pos[src], pos[node], side * (1.2 + 1.1 * span), **style)
            labels.append(ax.text(*apex, op, fontsize=7.5, ha="center", va="center", zorder=3,
                                  bbox=dict(boxstyle="round,pad=0.2", fc=_OP_COLORS.get(op, "white"), ec="none")))
    for i in concat:
        span = steps + 2 - max(i, 1)
        _arc(ax, pos[i], out, -(0.6 + 0.9 * span) if i >= 2 else 0.0, color="#bbbbbb", lw=0.9, linestyle="--")
    nodes = [ax.text(x, y, state_name(index), ha="center", va="center", fontsize=10, zorder=4,
                     bbox=dict(boxstyle="round,pad=0.45", fc="#e3f2fd" if index < 2 else "#fff9c4", ec="#333333"))
             for index, (x, y) in pos.items()]
    nodes.append(ax.text(*out, "c_{k}", ha="center", va="center", fontsize=10, zorder=4,
                         bbox=dict(boxstyle="round,pad=0.45", fc="#c8e6c9", ec="#333333")))
    reach = 1.2 + 1.1 * (steps + 1)
    ax.set_xlim(-1.2, out[0] + 1.2)
    ax.set_ylim(-reach / 2 - 1.0, reach / 2 + 1.0)
    ax.set_title(f"{'reduction' if cell == 'reduce' else cell} cell", fontsize=12)
    ax.axis("off")
    return nodes, labels


def save_png(genotype: Genotype, path: str | Path, title: str = "") -> Path:
    """Draw both cells, one above the other (see :func:`draw_cell`)."""
    plt = pyplot("Drawing a cell diagram", "--png")
    path = Path(path)
    fig, axes = plt.subplots(2, 1, figsize=(12, 9))
    for ax, cell in zip(axes, CELLS, strict=True):
        draw_cell(ax, genotype, cell)
    if title:
        fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
