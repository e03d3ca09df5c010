"""Edge normalizers: ``none`` (DARTS) and ``edge`` (PC-DARTS edge normalization, section 3.3).

With ``edge``, each cell type gets betas (one per edge, 1e-3 * randn); the edges entering
a node are weighted by a softmax over that node's betas, which steadies edge selection
when the sampled channels change.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nasbench_pc import hookimpl


class NoEdgeNormalization:
    default = True  # the normalizer of a method that names none

    def init_betas(self, num_edges: int) -> None:
        return None

    def edge_weights(self, betas: torch.Tensor, nodes: list[slice]) -> torch.Tensor:
        raise AssertionError("no betas exist without edge normalization")

    def __repr__(self) -> str:
        return "NoEdgeNormalization()"


class EdgeNormalization:
    def init_betas(self, num_edges: int) -> torch.Tensor:
        return 1e-3 * torch.randn(num_edges)

    def edge_weights(self, betas: torch.Tensor, nodes: list[slice]) -> torch.Tensor:
        return torch.cat([F.softmax(betas[node], dim=-1) for node in nodes])

    def __repr__(self) -> str:
        return "EdgeNormalization()"


@hookimpl
def register_normalizers() -> dict[str, type]:
    return {"none": NoEdgeNormalization, "edge": EdgeNormalization}
