"""The DARTS cell supernet: Cell, Supernet and the top-2 derive rule (MixedOp is the core's).

Method-specific behaviour enters only through the objects handed in: the search space
(candidate ops), the channel sampler (how an edge feeds its MixedOp) and the edge
normalizer (betas). With the ``full`` sampler and no normalizer this is the DARTS
``model_search.py`` network; with ``partial`` and ``edge`` it is PC-DARTS'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from nasbench_pc.errors import ConfigError
from nasbench_pc.interfaces import ChannelSampler, EdgeNormalizer
from nasbench_pc.plugins.darts_space.genotype import Genotype
from nasbench_pc.plugins.darts_space.ops import FactorizedReduce, ReLUConvBN
from nasbench_pc.supernet import (
    MixedOp,
    Relaxed,
    StackedLayout,
    WeightParameters,
    recomputed_cells,
    run_cell,
    run_edges,
)

if TYPE_CHECKING:
    from nasbench_pc.plugins.darts_space.space import DartsSearchSpace


@dataclass(frozen=True)
class SupernetConfig:
    """Shape of a supernet. ``stem`` is 'cifar' (conv3x3 + BN) or 'imagenet' (three stride-2 convs).
    ``checkpoint_cells`` recomputes the activations of each cell before the last stage in backward instead of saving
    them (:func:`run_cell`, :func:`recomputed_cells`). ``drop_none`` leaves the 'none' op out of every edge: the
    7-op space of DrNAS, SDARTS (``s5``) and FairDARTS (darts-family-facts.md 1)."""

    init_channels: int = 16
    layers: int = 8
    num_classes: int = 10
    in_channels: int = 3
    steps: int = 4
    multiplier: int = 4
    stem_multiplier: int = 3
    stem: str = "cifar"
    checkpoint_cells: bool = False
    drop_none: bool = False

    def __post_init__(self) -> None:
        for field in ("init_channels", "layers", "num_classes", "in_channels", "steps", "multiplier"):
            if getattr(self, field) < 1:
                raise ConfigError(f"{field} must be a positive integer, got {getattr(self, field)}.")
        if self.multiplier > self.steps:
            raise ConfigError(f"multiplier ({self.multiplier}) cannot exceed steps ({self.steps}).")
        if self.stem not in ("cifar", "imagenet"):
            raise ConfigError(f"Unknown stem {self.stem!r}; use 'cifar' (32x32 inputs) or 'imagenet' (224x224).")
        for field in ("checkpoint_cells", "drop_none"):
            if not isinstance(getattr(self, field), bool):
                raise ConfigError(f"{field} is true or false, got {getattr(self, field)!r}.")


def num_edges(steps: int) -> int:
    """Edges of a cell: node i reads the two cell inputs and the i nodes before it."""
    return sum(2 + i for i in range(steps))


def node_slices(steps: int) -> list[slice]:
    """The rows of the (edges, ops) architecture matrix that belong to each intermediate node."""
    out, start = [], 0
    for i in range(steps):
        out.append(slice(start, start + 2 + i))
        start += 2 + i
    return out


class Cell(nn.Module):
    def __init__(self, steps: int, multiplier: int, c_prev_prev: int, c_prev: int, c: int,
                 reduction: bool, reduction_prev: bool, make_edge):
        super().__init__()
        self.reduction = reduction
        self.steps = steps
        self.multiplier = multiplier
        if reduction_prev:
            self.preprocess0 = FactorizedReduce(c_prev_prev, c, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(c_prev_prev, c, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0, affine=False)
        self._ops = nn.ModuleList(
            make_edge(c, 2 if reduction and j < 2 else 1) for i in range(steps) for j in range(2 + i)
        )
        # per state j (the two inputs, then the nodes): (node i, edge index) of every edge that reads it
        offsets = [node.start for node in node_slices(steps)]
        self._readers = [[(i, offsets[i] + j) for i in range(max(j - 1, 0), steps)] for j in range(steps + 1)]

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
                edge_weights: torch.Tensor | None) -> torch.Tensor:
        # State by state: the edges reading a state run together (nasbench_pc.supernet._stacking), and each node adds
        # its
        # inputs in the reference's order (input 0 first), so it is complete once its last input is read.
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        nodes: list[torch.Tensor | int] = [0] * self.steps
        for j in range(self.steps + 1):
            if j >= 2:
                states.append(nodes[j - 2])
            readers = self._readers[j]
            outs = run_edges([self._ops[e] for _, e in readers], states[j], weights[[e for _, e in readers]])
            for (i, e), y in zip(readers, outs):
                nodes[i] = nodes[i] + (y if edge_weights is None else edge_weights[e] * y)
        states.append(nodes[-1])
        return torch.cat(states[-self.multiplier:], dim=1)


def _stems(config: SupernetConfig, c_stem: int) -> tuple[nn.Module, nn.Module | None]:
    if config.stem == "cifar":
        stem = nn.Sequential(nn.Conv2d(config.in_channels, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem))
        return stem, None
    stem0 = nn.Sequential(
        nn.Conv2d(config.in_channels, c_stem // 2, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c_stem // 2),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_stem // 2, c_stem, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c_stem),
    )
    stem1 = nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c_stem, c_stem, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c_stem),
    )
    return stem0, stem1


def derive_genotype(weights: torch.Tensor, edge_weights: torch.Tensor | None, primitives: tuple[str, ...],
                    steps: int) -> list[tuple[str, int]]:
    """The reference ``_parse``: score W = softmax(alpha) * beta-weight per edge; per node keep the
    two edges with the largest non-'none' entry (ties: lower input first), and on each the
    best non-'none' op (ties: earlier op)."""
    # float32 products, as the reference computes them in numpy, so near-ties break the same way
    w = weights.detach().cpu().float()
    if edge_weights is not None:
        w = w * edge_weights.detach().cpu().float()[:, None]
    rows = w.tolist()
    allowed = [k for k, name in enumerate(primitives) if name != "none"]
    gene: list[tuple[str, int]] = []
    for node in node_slices(steps):
        block = rows[node]
        edges = sorted(range(len(block)), key=lambda j: -max(block[j][k] for k in allowed))[:2]
        for j in edges:
            best = max(allowed, key=lambda k: (block[j][k], -k))
            gene.append((primitives[best], j))
    return gene


class Supernet(WeightParameters, StackedLayout, Relaxed, nn.Module):
    """Weight-sharing network over all cells of the search space.

    ``arch_parameters()`` are the alphas (then betas, with edge normalization);
    ``weight_parameters()`` are all other parameters, in the reference order. The edges weigh their ops by
    ``op_weights(alphas)`` (softmax, or the method's relaxation: :mod:`nasbench_pc.supernet.relaxation`), one draw
    per cell type per forward, shared by all cells of that type (AutoDL's GDAS and DrNAS do the same).
    """

    def __init__(self, space: DartsSearchSpace, sampler: ChannelSampler, normalizer: EdgeNormalizer,
                 config: SupernetConfig, method: str = ""):
        super().__init__()
        self.config = config
        self.method = method
        self.primitives = tuple(p for p in space.primitives if not (config.drop_none and p == "none"))
        self.normalizer = normalizer
        c = config.init_channels
        c_curr = config.stem_multiplier * c
        self.stem, self.stem1 = _stems(config, c_curr)

        def make_edge(channels: int, stride: int) -> nn.Module:
            def mixed(ch: int) -> MixedOp:
                return MixedOp([space.make_op(name, ch, stride) for name in self.primitives])

            return sampler.build_edge(mixed, channels, stride)

        c_prev_prev, c_prev, c_curr = c_curr, c_curr, c
        reduction_prev = config.stem == "imagenet"
        self.cells = nn.ModuleList()
        for i in range(config.layers):
            reduction = i in (config.layers // 3, 2 * config.layers // 3)
            if reduction:
                c_curr *= 2
            self.cells.append(Cell(config.steps, config.multiplier, c_prev_prev, c_prev, c_curr, reduction,
                                   reduction_prev, make_edge))
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, config.multiplier * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, config.num_classes)

        # Same draw order as the reference _initialize_alphas: alphas normal, reduce, betas normal, reduce.
        shape = (num_edges(config.steps), len(self.primitives))
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(*shape))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(*shape))
        betas = [normalizer.init_betas(shape[0]) for _ in range(2)]
        self.betas_normal = None if betas[0] is None else nn.Parameter(betas[0])
        self.betas_reduce = None if betas[1] is None else nn.Parameter(betas[1])

    def arch_parameters(self) -> list[nn.Parameter]:
        params = [self.alphas_normal, self.alphas_reduce]
        if self.betas_normal is not None:
            params += [self.betas_normal, self.betas_reduce]
        return params

    def alpha_parameters(self) -> list[nn.Parameter]:
        return [self.alphas_normal, self.alphas_reduce]

    def mixed_ops_by_row(self) -> list[list[list[nn.Module]]]:
        """Per alphas tensor (normal, reduce), per edge, that edge's MixedOp in every cell of the type."""
        rows: list[list[list[nn.Module]]] = [[[] for _ in range(num_edges(self.config.steps))] for _ in range(2)]
        for cell in self.cells:
            for e, edge in enumerate(cell._ops):
                rows[int(cell.reduction)][e] += [m for m in edge.modules() if isinstance(m, MixedOp)]
        return rows

    def edge_weights(self, reduction: bool) -> torch.Tensor | None:
        """The normalized betas of the normal or reduction cell (None without edge normalization)."""
        betas = self.betas_reduce if reduction else self.betas_normal
        return None if betas is None else self.normalizer.edge_weights(betas, node_slices(self.config.steps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = {False: self.op_weights(self.alphas_normal), True: self.op_weights(self.alphas_reduce)}
        edge_weights = {False: self.edge_weights(False), True: self.edge_weights(True)}
        s0 = self.stem(x)
        # With the CIFAR stem both inputs of cell 0 are the stem's output. Cell 1 reads s1 too, so as a view of its
        # own s1's gradient is a sum of two (cell 0's and cell 1's reads) before it joins s0's: the same sum whether
        # or not the cells are recomputed in backward (a sum of three would depend on the order they arrive in).
        s1 = s0.view_as(s0) if self.stem1 is None else self.stem1(s0)
        recomputed = recomputed_cells([cell.reduction for cell in self.cells]) if self.config.checkpoint_cells else 0
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, run_cell(cell, s0, s1, weights[cell.reduction], edge_weights[cell.reduction],
                                  recompute=i < recomputed)
        out = self.global_pooling(s1)
        return self.classifier(out.flatten(1))

    def genotype(self) -> Genotype:
        """The DARTS rule on softmax(alpha) (times the edge weights), or the method's own rule (FairDARTS')."""
        own = self.method_genotype()
        if own is not None:
            return own
        steps, concat = self.config.steps, list(range(2 + self.config.steps - self.config.multiplier,
                                                      self.config.steps + 2))
        with torch.no_grad():  # a pruned op (a staged method's) weighs 0 there
            normal = derive_genotype(self.masked(F.softmax(self.alphas_normal, dim=-1), self.alphas_normal),
                                     self.edge_weights(False), self.primitives, steps)
            reduce = derive_genotype(self.masked(F.softmax(self.alphas_reduce, dim=-1), self.alphas_reduce),
                                     self.edge_weights(True), self.primitives, steps)
        return Genotype(normal=normal, normal_concat=concat, reduce=reduce, reduce_concat=concat)
