"""The architecture step of the bilevel search (the reference ``architect.py``).

First order: the architecture-split loss is back-propagated to the architecture parameters.
Second order (DARTS "unrolled"): the gradient is taken at a virtual SGD step of the weights,
``w' = w - eta * (momentum * buf + dw L_train + wd * w)``, and corrected by a finite-difference
Hessian-vector product::

    grad = da L_val(w') - eta * (da L_train(w+) - da L_train(w-)) / (2R),
    w± = w ± R * dw' L_val(w'),  R = 0.01 / ||dw' L_val(w')||

Both use Adam(betas=(0.5, 0.999)) on the architecture parameters, after clipping the gradient's
norm to ``grad_clip`` when one is given (the reference ImageNet search clips it to 5, the CIFAR
search does not). ``loss_fn(model, batch)`` gives the loss of a batch in the precision it is called
in; ``reduce`` sums gradients over data-parallel ranks (identity on one process), so the loss
should already be divided by the global batch size.

A method may add terms to the architecture loss (``extra_loss(model)``: beta-DARTS' beta-decay, DrNAS' KL anchor):
they enter the architecture step only, never the weight step; and it may bring its own optimizer for the
architecture parameters (``optimizer``: FairDARTS' Adam betas).

Mixed precision: the first-order loss runs inside ``autocast()`` (e.g. bf16 autocast), but the
second-order gradient always runs in float32: its finite difference moves the weights by
``R * v`` with ``R = 0.01 / ||v||``, a step below bf16's resolution, so under bf16 the
Hessian-vector product would be rounding noise.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

Batch = Any
LossFn = Callable[[nn.Module, Batch], torch.Tensor]
Reduce = Callable[[Sequence[torch.Tensor]], None]
Autocast = Callable[[], contextlib.AbstractContextManager]
ExtraLoss = Callable[[nn.Module], "torch.Tensor | None"]


def _no_reduce(tensors: Sequence[torch.Tensor]) -> None:
    return None


def _grads(loss: torch.Tensor, params: Sequence[torch.Tensor], reduce: Reduce) -> list[torch.Tensor]:
    """d loss / d params, zeros for parameters the loss does not reach, summed over ranks."""
    grads = torch.autograd.grad(loss, list(params), allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params, strict=True)]
    reduce(grads)
    return grads


class Architect:
    """Updates ``model.arch_parameters()`` from architecture-split batches."""

    def __init__(self, model: nn.Module, *, arch_lr: float, arch_weight_decay: float, order: int,
                 momentum: float, weight_decay: float, loss_fn: LossFn, reduce: Reduce = _no_reduce,
                 hvp_radius: float = 1e-2, grad_clip: float | None = None,
                 autocast: Autocast = contextlib.nullcontext, extra_loss: ExtraLoss | None = None,
                 optimizer: torch.optim.Optimizer | None = None):
        if order not in (1, 2):
            raise ValueError(f"architecture gradient order must be 1 or 2, got {order}")
        self.model = model
        self.order = order
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.loss_fn = loss_fn
        self.reduce = reduce
        self.hvp_radius = hvp_radius  # r of R = r / ||v||; 0.01 in the reference
        self.grad_clip = grad_clip
        self.autocast = autocast
        self.extra_loss = extra_loss
        self.optimizer = optimizer or torch.optim.Adam(model.arch_parameters(), lr=arch_lr, betas=(0.5, 0.999),
                                                       weight_decay=arch_weight_decay)

    def arch_loss(self, model: nn.Module, arch_batch: Batch) -> torch.Tensor:
        """The architecture-split loss of ``model`` plus the method's terms on its architecture parameters."""
        loss = self.loss_fn(model, arch_batch)
        extra = None if self.extra_loss is None else self.extra_loss(model)
        return loss if extra is None else loss + extra

    def step(self, train_batch: Batch, arch_batch: Batch, *, eta: float,
             weight_optimizer: torch.optim.Optimizer) -> torch.Tensor:
        """One Adam step of the architecture parameters; returns the architecture-split loss (detached)."""
        if self.order == 1:
            with self.autocast():
                loss = self.arch_loss(self.model, arch_batch)
            grads = _grads(loss, self.model.arch_parameters(), self.reduce)
        else:
            loss, grads = self.unrolled_gradient(train_batch, arch_batch, eta=eta, weight_optimizer=weight_optimizer)
        self.optimizer.zero_grad(set_to_none=True)
        for p, g in zip(self.model.arch_parameters(), grads, strict=True):
            p.grad = g
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.arch_parameters(), self.grad_clip)
        self.optimizer.step()
        return loss.detach()

    def unrolled_gradient(self, train_batch: Batch, arch_batch: Batch, *, eta: float,
                          weight_optimizer: torch.optim.Optimizer) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The second-order architecture gradient (see the module docstring) and the unrolled arch loss,
        in float32 (never under ``autocast``)."""
        model = self.model
        weights = model.weight_parameters()
        # virtual step w' = w - eta * (momentum * buf + dw + wd * w), on a deep copy of the supernet
        dw = _grads(self.loss_fn(model, train_batch), weights, self.reduce)
        unrolled = copy.deepcopy(model)
        with torch.no_grad():
            for w, w_new, g in zip(weights, unrolled.weight_parameters(), dw, strict=True):
                buf = weight_optimizer.state.get(w, {}).get("momentum_buffer")
                moment = torch.zeros_like(w) if buf is None else self.momentum * buf
                w_new.copy_(w - eta * (moment + g + self.weight_decay * w))
        unrolled_loss = self.arch_loss(unrolled, arch_batch)
        arch_new, weights_new = unrolled.arch_parameters(), unrolled.weight_parameters()
        grads = _grads(unrolled_loss, [*arch_new, *weights_new], self.reduce)
        dalpha, vector = grads[:len(arch_new)], grads[len(arch_new):]
        implicit = self.hessian_vector_product(vector, train_batch, self.hvp_radius)
        return unrolled_loss, [g - eta * h for g, h in zip(dalpha, implicit, strict=True)]

    def hessian_vector_product(self, vector: Sequence[torch.Tensor], train_batch: Batch,
                               r: float = 1e-2) -> list[torch.Tensor]:
        """(da L_train(w + R v) - da L_train(w - R v)) / (2R) with R = r / ||v||; leaves w unchanged."""
        model = self.model
        weights, arch = model.weight_parameters(), model.arch_parameters()
        radius = r / torch.cat([v.flatten() for v in vector]).norm()
        with torch.no_grad():
            for w, v in zip(weights, vector, strict=True):
                w.add_(v, alpha=radius.item())
        grads_pos = _grads(self.loss_fn(model, train_batch), arch, self.reduce)
        with torch.no_grad():
            for w, v in zip(weights, vector, strict=True):
                w.sub_(v, alpha=2 * radius.item())
        grads_neg = _grads(self.loss_fn(model, train_batch), arch, self.reduce)
        with torch.no_grad():
            for w, v in zip(weights, vector, strict=True):
                w.add_(v, alpha=radius.item())
        return [(p - n) / (2 * radius) for p, n in zip(grads_pos, grads_neg, strict=True)]
