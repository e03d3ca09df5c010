"""What a training run trains and how: :class:`TrainHParams`, the recipes search spaces define, the job's
:class:`TrainConfig` (:func:`make_config`) and the learning rate of an epoch.

The network is the genotype's search space's derived network (``--network``; DARTS: ``cifar`` or
``imagenet``, NAS-Bench-201: ``cifar``), built with timm, and trained with one of the recipes its space
defines (``SearchSpace.recipes``; every value can be overridden). The built-in spaces' recipes:

- ``pc-darts``: on CIFAR-style data (``cifar`` network) the PC-DARTS ``train.py`` (600 epochs, batch 96,
  lr 0.025 cosine to 0, momentum 0.9, wd 3e-4, grad clip 5, auxiliary weight 0.4, cutout 16, drop path 0.3
  raised linearly from 0 over the epochs, C=36, 20 cells); on ImageNet (``imagenet`` network)
  ``train_imagenet.py`` (250 epochs, batch 1024, lr 0.5 with its linear decay, 5 warm-up epochs, wd 3e-5,
  label smoothing 0.1, auxiliary 0.4, C=48, 14 cells).
- ``darts``: the DARTS ``train.py``, the same but drop path 0.2; DARTS ``train_imagenet.py`` (250 epochs,
  batch 128, lr 0.1 times 0.97 every epoch, no warm-up, wd 3e-5, label smoothing 0.1, auxiliary 0.4,
  C=48, 14 cells, no drop path).
- ``nas-bench-201`` (NAS-Bench-201 genotypes): our facts on the benchmark record no training recipe for
  its cells, so this is the DARTS CIFAR recipe without the auxiliary head and drop path, which the
  benchmark's network does not have (600 epochs, batch 96, lr 0.025 cosine to 0, momentum 0.9,
  wd 3e-4, grad clip 5, cutout 16), on the benchmark's network, C=16, 5 cells per stage.

``auto`` lets the genotype's space pick from its provenance (:func:`choose_recipe`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from nasbench_pc import genotypes, registry
from nasbench_pc.api import resolve_method
from nasbench_pc.errors import ConfigError, unknown_name
from nasbench_pc.networks.cost import network_spec
from nasbench_pc.networks.export import network_options, provenance, search_method
from nasbench_pc.records import NetworkSpec
from nasbench_pc.runtime import runkit
from nasbench_pc.runtime.data import DataSettings
from nasbench_pc.settings import Check, Declared, declared, flag, setting, validate

_AT_LEAST_1 = Check(lambda v: v >= 1, "must be at least 1")
_ABOVE_0 = Check(lambda v: 0 < v < math.inf, "must be above 0")
_0_OR_MORE = Check(lambda v: 0 <= v < math.inf, "must be 0 or more")
_BELOW_1 = Check(lambda v: 0 <= v < 1, "must be at least 0 and below 1")


@dataclass(frozen=True)
class TrainHParams:
    """Training hyperparameters; the defaults are the reference PC-DARTS CIFAR evaluation recipe. Each field is a
    setting (:mod:`nasbench_pc.settings`): ``nasbench-pc train``'s options and their checks come from these lines.

    ``init_channels`` and ``layers`` set the network's width and depth, the keywords its
    :class:`~nasbench_pc.interfaces.NetworkSpec` names (None: the spec's reference shape, which a recipe fills in).
    """

    epochs: int = setting(600, "Training epochs.", check=_AT_LEAST_1)
    batch_size: int = setting(96, "Batch size.", check=_AT_LEAST_1)
    lr: float = setting(0.025, "Initial learning rate.", check=_ABOVE_0)
    lr_min: float = setting(0.0, "Final learning rate of the schedule.", check=_0_OR_MORE)
    lr_schedule: str = setting("cosine", "cosine (CIFAR), linear (PC-DARTS ImageNet) or step (x --lr-gamma per "
                               "epoch, DARTS ImageNet).", choices=runkit.SCHEDULES)
    lr_gamma: float = setting(0.97, "LR factor per epoch of the step schedule.",
                              check=Check(lambda v: 0 < v <= 1, "must be above 0 and at most 1"))
    lr_warmup_epochs: int = setting(0, "Linear learning-rate warm-up epochs: (epoch + 1) / lr_warmup_epochs of the "
                                    "scheduled LR (PC-DARTS ImageNet: 5).", check=_0_OR_MORE)
    momentum: float = setting(0.9, "SGD momentum.", check=_0_OR_MORE)
    weight_decay: float = setting(3e-4, "Weight decay.", check=_0_OR_MORE)
    grad_clip: float = setting(5.0, "Clip the gradient's norm.", check=_ABOVE_0)
    auxiliary_weight: float = setting(0.4, "Auxiliary loss weight (0: no auxiliary head).", check=_0_OR_MORE)
    drop_path: float = setting(0.3, "Final drop-path probability; epoch e uses drop_path * e / epochs.",
                               check=_BELOW_1)
    cutout: int = setting(16, "Cutout length (0: off).", check=_0_OR_MORE)
    label_smoothing: float = setting(0.0, "Label smoothing of the loss.", check=_BELOW_1)
    init_channels: int | None = setting(None, "The network's width (its spec's width keyword) [the recipe's].",
                                        check=_AT_LEAST_1, flags=("-C",))
    layers: int | None = setting(None, "The network's depth: cells (DARTS) or cells per stage (NAS-Bench-201) "
                                 "[the recipe's].", check=_AT_LEAST_1)
    seed: int = setting(0, "Random seed.")

    def __post_init__(self) -> None:
        bad = [item for item in declared(type(self)) if item.setting.complaint(item.name, getattr(self, item.name))]
        if bad:  # every bad one at once, "--lr 0.0 (must be above 0)"
            # Spelled as flags here too, not as argument names: `nasbench-pc train` is these settings' one front end,
            # and make_config callers (tests/test_train.py) have always matched the flag spelling.
            parts = [f"{flag(item.name)} {getattr(self, item.name)!r} ({_rule(item, getattr(self, item.name))})"
                     for item in bad]
            raise ConfigError(f"Invalid training setting(s): {'; '.join(parts)}. Change them and start again.")

    @property
    def warmup_epochs(self) -> int:
        """Deprecated name of :attr:`lr_warmup_epochs` (a search's ``warmup_epochs`` is its architecture warm-up)."""
        return self.lr_warmup_epochs

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainHParams:
        """The hyperparameters a config.json or checkpoint holds, also those written before ``warmup_epochs`` was
        renamed ``lr_warmup_epochs``."""
        data = dict(data)
        if "warmup_epochs" in data:
            data.setdefault("lr_warmup_epochs", data.pop("warmup_epochs"))
        return cls(**data)


_fields_init = TrainHParams.__init__


def _init(self: TrainHParams, *args: Any, warmup_epochs: int | None = None, **kwargs: Any) -> None:
    """The dataclass's __init__, also taking ``warmup_epochs``, the name ``lr_warmup_epochs`` had (deprecated)."""
    if warmup_epochs is not None:
        warnings.warn("TrainHParams(warmup_epochs=...) is now TrainHParams(lr_warmup_epochs=...).", DeprecationWarning,
                      stacklevel=2)
        kwargs.setdefault("lr_warmup_epochs", warmup_epochs)
    _fields_init(self, *args, **kwargs)


TrainHParams.__init__ = _init  # type: ignore[method-assign]


def _rule(item: Declared, value: Any) -> str:
    """The rule ``value`` breaks, in the words of its check (``must be above 0``) or its choices."""
    if item.setting.choices and value not in item.setting.choices:
        return f"must be one of {', '.join(map(str, item.setting.choices))}"
    return item.setting.check.rule if item.setting.check else "invalid"


def auto_recipe_help() -> str:
    """What ``--recipe auto`` does, for ``train --help``: each installed space's rule in its own words
    (``SearchSpace.recipe_rule``)."""
    rules = [space.recipe_rule for _, space in sorted(registry.available("search_space").items())
             if getattr(space, "recipe_rule", "")]
    return " ".join(["auto: the genotype's search space picks (SearchSpace.recipe_for).", *rules])


def recipes() -> dict[str, str]:
    """Every installed training recipe and the search space whose networks it trains."""
    return {recipe: space.name for space in registry.available("search_space").values() for recipe in space.recipes}


def recipe_hparams(space: str, recipe: str, network: str) -> TrainHParams:
    """The hyperparameters of ``space``'s ``recipe`` for its ``network``; the width and depth the recipe leaves
    out are the network's reference ones (its spec's ``options``)."""
    search_space = registry.get("search_space", space)
    spec = search_space.networks[network]
    reference = {"init_channels": spec.options.get(spec.width) if spec.width else None,
                 "layers": spec.options.get(spec.depth) if spec.depth else None}
    return TrainHParams.from_dict({**reference, **search_space.recipes[recipe][network]})


def choose_recipe(source: Any, recipe: str = "auto") -> tuple[str, str]:
    """(recipe, why): ``recipe`` itself unless it is 'auto', else the one the genotype's space picks for it.

    ``source`` is anything :func:`genotypes.parse` reads. The space is told the genotype's published name and
    the method of the search run behind it, when ``source`` names one (:meth:`SearchSpace.recipe_for`).
    """
    space = genotypes.space_of(genotypes.parse(source))
    owners = recipes()
    if recipe != "auto":
        if recipe not in owners:
            raise unknown_name("training recipe", recipe, [*owners, "auto"])
        if recipe not in space.recipes:
            raise ConfigError(
                f"The {recipe} recipe trains {owners[recipe]} networks, and this is a {space.name} genotype. "
                f"Use --recipe auto{''.join(f' or --recipe {r}' for r in space.recipes)}."
            )
        return recipe, f"--recipe {recipe}"
    if not space.recipes:
        raise ConfigError(
            f"The {space.name} search space defines no training recipe (SearchSpace.recipes is empty), so "
            f"`nasbench-pc train` cannot train this genotype. Build its network with timm and train it with your own "
            f"loop, or add recipes to the space."
        )
    name = source if isinstance(source, str) and source in space.known else None
    searched = search_method(source) if isinstance(source, str) and name is None else None
    if searched is None:
        return space.recipe_for(name, None)
    method_name, sampler_options = searched
    if method_name not in registry.available("method"):
        default = space.recipe_for(None, None)[0]
        return default, f"searched by {method_name}, which is not installed here, so the default"
    base = registry.get("method", method_name)
    return space.recipe_for(None, resolve_method(base, sampler_options={**base.sampler_options, **sampler_options}))


@dataclass(frozen=True, kw_only=True)
class TrainConfig(DataSettings):
    """A training job: what to train, on which data (:class:`~nasbench_pc.runtime.data.DataSettings`, shared with
    search and evaluation), with which hyperparameters.

    ``network`` names one of the derived networks of the genotype's search space (``space.networks``)."""

    genotype: Any
    network: str | None = None  # None: the space's first
    hparams: TrainHParams = field(default_factory=TrainHParams)
    recipe: str | None = None  # the space's recipe it follows (make_config chooses one)
    recipe_reason: str = ""  # why this recipe (see :func:`choose_recipe`)
    source: str = ""
    method: str | None = None

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.update(genotype=genotypes.to_dict(self.genotype), hparams=asdict(self.hparams))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return cls(**{**data, "genotype": genotypes.from_dict(data["genotype"]),
                      "hparams": TrainHParams.from_dict(data["hparams"])})

    def model_options(self) -> dict[str, Any]:
        """The trained network's shape keywords: its reference options with the hparams' init_channels / layers."""
        return network_options(self.network_spec(), init_channels=self.hparams.init_channels,
                               layers=self.hparams.layers)

    def network_spec(self) -> NetworkSpec:
        """The space's spec of :attr:`network`: its timm model, reference options and image size."""
        return network_spec(self.genotype, self.network)[1]


def make_config(source: Any, *, dataset: str = "synthetic", recipe: str = "auto", network: str | None = None,
                data_root: str | None = None, download: bool = False, limit: int | None = None,
                image_size: int | None = None, in_channels: int | None = None, bad_images: str = "stop",
                **overrides: Any) -> TrainConfig:
    """Resolve a training job: the genotype from ``source`` (anything :func:`genotypes.parse` takes), the
    network of its space (default: the one named like ``dataset``, e.g. 'imagenet', else the space's first),
    the recipe (``auto``: from the genotype's space and provenance, see :func:`choose_recipe`) and its
    hyperparameters for that network, then ``overrides`` (any :class:`TrainHParams` field; None keeps the
    recipe's value)."""
    genotype = genotypes.parse(source)
    networks = genotypes.space_of(genotype).networks
    network, _ = network_spec(genotype, network or (dataset if dataset in networks else None))
    valid = {f.name for f in fields(TrainHParams)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ConfigError(f"Unknown training option(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}.")
    recipe, reason = choose_recipe(source, recipe)
    settings = genotypes.space_of(genotype).recipes[recipe]
    if network not in settings:
        raise ConfigError(f"The {recipe} recipe has no settings for the {network} network (it has "
                          f"{', '.join(settings)}). Pick one of those with --network.")
    hparams = replace(recipe_hparams(genotypes.space_of(genotype).name, recipe, network),
                      **{k: v for k, v in overrides.items() if v is not None})
    named = isinstance(source, (str, Path))
    return TrainConfig(genotype=genotype, dataset=dataset, network=network, hparams=hparams, recipe=recipe,
                       recipe_reason=reason, data_root=data_root, download=download, limit=limit,
                       image_size=image_size, in_channels=in_channels, bad_images=bad_images,
                       source=str(source) if named else "",
                       method=provenance(str(source)) if named else None)


def learning_rate(hp: TrainHParams, epoch: int) -> float:
    """The learning rate of ``epoch`` (0-based) under ``hp``'s schedule
    (:func:`nasbench_pc.runtime.runkit.scheduled_lr`)."""
    return runkit.scheduled_lr(epoch, lr=hp.lr, lr_min=hp.lr_min, epochs=hp.epochs, warmup_epochs=hp.lr_warmup_epochs,
                               schedule=hp.lr_schedule, gamma=hp.lr_gamma)
