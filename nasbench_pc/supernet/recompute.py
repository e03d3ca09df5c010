"""Cells recomputed in backward instead of saving their activations (a space's recomputation option, DARTS'
``checkpoint_cells``): :func:`run_cell` and :func:`recomputed_cells`, bit for bit the plain path's."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.utils.checkpoint import get_device_states, set_device_states

from nasbench_pc.supernet.mixed_op import Sampled


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
    samples = {i: a for i, a in enumerate(inputs) if isinstance(a, Sampled)}
    if samples:  # a sampled method's draw: its weights tensor goes in as an input, so its gradient comes back
        cell = _Resampled(cell, samples)
        inputs = tuple(a.weights if i in samples else a for i, a in enumerate(inputs))
    return _RecomputedCell.apply(cell, params, len(inputs), *inputs, *params)


class _Resampled(nn.Module):
    """A cell called with each :class:`Sampled` input rebuilt around the tensor given in its place."""

    def __init__(self, cell: nn.Module, samples: dict[int, Sampled]):
        super().__init__()
        self.cell, self.samples = cell, samples

    def forward(self, *inputs: Any) -> torch.Tensor:
        return self.cell(*(self.samples[i].with_weights(a) if i in self.samples else a for i, a in enumerate(inputs)))


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
