"""What plugins provide: the small protocols behind each hook, and the method record.

A plugin returns objects of these shapes from the hooks in :mod:`nasbench_pc.hookspecs`.
They are protocols, so any object with the right attributes works; no base class needed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

if TYPE_CHECKING:
    from nasbench_pc.supernet import MixedOp, Supernet, SupernetConfig


class SearchSpace(Protocol):
    """A cell search space: its candidate ops and how to build a supernet over them."""

    primitives: tuple[str, ...]

    def make_op(self, name: str, channels: int, stride: int) -> nn.Module:
        """One candidate op of a search-time mixed edge."""

    def build(self, config: SupernetConfig, sampler: ChannelSampler, normalizer: EdgeNormalizer,
              method: str) -> Supernet:
        """The supernet for ``config`` using the given sampler and normalizer."""


class ChannelSampler(Protocol):
    """Decides which channels of an edge's input go through its MixedOp."""

    def build_edge(self, make_mixed_op: Callable[[int], MixedOp], channels: int, stride: int) -> nn.Module:
        """Return a module ``edge(x, weights) -> Tensor`` for an edge with ``channels`` in and out.

        ``make_mixed_op(c)`` builds the MixedOp of all candidate ops on ``c`` channels.
        Raise :class:`nasbench_pc.errors.ConfigError` if ``channels`` cannot be sampled.
        """


class EdgeNormalizer(Protocol):
    """Weights the edges that enter each intermediate node (PC-DARTS edge normalization)."""

    def init_betas(self, num_edges: int) -> torch.Tensor | None:
        """Initial edge parameters of one cell type, or None when the normalizer has none."""

    def edge_weights(self, betas: torch.Tensor, nodes: list[slice]) -> torch.Tensor:
        """Per-edge multipliers from the betas; ``nodes`` holds each node's slice of edges."""


class Evaluator(Protocol):
    """Scores a model on data; returns named metrics."""

    def evaluate(self, model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                 device: torch.device | str = "cpu") -> dict[str, float]:
        """Metrics of ``model`` over ``batches`` of (inputs, targets)."""


@dataclass(frozen=True)
class SearchHParams:
    """Search hyperparameters (CIFAR-10 values of the reference by default)."""

    batch_size: int = 64
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    epochs: int = 50
    init_channels: int = 16
    layers: int = 8
    train_portion: float = 0.5
    arch_lr: float = 3e-4
    arch_weight_decay: float = 1e-3
    grad_clip: float = 5.0
    warmup_epochs: int = 0  # epochs before the first architecture step
    seed: int = 2

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Method:
    """A named search method: a search space + sampler + normalizer + arch-gradient order + preset."""

    name: str
    description: str
    search_space: str = "darts"
    sampler: str = "full"
    sampler_options: dict[str, Any] = field(default_factory=dict)
    normalizer: str = "none"
    normalizer_options: dict[str, Any] = field(default_factory=dict)
    order: int = 1  # 1: first-order architecture gradient; 2: DARTS unrolled (second order)
    hparams: SearchHParams = field(default_factory=SearchHParams)

    def with_overrides(self, **changes: Any) -> Method:
        return replace(self, **changes)
