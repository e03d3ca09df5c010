"""FairDARTS (Chu et al., ECCV 2020): every op weighed by its own sigmoid, pushed to 0 or 1 by a zero-one loss.

Each op of an edge is weighed by sigmoid(alpha), independently of the others (no softmax, so skip connections do
not win by crowding out their rivals), with alpha starting at 0 (every weight 0.5). The architecture loss gets
``w01 * L01``, L01 = -(1/N) sum (sigmoid(alpha) - 0.5)^2 over the N entries of every alphas tensor (both cell
types together), whose gradient is 0 at the start; the weight step never sees it (the reference adds it there
too, where it changes nothing). The architecture optimizer is Adam with lr 3e-3 and betas (0.9, 0.999)
(darts-family-facts.md 5.1-5.3, 5.5).

The derived cell (the reference's ``threshold_sparse``, 5.4): per node the two incoming edges with the largest
sigmoid, and on each its best op, kept only if its sigmoid reaches ``threshold`` (0.85): a node ends with 2, 1 or
0 inputs, written as a sparse genotype of (op, node, input) triples that the DARTS networks build as FairDARTS'
DCOCell. The search runs on the DARTS space without 'none' (7 ops, the space's ``drop_none``).

Choices where the reference is silent, said here:
- A derived cell must have an output: when no op of a cell reaches the threshold (at the start every sigmoid is
  0.5) the cell keeps its strongest op on an edge from a cell input (among the top-2 edges); a node whose every
  kept input is a node without ops (which the reference's DCOCell could not run) is dropped with its edges.
- With edge normalization (opt-in; FairDARTS argues against exclusive competition): edges are ranked by their
  sigmoid times the edge's normalized beta, as PC-DARTS ranks them; the threshold reads the op's sigmoid alone.
- NAS-Bench-201 (no reference code): every edge keeps its best op if its sigmoid reaches the threshold, else
  'none'; the search settings are the SmoothDARTS code base's NB201 ones with FairDARTS' architecture optimizer.
"""

from __future__ import annotations

from typing import Any

import torch

from nasbench_pc import hookimpl
from nasbench_pc.interfaces import Method, SearchHParams
from nasbench_pc.plugins.darts import FAMILY_NB201_HPARAMS
from nasbench_pc.plugins.darts_space.genotype import Genotype
from nasbench_pc.plugins.darts_space.supernet import derive_genotype, node_slices
from nasbench_pc.plugins.nas_bench_201.genotype import Nb201Genotype
from nasbench_pc.plugins.nas_bench_201.ops import PRIMITIVES as NB201_OPS
from nasbench_pc.settings import Check, finite_at_least_zero
from nasbench_pc.settings import declare as setting

#: FairDARTS' search (its README command and train_search.py defaults): 50 epochs, batch 128, SGD 0.005 cosine to
#: 0.001, weight decay 3e-4; Adam 3e-3, weight decay 1e-3; seed 2
DARTS_SPACE_HPARAMS = SearchHParams(batch_size=128, lr=0.005, lr_min=0.001, weight_decay=3e-4, epochs=50,
                                    arch_lr=3e-3, arch_weight_decay=1e-3, warmup_epochs=0, seed=2)
NB201_HPARAMS = SearchHParams(**{**FAMILY_NB201_HPARAMS.as_dict(), "arch_lr": 3e-3})


def zero_one_loss(alphas: list[torch.Tensor], kind: str = "l2") -> torch.Tensor:
    """-(1/N) sum over every entry of (sigmoid(alpha) - 0.5)^2 (``l1``: |sigmoid(alpha) - 0.5|)."""
    s = torch.cat([a.sigmoid().flatten() for a in alphas]) - 0.5
    return -(s.abs() if kind == "l1" else s.square()).mean()


