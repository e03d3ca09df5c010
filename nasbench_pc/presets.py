"""Search presets: a method's hyperparameters turned into a complete :class:`SearchConfig`.

``paper``: the method's reference CIFAR-10 search settings (its ``Method.hparams``).
``imagenet``: the PC-DARTS ImageNet search (K=2 for partial-channel samplers, ImageNet stems,
per-class 10% / 2.5% subsets for weights / architecture, batch 1024, lr 0.5 to 0, arch lr 6e-3,
architecture gradient clipped to norm 5, architecture updates from epoch 35 of 50, 5-epoch linear LR
warm-up when the batch exceeds 256).
``quick``: the command line's default, a CPU smoke test with the method's own optimiser settings on
a small supernet (C=8, 5 cells, 16x16 images, batch 32, 1000 examples, 10 epochs); the architecture
warm-up keeps the method's fraction of the epochs (PC-DARTS: 15/50), so its behaviour stays visible,
and the learning rate is scaled linearly with the batch (PC-DARTS: 0.1 at 256 -> 0.0125 at 32).

Every value can be overridden; ``resolve_config`` applies overrides last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

from nasbench_pc import registry
from nasbench_pc.api import resolve_method
from nasbench_pc.errors import ConfigError, unknown_name
from nasbench_pc.interfaces import Method
from nasbench_pc.search import SearchConfig

_FROM_HPARAMS = ("batch_size", "lr", "lr_min", "momentum", "weight_decay", "epochs", "init_channels", "layers",
                 "train_portion", "arch_lr", "arch_weight_decay", "grad_clip", "warmup_epochs", "seed")


def _paper(method: Method, overrides: dict[str, Any]) -> dict[str, Any]:
    h = method.hparams
    return {name: getattr(h, name) for name in _FROM_HPARAMS}


def _imagenet(method: Method, overrides: dict[str, Any]) -> dict[str, Any]:
    values = _paper(method, overrides)
    values.update(dataset="imagenet", stem="imagenet", batch_size=1024, lr=0.5, lr_min=0.0, arch_lr=6e-3,
                  arch_grad_clip=5.0, epochs=50, warmup_epochs=35, train_portion=0.1, arch_portion=0.025)
    if "k" in method.sampler_options:  # partial-channel samplers sample 1/2 of the channels on ImageNet
        values["k"] = 2
    batch = overrides.get("batch_size", values["batch_size"])
    values["lr_warmup_epochs"] = 5 if batch > 256 else 0
    return values


def _quick(method: Method, overrides: dict[str, Any]) -> dict[str, Any]:
    h = method.hparams
    values = _paper(method, overrides)
    epochs = overrides.get("epochs", 10)
    batch = overrides.get("batch_size", 32)
    values.update(init_channels=8, layers=5, batch_size=batch, lr=h.lr * batch / h.batch_size, limit=1000,
                  image_size=16, epochs=epochs, warmup_epochs=h.warmup_epochs * epochs // h.epochs)
    return values


PRESETS: dict[str, Callable[[Method, dict[str, Any]], dict[str, Any]]] = {
    "quick": _quick,
    "paper": _paper,
    "imagenet": _imagenet,
}


def resolve_config(method: str, preset: str = "quick", **overrides: Any) -> SearchConfig:
    """The preset's values for ``method`` with ``overrides`` (SearchConfig field names) applied last."""
    if preset not in PRESETS:
        raise unknown_name("preset", preset, list(PRESETS))
    known = {f.name for f in fields(SearchConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"Unknown search option(s) {', '.join(unknown)}. Valid: {', '.join(sorted(known))}.")
    resolved = resolve_method(method)
    values = PRESETS[preset](resolved, overrides)
    values.update(overrides)
    config = SearchConfig(method=resolved.name, preset=preset, **values)
    registry.get("dataset", config.dataset)  # an unknown name fails here, before anything is printed or loaded
    return config
