"""The DARTS cell search space: 8 candidate ops, 4 intermediate nodes, 14 edges per cell."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from nasbench_pc import hookimpl
from nasbench_pc.genotypes import PRIMITIVES
from nasbench_pc.interfaces import ChannelSampler, EdgeNormalizer
from nasbench_pc.ops import OPS
from nasbench_pc.supernet import Supernet, SupernetConfig


@dataclass(frozen=True)
class DartsSearchSpace:
    primitives: tuple[str, ...] = PRIMITIVES

    def make_op(self, name: str, channels: int, stride: int) -> nn.Module:
        op = OPS[name](channels, stride, False)
        if "pool" in name:  # search-time pools get a non-affine BN, as in the reference MixedOp
            op = nn.Sequential(op, nn.BatchNorm2d(channels, affine=False))
        return op

    def build(self, config: SupernetConfig, sampler: ChannelSampler, normalizer: EdgeNormalizer,
              method: str) -> Supernet:
        return Supernet(self, sampler, normalizer, config, method)


@hookimpl
def register_search_spaces() -> dict[str, DartsSearchSpace]:
    return {"darts": DartsSearchSpace()}
