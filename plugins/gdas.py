"""GDAS (Dong & Yang, CVPR 2019): each edge runs one op, drawn per forward by a hard Gumbel sample.

On every forward (darts-family-facts.md 2.1, AutoDL's ``search_model_gdas.py``): Gumbel noise g = -log(E),
E ~ Exponential(1); p = softmax((log_softmax(alpha) + g) / tau); the edge runs op k = argmax p alone, weighted by
h = onehot(k) - stopgrad(p) + p (value exactly one-hot, the gradient of p). A draw with an infinite or NaN entry
is drawn again. tau only shapes the gradient: k ~ Categorical(softmax(alpha)) whatever tau. One draw per cell type
and forward, shared by its cells, so the architecture step, the weight step and the architecture-split evaluation
each see their own sample (the recorded ``arch_acc`` is a sampled-architecture estimate, as the reference logs).

tau falls linearly from tau_max (10) at the first epoch to tau_min (0.1) at the last (AutoDL's endpoint
convention), recorded each epoch. The derived cell reads alpha itself: on NAS-Bench-201 the argmax over all 5 ops,
'none' included; on the DARTS space the DARTS rule (AutoDL's NASNet derive may keep two ops on one input; we keep
DARTS' two distinct edges, facts 2.3).

Choices, per space (``auto`` settings; facts 2.2, 2.7):
- ``edge_gradient``: ``every-op`` on NAS-Bench-201 (AutoDL's ``forward_gdas``: the ops not drawn add their weight
  as a scalar of value 0, so each alpha learns from every step), ``sampled-op`` on the DARTS space (AutoDL's
  ``MixedOp.forward_gdas``: h_k * op_k(x) alone; the gradient still reaches every alpha through p's softmax).
- ``step_order``: the weight step first on NAS-Bench-201 (AutoDL's ``GDAS.py``), the architecture step first on
  the DARTS space (the 2019 GDAS code).

Left out on purpose: AutoDL's SGD is Nesterov and its gradient-clip norm also counts the alphas' weight-step
gradients; here, as for every method, the weights use plain momentum SGD and the clip covers the weights alone.
With edge normalization (no reference; confopt's choice) the edge's output, scalars included, is scaled by its
normalized beta.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nasbench_pc import hookimpl
from nasbench_pc.interfaces import Method, SearchHParams
from nasbench_pc.schedules import linear
from nasbench_pc.settings import declare as setting
from nasbench_pc.settings import positive_finite

#: AutoDL's NAS-Bench-201 GDAS (``scripts-search/NAS-Bench-201-algos/GDAS.sh`` + ``GDAS.config``): 250 epochs,
#: batch 64, SGD 0.025 cosine to 0.001, weight decay 5e-4; Adam 3e-4 (0.5, 0.999), weight decay 1e-3
NB201_HPARAMS = SearchHParams(batch_size=64, lr=0.025, lr_min=0.001, weight_decay=5e-4, epochs=250, arch_lr=3e-4,
                              arch_weight_decay=1e-3, warmup_epochs=0)
#: AutoDL's DARTS-space GDAS (``NASNet-space-search-by-GDAS.sh``): the same, at batch 256
DARTS_SPACE_HPARAMS = SearchHParams(batch_size=256, lr=0.025, lr_min=0.001, weight_decay=5e-4, epochs=250,
                                    arch_lr=3e-4, arch_weight_decay=1e-3, warmup_epochs=0)


def gumbel_hard(alphas: torch.Tensor, tau: float) -> torch.Tensor:
    """One hard Gumbel draw per row: one-hot in value, the gradient of softmax((log_softmax(alphas) + g) / tau).
    The noise is ``-log`` of an Exponential(1) draw made with ``exponential_`` (AutoDL's call, so a seeded draw
    equals the reference's); a draw with an infinite or NaN entry is made again."""
    while True:
        gumbels = -torch.empty_like(alphas).exponential_().log()
        probs = F.softmax((alphas.log_softmax(dim=-1) + gumbels) / tau, dim=-1)
        if not (torch.isinf(gumbels).any() or torch.isinf(probs).any() or torch.isnan(probs).any()):
            break
    one_hot = torch.zeros_like(probs).scatter_(-1, probs.max(-1, keepdim=True)[1], 1.0)
    return one_hot - probs.detach() + probs


class GumbelSampling:
    """The search hooks: the temperature from the epoch, a hard Gumbel draw per forward, one op per edge."""

    edge_mode = "sampled"

    def __init__(self, tau_max: float, tau_min: float, edge_gradient: str, step_order: str, space: str = ""):
        self.tau_max, self.tau_min = tau_max, tau_min
        self.tau = tau_max
        nb201 = space == "nas-bench-201"
        self.scalar_grad = edge_gradient == "every-op" or (edge_gradient == "auto" and nb201)
        weight_first = step_order == "weight-then-arch" or (step_order == "auto" and nb201)
        self.step_order = "weight_then_arch" if weight_first else "arch_then_weight"

    def epoch_start(self, *, epoch: int, epochs: int, supernet: object) -> dict[str, float]:
        self.tau = linear(epoch, start=self.tau_max, end=self.tau_min, length=epochs - 1)
        return {"tau": self.tau}

    def arch_weights(self, alphas: torch.Tensor) -> torch.Tensor:
        return gumbel_hard(alphas, self.tau)


@hookimpl
def register_methods() -> dict[str, Method]:
    return {"gdas": Method(
        name="gdas",
        description="GDAS: one op per edge, drawn by a hard Gumbel sample (temperature 10 -> 0.1)",
        sampler="full",
        normalizer="none",
        order=1,
        hparams=DARTS_SPACE_HPARAMS,
        space_hparams={"nas-bench-201": NB201_HPARAMS},
        settings=(
            setting("tau_max", 10.0, "Gumbel temperature at the first epoch.", check=positive_finite()),
            setting("tau_min", 0.1, "Gumbel temperature at the last epoch (linear in between).",
                    check=positive_finite()),
            setting("edge_gradient", "auto", "What the ops not drawn get: every-op (a scalar term, value 0, so "
                    "every alpha learns each step; AutoDL's NAS-Bench-201 cell) or sampled-op (the drawn op's "
                    "term alone; its DARTS-space cell). auto: every-op on nas-bench-201, sampled-op elsewhere.",
                    choices=("auto", "every-op", "sampled-op")),
            setting("step_order", "auto", "weight-then-arch (AutoDL's NAS-Bench-201 search) or arch-then-weight "
                    "(DARTS', the 2019 GDAS code). auto: the first on nas-bench-201, the second elsewhere.",
                    choices=("auto", "weight-then-arch", "arch-then-weight")),
        ),
        hooks=GumbelSampling,
    )}
