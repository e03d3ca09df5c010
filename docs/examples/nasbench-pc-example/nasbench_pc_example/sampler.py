# nasbench_pc_example/sampler.py
"""The ``random-partial`` channel sampler: PC-DARTS' partial channels with a fresh random subset every step.

PC-DARTS (section 3.2) sends a fixed slice, the first C/K channels of an edge's input, through the MixedOp, lets
the others bypass it and shuffles the channels so that the next edge takes other ones. Here every forward pass in
training mode draws a new set of C/K channels with ``torch.randperm`` from torch's default generator, so
``torch.manual_seed`` repeats the draws, and so does a resumed search, which restores that generator. The MixedOp's
outputs go back to the places of the channels it read and the other channels stay where they are (through a 2x2
max-pool on stride-2 edges): a bypassing channel keeps its place from step to step, which a random subset followed
by PC-DARTS' concatenation and shuffle would not give. The shuffle itself adds nothing to a random draw; it is left
out.

In eval mode (the accuracy a search records after each epoch) each edge uses one fixed set of channels, drawn when
the edge is built by a generator of the sampler's own seeded with its ``seed`` option: evaluations repeat exactly,
and building a supernet draws nothing from torch's generator, so ``pc-random`` and ``pc-darts`` start from the same
weights under one seed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nasbench_pc import hookimpl
from nasbench_pc.errors import ConfigError


class RandomPartialEdge(nn.Module):
    """One edge: its MixedOp on C/K of the input's channels, chosen at random in training mode.

    Args:
        mixed: the MixedOp of the candidate ops, built for C/K channels.
        k: the partial-channel ratio K.
        stride: 2 on the reduction cells' input edges (the bypassing channels are max-pooled), else 1.
        eval_order: a permutation of the C channels whose first C/K are the channels used in eval mode.
    """

    def __init__(self, mixed: nn.Module, k: int, stride: int, eval_order: torch.Tensor):
        super().__init__()
        self.mixed = mixed
        self.k = k
        self.mp = nn.MaxPool2d(2, 2) if stride == 2 else None
        self.register_buffer("eval_order", eval_order, persistent=False)  # the sampler's seed remakes it

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        order = torch.randperm(channels, device=x.device) if self.training else self.eval_order
        sampled = channels // self.k
        x = x.index_select(1, order)  # the sampled channels first
        rest = x[:, sampled:] if self.mp is None else self.mp(x[:, sampled:])
        out = torch.cat([self.mixed(x[:, :sampled], weights), rest], dim=1)
        return out.index_select(1, torch.argsort(order))  # every channel back in its place


class RandomPartialSampler:
    """Builds each edge as a :class:`RandomPartialEdge` (K=1: the plain MixedOp on every channel).

    Args:
        k: the partial-channel ratio K: an edge sends C/K of its C channels through its MixedOp.
        seed: seeds the draw of the channels each edge uses in eval mode.
    """

    def __init__(self, k: int = 4, seed: int = 0):
        for name, value, least in (("k", k, 1), ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"The random-partial sampler's {name} must be an integer of at least {least}, got "
                                  f"{value!r}. Set it with --sampler-option {name}=N.")
        self.k = k
        self.seed = seed
        self._generator = torch.Generator().manual_seed(seed)  # one eval-mode draw per edge, in build order

    def build_edge(self, make_mixed_op: Callable[[int], nn.Module], channels: int, stride: int) -> nn.Module:
        if channels % self.k:
            divisors = [d for d in range(1, channels + 1) if channels % d == 0]
            raise ConfigError(
                f"K={self.k} does not divide the {channels} channels of a cell edge, so the random 1/K of the "
                f"channels is not a whole number. Choose K from {divisors} (each must also divide the doubled "
                f"widths of the reduction cells), or change --init-channels."
            )
        if self.k == 1:
            return make_mixed_op(channels)
        eval_order = torch.randperm(channels, generator=self._generator)
        return RandomPartialEdge(make_mixed_op(channels // self.k), self.k, stride, eval_order)

    def __repr__(self) -> str:
        return f"RandomPartialSampler(k={self.k}, seed={self.seed})"


@hookimpl
def register_samplers() -> dict[str, type]:
    return {"random-partial": RandomPartialSampler}
