"""The chain search supernet: ``layers`` chain cells sharing one (steps, ops) alphas tensor.

Every edge comes from the method's channel sampler (``full``: DARTS; ``partial``: PC-DARTS' partial
channels) around a :class:`~nasbench_pc.supernet.MixedOp` of the four ops, and the method's edge
normalizer adds betas. A chain node has a single incoming edge, so edge normalization's per-node
softmax gives every edge the weight 1: pc-darts behaves like pc-only here, and en-only like darts-1st,
apart from the betas they carry.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from chain_space._skeleton import DEFAULT_CONFIG, ChainConfig, ChainSkeleton
from chain_space.genotype import ChainGenotype
from chain_space.ops import OPS, PRIMITIVES
from nasbench_pc.errors import ConfigError
from nasbench_pc.interfaces import ChannelSampler, EdgeNormalizer
from nasbench_pc.supernet import MixedOp, WeightParameters


def node_slices(steps: int) -> list[slice]:
    """The rows of the alphas (edges) that enter each node: one per node in a chain."""
    return [slice(i, i + 1) for i in range(steps)]


class ChainSearchCell(nn.Module):
    """node i = edge i(node i-1, softmax(alpha_i)), times its edge weight with edge normalization."""

    def __init__(self, channels: int, steps: int, make_edge: Callable[[int], nn.Module]):
        super().__init__()
        self.edges = nn.ModuleList(make_edge(channels) for _ in range(steps))

    def forward(self, x: torch.Tensor, weights: torch.Tensor, edge_weights: torch.Tensor | None) -> torch.Tensor:
        for e, edge in enumerate(self.edges):
            y = edge(x, weights[e])
            x = y if edge_weights is None else edge_weights[e] * y
        return x


class ChainSupernet(WeightParameters, ChainSkeleton):
    """Weight-sharing chain network.

    Args:
        sampler: builds each edge around the MixedOp of the candidate ops.
        normalizer: the method's edge normalizer (its ``init_betas`` may return None: no betas).
        config: network shape.
        steps: edges per cell (the genotype's length).
    """

    def __init__(self, sampler: ChannelSampler, normalizer: EdgeNormalizer, config: ChainConfig = DEFAULT_CONFIG,
                 steps: int = 3):
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"steps of the chain space (edges per cell) must be a positive integer, got {steps!r}. "
                              f"Pass it as --space-option steps=N.")

        def mixed(channels: int) -> MixedOp:
            return MixedOp([OPS[name](channels, False) for name in PRIMITIVES])

        super().__init__(config, lambda c: ChainSearchCell(c, steps, lambda ch: sampler.build_edge(mixed, ch, 1)))
        self.steps = steps
        self.normalizer = normalizer
        self.alphas = nn.Parameter(1e-3 * torch.randn(steps, len(PRIMITIVES)))
        betas = normalizer.init_betas(steps)
        self.betas = None if betas is None else nn.Parameter(betas)

    def arch_parameters(self) -> list[nn.Parameter]:
        """What the architect optimises: the alphas, then the betas with edge normalization."""
        return [self.alphas] if self.betas is None else [self.alphas, self.betas]

    def edge_weights(self) -> torch.Tensor | None:
        """The normalizer's per-edge multipliers (None without betas)."""
        return None if self.betas is None else self.normalizer.edge_weights(self.betas, node_slices(self.steps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = F.softmax(self.alphas, dim=-1)
        edge_weights = self.edge_weights()
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x, weights, edge_weights)
        return self.forward_head(x)

    def genotype(self) -> ChainGenotype:
        """Derive rule: on every edge the op with the largest alpha other than 'none' (which would cut the
        chain); a positive edge weight scales a whole row, so it never changes the choice."""
        allowed = [k for k, name in enumerate(PRIMITIVES) if name != "none"]
        with torch.no_grad():
            best = self.alphas[:, allowed].argmax(dim=-1).tolist()
        return ChainGenotype(tuple(PRIMITIVES[allowed[k]] for k in best))
