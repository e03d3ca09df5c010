"""Cell diagrams read like the reference's graphviz drawings: no op label sits on a node or on another label."""

from __future__ import annotations

import itertools
import random

import pytest

from nasbench_pc.genotypes import KNOWN, PRIMITIVES, Genotype
from nasbench_pc.plugins.darts_space.render import CELLS, draw_cell
from nasbench_pc.results.plots import pyplot


def _random_cells(count: int, seed: int) -> list[Genotype]:
    rng = random.Random(seed)
    ops = [op for op in PRIMITIVES if op != "none"]
    out = []
    for _ in range(count):
        edges = [(rng.choice(ops), src) for node in range(4) for src in rng.sample(range(node + 2), 2)]
        out.append(Genotype(edges, [2, 3, 4, 5], edges, [2, 3, 4, 5]))
    return out


def _overlaps(ax, genotype: Genotype, cell: str) -> tuple[int, int]:
    """(label-on-node overlaps, label-on-label overlaps) of one drawn cell, in display pixels."""
    nodes, labels = draw_cell(ax, genotype, cell)
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    node_boxes = [t.get_bbox_patch().get_window_extent(renderer) for t in nodes]
    label_boxes = [t.get_bbox_patch().get_window_extent(renderer) for t in labels]
    on_nodes = sum(label.overlaps(node) for label in label_boxes for node in node_boxes)
    on_labels = sum(a.overlaps(b) for a, b in itertools.combinations(label_boxes, 2))
    return on_nodes, on_labels


@pytest.fixture
def ax():
    plt = pyplot("the test", "-")
    fig, axis = plt.subplots(figsize=(12, 4.5))  # one cell of save_png's figure
    yield axis
    plt.close(fig)


@pytest.mark.parametrize("name", list(KNOWN))
def test_published_cells_have_no_label_over_a_node_or_a_label(ax, name) -> None:
    for cell in CELLS:
        ax.clear()
        assert _overlaps(ax, KNOWN[name], cell) == (0, 0), (name, cell)


def test_random_cells_have_no_label_over_a_node_or_a_label(ax) -> None:
    for genotype in _random_cells(30, seed=0):
        ax.clear()
        assert _overlaps(ax, genotype, "normal") == (0, 0), genotype.normal


def test_the_overlap_check_sees_a_label_on_a_node(ax) -> None:
    nodes, _ = draw_cell(ax, KNOWN["PC_DARTS_cifar"], "normal")
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    covering = ax.text(*nodes[2].get_position(), "dil_conv_3x3", bbox=dict(boxstyle="round,pad=0.2"))
    ax.figure.canvas.draw()
    assert covering.get_bbox_patch().get_window_extent(renderer).overlaps(
        nodes[2].get_bbox_patch().get_window_extent(renderer))
