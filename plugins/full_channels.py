"""The ``full`` sampler: every channel goes through the MixedOp (vanilla DARTS)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from nasbench_pc import hookimpl


class FullChannelSampler:
    default = True  # the sampler of a method that names none (DARTS' every channel)

    def build_edge(self, make_mixed_op: Callable[[int], nn.Module], channels: int, stride: int) -> nn.Module:
        return make_mixed_op(channels)

    def __repr__(self) -> str:
        return "FullChannelSampler()"


@hookimpl
def register_samplers() -> dict[str, type]:
    return {"full": FullChannelSampler}
