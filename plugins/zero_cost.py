"""Zero-cost proxies: scores of a genotype's derived network at initialisation, without training.

Four evaluators (``--evaluate synflow`` etc.), each a pure scoring function on an ``nn.Module`` plus a small
:class:`ZeroCostProxy` that builds the network of an :class:`~nasbench_pc.results.evaluation.EvaluationTarget`:

- ``synflow``: SynFlow (Tanaka et al. 2020) as a NAS proxy (Abdelfattah et al. 2021, "Zero-Cost Proxies for
  Lightweight NAS"), data-free;
- ``naswot``: the log-determinant of the ReLU-code kernel (Mellor et al. 2021, "Neural Architecture Search
  without Training", ICML version);
- ``grad-norm`` and ``snip`` (Lee et al. 2019): gradient saliencies of the cross-entropy on one minibatch, as
  Abdelfattah et al. 2021 define them.

The weighted layers every proxy sums over are the ``nn.Conv2d`` and ``nn.Linear`` modules, as in Abdelfattah et
al.; nothing here knows a search space. The scoring functions leave the model passed in as it was.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from nasbench_pc import hookimpl
from nasbench_pc.errors import ConfigError
from nasbench_pc.interfaces import Metric

#: The layers whose weights the proxies sum over (Abdelfattah et al. 2021).
WEIGHTED = (nn.Conv2d, nn.Linear)
_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
#: Every way the ops of a forward pass apply a ReLU: nn.ReLU (through F.relu), F.relu, torch.relu, Tensor.relu.
_RELUS = frozenset({F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_})


def _weights(model: nn.Module) -> list[nn.Parameter]:
    """The weight of every Conv2d and Linear layer of ``model``, in module order."""
    return [m.weight for m in model.modules() if isinstance(m, WEIGHTED)]


def _weight_grads(value: torch.Tensor, weights: list[nn.Parameter]) -> list[torch.Tensor]:
    """d value / d weight for each of ``weights`` (zeros for a weight ``value`` does not depend on), computed
    with ``torch.autograd.grad`` so that no ``.grad`` is touched."""
    if not weights:
        return []
    if not value.requires_grad:  # nothing the output depends on is trainable
        return [torch.zeros_like(w) for w in weights]
    grads = torch.autograd.grad(value, weights, allow_unused=True)
    return [torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads)]


@contextmanager
def _unchanged(model: nn.Module) -> Iterator[None]:
    """Put ``model`` back as it was on leaving: each module's training flag, each parameter's requires_grad and
    every buffer (a train-mode forward updates the BatchNorm running statistics)."""
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
        for module, training in modes:
            module.training = training
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


def _without_batchnorm(model: nn.Module) -> None:
    """Replace every BatchNorm layer of ``model`` by an identity, in place."""
    found = [(parent, name) for parent in model.modules() for name, child in parent.named_children()
             if isinstance(child, _BATCHNORM)]
    for parent, name in found:
        setattr(parent, name, nn.Identity())


def synflow(model: nn.Module, input_shape: Sequence[int]) -> float:
    """SynFlow (Tanaka et al. 2020) as a NAS proxy (Abdelfattah et al. 2021): sum over the Conv2d and Linear
    weights theta of theta * dR/dtheta, where R is the sum of the output of a copy of ``model`` in float64 with
    every parameter replaced by its absolute value and the BatchNorm layers removed (Abdelfattah et al. build the
    network without BN for synflow), fed one all-ones input. Biases add to R but are not summed.

    Args:
        model: the network (not changed: a deep copy is scored).
        input_shape: the shape of one input, without the batch dimension ((C, H, W) for images).
    """
    net = copy.deepcopy(model).double().eval()  # eval: no dropout or drop path; BN is gone anyway
    _without_batchnorm(net)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.abs_()
    weights = _weights(net)
    for w in weights:
        w.requires_grad_(True)
    device = next(net.parameters()).device
    r = net(torch.ones(1, *input_shape, dtype=torch.float64, device=device)).sum()
    return float(sum((w.detach() * g).sum() for w, g in zip(weights, _weight_grads(r, weights))))


class _ReLUKernel(TorchFunctionMode):
    """Adds c c^T + (1 - c)(1 - c)^T to :attr:`kernel` for the binary codes c (one row per input) of each ReLU
    the forward pass applies, however it is applied (an ``nn.ReLU`` module, ``F.relu``, ``torch.relu`` or
    ``Tensor.relu``): the DARTS and NAS-Bench-201 ops apply theirs with ``torch.relu`` (``ReLUOp``), which a
    hook on ``nn.ReLU`` modules would miss."""

    def __init__(self, n: int, device: torch.device):
        super().__init__()
        self.kernel = torch.zeros(n, n, dtype=torch.float64, device=device)

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if func in _RELUS:  # the mode is off in here, so F.relu calling torch.relu is counted once
            codes = (out.detach() > 0).flatten(1).double()
            self.kernel += codes @ codes.T + (1 - codes) @ (1 - codes).T
        return out


def naswot(model: nn.Module, inputs: torch.Tensor) -> float:
    """NASWOT (Mellor et al. 2021, ICML version): log|det K_H| over a minibatch of N inputs, where
    K_H[i, j] = N_A - hamming(c_i, c_j), c_i the binary code of input i (activation > 0 at every ReLU unit, all
    ReLUs of the forward pass concatenated, N_A units in all). ``model`` runs in train mode (batch statistics in
    BatchNorm, as the network is at initialisation); -inf when K_H is singular (two inputs with one code).

    Args:
        model: the network (left as it was: training flags and BatchNorm statistics are restored).
        inputs: the minibatch, [N, ...] on the model's device.
    """
    recorder = _ReLUKernel(inputs.shape[0], inputs.device)
    with _unchanged(model), torch.no_grad():
        model.train()
        with recorder:
            model(inputs)
    return float(torch.linalg.slogdet(recorder.kernel).logabsdet)


def _weight_saliencies(model: nn.Module, inputs: torch.Tensor,
                       targets: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(theta, dL/dtheta) for every Conv2d and Linear weight, L the cross-entropy of ``model`` in train mode on
    the minibatch; ``model`` is left as it was (no ``.grad`` is written)."""
    with _unchanged(model):
        model.train()
        weights = _weights(model)
        for w in weights:
            w.requires_grad_(True)
        loss = F.cross_entropy(model(inputs), targets)
        return [(w.detach(), g) for w, g in zip(weights, _weight_grads(loss, weights))]


