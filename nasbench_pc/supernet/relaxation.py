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

A method whose hooks say ``edge_mode = "sampled"`` (GDAS) runs one op per edge: its ``arch_weights`` returns weights
that are one-hot in value (a hard sample, straight-through gradient), and :meth:`Relaxed.op_weights` hands the edges
a :class:`Sampled` draw, so each :class:`~nasbench_pc.supernet.MixedOp` computes the chosen op alone, forward and
backward. With ``scalar_grad = True`` every other op's weight is added to the edge's output as a scalar (value 0),
so its gradient is the sum of the output's gradient: AutoDL's NAS-Bench-201 GDAS edge, which lets every alpha
learn from each step rather than the sampled one alone (darts-family-facts.md 2.2).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasbench_pc.errors import PluginError
from nasbench_pc.supernet.mixed_op import Sampled, attach_aux_branches


class Relaxed:
    """Mixin for an ``nn.Module`` supernet whose edges weigh their ops by :meth:`op_weights` of its alphas.

    ``relaxation`` is the method's hooks object (set by :func:`nasbench_pc.api.create_supernet`); its
    ``arch_weights(alphas) -> weights`` replaces softmax when present.
    """

    relaxation: Any = None
    _fixed: dict[int, torch.Tensor] | None = None
    #: per alphas tensor, which ops each edge still searches (None: all); set by :meth:`prune`
    op_masks: list[torch.Tensor] | None = None

    def alpha_parameters(self) -> list[nn.Parameter]:
        """The op-choice parameters (one (edges, ops) tensor per cell type), without the edge-normalization betas."""
        raise NotImplementedError

    def op_weights(self, alphas: torch.Tensor) -> torch.Tensor | Sampled:
        """The weights the edges multiply their ops by: the pinned ones inside :meth:`fixed_weights`, else the
        method's ``arch_weights(alphas)``, else softmax over the ops; a :class:`Sampled` draw when the method's
        ``edge_mode`` is ``"sampled"`` (each edge's op is the argmax of its weights)."""
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
        weights = self.masked(weights, alphas)
        if getattr(self.relaxation, "edge_mode", "weighted") == "sampled":
            index = weights.detach().argmax(dim=-1).tolist()  # one host sync per cell type and forward
            return Sampled(weights, index, bool(getattr(self.relaxation, "scalar_grad", False)))
        return weights

    def masked(self, weights: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
        """``weights`` of ``alphas`` with the pruned ops at exactly 0 and each edge's row renormalised to its old
        sum (DrNAS' masked Dirichlet sample; a masked softmax for softmax); unchanged before any pruning."""
        if self.op_masks is None:
            return weights
        index = next(i for i, a in enumerate(self.alpha_parameters()) if a is alphas)
        mask = self.op_masks[index].to(weights.device)
        kept = weights * mask
        return kept * (weights.sum(dim=-1, keepdim=True) / kept.sum(dim=-1, keepdim=True))

    def prune(self, keep: int) -> list[torch.Tensor]:
        """Keep the ``keep`` largest alphas of every edge among the ops it still has (DrNAS' ``prune``: the pruned
        alphas are set to 0 and keep their optimizer state, but never weigh an op again); their ops stop running.
        Returns the masks (True: kept), one per alphas tensor."""
        masks = []
        with torch.no_grad():
            for i, alphas in enumerate(self.alpha_parameters()):
                previous = None if self.op_masks is None else self.op_masks[i].to(alphas.device)
                score = alphas.detach().clone() if previous is None else alphas.detach().masked_fill(~previous, -1e6)
                if not 1 <= keep <= alphas.shape[-1]:
                    raise PluginError(f"A stage keeps {keep} ops per edge, but the edges have {alphas.shape[-1]}.")
                top = score.topk(keep, dim=-1).indices
                mask = torch.zeros_like(alphas, dtype=torch.bool).scatter_(-1, top, True)
                alphas.masked_fill_(~mask, 0.0)
                masks.append(mask.cpu())
        self.set_op_masks(masks)
        return masks

    def set_op_masks(self, masks: list[torch.Tensor]) -> None:
        """Which ops each edge still searches (one bool tensor per alphas tensor), on the weights and the MixedOps."""
        self.op_masks = [m.cpu() for m in masks]
        for index, rows in enumerate(self.mixed_ops_by_row()):
            for row, ops in enumerate(rows):
                for mixed in ops:
                    mixed.active = self.op_masks[index][row].tolist()

    def mixed_ops_by_row(self) -> list[list[list[nn.Module]]]:
        """Per alphas tensor, per row (edge), the MixedOps that row weighs (one per cell of its type)."""
        raise NotImplementedError(f"{type(self).__name__} cannot prune: it does not list its MixedOps by alphas row.")

    def set_k(self, k: int) -> list[Any]:
        """Every partial-channel edge samples 1/k of its channels from now on (DrNAS' stages), its MixedOp widened
        (:func:`nasbench_pc.supernet.widen.widen_into`); returns the widened parameters for the optimizer."""
        edges = [m for m in self.modules() if m is not self and hasattr(m, "set_k")]
        if not edges:
            raise PluginError(f"The method's stages change K to {k}, but this supernet's edges do not sample part of "
                              f"their channels: search it with --sampler partial.")
        widened = []
        for edge in edges:
            widened += edge.set_k(k)
        if self.op_masks is not None:
            self.set_op_masks(self.op_masks)
        return widened

    def attach_aux_branches(self, primitives: Sequence[str], op: str, schedule: object) -> int:
        """Every edge also adds ``schedule.aux_coefficient * op(x)`` (DARTS-' auxiliary skip):
        :func:`nasbench_pc.supernet.mixed_op.attach_aux_branches` on this supernet."""
        return attach_aux_branches(self, primitives, op, schedule)

    def method_genotype(self) -> Any | None:
        """The method's own derive rule (its hooks' ``derive(supernet=...)``: FairDARTS' threshold), or None for
        the space's. A space's ``genotype()`` asks this first."""
        derive = getattr(self.relaxation, "derive", None)
        return None if derive is None else derive(supernet=self)

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
