"""The ``partial`` sampler: PC-DARTS partial channel connections (paper section 3.2).

Only the first C/K channels of an edge's input go through the MixedOp; the other
channels bypass it (through a 2x2 max-pool on stride-2 edges so shapes match), and a
channel shuffle interleaves the two parts so that the next edge samples other channels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nasbench_pc import hookimpl
from nasbench_pc.errors import ConfigError


class PartialChannelEdge(nn.Module):
    def __init__(self, mixed: nn.Module, k: int, stride: int):
        super().__init__()
        self.mixed = mixed
        self.k = k
        self.mp = nn.MaxPool2d(2, 2) if stride == 2 else None

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        sampled = x.shape[1] // self.k
        out = self.mixed(x[:, :sampled], weights)
        if self.k == 1:
            return out
        bypass = x[:, sampled:]
        if self.mp is not None:
            bypass = self.mp(bypass)
        return channel_shuffle(torch.cat([out, bypass], dim=1), self.k)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet channel shuffle: view as (B, groups, C/groups, H, W), swap dims 1 and 2."""
    b, c, h, w = x.shape
    return x.reshape(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class PartialChannelSampler:
    def __init__(self, k: int = 4):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"K (the partial-channel ratio) must be a positive integer, got {k!r}.")
        self.k = k

    def build_edge(self, make_mixed_op: Callable[[int], nn.Module], channels: int, stride: int) -> nn.Module:
        if channels % self.k:
            divisors = [d for d in range(1, channels + 1) if channels % d == 0]
            raise ConfigError(
                f"K={self.k} does not divide the {channels} channels of a cell edge, so the sampled 1/K of the "
                f"channels is not a whole number. Choose K from {divisors} (each must also divide the doubled "
                f"widths of the reduction cells), or change --init-channels."
            )
        return PartialChannelEdge(make_mixed_op(channels // self.k), self.k, stride)

    def __repr__(self) -> str:
        return f"PartialChannelSampler(k={self.k})"


@hookimpl
def register_samplers() -> dict[str, type]:
    return {"partial": PartialChannelSampler}
