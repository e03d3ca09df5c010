"""The NAS-Bench-201 search supernet: xautodl's ``TinyNetworkDarts`` on our sampler and normalizer.

With the ``full`` sampler and no edge normalizer it computes what the reference does (same
parameters in the same order, same logits and architecture gradients) and returns the logits
only. A channel sampler builds every edge (``partial`` gives PC-DARTS' partial channels) and an
optional edge normalizer adds betas, so darts, pc-darts, pc-only and en-only all run on this space.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nasbench_pc.interfaces import ChannelSampler, EdgeNormalizer
from nasbench_pc.plugins.nas_bench_201._skeleton import BENCHMARK, Nb201Config, TinySkeleton
from nasbench_pc.plugins.nas_bench_201.genotype import EDGES, NUM_EDGES, Nb201Genotype, node_slices
from nasbench_pc.plugins.nas_bench_201.ops import OPS, PRIMITIVES
from nasbench_pc.supernet import MixedOp, Relaxed, StackedLayout, WeightParameters, recomputed_cells, run_cell


class Nb201SearchCell(nn.Module):
    """The reference NAS201SearchCell: node i = sum over j < i of edge(i<-j)(node j); the output is node 3.

    ``make_edge(channels)`` builds one edge module ``edge(x, weights)``; edges run in the benchmark's
    order, as in :class:`~nasbench_pc.plugins.nas_bench_201.network.Nb201InferCell`.
    """

    def __init__(self, channels: int, make_edge: Callable[[int], nn.Module]):
        super().__init__()
        self.edges = nn.ModuleList(make_edge(channels) for _ in EDGES)
        self.sources: list[int] = [j for _, j in EDGES]
        self.closes: list[bool] = [j == i - 1 for i, j in EDGES]  # the node's last edge

    def forward(self, x: torch.Tensor, weights: torch.Tensor, edge_weights: torch.Tensor | None) -> torch.Tensor:
        nodes = [x]
        node = x
        for e, edge in enumerate(self.edges):
            y = edge(nodes[self.sources[e]], weights[e])
            if edge_weights is not None:
                y = edge_weights[e] * y
            node = y if self.sources[e] == 0 else node + y
            if self.closes[e]:
                nodes.append(node)
        return nodes[-1]


class Nb201Supernet(WeightParameters, StackedLayout, Relaxed, TinySkeleton):
    """Weight-sharing NAS-Bench-201 network: every cell shares one (6, 5) alphas tensor.

    Args:
        sampler: builds each edge around the MixedOp of the 5 ops (``full``: DARTS; ``partial``: PC-DARTS).
        normalizer: edge normalization (betas, one per edge) or None for plain DARTS.
        config: network shape.
        track_running_stats: whether the cells' non-affine BNs keep running statistics (the reference
            search scripts' BN switch; 1 in the benchmark's runs).
        checkpoint_cells: recompute the activations of each cell and residual block before the last stage in backward
            instead of saving them (:func:`nasbench_pc.supernet.run_cell`): same outputs and gradients, less
            memory, more time.

    ``arch_parameters()`` are the alphas (then the betas); ``weight_parameters()`` are all other
    parameters, in the reference's ``get_weights()`` order.
    """

    def __init__(self, sampler: ChannelSampler, normalizer: EdgeNormalizer | None = None,
                 config: Nb201Config = BENCHMARK, track_running_stats: bool = True, checkpoint_cells: bool = False):
        def mixed(channels: int) -> MixedOp:
            return MixedOp([OPS[name](channels, False, track_running_stats) for name in PRIMITIVES])

        def make_cell(channels: int) -> Nb201SearchCell:
            return Nb201SearchCell(channels, lambda c: sampler.build_edge(mixed, c, 1))

        super().__init__(config, make_cell)
        self.normalizer = normalizer
        self.checkpoint_cells = checkpoint_cells
        # Drawn after the weights, as the reference does, so a seeded build matches it.
        self.alphas = nn.Parameter(1e-3 * torch.randn(NUM_EDGES, len(PRIMITIVES)))
        betas = None if normalizer is None else normalizer.init_betas(NUM_EDGES)
        self.betas = None if betas is None else nn.Parameter(betas)

    def arch_parameters(self) -> list[nn.Parameter]:
        """What the architect optimises: the alphas, then the betas with edge normalization."""
        return [self.alphas] if self.betas is None else [self.alphas, self.betas]

    def alpha_parameters(self) -> list[nn.Parameter]:
        return [self.alphas]

    def mixed_ops_by_row(self) -> list[list[list[nn.Module]]]:
        """For the one alphas tensor, per edge, that edge's MixedOp in every search cell."""
        rows: list[list[nn.Module]] = [[] for _ in EDGES]
        for cell in self.cells:
            if isinstance(cell, Nb201SearchCell):
                for e, edge in enumerate(cell.edges):
                    rows[e] += [m for m in edge.modules() if isinstance(m, MixedOp)]
        return [rows]

    def edge_weights(self) -> torch.Tensor | None:
        """Per-edge multipliers: per node, a softmax over its incoming edges' betas (None without betas)."""
        return None if self.betas is None else self.normalizer.edge_weights(self.betas, node_slices())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.op_weights(self.alphas)  # softmax, or the method's relaxation
        edge_weights = self.edge_weights()
        x = self.stem(x)
        recomputed = (recomputed_cells([not isinstance(cell, Nb201SearchCell) for cell in self.cells])
                      if self.checkpoint_cells else 0)
        for i, cell in enumerate(self.cells):
            inputs = (x, weights, edge_weights) if isinstance(cell, Nb201SearchCell) else (x,)
            x = run_cell(cell, *inputs, recompute=i < recomputed)
        return self.forward_head(self.lastact(x))

    def genotype(self) -> Nb201Genotype:
        """The reference derive rule: on every edge the argmax over all 5 ops, 'none' included.

        Every edge is kept, so edge normalization changes nothing here: its score of an edge's op,
        softmax(alpha) * beta-weight, scales the edge's row by one positive number, and the argmax of
        that row is the argmax of the alphas (ties go to the earlier op, as torch.argmax does). A method with a
        rule of its own (FairDARTS' threshold) decides instead.
        """
        own = self.method_genotype()
        if own is not None:
            return own
        with torch.no_grad():  # a pruned op (a staged method's) is never the argmax
            alphas = self.alphas if self.op_masks is None else self.alphas.masked_fill(
                ~self.op_masks[0].to(self.alphas.device), float("-inf"))
            best = alphas.argmax(dim=-1).tolist()
        return Nb201Genotype.from_ops([PRIMITIVES[k] for k in best])
