"""Search presets: a method's hyperparameters on a search space turned into a complete :class:`SearchConfig`.

``paper``: the method's reference search settings on the space (``Method.hparams_for(space)``: CIFAR-10's
on DARTS, the benchmark's on NAS-Bench-201 where the method gives them) and the space's own shape.
``imagenet``: the PC-DARTS ImageNet search (the sampler's own ImageNet options, e.g. K=2 for partial channels;
the space's ImageNet shape
(DARTS: ImageNet stems), per-class 10% / 2.5% subsets for weights / architecture, batch 1024, lr 0.5 to 0,
arch lr 6e-3, architecture gradient clipped to norm 5, architecture updates from epoch 35 of 50, 5-epoch
linear LR warm-up when the batch exceeds 256).
``quick``: the command line's default, a CPU smoke test with the method's own optimiser settings on
the space's small supernet (DARTS: C=8, 5 cells), 16x16 images, batch 32, 1000 examples, 10 epochs; the
architecture warm-up keeps the method's fraction of the epochs (PC-DARTS: 15/50), so its behaviour stays
visible, and the learning rate is scaled linearly with the batch (PC-DARTS: 0.1 at 256 -> 0.0125 at 32), its final
value too where the scaled rate would fall below it (FairDARTS: 0.005 -> 0.001 at 128 becomes 0.000625 -> 0.000125
at batch 16).

A space lists the presets it supports with the shape options each sets (``SearchSpace.presets``).
Every value can be overridden; ``resolve_config`` applies overrides last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, fields
from typing import Any

import torch

from nasbench_pc import registry
from nasbench_pc.api import (
    create_supernet,
    method_hooks,
    resolve_method,
    sampler_shortcuts,
    space_options,
    with_parts,
)
from nasbench_pc.errors import ConfigError, unknown_name
from nasbench_pc.records import Method, SearchHParams
from nasbench_pc.search.config import SearchConfig, method_settings


def _paper(method: Method, h: SearchHParams, overrides: dict[str, Any]) -> dict[str, Any]:
    return asdict(h)  # every setting of the hparams group, as the method gives it on the space


def _imagenet(method: Method, h: SearchHParams, overrides: dict[str, Any]) -> dict[str, Any]:
    values = _paper(method, h, overrides)
    values.update(dataset="imagenet", batch_size=1024, lr=0.5, lr_min=0.0, arch_lr=6e-3,
                  arch_grad_clip=5.0, epochs=50, warmup_epochs=35, train_portion=0.1, arch_portion=0.025)
    batch = overrides.get("batch_size", values["batch_size"])
    values["lr_warmup_epochs"] = 5 if batch > 256 else 0
    return values


def _quick(method: Method, h: SearchHParams, overrides: dict[str, Any]) -> dict[str, Any]:
    values = _paper(method, h, overrides)
    epochs = overrides.get("epochs", 10)
    batch = overrides.get("batch_size", 32)
    lr = h.lr * batch / h.batch_size
    # a method whose lr is small (FairDARTS: 0.005 at 128) would fall below its lr_min: scale both ends then
    lr_min = h.lr_min if lr >= h.lr_min else h.lr_min * batch / h.batch_size
    values.update(batch_size=batch, lr=lr, lr_min=lr_min, limit=1000,
                  image_size=16, epochs=epochs, warmup_epochs=h.warmup_epochs * epochs // h.epochs)
    return values


PRESETS: dict[str, Callable[[Method, SearchHParams, dict[str, Any]], dict[str, Any]]] = {
    "quick": _quick,
    "paper": _paper,
    "imagenet": _imagenet,
}


def resolve_config(method: str, preset: str = "quick", **overrides: Any) -> SearchConfig:
    """The preset's values for ``method`` with ``overrides`` applied last.

    ``overrides`` are SearchConfig field names (``space``, ``space_options`` and ``sampler_options`` are merged
    over the preset's), a sampler option by its name (``k=2``) and the space's shape option names themselves
    (``init_channels=8``). A sampler may set options of its own per preset (its ``presets`` attribute: the
    partial-channel sampler takes K=2 on ImageNet).
    """
    if preset not in PRESETS:
        raise unknown_name("preset", preset, list(PRESETS))
    # --sampler / --normalizer in place of the method's
    resolved = with_parts(resolve_method(method), sampler=overrides.get("sampler"),
                          normalizer=overrides.get("normalizer"))
    space = registry.get("search_space", overrides.pop("space", None) or resolved.space)
    if resolved.spaces is not None and space.name not in resolved.spaces:
        raise ConfigError(f"The method {resolved.name} runs on the {', '.join(resolved.spaces)} search space(s), not "
                          f"on {space.name}: {resolved.description}. Choose one of those with --space, or another "
                          f"method (`nasbench-pc methods` lists each method's spaces).")
    if preset not in space.presets:
        raise ConfigError(f"The {preset!r} preset has no settings for the {space.name} search space, which has "
                          f"{', '.join(map(repr, space.presets))}. Choose one of those with --preset.")
    shape = {key: overrides.pop(key) for key in list(overrides) if key in space.options}
    shortcuts = sampler_shortcuts()
    sampler = {key: overrides.pop(key) for key in shortcuts if overrides.get(key) is not None}
    for key in shortcuts:
        overrides.pop(key, None)
    known = {f.name for f in fields(SearchConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"Unknown search option(s) {', '.join(unknown)}. Valid: {', '.join(sorted(known))}, "
                          f"the {space.name} space's options {', '.join(space.options)}, and the samplers' "
                          f"{', '.join(shortcuts)}.")
    values = PRESETS[preset](resolved, resolved.hparams_for(space.name), overrides)
    # the sampler's own settings for this preset (partial channels: K=2 on ImageNet)
    preset_sampler = getattr(registry.get("sampler", resolved.sampler), "presets", {}).get(preset, {})
    method_shape = resolved.space_options.get(space.name, {})  # the method's reference shape there (7 ops)
    values["space_options"] = space_options(space, {**space.presets[preset], **method_shape,
                                                    **overrides.pop("space_options", {}), **shape})
    given_sampler = {*overrides.get("sampler_options", {}), *sampler}  # the sampler options the user set
    values["sampler_options"] = {**resolved.sampler_options, **preset_sampler,
                                 **overrides.pop("sampler_options", {}), **sampler}
    # every setting the method declares, recorded in config.json so that --resume runs with exactly these
    values["method_options"] = method_settings(resolved, overrides.pop("method_options", {}))
    first_k = _first_stage_k(resolved.with_overrides(options=values["method_options"]), space.name)
    ratio = getattr(registry.get("sampler", resolved.sampler), "ratio_option", None)  # the option that is its K
    if first_k is not None and ratio is None:
        raise ConfigError(f"The method {resolved.name} searches in stages that change the partial-channel K (its "
                          f"first stage samples 1/{first_k} of the channels), but the sampler {resolved.sampler!r} "
                          f"has no K. Search it with a sampler that has one (--sampler partial), or in one stage if "
                          f"the method has it (`nasbench-pc methods {resolved.name}` lists its settings).")
    if first_k is not None and ratio not in given_sampler:  # a staged method starts at its first stage's K (DrNAS: 6)
        values["sampler_options"][ratio] = first_k
    values.update(overrides)
    config = SearchConfig(method=resolved.name, preset=preset, space=space.name, **values)
    registry.get("dataset", config.dataset)  # an unknown name fails here, before anything is printed or loaded
    _check_supernet(config)
    return config


def _first_stage_k(method: Method, space: str) -> int | None:
    """The partial-channel K of a staged method's first stage (``stages`` of its hooks), or None."""
    hooks = method_hooks(method, space=space)
    stages = getattr(hooks, "stages", None)
    return stages[0].k if stages else None


def _check_supernet(config: SearchConfig) -> None:
    """Build the config's supernet on the meta device (no memory, no random draws), so that a shape the space or
    the sampler refuses (init_channels 0, a K that does not divide the channels) fails before any data is read
    or anything is printed."""
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        create_supernet(config.method_record(), space=config.space, in_channels=config.in_channels or 3,
                        **config.space_options)
