"""DrNAS (Chen et al., ICLR 2021): the op weights of each edge are a Dirichlet sample.

Every forward draws w_e ~ Dirichlet(elu(theta_e) + 1) per edge, one draw per cell type shared by its cells, with
the pathwise (reparameterised) gradient (darts-family-facts.md 3.1): the architecture step, the weight step and the
architecture-split evaluation each see their own sample, as in the reference (so the recorded ``arch_acc`` is a
sampled-architecture estimate). The derived cell reads softmax(theta), never a sample (3.2). The anchor (3.3):
``reg_type=l2`` (the reference's default) is the Adam weight decay on theta (``arch_weight_decay``, 1e-3);
``reg_type=kl`` instead adds ``reg_scale * sum over edges KL(Dir(c_e) || Dir(1))`` to the architecture loss and
turns the weight decay off.

This is the reference's one-stage NAS-Bench-201 search (``201-space/train_search.py``: 100 epochs, every channel,
the 5 ops). Its DARTS-space search is progressive (two stages that prune ops and change K, 7 ops without 'none',
searched at C=36 / 20 cells), which needs stage plans this harness does not have yet, so ``drnas`` runs on
NAS-Bench-201 only and says so when given another space.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.distributions import Dirichlet, kl_divergence

from nasbench_pc import hookimpl
from nasbench_pc.interfaces import Method
from nasbench_pc.plugins.darts import FAMILY_NB201_HPARAMS
from nasbench_pc.settings import declare as setting
from nasbench_pc.settings import finite_at_least_zero


def concentration(theta: torch.Tensor) -> torch.Tensor:
    """elu(theta) + 1: positive, and 1 (the uniform Dirichlet) at theta = 0."""
    return F.elu(theta) + 1


def kl_to_uniform(thetas: list[torch.Tensor]) -> torch.Tensor:
    """sum over the edges of every theta tensor of KL(Dir(elu(theta_e) + 1) || Dir(1))."""
    terms = []
    for theta in thetas:
        c = concentration(theta)
        terms.append(kl_divergence(Dirichlet(c), Dirichlet(torch.ones_like(c))).sum())
    return torch.stack(terms).sum()


class DirichletRelaxation:
    """The search hooks: a Dirichlet sample per forward; the KL anchor or Adam's weight decay."""

    def __init__(self, reg_type: str, reg_scale: float):
        self.reg_type, self.reg_scale = reg_type, reg_scale

    def arch_weights(self, alphas: torch.Tensor) -> torch.Tensor:
        return Dirichlet(concentration(alphas)).rsample()

    def arch_optimizer(self, *, parameters: list[torch.nn.Parameter], lr: float, weight_decay: float
                       ) -> torch.optim.Optimizer:
        return torch.optim.Adam(parameters, lr=lr, betas=(0.5, 0.999),
                                weight_decay=0.0 if self.reg_type == "kl" else weight_decay)

    def arch_loss(self, *, supernet: Any) -> torch.Tensor | None:
        if self.reg_type != "kl":
            return None
        return self.reg_scale * kl_to_uniform(supernet.alpha_parameters())


@hookimpl
def register_methods() -> dict[str, Method]:
    return {"drnas": Method(
        name="drnas",
        description="DrNAS: Dirichlet-sampled op weights (one-stage NAS-Bench-201 search)",
        space="nas-bench-201",
        spaces=("nas-bench-201",),
        sampler="full",
        normalizer="none",
        order=1,
        hparams=FAMILY_NB201_HPARAMS,
        settings=(
            setting("reg_type", "l2", "Anchor to the uniform Dirichlet: l2 (Adam weight decay on theta, the "
                    "reference's default) or kl (a KL term on the architecture loss; the weight decay is then off).",
                    choices=("l2", "kl")),
            setting("reg_scale", 1e-3, "Weight of the KL term (reg_type=kl).", check=finite_at_least_zero()),
        ),
        hooks=DirichletRelaxation,
    )}
