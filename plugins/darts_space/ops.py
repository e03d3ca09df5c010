"""The DARTS operation library, shared by the DARTS supernet and derived networks.

Each entry of :data:`OPS` builds one candidate operation for ``C`` channels and a stride,
exactly as the reference ``operations.py`` does (same layers, same parameter order).
Ops whose first layer is a ReLU are :class:`~nasbench_pc.supernet.mixed_op.ReLUOp`\\ s, so a mixed
edge computes that ReLU once for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from nasbench_pc.errors import ConfigError
from nasbench_pc.supernet import _stacking as stacking
from nasbench_pc.supernet.mixed_op import Identity, ReLUOp, Zero


class ReLUConvBN(ReLUOp):
    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int, affine: bool = True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward_activated(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.op):  # a loop TorchScript can unroll; op[0] is the ReLU
            if i > 0:
                x = layer(x)
        return x

    def chain(self) -> list[nn.Module]:
        return list(self.op)[1:]


class DilConv(ReLUConvBN):
    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int, dilation: int,
                 affine: bool = True):
        nn.Module.__init__(self)
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel_size, stride=stride, padding=padding, dilation=dilation, groups=c_in,
                      bias=False),
            nn.Conv2d(c_in, c_out, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(ReLUConvBN):
    """Two stacked ReLU - depthwise - pointwise - BN blocks (the DARTS separable conv)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int, affine: bool = True):
        nn.Module.__init__(self)
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel_size, stride=stride, padding=padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_in, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(c_in, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel_size, stride=1, padding=padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class FactorizedReduce(ReLUOp):
    """Halve the resolution with two offset stride-2 1x1 convs, concatenated.

    Its input is always made default-layout (contiguous): fed a channels-last tensor, oneDNN's AVX2 kernel for
    the backward pass of these stride-2 1x1 convs corrupts the heap (docs/benchmarks.md, "channels-last on CPU").
    """

    def __init__(self, c_in: int, c_out: int, affine: bool = True):
        super().__init__()
        if c_out % 2:
            raise ConfigError(
                f"FactorizedReduce needs an even channel count but got {c_out}. In a partial-channel "
                f"supernet this happens when C/K is odd; pick K so that every cell's C/K is even."
            )
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward_activated(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))

    @classmethod
    def forward_stacked(cls, ops: Sequence[FactorizedReduce], x: stacking.Shared) -> stacking.Stacked | None:
        """Several edges' FactorizedReduce of the same activated input, stacked
        (:mod:`nasbench_pc.supernet._stacking`)."""
        convs_1, convs_2, bns = [op.conv_1 for op in ops], [op.conv_2 for op in ops], [op.bn for op in ops]
        if not (stacking.stackable(convs_1) and stacking.stackable(convs_2) and stacking.stackable(bns)):
            return None
        inputs = x.x.contiguous()
        halves = [stacking.stack_layer(convs, (part, False))[0].unflatten(1, (len(ops), -1))
                  for convs, part in ((convs_1, inputs), (convs_2, inputs[:, :, 1:, 1:]))]
        return stacking.batch_norm(bns, torch.cat(halves, dim=2).flatten(1, 2)), True


OpFactory = Callable[[int, int, bool], nn.Module]

#: name -> factory(C, stride, affine), as in the reference operations.py.
OPS: dict[str, OpFactory] = {
    "none": lambda C, stride, affine: Zero(stride),
    "avg_pool_3x3": lambda C, stride, affine: nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False),
    "max_pool_3x3": lambda C, stride, affine: nn.MaxPool2d(3, stride=stride, padding=1),
    "skip_connect": lambda C, stride, affine: Identity() if stride == 1 else FactorizedReduce(C, C, affine=affine),
    "sep_conv_3x3": lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine=affine),
    "sep_conv_5x5": lambda C, stride, affine: SepConv(C, C, 5, stride, 2, affine=affine),
    "sep_conv_7x7": lambda C, stride, affine: SepConv(C, C, 7, stride, 3, affine=affine),
    "dil_conv_3x3": lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine=affine),
    "dil_conv_5x5": lambda C, stride, affine: DilConv(C, C, 5, stride, 4, 2, affine=affine),
}
