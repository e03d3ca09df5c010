"""Edges that read the same state, run together: one convolution over their stacked weights.

In a DARTS or NAS-Bench-201 cell several edges read each state (in a DARTS cell, each cell input feeds
four edges), and each edge runs the same candidate ops on it with weights of its own. Run one edge at a
time, a search step is thousands of small convolutions and batch norms, each paying PyTorch's and
oneDNN's fixed cost per call; at PC-DARTS' C/K channels that cost is most of the step. Here the edges
that read one tensor run as one: a convolution with their weights concatenated (a grouped convolution
once their inputs differ), a batch norm over their channels side by side, and a parameter-free op (a
pool, the identity) once for all of them. Every output channel is computed from the same inputs and
weights as on its own edge, so outputs and gradients are the plain path's up to float summation order
(tests/test_stacking.py compares them at small and default widths, on 1 and 2 threads). Running
statistics are written back to each edge's own batch norm, so a state dict is the same either way.

On CPU the stacked edges also run channels-last, where oneDNN's depthwise and pointwise kernels are several times
faster than in PyTorch's default layout, but only on a machine where :mod:`nasbench_pc.supernet._layout_check` has run
those
kernels against the plain path and found them equal. The layout is a property of a supernet, not of the process:
each :class:`~nasbench_pc.supernet.mixed_op.MixedOp` has a ``channels_last`` setting (a supernet's ``channels_last``
sets all of its edges'), and None, the default, takes the layout chosen for the tensor's device
(:func:`device_layout`: checked once per device type and process, the check itself kept per machine), so a supernet
built with ``create_supernet`` runs the kernels a search runs; the kernel
that once corrupted the heap (FactorizedReduce's stride-2 1x1 backward on AVX2) is always given a
default-layout input. Channels-last, PyTorch's batch norm and pooling kernels slow down sharply below 16 and 8
channels, the widths PC-DARTS edges have; there :class:`_NarrowBatchNorm` and :func:`_pool` take over (the same
functions, tested against the layers). Each edge's softmax weight is applied per channel in 4-D (:func:`weighted`),
folded into an op's last batch norm where it has no affine parameters.

What stacks: a :class:`~nasbench_pc.supernet.mixed_op.MixedOp` whose ops are, per candidate, of one class on every
edge, and each op either parameter-free, a chain of ``Conv2d``/``BatchNorm2d``/``ReLU``/pooling layers
(:meth:`ReLUOp.chain <nasbench_pc.supernet.mixed_op.ReLUOp.chain>`), or a class with a ``forward_stacked``
classmethod of its own. Anything else runs edge by edge, as does everything inside :func:`plain_path`.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nasbench_pc.supernet import _layout_check as layout_check

_enabled = [True]
_channels_last: dict[str, bool] = {}  # device type -> whether its stacked edges run channels-last, once decided


@contextlib.contextmanager
def plain_path() -> Iterator[None]:
    """Run every edge on its own inside this block (the reference's way), to compare with or to rule out."""
    previous = _enabled[0]
    _enabled[0] = False
    try:
        yield
    finally:
        _enabled[0] = previous


def use_channels_last(device: str | torch.device, enable: bool = True) -> None:
    """Make channels-last (or the default layout) the layout of stacked edges on ``device``'s type, for every
    edge whose ``channels_last`` is None. On CPU, only after
    :func:`nasbench_pc.supernet._layout_check.channels_last_verdict`
    passed (:func:`prepare` and :func:`device_layout` do that); tests and benchmarks force either layout with it."""
    _channels_last[torch.device(device).type] = enable


def device_layout(device: str | torch.device) -> bool:
    """Whether stacked edges on ``device`` run channels-last by default: decided the first time it is asked in a
    process (the layout check's kept verdict, :func:`prepare`), unless set already."""
    kind = torch.device(device).type
    if kind not in _channels_last:
        prepare(device)
    return _channels_last[kind]


def prepare(device: str | torch.device) -> layout_check.Verdict:
    """Choose the stacked edges' layout for ``device``: channels-last where :mod:`nasbench_pc.supernet._layout_check`
    finds
    this machine's kernels safe and right (CPU), else the default layout. Returns the verdict."""
    verdict = layout_check.channels_last_verdict(device)
    use_channels_last(device, verdict.ok)
    return verdict


def fast_layout(x: torch.Tensor, channels_last: bool | None = None) -> torch.Tensor:
    """``x`` in the layout stacked edges run in: channels-last or not as ``channels_last`` says, None: the layout
    of its device (:func:`device_layout`)."""
    wanted = device_layout(x.device) if channels_last is None else channels_last
    return x.contiguous(memory_format=torch.channels_last) if wanted else x


class _LayoutInBackward(torch.autograd.Function):
    """Identity whose backward hands the gradient on in the forward tensor's channels-last layout: the gradient
    of a stacked output comes back through ``chunk`` in the default layout, and oneDNN's batch norm and
    convolution backward run several times slower when gradient and input layouts differ."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous(memory_format=torch.channels_last)


def keep_layout(x: torch.Tensor) -> torch.Tensor:
    """``x``, its gradient made channels-last in backward when ``x`` is channels-last (see _LayoutInBackward)."""
    if x.requires_grad and _is_channels_last(x):
        return _LayoutInBackward.apply(x)
    return x


def _is_channels_last(x: torch.Tensor) -> bool:
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def run_edges(edges: Sequence[nn.Module], x: torch.Tensor, weights: torch.Tensor) -> list[torch.Tensor]:
    """``[edge(x, weights[e]) for e, edge in enumerate(edges)]`` for edges that all read ``x``: together when
    their class has a ``forward_stacked(edges, x, weights)`` that accepts them, else one by one."""
    if _enabled[0] and len(edges) > 1 and len({type(edge) for edge in edges}) == 1:
        forward_stacked = getattr(type(edges[0]), "forward_stacked", None)
        if forward_stacked is not None:
            out = forward_stacked(edges, x, weights)
            if out is not None:
                return out
    return [edge(x, w) for edge, w in zip(edges, weights)]


class Shared:
    """The one input every edge reads, and its copy repeated edge by edge along channels, made once when a layer
    first needs it (the depthwise convs of several ops then share one copy, saved once for backward)."""

    def __init__(self, x: torch.Tensor, n: int):
        self.x, self.n = x, n
        self._repeated: torch.Tensor | None = None

    def repeated(self) -> torch.Tensor:
        if self._repeated is None:
            self._repeated = _repeat(self.x, self.n)
        return self._repeated


Stacked = tuple[torch.Tensor, bool]
"""A tensor and whether it is stacked: (B, n*C, H, W), edge by edge along channels; else one (B, C, H, W) that
every edge shares."""


_descriptions: weakref.WeakKeyDictionary[nn.Module, str] = weakref.WeakKeyDictionary()


def _describe(layer: nn.Module) -> str:
    """The layer's class and settings (its repr), worked out once per layer: building reprs on every call was a large
    share of a stacked forward's Python time."""
    description = _descriptions.get(layer)
    if description is None:
        description = _descriptions[layer] = f"{type(layer).__module__}.{type(layer).__qualname__}: {layer!r}"
    return description


def _same(layers: Sequence[nn.Module]) -> bool:
    return len({_describe(layer) for layer in layers}) == 1


def _stateless(module: nn.Module) -> bool:
    return next(module.parameters(), None) is None and next(module.buffers(), None) is None


def stackable(layers: Sequence[nn.Module]) -> bool:
    """Whether :func:`stack_layer` can run these layers (one per edge) together: torch's own layer classes only (a
    subclass, such as the data-parallel GlobalBatchNorm2d, has a forward of its own that stacking would skip)."""
    first = layers[0]
    if not _same(layers):
        return False
    if type(first) is nn.Conv2d:
        return first.padding_mode == "zeros" and isinstance(first.padding, tuple)
    if type(first) is nn.BatchNorm2d:
        return first.momentum is not None and (first.running_mean is None) == (not first.track_running_stats)
    return type(first) in (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d) or (_stateless(first) and not first._forward_hooks
                                                                  and not first._forward_pre_hooks)


def stack_layer(layers: Sequence[nn.Module], state: tuple[torch.Tensor | Shared, bool]) -> Stacked:
    """One layer of every edge's chain, run together (layers checked by :func:`stackable`) on ``state``: a stacked
    tensor, or the :class:`Shared` input of them all."""
    x, stacked = state
    first, n = layers[0], len(layers)
    shared = x if isinstance(x, Shared) else Shared(x, n)
    if type(first) is nn.Conv2d:
        weight = torch.cat([layer.weight for layer in layers])
        bias = None if first.bias is None else torch.cat([layer.bias for layer in layers])
        if not stacked and first.groups == 1:  # every edge reads all of x: their filters side by side
            return F.conv2d(shared.x, weight, bias, first.stride, first.padding, first.dilation, 1), True
        if not stacked:
            x = shared.repeated()
        if first.stride != (1, 1) and first.dilation != (1, 1) and _is_channels_last(x):
            # oneDNN's channels-last backward of dilated strided convs is 2-2.5x slower than the default layout's
            out = F.conv2d(x.contiguous(), weight, bias, first.stride, first.padding, first.dilation, first.groups * n)
            return out.contiguous(memory_format=torch.channels_last), True
        return F.conv2d(x, weight, bias, first.stride, first.padding, first.dilation, first.groups * n), True
    if type(first) is nn.BatchNorm2d:
        return batch_norm(layers, x if stacked else shared.repeated()), True
    # ReLU, pooling, identity: channel by channel, the same function on every edge
    if type(first) in (nn.MaxPool2d, nn.AvgPool2d):
        return (_pool(first, x), True) if stacked else (_pool(first, shared.x), False)
    return (first(x), True) if stacked else (first(shared.x), False)


def _pool(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` for a pooling layer. Channels-last with fewer than 8 channels, PyTorch's pooling kernels
    (which vectorise over channels) run up to 5x slower than when the images are laid side by side as the channels
    of one image, (1, B*C, H, W) channels-last; so they are, pooled, and laid back: the same values and gradients,
    bit for bit (benchmarks/stacked_kernels.py times both)."""
    if not (_is_channels_last(x) and x.shape[1] < 8):
        return layer(x)
    b, c, h, w = x.shape
    out = layer(x.permute(2, 3, 0, 1).reshape(1, h, w, b * c).permute(0, 3, 1, 2))
    h, w = out.shape[2:]
    return out.permute(0, 2, 3, 1).reshape(h, w, b, c).permute(2, 3, 0, 1).contiguous(memory_format=torch.channels_last)


def _repeat(x: torch.Tensor, n: int) -> torch.Tensor:
    """``x.repeat(1, n, 1, 1)``, in ``x``'s memory layout."""
    if not _is_channels_last(x):
        return x.repeat(1, n, 1, 1)
    b, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).unsqueeze(3).expand(b, h, w, n, c).reshape(b, h, w, n * c).permute(0, 3, 1, 2)


def weighted(y: torch.Tensor, stacked: bool, weights: torch.Tensor) -> torch.Tensor:
    """Edge e's block of channels times ``weights[e]``: of the stacked ``y``, or of the shared ``y`` repeated for each
    edge. Kept 4-D, in ``y``'s layout: a 5-D (B, edges, C, H, W) view of a channels-last tensor has the edges and
    channels both innermost, and a broadcast over them ran up to 11x slower forward and backward
    (benchmarks/stacked_kernels.py)."""
    n = len(weights)
    if stacked:
        return y * weights.repeat_interleave(y.shape[1] // n).view(1, -1, 1, 1)
    if not (_is_channels_last(y) and _full_precision(y, weights)):
        return (y.unsqueeze(1) * weights.view(1, n, 1, 1, 1)).flatten(1, 2)
    # a 1x1 convolution whose filter for channel j of edge e picks channel j with weight weights[e] (the other
    # products are exact zeros): the repeat and the product in one pass, channels-last
    c = y.shape[1]
    eye = torch.eye(c, dtype=y.dtype, device=y.device)
    return F.conv2d(y, (weights.view(n, 1, 1) * eye).reshape(n * c, c, 1, 1))


def _full_precision(x: torch.Tensor, weights: torch.Tensor) -> bool:
    """Whether a product with ``weights`` may be folded into a layer on ``x``: under autocast, or with ``x`` in a
    lower precision than the weights, the plain path's product promotes to the weights' precision, and a folded one
    would round to the layer's."""
    return x.dtype == weights.dtype and not torch.is_autocast_enabled(x.device.type)


def stack_chain(chains: Sequence[Sequence[nn.Module]], x: Shared, weights: torch.Tensor) -> torch.Tensor | None:
    """Run equal chains of layers (one chain per edge) on their shared input together, each edge's output times its
    weight (folded into a final batch norm without affine parameters); None if they cannot be."""
    if len({len(chain) for chain in chains}) != 1 or not all(stackable(layers) for layers in zip(*chains)):
        return None
    *layers, last = list(zip(*chains))
    state: tuple[torch.Tensor | Shared, bool] = (x, False)
    for layer in layers:
        state = stack_layer(layer, state)
    y, stacked = state
    if type(last[0]) is nn.BatchNorm2d and not last[0].affine:
        out = None if stacked else shared_batch_norm(last, y.x if isinstance(y, Shared) else y)
        if out is not None:  # every edge normalised the same tensor, once
            return weighted(out, False, weights)
        if stacked and _full_precision(y, weights):
            return batch_norm(last, y, weights)
    y, stacked = stack_layer(last, state)
    return weighted(y.x if isinstance(y, Shared) else y, stacked, weights)


def batch_norm(layers: Sequence[nn.BatchNorm2d], x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """``nn.BatchNorm2d.forward`` of each layer on its block of channels of ``x``, in one call; the running
    statistics are read from and written back to each layer. With ``scale`` (one per layer, for layers without
    affine parameters) each block comes out multiplied by its layer's scale, the product done inside the norm."""
    first, n = layers[0], len(layers)
    if scale is not None:
        if first.affine:
            raise ValueError("a scale folds only into batch norms without affine parameters")
        scale = scale.repeat_interleave(x.shape[1] // n)
    weight = torch.cat([layer.weight for layer in layers]) if first.affine else scale
    bias = torch.cat([layer.bias for layer in layers]) if first.affine else None
    if _batch_statistics(first):
        out, mean, var = _normalize(x, weight, bias, first.eps)
        _update_running(layers, list(mean.chunk(n)), list(var.chunk(n)))
        return out
    mean = torch.cat([layer.running_mean for layer in layers])
    var = torch.cat([layer.running_var for layer in layers])
    return F.batch_norm(x, mean, var, weight, bias, False, first.momentum, first.eps)


def shared_batch_norm(layers: Sequence[nn.BatchNorm2d], x: torch.Tensor) -> torch.Tensor | None:
    """The batch norms (without affine parameters) of edges that all read ``x``, normalising with batch statistics:
    those are the same for every edge, so ``x`` is normalised once, and each layer's running statistics are
    updated with them. None when the layers normalise with running statistics of their own."""
    first = layers[0]
    if not _batch_statistics(first) or first.affine:
        return None
    out, mean, var = _normalize(x, None, None, first.eps)
    _update_running(layers, [mean] * len(layers), [var] * len(layers))
    return out


def _batch_statistics(layer: nn.BatchNorm2d) -> bool:
    return layer.training or not layer.track_running_stats


def _normalize(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
               eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch norm with the batch's statistics, times ``weight`` plus ``bias`` per channel: the output, the batch
    mean and the unbiased batch variance (what running statistics move towards)."""
    c = x.shape[1]
    n = x.numel() // c
    if bias is None and _is_channels_last(x) and c < 16 and x.dtype in (torch.float32, torch.float64):
        ones = torch.ones(c, dtype=x.dtype, device=x.device)
        out, mean, var = _NarrowBatchNorm.apply(x, ones if weight is None else weight, eps)
        return out, mean, var * (n / max(n - 1, 1))
    # with momentum 1, F.batch_norm leaves the batch's statistics here (in float32 for a bf16 or fp16 input)
    mean = torch.zeros(c, dtype=torch.promote_types(x.dtype, torch.float32), device=x.device)
    var = torch.zeros_like(mean)
    return F.batch_norm(x, mean, var, weight, bias, True, 1.0, eps), mean, var


def _update_running(layers: Sequence[nn.BatchNorm2d], means: list[torch.Tensor], variances: list[torch.Tensor]) -> None:
    """What ``nn.BatchNorm2d`` does to its buffers after normalising a batch with these statistics."""
    first = layers[0]
    if not (first.training and first.track_running_stats):
        return
    with torch.no_grad():
        torch._foreach_add_([layer.num_batches_tracked for layer in layers], 1)
        torch._foreach_lerp_([layer.running_mean for layer in layers], means, first.momentum)
        torch._foreach_lerp_([layer.running_var for layer in layers], variances, first.momentum)


class _NarrowBatchNorm(torch.autograd.Function):
    """Training-mode batch norm without affine parameters, times a per-channel ``scale``, for a channels-last tensor
    of fewer than 16 channels: ``(x - mean) / sqrt(var + eps) * scale`` with the batch's mean and biased variance,
    as ``F.batch_norm`` computes them (two passes, the variance from centred values). PyTorch's channels-last batch
    norm kernels vectorise over 16 channels at a time and below that run 1.6-4.8x slower than these reductions and
    elementwise passes (benchmarks/stacked_kernels.py). Returns the output and the batch's mean and variance, for
    the running statistics. A backward that is itself differentiated (``create_graph=True``) goes through
    ``F.batch_norm`` instead, so second derivatives are exact."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, scale: torch.Tensor,
                eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c = x.shape[1]
        n = x.numel() // c
        mean = x.sum((0, 2, 3)) / n
        centred = x - mean.view(1, c, 1, 1)
        var = centred.square().sum((0, 2, 3)) / n
        invstd = (var + eps).rsqrt()
        out = centred.mul_((invstd * scale).view(1, c, 1, 1))
        ctx.save_for_backward(x, mean, invstd, scale)
        ctx.eps = eps
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor, *_: torch.Tensor
                 ) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        x, mean, invstd, scale = ctx.saved_tensors
        c = x.shape[1]
        if torch.is_grad_enabled():  # a double backward: differentiate F.batch_norm, a function of x and scale
            out = F.batch_norm(x, None, None, None, None, True, 0.0, ctx.eps) * scale.view(1, c, 1, 1)
            wanted = [t for t, needed in zip((x, scale), ctx.needs_input_grad[:2]) if needed]
            grads = iter(torch.autograd.grad(out, wanted, grad, create_graph=True))
            return tuple(next(grads) if needed else None for needed in ctx.needs_input_grad[:2]) + (None,)
        n = x.numel() // c
        centred = x - mean.view(1, c, 1, 1)
        grad_mean = grad.sum((0, 2, 3)).div_(n)
        grad_dot = (grad * centred).sum((0, 2, 3)).div_(n)  # mean of grad * (x - mean)
        # scale * invstd * (grad - mean(grad) - xhat * mean(grad * xhat)), xhat = (x - mean) * invstd
        grad_x = torch.addcmul(grad - grad_mean.view(1, c, 1, 1), centred,
                               (invstd.square() * grad_dot).view(1, c, 1, 1), value=-1)
        grad_x.mul_((scale * invstd).view(1, c, 1, 1))
        return grad_x, grad_dot.mul_(n).mul_(invstd) if ctx.needs_input_grad[1] else None, None
