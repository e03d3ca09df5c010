"""DARTS- (Chu et al., ICLR 2021): DARTS with an auxiliary skip on every edge whose weight decays to nothing.

Every edge of every cell computes ``sum_o softmax(alpha)_o op_o(x) + beta * aux(x)`` (darts-family-facts.md 7.1):
aux is a skip connection outside the softmax (the identity on a stride-1 edge, a FactorizedReduce of its own,
trained with the weights, on a stride-2 one: a fresh copy of the space's ``skip_connect`` op). beta is one number
shared by all edges, set at the start of each epoch: ``skip_beta * (decay_epochs - e) / decay_epochs`` in the
reference's linear decay, so 1 at epoch 0 and 0.02 at epoch 49 of 50 (zero is never reached inside the search),
recorded each epoch. The branch is active in the architecture step, the weight step and the architecture-split
evaluation, and never part of the derived cell, which the DARTS rule reads from alpha (facts 7.2).

Choices where the reference is silent (facts 7.6): with partial channels the branch runs on the edge's sampled C/K
slice, beside its ops (the bypassed channels are already an unweighted identity path); with edge normalization it
sits inside the edge, so the edge's normalized beta scales it too. On NAS-Bench-201, where the repository has no
code, the benchmark's DARTS settings are used with the same 50-epoch decay, and aux is the identity (every edge
there has stride 1).
"""

from __future__ import annotations

from nasbench_pc import hookimpl
from nasbench_pc.interfaces import Method
from nasbench_pc.plugins.darts import DARTS_HPARAMS, NB201_HPARAMS
from nasbench_pc.schedules import value_at
from nasbench_pc.settings import at_least, finite_at_least_zero
from nasbench_pc.settings import declare as setting


class AuxiliarySkip:
    """The search hooks: every edge's auxiliary skip and its coefficient from the epoch."""

    aux_op = "skip_connect"

    def __init__(self, skip_beta: float, decay_epochs: int, decay: str):
        self.skip_beta, self.decay_epochs, self.decay = skip_beta, decay_epochs, decay
        self.aux_coefficient = skip_beta

    def epoch_start(self, *, epoch: int, epochs: int, supernet: object) -> dict[str, float]:
        self.aux_coefficient = value_at(epoch, start=self.skip_beta, end=0.0, length=self.decay_epochs,
                                        shape=self.decay)
        return {"aux_coefficient": self.aux_coefficient}


@hookimpl
def register_methods() -> dict[str, Method]:
    return {"darts-minus": Method(
        name="darts-minus",
        description="DARTS-: DARTS (first order) with an auxiliary skip on every edge, its weight decaying 1 -> 0",
        sampler="full",
        normalizer="none",
        order=1,
        hparams=DARTS_HPARAMS,
        space_hparams={"nas-bench-201": NB201_HPARAMS},
        settings=(
            setting("skip_beta", 1.0, "Weight of the auxiliary skip at epoch 0.", check=finite_at_least_zero()),
            setting("decay_epochs", 50, "Epoch at which the weight would reach 0 (the reference: 50).",
                    check=at_least(1)),
            setting("decay", "linear", "Shape of the decay: linear (the reference's run script), cosine, or "
                    "constant (no decay).", choices=("linear", "cosine", "constant")),
        ),
        hooks=AuxiliarySkip,
    )}
