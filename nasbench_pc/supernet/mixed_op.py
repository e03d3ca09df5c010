"""The continuous relaxation of one edge, shared by every search space.

A :class:`MixedOp` sums its candidate ops weighted by softmax(alpha). Two kinds of op get
exact shortcuts: :class:`Zero` (the 'none' op, whose term and gradient are zero) is skipped,
and :class:`ReLUOp`\\ s (ops of the form ``body(relu(x))``) share one ReLU of the input, the
same arithmetic with one activation kept for backward instead of one per op. A space whose
ops subclass these gets both for free. :class:`WeightParameters` gives a supernet the weight side of the
:class:`~nasbench_pc.interfaces.Supernet` protocol from its ``arch_parameters()``. Cell recomputation (a
space's ``checkpoint_cells`` option) is :mod:`nasbench_pc.supernet.recompute`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from nasbench_pc.errors import ConfigError
from nasbench_pc.supernet import _stacking as stacking


class Sampled:
    """One draw of a sampled relaxation for a cell type's edges, or (indexed) for one edge: ``weights`` (one-hot in
    value, with the gradient of the relaxation's probabilities), ``index`` (the op each edge runs) and
    ``scalar_grad`` (add the other ops' weights as scalars, AutoDL's NAS-Bench-201 form). Indexed like the weights
    tensor it replaces: by an edge, or by a list of edges."""

    __slots__ = ("weights", "index", "scalar_grad")

    def __init__(self, weights: torch.Tensor, index: list[int] | int, scalar_grad: bool):
        self.weights, self.index, self.scalar_grad = weights, index, scalar_grad

    def __getitem__(self, key: int | list[int]) -> Sampled:
        if isinstance(key, list):
            return Sampled(self.weights[key], [self.index[k] for k in key], self.scalar_grad)
        return Sampled(self.weights[key], self.index[key], self.scalar_grad)

    def __len__(self) -> int:
        return len(self.index)

    def __iter__(self) -> Iterator[Sampled]:
        return (self[e] for e in range(len(self)))

    def with_weights(self, weights: torch.Tensor) -> Sampled:
        return Sampled(weights, self.index, self.scalar_grad)


class ReLUOp(nn.Module):
    """An op of the form ``body(relu(x))``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_activated(torch.relu(x))

    def forward_activated(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def chain(self) -> list[nn.Module] | None:
        """The layers ``forward_activated`` applies in turn, when it is such a chain (Conv2d, BatchNorm2d, ReLU,
        pooling): then edges reading the same input run this op together (:mod:`nasbench_pc.supernet._stacking`)."""
        return None


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The 'none' op: a zero tensor of the output shape."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class MixedOp(nn.Module):
    """One edge's continuous relaxation: sum over candidate ops of softmax(alpha)_o * o(x).

    Exact shortcuts keep it cheaper than the reference: the 'none' op is skipped (its term
    is identically zero, and so is its gradient), and the ReLU that several ops start with
    is computed once and shared. Activations keep PyTorch's default layout: a channels-last copy made
    the CPU depthwise convolutions faster but drove oneDNN's AVX2 strided 1x1 backward kernel into
    heap corruption (docs/benchmarks.md, "channels-last on CPU").
    """

    def __init__(self, ops: list[nn.Module]):
        super().__init__()
        if all(isinstance(op, Zero) for op in ops):
            raise ConfigError("A mixed edge needs at least one candidate op besides 'none'.")
        self._ops = nn.ModuleList(ops)
        #: the method's auxiliary branch (DARTS-), added to the edge's output outside the op weights, or None
        self.aux: AuxBranch | None = None
        #: per candidate op, whether it is still searched (None: all are); a pruned op (DrNAS' stages) never runs
        self.active: list[bool] | None = None
        #: the layout its stacked forward runs in: True channels-last, False the default, None the device's
        #: (nasbench_pc.supernet._stacking.device_layout); a supernet's ``channels_last`` sets it on all its edges
        self.channels_last: bool | None = None

    def forward(self, x: torch.Tensor, weights: torch.Tensor | Sampled) -> torch.Tensor:
        out = self.forward_sampled(x, weights) if isinstance(weights, Sampled) else self.forward_weighted(x, weights)
        return out if self.aux is None else out + self.aux(x)

    def forward_weighted(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """sum over the ops of weight * op(x), 'none' skipped and the shared ReLU computed once."""
        activated = None
        out = None
        for o, (w, op) in enumerate(zip(weights, self._ops)):
            if isinstance(op, Zero) or (self.active is not None and not self.active[o]):
                continue
            if isinstance(op, ReLUOp):
                if activated is None:
                    activated = torch.relu(x)
                y = op.forward_activated(activated)
            else:
                y = op(x)
            out = w * y if out is None else out + w * y
        return out

    def forward_sampled(self, x: torch.Tensor, sample: Sampled) -> torch.Tensor:
        """The sampled op alone, times its weight (value 1, the relaxation's gradient): the ops not drawn cost
        nothing. With ``scalar_grad`` the other ops' weights (value 0) are added as scalars in op order, as AutoDL's
        NAS-Bench-201 GDAS cell does, so each gets the sum of the output's gradient."""
        k = sample.index
        if not sample.scalar_grad:
            return sample.weights[k] * self._ops[k](x)
        out = None
        for o, op in enumerate(self._ops):
            term = sample.weights[o] * op(x) if o == k else sample.weights[o]
            out = term if out is None else out + term
        return out

    @classmethod
    def forward_stacked(cls, edges: Sequence[MixedOp], x: torch.Tensor,
                        weights: torch.Tensor | Sampled) -> list[torch.Tensor] | None:
        """``[edge(x, weights[e]) for e, edge in enumerate(edges)]``, each candidate op run for all the edges at
        once (:mod:`nasbench_pc.supernet._stacking`); None when the edges' ops differ in kind, or for a sampled
        draw (each edge runs its own op)."""
        if isinstance(weights, Sampled) or any(edge.active is not None for edge in edges):
            return None  # each edge runs its own op, or its own ops left after pruning
        columns = list(zip(*(edge._ops for edge in edges)))
        if len({len(edge._ops) for edge in edges}) != 1 or any(len({type(op) for op in ops}) != 1 for ops in columns) \
                or len({edge.channels_last for edge in edges}) != 1:
            return None
        n = len(edges)
        x = stacking.fast_layout(x, edges[0].channels_last)
        inputs = {False: stacking.Shared(x, n)}  # and True: the ReLU of x, which several ops start with
        out = None
        for o, ops in enumerate(columns):
            if isinstance(ops[0], Zero):
                continue
            activated = isinstance(ops[0], ReLUOp)
            if activated not in inputs:
                inputs[True] = stacking.Shared(torch.relu(x), n)
            term = _stack_op(ops, inputs[activated], weights[:, o], activated=activated)
            out = term if out is None else out + term
        outs = list(stacking.keep_layout(out).chunk(n, dim=1))
        if any(edge.aux is not None for edge in edges):
            x = inputs[False].x
            outs = [y if edge.aux is None else y + edge.aux(x) for edge, y in zip(edges, outs, strict=True)]
        return outs


class AuxBranch(nn.Module):
    """An edge's auxiliary branch (DARTS-' skip): ``coefficient * op(x)``, outside the op weights, with the
    coefficient read from ``schedule.aux_coefficient`` (the method's hooks, which set it each epoch). Its weights,
    if the op has any (a FactorizedReduce on a stride-2 edge), are trained with the supernet's; the derived network
    never has it."""

    def __init__(self, op: nn.Module, schedule: object):
        super().__init__()
        self.op = op
        self.schedule = schedule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.schedule.aux_coefficient * self.op(x)


def attach_aux_branches(supernet: nn.Module, primitives: Sequence[str], op: str, schedule: object) -> int:
    """Give every MixedOp of ``supernet`` an :class:`AuxBranch` running a fresh copy (parameters drawn anew) of its
    candidate ``op``, on the edge's input (with partial channels: on its sampled slice). Returns how many edges got
    one."""
    if op not in primitives:
        raise ConfigError(f"The method's auxiliary branch is the op {op!r}, which this search space does not have "
                          f"(its ops: {', '.join(primitives)}).")
    index = list(primitives).index(op)
    edges = [m for m in supernet.modules() if isinstance(m, MixedOp)]
    for edge in edges:
        branch = copy.deepcopy(edge._ops[index])
        for module in branch.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        edge.aux = AuxBranch(branch, schedule)
    return len(edges)


def _stack_op(ops: Sequence[nn.Module], x: stacking.Shared, weights: torch.Tensor, activated: bool) -> torch.Tensor:
    """One candidate op of every edge on their shared input (``activated``: the ReLU already applied), each edge's
    block of channels times its weight."""
    first = ops[0]
    own = getattr(type(first), "forward_stacked", None)
    if own is not None:
        out = own(ops, x)
        if out is not None:
            return stacking.weighted(*out, weights)
    else:
        if activated:
            chains = [op.chain() for op in ops]
        elif isinstance(first, nn.Sequential):
            chains = [list(op) for op in ops]
        else:
            chains = [[op] for op in ops]
        term = None if any(chain is None for chain in chains) else stacking.stack_chain(chains, x, weights)
        if term is not None:
            return term
    y = torch.cat([op.forward_activated(x.x) if activated else op(x.x) for op in ops], dim=1)
    return stacking.weighted(y, True, weights)


class WeightParameters:
    """For an ``nn.Module`` supernet with ``arch_parameters()``: every other parameter, the weights."""

    def named_weight_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """The weights with their names, in registration order (the reference's), the arch parameters left out."""
        arch = {id(p) for p in self.arch_parameters()}
        return [(n, p) for n, p in self.named_parameters() if id(p) not in arch]

    def weight_parameters(self) -> list[nn.Parameter]:
        """What the weight optimiser trains: every parameter except the arch parameters."""
        return [p for _, p in self.named_weight_parameters()]


class StackedLayout:
    """For an ``nn.Module`` supernet: ``channels_last``, the memory layout its stacked edges run in (True
    channels-last, False PyTorch's default, None: the layout chosen for the device, ``stacking.device_layout``,
    which on CPU is channels-last where this machine's kernels passed the layout check). Set on a supernet, it is set
    on each of its MixedOps; two supernets in one process may differ."""

    @property
    def channels_last(self) -> bool | None:
        settings = {m.channels_last for m in self.modules() if isinstance(m, MixedOp)}
        return settings.pop() if len(settings) == 1 else None

    @channels_last.setter
    def channels_last(self, value: bool | None) -> None:
        for module in self.modules():
            if isinstance(module, MixedOp):
                module.channels_last = value
