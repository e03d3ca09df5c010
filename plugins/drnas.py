"""DrNAS (Chen et al., ICLR 2021): the op weights of each edge are a Dirichlet sample, searched in stages.

Every forward draws w_e ~ Dirichlet(elu(theta_e) + 1) per edge, one draw per cell type shared by its cells, with
the pathwise (reparameterised) gradient (darts-family-facts.md 3.1): the architecture step, the weight step and the
architecture-split evaluation each see their own sample, as in the reference (so the recorded ``arch_acc`` is a
sampled-architecture estimate). The derived cell reads softmax(theta), never a sample (3.2). The anchor (3.3):
``reg_type=l2`` (the reference's default) is the Adam weight decay on theta (``arch_weight_decay``, 1e-3);
``reg_type=kl`` instead adds ``reg_scale * sum over edges KL(Dir(c_e) || Dir(1))`` to the architecture loss and
turns the weight decay off.

Two searches, as the reference has them (facts 3.4), by the ``stages`` setting (``auto``: progressive on the DARTS
space, its only search there; one stage on NAS-Bench-201, ``201-space/train_search.py``):
- ``one``: every channel (K=1), all ops, no warm-up (NAS-Bench-201: 100 epochs).
- ``progressive``: two halves of the epochs. DARTS space (``DARTS-space/train_search.py``): K=6 on the 7 ops without
  'none', then each edge keeps its 4 largest theta and K becomes 4; NAS-Bench-201 (``train_search_progressive.py``):
  K=4 on the 5 ops, then 3 ops and K=2. Each stage starts with 2/5 (DARTS space; 10 of 25 epochs) or 1/5
  (NAS-Bench-201; 10 of 50) of its epochs without architecture steps. At the boundary the pruned theta are set to 0
  (their weight is exactly 0 from then on, their ops never run), the MixedOps are rebuilt for the new K and widened
  from the old ones by copying channels without rescaling (Net2Wider, as the reference; one random pick per widened
  MixedOp, the reference draws per layer), and SGD is rebuilt with its momentum carried and widened alike; the
  cosine schedule runs on over all the epochs.

The DARTS-space search is the reference's: 50 epochs, batch 64, SGD 0.1 cosine to 0, Adam 6e-4, seed 2, on the
supernet it searches at evaluation size (C=36, 20 cells; the space options ``--init-channels``/``--layers`` change
it, to multiples of 12 channels so that K=6 and K=4 divide them).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.distributions import Dirichlet, kl_divergence

from nasbench_pc import hookimpl
from nasbench_pc.interfaces import Method, SearchHParams, Stage
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


#: DARTS-space/train_search.py: 25 + 25 epochs, K 6 -> 4, 7 ops -> 4 per edge, 10 epochs of warm-up in each stage
DARTS_STAGES = (Stage(0.5, k=6, warmup=0.4), Stage(0.5, k=4, keep=4, warmup=0.4))
#: 201-space/train_search_progressive.py: 50 + 50 epochs, K 4 -> 2, 5 ops -> 3, 10 epochs of warm-up in each stage
NB201_STAGES = (Stage(0.5, k=4, warmup=0.2), Stage(0.5, k=2, keep=3, warmup=0.2))
#: DARTS-space/train_search.py's settings
DARTS_SPACE_HPARAMS = SearchHParams(batch_size=64, lr=0.1, lr_min=0.0, weight_decay=3e-4, epochs=50, arch_lr=6e-4,
                                    arch_weight_decay=1e-3, warmup_epochs=0, seed=2)


class DirichletRelaxation:
    """The search hooks: a Dirichlet sample per forward; the KL anchor or Adam's weight decay; the stages."""

    def __init__(self, reg_type: str, reg_scale: float, stages: str = "auto", space: str = ""):
        self.reg_type, self.reg_scale = reg_type, reg_scale
        progressive = stages == "progressive" or (stages == "auto" and space != "nas-bench-201")
        self.stages = (NB201_STAGES if space == "nas-bench-201" else DARTS_STAGES) if progressive else None

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
        description="DrNAS: Dirichlet-sampled op weights; progressive stages (prune ops, lower K) on the DARTS space",
        sampler="partial",
        sampler_options={"k": 1},  # every channel; a progressive search starts at its first stage's K
        normalizer="none",
        order=1,
        hparams=DARTS_SPACE_HPARAMS,
        space_hparams={"nas-bench-201": FAMILY_NB201_HPARAMS},
        space_options={"darts": {"drop_none": True, "init_channels": 36, "layers": 20}},
        settings=(
            setting("reg_type", "l2", "Anchor to the uniform Dirichlet: l2 (Adam weight decay on theta, the "
                    "reference's default) or kl (a KL term on the architecture loss; the weight decay is then off).",
                    choices=("l2", "kl")),
            setting("reg_scale", 1e-3, "Weight of the KL term (reg_type=kl).", check=finite_at_least_zero()),
            setting("stages", "auto", "one (every channel, all ops) or progressive (two stages: prune ops, lower "
                    "K). auto: progressive on the DARTS space, one on nas-bench-201, as the reference scripts.",
                    choices=("auto", "one", "progressive")),
        ),
        hooks=DirichletRelaxation,
    )}
