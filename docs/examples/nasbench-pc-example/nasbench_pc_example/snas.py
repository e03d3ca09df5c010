# nasbench_pc_example/snas.py
"""The ``snas`` method: a DARTS-family member written outside nasbench-pc, in one file.

SNAS (Xie et al., ICLR 2019) relaxes each edge's choice with a soft Gumbel-softmax sample, drawn anew on every
forward: w = softmax((alpha + g) / tau), g standard Gumbel noise. Its temperature falls linearly from ``tau0`` to
``tau_min`` over ``anneal_epochs`` and stays there (the authors' Temp_Scheduler: 1 -> 0.03 over 150 epochs). The
search is bi-level, as DrNAS' SNAS baseline runs it; SNAS' own single-level loop and resource term are left out.
"""

from __future__ import annotations

import torch

from nasbench_pc import hookimpl
from nasbench_pc.interfaces import Method, SearchHParams
from nasbench_pc.schedules import linear
from nasbench_pc.settings import at_least, declare, positive_finite


class SoftGumbel:
    """The search hooks: the temperature from the epoch, a soft Gumbel-softmax draw per forward."""

    def __init__(self, tau0: float, tau_min: float, anneal_epochs: int):
        self.tau0, self.tau_min, self.anneal_epochs = tau0, tau_min, anneal_epochs
        self.tau = tau0

    def epoch_start(self, *, epoch: int, epochs: int, supernet: object) -> dict[str, float]:
        self.tau = linear(epoch, start=self.tau0, end=self.tau_min, length=self.anneal_epochs)
        return {"tau": self.tau}  # lands in the epoch's metrics.jsonl line under "method"

    def arch_weights(self, alphas: torch.Tensor) -> torch.Tensor:
        gumbels = -torch.empty_like(alphas).exponential_().log()
        return torch.softmax((alphas + gumbels) / self.tau, dim=-1)


@hookimpl
def register_methods() -> dict[str, Method]:
    return {
        "snas": Method(
            name="snas",
            description="SNAS-style soft Gumbel-softmax relaxation, temperature 1 -> 0.03 (bi-level)",
            sampler="full",
            normalizer="none",
            order=1,
            hparams=SearchHParams(batch_size=64, lr=0.025, lr_min=0.001, arch_lr=3e-4, epochs=150),
            settings=(
                declare("tau0", 1.0, "Temperature at epoch 0.", check=positive_finite()),
                declare("tau_min", 0.03, "Temperature reached at anneal_epochs.", check=positive_finite()),
                declare("anneal_epochs", 150, "Epochs over which the temperature falls.", check=at_least(1)),
            ),
            hooks=SoftGumbel,
        ),
    }
