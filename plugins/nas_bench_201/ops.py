"""The NAS-Bench-201 operation library: the 5 cell ops and the residual reduction block.

Same layers and parameter order as the benchmark authors' ``xautodl/models/cell_operations.py``,
quirks included: a cell conv has a bias exactly when its BN is not affine (``bias=not affine``),
and the average pool does not count padding. Cell ops keep the channel count and the resolution
(every NAS-Bench-201 cell edge is stride 1; the stages are joined by :class:`ResNetBasicblock`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nasbench_pc.supernet.mixed_op import Identity, ReLUOp, Zero

#: Candidate operations of a NAS-Bench-201 edge, in the benchmark's order.
PRIMITIVES: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


class ReLUConvBN(ReLUOp):
    """ReLU -> Conv(k, padding k//2) -> BN, the benchmark's ``nor_conv_kxk``.

    Args:
        c_in: input channels.
        c_out: output channels.
        kernel_size: square kernel size k.
        stride: conv stride (1 in cells, 2 in the first conv of a reduction block).
        affine: learnable BN scale and shift; when False the conv carries a bias instead (reference quirk).
        track_running_stats: whether BN keeps running statistics (and uses them in eval mode).
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, affine: bool,
                 track_running_stats: bool = True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=kernel_size // 2, bias=not affine),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats),
        )

    def forward_activated(self, x: torch.Tensor) -> torch.Tensor:
        return self.op[2](self.op[1](x))  # op[0] is the ReLU, already applied

    def chain(self) -> list[nn.Module]:
        return [self.op[1], self.op[2]]


class ResNetBasicblock(nn.Module):
    """The stride-2 residual block between stages: two 3x3 ReLUConvBN (affine BN, no conv bias) plus
    a residual AvgPool2d(2, 2) -> Conv1x1 without BN.

    Args:
        c_in: input channels.
        c_out: output channels (twice ``c_in`` in the benchmark skeleton).
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, affine=True)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, affine=True)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


OpFactory = Callable[[int, bool, bool], nn.Module]

#: name -> factory(channels, affine, track_running_stats) of a stride-1 cell op, as in cell_operations.py.
OPS: dict[str, OpFactory] = {
    "none": lambda c, affine, track: Zero(stride=1),
    "skip_connect": lambda c, affine, track: Identity(),
    "nor_conv_1x1": lambda c, affine, track: ReLUConvBN(c, c, 1, 1, affine, track),
    "nor_conv_3x3": lambda c, affine, track: ReLUConvBN(c, c, 3, 1, affine, track),
    "avg_pool_3x3": lambda c, affine, track: nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
}