def grad_norm(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """grad-norm (Abdelfattah et al. 2021): the sum over Conv2d and Linear layers of ||dL/dW||_2, L the
    cross-entropy on the minibatch with ``model`` in train mode.

    Args:
        model: the network, mapping ``inputs`` to logits (left as it was).
        inputs: the minibatch, [N, ...] on the model's device.
        targets: the class of each input, [N] (long).
    """
    return float(sum(g.norm() for _, g in _weight_saliencies(model, inputs, targets)))


def snip(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """SNIP (Lee et al. 2019) as a NAS proxy (Abdelfattah et al. 2021): the sum over Conv2d and Linear weights
    theta of |theta * dL/dtheta|, L the cross-entropy on the minibatch with ``model`` in train mode.

    Args:
        model: the network, mapping ``inputs`` to logits (left as it was).
        inputs: the minibatch, [N, ...] on the model's device.
        targets: the class of each input, [N] (long).
    """
    return float(sum((w * g).abs().sum() for w, g in _weight_saliencies(model, inputs, targets)))


#: The options of every proxy: the network's width and depth (None: the target's supernet's) and the seed of its
#: initialisation and minibatch (None: the target's).
SHAPE_OPTIONS: dict[str, Any] = {"init_channels": None, "layers": None, "seed": None}


@dataclass(frozen=True)
class ZeroCostProxy:
    """An evaluator scoring the derived network of the target's genotype at initialisation with ``score``
    (network, inputs, targets) -> float, on a seeded minibatch of the search's training split.

    ``options`` are :data:`SHAPE_OPTIONS`, plus ``batch_size`` for a proxy that reads the data (synflow only
    needs the shape of one input and has no ``batch_size``).
    """

    name: str
    description: str
    metrics: tuple[Metric, ...]
    score: Callable[[nn.Module, torch.Tensor, torch.Tensor], float]
    options: Mapping[str, Any] = field(default_factory=lambda: {"batch_size": 64, **SHAPE_OPTIONS})
    needs: frozenset[str] = frozenset({"data"})

    def evaluate(self, target: Any, *, init_channels: int | None = None, layers: int | None = None,
                 seed: int | None = None, batch_size: int = 1) -> dict[str, float]:
        """The proxy's score of ``target``'s derived network (width ``init_channels``, depth ``layers``,
        initialised from ``seed``) on ``batch_size`` training examples drawn by ``seed``."""
        for name, value, least in (("batch_size", batch_size, 1), ("init_channels", init_channels, 1),
                                   ("layers", layers, 1), ("seed", seed, 0)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
                raise ConfigError(f"The {self.name} evaluator's option {name} must be an integer of at least "
                                  f"{least}, got {value!r}. Write e.g. --evaluate {self.name}:{name}={max(least, 1)}.")
        inputs, targets, info = target.batch(batch_size, seed=seed)
        model = target.network(info.num_classes, info.in_channels, init_channels=init_channels, layers=layers,
                               seed=seed)
        return {self.metrics[0].key: self.score(model, inputs, targets)}


PROXIES: dict[str, ZeroCostProxy] = {
    "synflow": ZeroCostProxy(
        "synflow", "SynFlow at initialisation: sum of theta * dR/dtheta over |theta|, BN removed, an all-ones input",
        (Metric("synflow", "synflow", fmt=".4g"),), lambda model, inputs, targets: synflow(model, inputs.shape[1:]),
        options=dict(SHAPE_OPTIONS)),
    "naswot": ZeroCostProxy(
        "naswot", "NASWOT at initialisation: log|det| of the ReLU-code kernel of one minibatch",
        (Metric("naswot", "naswot", fmt=".4g"),), lambda model, inputs, targets: naswot(model, inputs)),
    "grad-norm": ZeroCostProxy(
        "grad-norm", "grad-norm at initialisation: sum of per-layer ||dL/dW|| on one minibatch",
        (Metric("grad_norm", "grad-norm", fmt=".4g"),), grad_norm),
    "snip": ZeroCostProxy(
        "snip", "SNIP at initialisation: sum of |theta * dL/dtheta| on one minibatch",
        (Metric("snip", "snip", fmt=".4g"),), snip),
}


@hookimpl
def register_evaluators() -> dict[str, ZeroCostProxy]:
    return dict(PROXIES)
