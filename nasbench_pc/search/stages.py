"""A staged search (a method's ``stages``, DrNAS' progressive learning): which epochs each stage covers, and the
move from one stage to the next (prune each edge's ops, lower the partial-channel K with the ops widened, the
weight optimizer rebuilt with its momentum carried and widened alike; the learning-rate schedule runs on over all
the epochs, as in the reference).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from nasbench_pc.errors import PluginError
from nasbench_pc.records import Stage
from nasbench_pc.supernet import Widened, widen_like


@dataclass(frozen=True)
class Span:
    """A stage placed on a search's epochs: ``start`` (first epoch, from 0) to ``end`` (excluded), its K and the
    ops each edge keeps, and ``warmup``: the epochs from its start before the architecture steps begin."""

    start: int
    end: int
    k: int | None
    keep: int | None
    warmup: int


def plan(stages: Sequence[Stage], epochs: int) -> list[Span]:
    """The stages on ``epochs`` epochs: each gets its share (rounded, the last the rest) and its warm-up share of
    those (rounded down: DrNAS' 10 of 25 epochs is 0.4, so 2 of a 5-epoch stage). The first stage runs at least one
    epoch; a later stage left with none is dropped (a 1-epoch search is its first stage)."""
    if not stages or any(not 0 < s.share for s in stages):
        raise PluginError(f"A method's stages each need a positive share of the epochs; got {list(stages)}.")
    total = sum(s.share for s in stages)
    spans, start, share = [], 0, 0.0
    for i, stage in enumerate(stages):
        share += stage.share
        end = epochs if i == len(stages) - 1 else math.floor(epochs * share / total + 0.5)
        if i == 0:
            end = max(end, 1)  # the first stage is the supernet as built: it always runs
        if end > start:
            spans.append(Span(start, end, stage.k, stage.keep, int(stage.warmup * (end - start))))
        start = max(start, end)
    return spans


def index_at(spans: Sequence[Span], epoch: int) -> int:
    """The stage that ``epoch`` belongs to."""
    return next((i for i, span in enumerate(spans) if epoch < span.end), len(spans) - 1)


def rebuild_optimizer(old: torch.optim.Optimizer, parameters: list[torch.nn.Parameter], widened: Widened
                      ) -> torch.optim.Optimizer:
    """A new optimizer of ``old``'s class and settings over ``parameters``; each parameter's state (SGD's momentum)
    carried over, widened like the parameter when it was (DrNAS' ``configure_optimizer``)."""
    new = type(old)(parameters, **{k: v for k, v in old.param_groups[0].items() if k != "params"})
    wider = {id(target): (source, index) for source, target, index in widened}
    for p in parameters:
        source, index = wider.get(id(p), (p, {}))
        state: dict[str, Any] = old.state.get(source, {})
        new.state[p] = {key: widen_like(value, index) if isinstance(value, torch.Tensor) and value.dim() else value
                        for key, value in state.items()}
    return new
