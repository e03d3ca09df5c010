"""The derived NAS-Bench-201 network: xautodl's ``TinyNetwork`` built from one genotype.

Every cell is the genotype's cell with affine BNs (the reference InferCell, 'none' edges
included as zeros); the parameter count equals the benchmark's for the same cell.
"""

from __future__ import annotations

import torch
from torch import nn

from nasbench_pc.spaces.nas_bench_201._skeleton import BENCHMARK, Nb201Config, TinySkeleton
from nasbench_pc.spaces.nas_bench_201.genotype import EDGES, Nb201Genotype
from nasbench_pc.spaces.nas_bench_201.ops import OPS


class Nb201InferCell(nn.Module):
    """One fixed cell: node i = sum over j < i of op(i<-j)(node j); the output is node 3.

    The edges run in one flat loop (each edge knows the node it reads and whether it closes its
    node), which TorchScript unrolls.
    """

    def __init__(self, genotype: Nb201Genotype, channels: int):
        super().__init__()
        self.edges = nn.ModuleList(OPS[op](channels, True, True) for op in genotype.ops)
        self.sources: list[int] = [j for _, j in EDGES]
        self.closes: list[bool] = [j == i - 1 for i, j in EDGES]  # the node's last edge

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        node = x
        for e, edge in enumerate(self.edges):
            y = edge(nodes[self.sources[e]])
            node = y if self.sources[e] == 0 else node + y
            if self.closes[e]:
                nodes.append(node)
        return nodes[-1]


class Nb201Network(TinySkeleton):
    """The benchmark's network for one cell (C=16, N=5 by default).

    Args:
        genotype: the cell every stage repeats.
        config: network shape.
    """

    def __init__(self, genotype: Nb201Genotype, config: Nb201Config = BENCHMARK):
        super().__init__(config, lambda channels: Nb201InferCell(genotype, channels))
        self.genotype = genotype

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The final feature map (after the last BN + ReLU), before pooling."""
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.lastact(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
