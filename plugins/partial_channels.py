"""The ``partial`` sampler: PC-DARTS partial channel connections (paper section 3.2).

Only the first C/K channels of an edge's input go through the MixedOp; the other
channels bypass it (through a 2x2 max-pool on stride-2 edges so shapes match), and a
channel shuffle interleaves the two parts so that the next edge samples other channels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from nasbench_pc import hookimpl
from nasbench_pc.errors import ConfigError
from nasbench_pc.interfaces import Shortcut
from nasbench_pc.supernet import Widened, run_edges, widen_into


class PartialChannelEdge(nn.Module):
    def __init__(self, mixed: nn.Module, k: int, stride: int,
                 make_mixed_op: Callable[[int], nn.Module] | None = None, channels: int = 0):
        super().__init__()
        self.mixed = mixed
        self.k = k
        self.mp = nn.MaxPool2d(2, 2) if stride == 2 else None
        self._make_mixed_op, self.channels = make_mixed_op, channels  # to rebuild the MixedOp for another K

    def set_k(self, k: int) -> Widened:
        """Sample 1/k of the channels from now on (DrNAS' stages: K 6 -> 4): the MixedOp is rebuilt for C/k
        channels and widened from the current one (:func:`nasbench_pc.supernet.widen.widen_into`); returns how each
        parameter was widened, for the optimizer's momentum."""
        if self._make_mixed_op is None or k > self.k or self.channels % k:
            raise ConfigError(f"A partial-channel edge of {self.channels} channels at K={self.k} cannot move to "
                              f"K={k}: stages may only lower K, to a divisor of the channels.")
        old, new = self.mixed, self._make_mixed_op(self.channels // k)
        like = next(iter([*old.parameters(), *old.buffers()]), None)
        if like is not None:  # built on the default device and dtype: move it where the edge is
            new = new.to(device=like.device, dtype=like.dtype if like.is_floating_point() else None)
        widened = widen_into(old, new)
        new.active, new.channels_last = getattr(old, "active", None), getattr(old, "channels_last", None)
        self.mixed, self.k = new, k
        return widened

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        sampled = x.shape[1] // self.k
        out = self.mixed(x[:, :sampled], weights)
        if self.k == 1:
            return out
        return shuffled_concat(out, self.bypass(x, sampled), self.k)

    def bypass(self, x: torch.Tensor, sampled: int) -> torch.Tensor:
        """The channels after the first ``sampled``, which skip the MixedOp (max-pooled on a stride-2 edge)."""
        rest = x[:, sampled:]
        return rest if self.mp is None else self.mp(rest)

    @classmethod
    def forward_stacked(cls, edges: Sequence[PartialChannelEdge], x: torch.Tensor,
                        weights: torch.Tensor) -> list[torch.Tensor] | None:
        """Edges reading the same ``x`` sample the same first C/K channels, so their MixedOps run together
        (:mod:`nasbench_pc.supernet._stacking`) and the bypass is pooled once."""
        first = edges[0]
        if len({(edge.k, edge.mp is None, type(edge.mixed)) for edge in edges}) != 1:
            return None
        sampled = x.shape[1] // first.k
        outs = run_edges([edge.mixed for edge in edges], x[:, :sampled], weights)
        if first.k == 1:
            return outs
        bypass = first.bypass(x, sampled)
        return [shuffled_concat(out, bypass, first.k) for out in outs]


def shuffled_concat(out: torch.Tensor, bypass: torch.Tensor, k: int) -> torch.Tensor:
    """``channel_shuffle(torch.cat([out, bypass], dim=1), k)`` in one copy instead of two: with C/K = ``out``'s
    channels, channel j*K of the result is ``out``'s channel j and channel j*K + g is ``bypass``'s (g-1)*C/K + j."""
    b, c, h, w = out.shape
    parts = [out.unsqueeze(2), bypass.reshape(b, k - 1, c, h, w).transpose(1, 2)]
    return torch.cat(parts, dim=2).reshape(b, k * c, h, w)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet channel shuffle: view as (B, groups, C/groups, H, W), swap dims 1 and 2."""
    b, c, h, w = x.shape
    return x.reshape(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class PartialChannelSampler:
    #: its settings per search preset: the PC-DARTS ImageNet search samples 1/2 of the channels (K=2)
    presets = {"imagenet": {"k": 2}}
    shortcuts = (Shortcut(("--k",), "k", "Partial-channel K"),)
    column = ("K", "k")  # the option comparison tables show, and its header
    ratio_option = "k"  # the option that is its K (1/K of the channels), which a staged method's stages set

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
        return PartialChannelEdge(make_mixed_op(channels // self.k), self.k, stride, make_mixed_op, channels)

    def __repr__(self) -> str:
        return f"PartialChannelSampler(k={self.k})"


@hookimpl
def register_samplers() -> dict[str, type]:
    return {"partial": PartialChannelSampler}
