"""The chain space's candidate ops. Every op keeps the channels and the resolution: all edges are stride 1."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nasbench_pc.supernet import Identity, ReLUOp, Zero

#: Candidate ops of an edge, in the order of the alphas' columns.
PRIMITIVES: tuple[str, ...] = ("none", "skip_connect", "conv_3x3", "avg_pool_3x3")


class ReLUConvBN(ReLUOp):
    """ReLU -> 3x3 conv -> BN on ``channels`` channels.

    Args:
        channels: input and output channels.
        affine: learnable BN scale and shift; off in the supernet, as DARTS' search-time ops have it.
    """

    def __init__(self, channels: int, affine: bool):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels, affine=affine)

    def forward_activated(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


#: name -> factory(channels, affine) of one edge op.
OPS: dict[str, Callable[[int, bool], nn.Module]] = {
    "none": lambda c, affine: Zero(stride=1),
    "skip_connect": lambda c, affine: Identity(),
    "conv_3x3": lambda c, affine: ReLUConvBN(c, affine),
    "avg_pool_3x3": lambda c, affine: nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
}
