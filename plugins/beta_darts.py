"""beta-DARTS (Ye et al., CVPR 2022): DARTS with the beta-decay regulariser on the architecture step.

The architecture loss gets ``lam_e * mean over edges of logsumexp_o(a_e,o)`` (the reference's ``mlc_loss``), whose
gradient ``lam * softmax(a_e) / |E|`` decays each alpha in proportion to its weight; the weight step never sees it
(darts-family-facts.md 6.2). The reference hard-codes ``lam_e = 50 * e / 100`` whatever the search's length; here
``lam_max`` and ``lam_epochs`` say it (defaults 50 and 100: the reference's 0.5 per epoch), recorded each epoch.

Choices where the reference is silent (facts 6.5, 6.7): on the DARTS space, whose released beta-DARTS scripts do not
run, the mean is over all 28 edges of both cell types together (the NB201 code's mean over its one alphas tensor,
extended); with edge normalization the betas are not regularised (only the op parameters a are); the Adam weight
decay 1e-3 stays on, as in the reference.
"""

from __future__ import annotations

from typing import Any

import torch

from nasbench_pc import hookimpl
from nasbench_pc.interfaces import Method
from nasbench_pc.plugins.darts import DARTS_HPARAMS, FAMILY_NB201_HPARAMS
from nasbench_pc.schedules import linear
from nasbench_pc.settings import at_least, finite_at_least_zero
from nasbench_pc.settings import declare as setting


def beta_decay(alphas: list[torch.Tensor]) -> torch.Tensor:
    """The mean over every edge of every alphas tensor of logsumexp over its ops."""
    return torch.cat([a.logsumexp(dim=-1) for a in alphas]).mean()


class BetaDecay:
    """The search hooks: lam from the epoch, the regulariser on the architecture step."""

    def __init__(self, lam_max: float, lam_epochs: int):
        self.lam_max, self.lam_epochs = lam_max, lam_epochs
        self.lam = 0.0

    def epoch_start(self, *, epoch: int, epochs: int, supernet: Any) -> dict[str, float]:
        self.lam = linear(epoch, start=0.0, end=self.lam_max, length=self.lam_epochs)
        return {"beta_decay_lambda": self.lam}

    def arch_loss(self, *, supernet: Any) -> torch.Tensor:
        return self.lam * beta_decay(supernet.alpha_parameters())


@hookimpl
def register_methods() -> dict[str, Method]:
    return {"beta-darts": Method(
        name="beta-darts",
        description="beta-DARTS: DARTS (first order) with the beta-decay regulariser on the architecture loss",
        sampler="full",
        normalizer="none",
        order=1,
        hparams=DARTS_HPARAMS,
        space_hparams={"nas-bench-201": FAMILY_NB201_HPARAMS},
        settings=(
            setting("lam_max", 50.0, "Weight of the beta-decay loss reached at epoch lam_epochs (linear from 0).",
                    check=finite_at_least_zero()),
            setting("lam_epochs", 100, "Epoch at which the weight reaches lam_max (the reference: 100, whatever "
                    "the search's length).", check=at_least(1)),
        ),
        hooks=BetaDecay,
    )}
