"""Scalar schedules over a search's epochs: a temperature, a regulariser's weight, a perturbation radius.

The family's references each write their schedule inline with its own endpoint convention; here a method names the
value at epoch 0 (``start``), the value it heads for (``end``) and the epoch that would reach it (``length``):

- GDAS: tau 10 -> 0.1, reaching 0.1 at the last epoch: ``linear(e, start=10, end=0.1, length=epochs - 1)``;
- SDARTS: eps 0.03 -> 0.3 over ``epochs``, so never quite reaching 0.3: ``linear(e, start=0.03, end=0.3,
  length=epochs)``;
- beta-DARTS: lambda 0 -> 50 at epoch 100 whatever the search's length: ``linear(e, start=0, end=50, length=100)``;
- DARTS-: the auxiliary skip's coefficient 1 -> 0 over 50 epochs (0.02 at epoch 49): ``linear(e, start=1, end=0,
  length=50)``.

A schedule is a function of the epoch alone, so a resumed search recomputes exactly the value it had.
"""

from __future__ import annotations

import math

from nasbench_pc.errors import ConfigError

SHAPES = ("linear", "cosine", "constant")


def value_at(epoch: int, *, start: float, end: float, length: int, shape: str = "linear") -> float:
    """The schedule's value at ``epoch`` (from 0): ``start`` there, ``end`` at ``epoch == length`` and after.

    ``linear``: start + (end - start) * epoch / length; ``cosine``: end + (start - end) * (1 + cos(pi * epoch /
    length)) / 2; ``constant``: start. ``length`` 0 gives ``end`` from epoch 0.
    """
    if shape not in SHAPES:
        raise ConfigError(f"Unknown schedule shape {shape!r}; use one of {', '.join(SHAPES)}.")
    if length < 0:
        raise ConfigError(f"A schedule's length is a number of epochs, at least 0; got {length}.")
    if shape == "constant":
        return float(start)
    t = 1.0 if length == 0 else min(epoch / length, 1.0)
    if shape == "linear":
        return start + (end - start) * t
    return end + (start - end) * (1 + math.cos(math.pi * t)) / 2


def linear(epoch: int, *, start: float, end: float, length: int) -> float:
    """:func:`value_at` with the linear shape."""
    return value_at(epoch, start=start, end=end, length=length, shape="linear")
