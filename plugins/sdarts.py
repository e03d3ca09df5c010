"""SDARTS (Chen & Hsieh, ICML 2020): DARTS whose weight step runs on perturbed architecture weights.

After the (unperturbed, first-order) architecture step, the weight step sees P' = clip(P + delta) instead of
P = softmax(alpha) (darts-family-facts.md 4.1): ``sdarts-rs`` draws delta ~ U(-eps, eps) per entry, ``sdarts-adv``
takes 7 sign-gradient ascent steps of the weight step's loss from a random start within the L-inf ball of radius
eps (step 2 eps / 7), in eval mode (BatchNorm on running statistics), and keeps P when the attack did not raise the
loss. ``clip`` is the reference's: clamp each edge's row to [0, 1], a row left all zero gets its pre-clamp argmax
set to 1, then the row is divided by its sum. eps grows 0.03 -> eps_max over the search, ``0.03 + (eps_max - 0.03)
* e / T``, never quite reaching eps_max (recorded each epoch). alpha is never updated from the perturbation.

On the DARTS space the search runs on the reference's ``s5`` op set, the 7 ops without 'none' (the space's
``drop_none`` option, which ``--space-option drop_none=false`` turns off).

Choices where the reference is silent (facts 4.6): with edge normalization only the op probabilities are perturbed,
not the edges' softmax(beta). The reference's grad-clip norm also covers the NB201 alphas' weight-step gradients;
here, as for every method, it covers the weights alone. Under data parallelism each process attacks with its own
shard's gradient (the reference runs on one GPU).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from nasbench_pc import hookimpl
from nasbench_pc.interfaces import Method
from nasbench_pc.plugins.darts import DARTS_HPARAMS, FAMILY_NB201_HPARAMS
from nasbench_pc.schedules import linear
from nasbench_pc.settings import at_least, positive_finite
from nasbench_pc.settings import declare as setting

EPS_START = 0.03


def clip(p: torch.Tensor) -> torch.Tensor:
    """The reference ``clip``: each row clamped to [0, 1], an all-zero row given its pre-clamp argmax, normalised."""
    clamped = p.clamp(0.0, 1.0)
    empty = clamped.sum(dim=-1) == 0
    if bool(empty.any()):
        top = torch.nn.functional.one_hot(p.argmax(dim=-1), p.shape[-1]).to(p.dtype)
        clamped = torch.where(empty[:, None], top, clamped)
    return clamped / clamped.sum(dim=-1, keepdim=True)


def random_perturbation(probabilities: list[torch.Tensor], eps: float) -> list[torch.Tensor]:
    """SDARTS-RS: P + U(-eps, eps) entrywise, clipped back."""
    return [clip(p + (torch.rand_like(p) * 2 - 1) * eps) for p in probabilities]


def pgd_perturbation(probabilities: list[torch.Tensor], eps: float, loss_at: Callable[[list[torch.Tensor]], Any],
                     steps: int = 7) -> list[torch.Tensor]:
    """SDARTS-ADV's attack (the reference ``Linf_PGD_alpha``): random start, ``steps`` sign-ascent steps of size
    2 eps / steps projected onto the eps ball around P and clipped; P itself when the loss did not rise."""
    start = [p.detach() for p in probabilities]
    with torch.no_grad():
        before = float(loss_at(start))
    current = random_perturbation(start, eps)
    for _ in range(steps):
        current = [c.detach().requires_grad_(True) for c in current]
        grads = torch.autograd.grad(loss_at(current), current)
        with torch.no_grad():
            current = [clip(p0 + (c + 2 * eps / steps * g.sign() - p0).clamp(-eps, eps))
                       for p0, c, g in zip(start, current, grads, strict=True)]
    with torch.no_grad():
        after = float(loss_at(current))
    return start if before > after else [c.detach() for c in current]


class Perturbation:
    """The search hooks: eps from the epoch, the weight step's perturbed weights."""

    def __init__(self, eps_max: float, attack: bool, pgd_steps: int = 7):
        self.eps_max, self.attack, self.pgd_steps = eps_max, attack, pgd_steps
        self.eps = EPS_START

    def epoch_start(self, *, epoch: int, epochs: int, supernet: Any) -> dict[str, float]:
        self.eps = linear(epoch, start=EPS_START, end=self.eps_max, length=epochs)
        return {"epsilon": self.eps}

    def perturb_weights(self, *, supernet: Any, probabilities: list[torch.Tensor],
                        loss_at: Callable[[list[torch.Tensor]], Any]) -> list[torch.Tensor]:
        if not self.attack:
            return random_perturbation(probabilities, self.eps)
        supernet.eval()  # the reference attacks with BatchNorm on its running statistics
        try:
            return pgd_perturbation(probabilities, self.eps, loss_at, self.pgd_steps)
        finally:
            supernet.train()


def _rs(eps_max: float) -> Perturbation:
    return Perturbation(eps_max, attack=False)


def _adv(eps_max: float, pgd_steps: int) -> Perturbation:
    return Perturbation(eps_max, attack=True, pgd_steps=pgd_steps)


_EPS = setting("eps_max", 0.3, "Perturbation radius heading for this (0.03 at epoch 0, linear over the search).",
               check=positive_finite())


@hookimpl
def register_methods() -> dict[str, Method]:
    common: dict[str, Any] = dict(sampler="full", normalizer="none", order=1, hparams=DARTS_HPARAMS,
                                  space_hparams={"nas-bench-201": FAMILY_NB201_HPARAMS},
                                  space_options={"darts": {"drop_none": True}})  # the reference's s5: 7 ops
    return {
        "sdarts-rs": Method(name="sdarts-rs", description="SDARTS-RS: the weight step on randomly perturbed "
                            "architecture weights (U(-eps, eps))", settings=(_EPS,), hooks=_rs, **common),
        "sdarts-adv": Method(name="sdarts-adv", description="SDARTS-ADV: the weight step on adversarially "
                             "perturbed architecture weights (7-step PGD)",
                             settings=(_EPS, setting("pgd_steps", 7, "Steps of the attack.", check=at_least(1))),
                             hooks=_adv, **common),
    }