def sparse_cell(weights: torch.Tensor, edge_weights: torch.Tensor | None, primitives: tuple[str, ...], steps: int,
                threshold: float) -> list[tuple[str, int, int]]:
    """The threshold_sparse rule on one cell's sigmoid(alpha): the DARTS rule's two edges per node and best op on
    each (``derive_genotype``: ranked by op weight times edge weight), each kept only if its sigmoid reaches
    ``threshold``; then the repairs the module docstring names (a cell's strongest op when nothing passes, nodes
    reading only missing nodes dropped)."""
    w = weights.detach().cpu().float()
    chosen = derive_genotype(w, edge_weights, primitives, steps)  # 2 (op, input) per node, node by node
    starts = [node.start for node in node_slices(steps)]
    scored = [(w[starts[pos // 2] + j, primitives.index(op)].item(), op, pos // 2 + 2, j)
              for pos, (op, j) in enumerate(chosen)]
    gene = [(op, node, j) for value, op, node, j in scored if value >= threshold]
    if not gene:  # the strongest op on an edge from a cell input
        gene = [max((entry for entry in scored if entry[3] < 2), key=lambda entry: entry[0])[1:]]
    present, kept = {0, 1}, []
    for node in dict.fromkeys(to for _, to, _ in gene):
        inputs = [edge for edge in gene if edge[1] == node]
        if any(src in present for _, _, src in inputs):
            present.add(node)
            kept += inputs
    return kept


class ZeroOne:
    """The search hooks: sigmoid weights from alpha = 0, the zero-one loss, FairDARTS' Adam, the sparse derive."""

    def __init__(self, w01: float, threshold: float, zero_one: str, space: str = ""):
        self.w01, self.threshold, self.zero_one, self.space = w01, threshold, zero_one, space

    def initial_alphas(self, alphas: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(alphas)

    def arch_weights(self, alphas: torch.Tensor) -> torch.Tensor:
        return alphas.sigmoid()

    def arch_loss(self, *, supernet: Any) -> torch.Tensor:
        return self.w01 * zero_one_loss(supernet.alpha_parameters(), self.zero_one)

    def arch_optimizer(self, *, parameters: list[torch.nn.Parameter], lr: float, weight_decay: float
                       ) -> torch.optim.Optimizer:
        return torch.optim.Adam(parameters, lr=lr, betas=(0.9, 0.999), weight_decay=weight_decay)

    def derive(self, *, supernet: Any) -> Any:
        """The sparse threshold rule on the DARTS space, the threshold-or-none rule on NAS-Bench-201; on another
        space None (its own derive rule)."""
        if self.space not in ("darts", "nas-bench-201"):
            return None
        with torch.no_grad():
            if self.space == "nas-bench-201":
                s = supernet.alphas.sigmoid()
                best = s.max(dim=-1)
                ops = [NB201_OPS[k] if v >= self.threshold else "none"
                       for v, k in zip(best.values.tolist(), best.indices.tolist(), strict=True)]
                return Nb201Genotype.from_ops(ops)
            steps, primitives = supernet.config.steps, supernet.primitives
            cells = {cell: sparse_cell(getattr(supernet, f"alphas_{cell}").sigmoid(),
                                       supernet.edge_weights(cell == "reduce"), primitives, steps, self.threshold)
                     for cell in ("normal", "reduce")}
        concat = list(range(2, steps + 2))
        return Genotype(normal=cells["normal"], normal_concat=concat, reduce=cells["reduce"], reduce_concat=concat)


@hookimpl
def register_methods() -> dict[str, Method]:
    return {"fairdarts": Method(
        name="fairdarts",
        description="FairDARTS: sigmoid op weights, a zero-one loss, a sparse cell (ops above 0.85 kept)",
        sampler="full",
        normalizer="none",
        order=1,
        hparams=DARTS_SPACE_HPARAMS,
        space_hparams={"nas-bench-201": NB201_HPARAMS},
        space_options={"darts": {"drop_none": True}},
        settings=(
            setting("w01", 10.0, "Weight of the zero-one loss on the architecture step.",
                    check=finite_at_least_zero()),
            setting("threshold", 0.85, "Sigmoid an op needs to be kept in the derived cell.",
                    check=Check(lambda v: 0 < v < 1, "must lie strictly between 0 and 1, a sigmoid's range")),
            setting("zero_one", "l2", "Form of the zero-one loss: l2 (the reference's default) or l1.",
                    choices=("l2", "l1")),
        ),
        hooks=ZeroOne,
    )}
