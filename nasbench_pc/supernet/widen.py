"""Widening a module's channels between search stages (DrNAS' progressive partial channels, darts-family-facts.md
3.4): a module rebuilt for more channels takes the old one's parameters and buffers, Net2Wider-style.

Every dimension that grew from ``n`` to ``m`` entries keeps the ``n`` old ones and appends copies of old entries
picked at random, without the rescaling that would make the wider module compute the same function (DrNAS'
``net2wider.py`` copies without it too). Choice: one random pick per (n, m) pair and widened module, so the copies
line up across a module's layers (a depthwise conv's output channel j, the pointwise conv reading it and the batch
norm after it copy the same old channel); DrNAS draws each layer's picks on their own.
"""

from __future__ import annotations

import torch
from torch import nn

from nasbench_pc.errors import ConfigError

#: for each widened parameter: (the old parameter, the new one, per grown dimension its index into the old)
Widened = list[tuple[nn.Parameter, nn.Parameter, dict[int, torch.Tensor]]]


def widen_into(old: nn.Module, new: nn.Module) -> Widened:
    """Fill ``new`` (the same modules as ``old``, built for more channels) from ``old``; return how each
    parameter was widened, so an optimizer's state (momentum) can be widened the same way (:func:`widen_like`)."""
    picks: dict[tuple[int, int], torch.Tensor] = {}
    widened: Widened = []
    old_tensors = [*old.named_parameters(), *old.named_buffers()]
    new_tensors = dict([*new.named_parameters(), *new.named_buffers()])
    if [name for name, _ in old_tensors] != list(new_tensors):
        raise ConfigError(f"Cannot widen {type(old).__name__}: the wider module has other parameters or buffers.")
    for name, source in old_tensors:
        target = new_tensors[name]
        if source.dim() != target.dim() or any(t < s for s, t in zip(source.shape, target.shape, strict=True)):
            raise ConfigError(f"Cannot widen {name} from {tuple(source.shape)} to {tuple(target.shape)}.")
        index = {}
        for dim, (n, m) in enumerate(zip(source.shape, target.shape, strict=True)):
            if m != n:
                if (n, m) not in picks:
                    picks[n, m] = torch.cat([torch.arange(n), torch.randint(0, n, (m - n,))])
                index[dim] = picks[n, m].to(source.device)
        with torch.no_grad():
            target.copy_(widen_like(source, index))
        if isinstance(source, nn.Parameter):
            widened.append((source, target, index))
    return widened


def widen_like(tensor: torch.Tensor, index: dict[int, torch.Tensor]) -> torch.Tensor:
    """``tensor`` with each dimension in ``index`` gathered by its index (the old entries, then the copies)."""
    for dim, picked in index.items():
        tensor = tensor.index_select(dim, picked)
    return tensor
