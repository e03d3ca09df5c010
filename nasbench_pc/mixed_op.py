"""The continuous relaxation of one edge, shared by every search space.

A :class:`MixedOp` sums its candidate ops weighted by softmax(alpha). Two kinds of op get
exact shortcuts: :class:`Zero` (the 'none' op, whose term and gradient are zero) is skipped,
and :class:`ReLUOp`\\ s (ops of the form ``body(relu(x))``) share one ReLU of the input, the
same arithmetic with one activation kept for backward instead of one per op. A space whose
ops subclass these gets both for free. :class:`WeightParameters` gives a supernet the weight side of the
:class:`~nasbench_pc.interfaces.Supernet` protocol from its ``arch_parameters()``, and :func:`run_cell` runs a
cell with its activations recomputed in backward (a space's ``checkpoint_cells`` option).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.utils.checkpoint import get_device_states, set_device_states

from nasbench_pc import stacking
from nasbench_pc.errors import ConfigError


class ReLUOp(nn.Module):
    """An op of the form ``body(relu(x))``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_activated(torch.relu(x))

    def forward_activated(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def chain(self) -> list[nn.Module] | None:
        """The layers ``forward_activated`` applies in turn, when it is such a chain (Conv2d, BatchNorm2d, ReLU,
        pooling): then edges reading the same input run this op together (:mod:`nasbench_pc.stacking`)."""
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
        #: the layout its stacked forward runs in: True channels-last, False the default, None the device's
        #: (nasbench_pc.stacking.device_layout); a supernet's ``channels_last`` sets it on all its edges
        self.channels_last: bool | None = None

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        activated = None
        out = None
        for w, op in zip(weights, self._ops):
            if isinstance(op, Zero):
                continue
            if isinstance(op, ReLUOp):
                if activated is None:
                    activated = torch.relu(x)
                y = op.forward_activated(activated)
            else:
                y = op(x)
            out = w * y if out is None else out + w * y
        return out

    @classmethod
    def forward_stacked(cls, edges: Sequence[MixedOp], x: torch.Tensor,
                        weights: torch.Tensor) -> list[torch.Tensor] | None:
        """``[edge(x, weights[e]) for e, edge in enumerate(edges)]``, each candidate op run for all the edges at
        once (:mod:`nasbench_pc.stacking`); None when the edges' ops differ in kind."""
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
        return list(stacking.keep_layout(out).chunk(n, dim=1))


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


class _BuffersKept:
    """Leaves a module's buffers as they were on entry. A cell recomputed in backward runs its forward again in
    train mode, which would update its BatchNorm running statistics (and count) a second time."""

    def __init__(self, module: nn.Module):
        self.module = module
        self.buffers: list[torch.Tensor] = []
        self.saved: list[torch.Tensor] = []

    def __enter__(self) -> None:
        self.buffers = list(self.module.buffers())
        self.saved = [b.clone() for b in self.buffers]

    def __exit__(self, *exc: object) -> None:
        with torch.no_grad():
            torch._foreach_copy_(self.buffers, self.saved)
        self.buffers, self.saved = [], []


def recomputed_cells(reductions: Sequence[bool]) -> int:
    """How many cells, from the first, a supernet whose cells halve the resolution where ``reductions`` says
    recomputes in backward (``checkpoint_cells``): all but those after the last reduction, and never the last cell.

    The cells of the last stage run at the lowest resolution with the most channels: as much arithmetic as any other
    cell for the smallest activations (a quarter of a first-stage cell's in DARTS), so recomputing them would save
    little memory for a full cell's time. Backward starts with the last cell, so its activations would be rebuilt at
    once: the same peak, only time."""
    last_stage = max((i + 1 for i, reduction in enumerate(reductions) if reduction), default=len(reductions))
    return min(last_stage, len(reductions) - 1)


def run_cell(cell: nn.Module, *inputs: Any, recompute: bool) -> torch.Tensor:
    """``cell(*inputs)``; with ``recompute`` (and autograd on) the cell's inner activations are not saved for
    backward but recomputed there from its inputs (:class:`_RecomputedCell`), with the same random draws and
    autocast settings and without a second update of its buffers, so outputs, gradients and running statistics are
    the plain path's bit for bit (tests/test_checkpoint_cells.py)."""
    if not recompute or not torch.is_grad_enabled():
        return cell(*inputs)
    params = [p for p in cell.parameters() if p.requires_grad]
    return _RecomputedCell.apply(cell, params, len(inputs), *inputs, *params)


class _RecomputedCell(torch.autograd.Function):
    """A cell run without autograd in forward, keeping only its inputs; backward runs it again with autograd and
    back-propagates through that graph at once (its parameters are inputs of this node, so their gradients reach
    both ``.backward()`` and ``torch.autograd.grad``).

    torch.utils.checkpoint (non-reentrant), used before, does the same through Python hooks on every tensor the
    cell saves for backward, thousands per DARTS step: a fixed cost per step, whatever the batch, that was most of
    the recomputation's overhead beyond the forward itself. Here that overhead is one node per cell.

    Bit for bit: the gradient of a tensor the cell reads is summed inside the cell before it joins the other reads
    of that tensor. In our supernets a tensor crossing a cell boundary is read by at most two cells (a sum of two
    does not depend on its order; the DARTS supernet gives the CIFAR stem's output a view of its own for that),
    and the architecture weights are read once per entry within a cell, so every sum is the plain path's.
    Differentiable once: a double backward through a recomputed cell raises."""

    @staticmethod
    def forward(ctx: Any, cell: nn.Module, params: list[nn.Parameter], n: int, *args: Any) -> torch.Tensor:
        inputs = args[:n]
        tensors = [a for a in inputs if isinstance(a, torch.Tensor)]
        device = tensors[0].device.type if tensors else "cpu"
        ctx.cell, ctx.params = cell, params
        ctx.slots = [(isinstance(a, torch.Tensor), None if isinstance(a, torch.Tensor) else a,
                      isinstance(a, torch.Tensor) and a.requires_grad) for a in inputs]
        ctx.autocast = [(kind, torch.is_autocast_enabled(kind), torch.get_autocast_dtype(kind))
                        for kind in dict.fromkeys((device, "cpu"))]
        ctx.rng_cpu = torch.get_rng_state()
        ctx.rng_devices, ctx.rng_states = get_device_states(*tensors)
        ctx.save_for_backward(*tensors)
        return cell(*inputs)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        saved = iter(ctx.saved_tensors)
        inputs = [next(saved).detach().requires_grad_(needs) if is_tensor else other
                  for is_tensor, other, needs in ctx.slots]
        targets = [x for x, (_, _, needs) in zip(inputs, ctx.slots) if needs] + ctx.params
        # buffers are restored after the gradients: autograd checks the version of the running statistics it saved
        with _BuffersKept(ctx.cell):
            with contextlib.ExitStack() as stack:
                stack.enter_context(torch.random.fork_rng(devices=ctx.rng_devices))
                torch.set_rng_state(ctx.rng_cpu)
                set_device_states(ctx.rng_devices, ctx.rng_states)
                for kind, enabled, dtype in ctx.autocast:
                    stack.enter_context(torch.autocast(kind, dtype=dtype, enabled=enabled))
                stack.enter_context(torch.enable_grad())
                out = ctx.cell(*inputs)
            grads = iter(torch.autograd.grad(out, targets, grad, allow_unused=True) if targets else ())
        input_grads = [next(grads) if needs else None for _, _, needs in ctx.slots]
        return (None, None, None, *input_grads, *grads)
