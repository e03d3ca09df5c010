"""How a supernet turns its architecture parameters into the weights its edges multiply: the method's to choose.

DARTS relaxes each edge's choice of op with softmax(alpha). The rest of the family chooses otherwise: DrNAS draws
the weights from a Dirichlet, GDAS a hard Gumbel sample, SDARTS runs the weight step on perturbed probabilities.
A supernet built from this kit asks :meth:`Relaxed.op_weights` for an alphas tensor's weights on every forward,
and the method's hooks object (:attr:`nasbench_pc.records.Method.hooks`) answers through its optional
``arch_weights(alphas)``: a stochastic relaxation draws anew on every call, so the architecture step and the weight
step see independent samples (the invariant the family's references keep). Without that hook it is softmax.

:meth:`Relaxed.fixed_weights` pins the weights for a block of code (SDARTS' perturbed probabilities in the weight
step); the architecture step never runs inside it. Derive rules read the parameters themselves
(:meth:`Relaxed.alpha_parameters`), never a sample.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasbench_pc.errors import PluginError


class Relaxed:
    """Mixin for an ``nn.Module`` supernet whose edges weigh their ops by :meth:`op_weights` of its alphas.

    ``relaxation`` is the method's hooks object (set by :func:`nasbench_pc.api.create_supernet`); its
    ``arch_weights(alphas) -> weights`` replaces softmax when present.
    """

    relaxation: Any = None
    _fixed: dict[int, torch.Tensor] | None = None

    def alpha_parameters(self) -> list[nn.Parameter]:
        """The op-choice parameters (one (edges, ops) tensor per cell type), without the edge-normalization betas."""
        raise NotImplementedError

    def op_weights(self, alphas: torch.Tensor) -> torch.Tensor:
        """The weights the edges multiply their ops by: the pinned ones inside :meth:`fixed_weights`, else the
        method's ``arch_weights(alphas)``, else softmax over the ops."""
        if self._fixed is not None:
            return self._fixed[id(alphas)]
        activation = getattr(self.relaxation, "arch_weights", None)
        if activation is None:
            return F.softmax(alphas, dim=-1)
        weights = activation(alphas)
        if not isinstance(weights, torch.Tensor) or weights.shape != alphas.shape:
            raise PluginError(f"The method's arch_weights hook returned {type(weights).__name__} of shape "
                              f"{tuple(getattr(weights, 'shape', ()))} for alphas of shape {tuple(alphas.shape)}; it "
                              f"returns one weight per alpha.")
        return weights

    def probabilities(self) -> list[torch.Tensor]:
        """softmax(alpha) of each :meth:`alpha_parameters` tensor (what SDARTS perturbs), detached."""
        return [F.softmax(a.detach(), dim=-1) for a in self.alpha_parameters()]

    @contextmanager
    def fixed_weights(self, weights: Sequence[torch.Tensor]) -> Iterator[None]:
        """Inside the block every forward uses ``weights`` (one per :meth:`alpha_parameters` tensor, same shapes)."""
        alphas = self.alpha_parameters()
        if len(weights) != len(alphas) or any(w.shape != a.shape for w, a in zip(weights, alphas, strict=False)):
            raise PluginError(f"fixed_weights needs one tensor per alphas tensor, shaped "
                              f"{[tuple(a.shape) for a in alphas]}; got {[tuple(w.shape) for w in weights]}.")
        previous = self._fixed
        self._fixed = {id(a): w for a, w in zip(alphas, weights, strict=True)}
        try:
            yield
        finally:
            self._fixed = previous
