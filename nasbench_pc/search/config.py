"""What defines a search: :class:`SearchConfig`, saved as ``config.json`` and reloaded by ``--resume``."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from nasbench_pc import registry
from nasbench_pc.api import resolve_method, sampler_shortcuts, with_parts
from nasbench_pc.errors import ConfigError
from nasbench_pc.records import Method


@dataclass(frozen=True)
class SearchConfig:
    """Everything that defines a search; saved as ``config.json`` and reloaded by ``--resume``."""

    method: str
    dataset: str = "synthetic"
    data_root: str | None = None
    download: bool = False
    limit: int | None = None
    in_channels: int | None = None
    image_size: int | None = None
    augment: bool = True
    cutout: int = 0
    epochs: int = 50
    batch_size: int = 64
    lr: float = 0.025
    lr_min: float = 0.001
    lr_warmup_epochs: int = 0  # linear LR warm-up (the ImageNet search, batch > 256)
    momentum: float = 0.9
    weight_decay: float = 3e-4
    space: str | None = None  # the search space plugin; None: the method's own
    space_options: dict[str, Any] = field(default_factory=dict)  # its shape options, over the space's defaults
    sampler: str | None = None  # the channel sampler; None: the method's
    sampler_options: dict[str, Any] = field(default_factory=dict)  # over the method's (e.g. {"k": 2})
    normalizer: str | None = None  # the edge normalizer; None: the method's
    train_portion: float = 0.5
    arch_portion: float | None = None  # set: per-class fractions (train_portion, arch_portion) as on ImageNet
    arch_lr: float = 3e-4
    arch_weight_decay: float = 1e-3
    grad_clip: float = 5.0
    arch_grad_clip: float | None = None  # architecture gradient norm clip; the ImageNet search uses 5
    warmup_epochs: int = 0  # epochs before the first architecture step
    seed: int = 2
    steps_per_epoch: int | None = None  # cap on weight steps per epoch, for smoke tests and benchmarks
    workers: int = 0
    device: str = "cpu"
    amp: str | None = None  # None or "bf16"
    channels_last: bool = False
    bad_images: str = "stop"  # an undecodable image file: "stop" with an error, or "skip" it with a warning
    preset: str = "paper"

    def __post_init__(self) -> None:
        if self.space is None:  # frozen: set once, to the space the method searches
            object.__setattr__(self, "space", resolve_method(self.method).search_space)
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{_option(name)} must be at least 1, got {getattr(self, name)}.")
        for name in ("lr", "arch_lr", "grad_clip"):
            if not 0 < getattr(self, name) < math.inf:  # also refuses nan
                raise ConfigError(f"--{_option(name)} must be a positive finite number, got {getattr(self, name)}: "
                                  f"with 0 nothing would be learned, and inf or nan diverges at once.")
        for name in ("lr_min", "weight_decay", "arch_weight_decay", "momentum"):
            if not 0 <= getattr(self, name) < math.inf:
                raise ConfigError(f"--{_option(name)} must be a finite number of at least 0, got "
                                  f"{getattr(self, name)}.")
        if self.momentum > 1:
            raise ConfigError(f"--momentum must lie between 0 and 1 (the reference uses 0.9), got {self.momentum}: "
                              f"above 1 the weight updates grow without bound.")
        if self.lr_min > self.lr:
            raise ConfigError(f"--lr-min ({self.lr_min}) is above --lr ({self.lr}); the cosine schedule anneals from "
                              f"--lr down to --lr-min. Lower --lr-min or raise --lr.")
        if self.arch_grad_clip is not None and not 0 < self.arch_grad_clip < math.inf:
            raise ConfigError(f"--arch-grad-clip must be positive (or left out for no clipping), got "
                              f"{self.arch_grad_clip}.")
        for name in ("train_portion", "arch_portion"):
            value = getattr(self, name)
            if value is not None and not 0 < value < 1:
                raise ConfigError(f"--{_option(name)} is a fraction of the training set and must lie strictly "
                                  f"between 0 and 1, got {value}.")
        if self.warmup_epochs < 0 or self.lr_warmup_epochs < 0 or self.workers < 0:
            raise ConfigError("--warmup-epochs, --lr-warmup-epochs and --workers cannot be negative.")
        if self.amp not in (None, "bf16"):
            raise ConfigError(f"--amp takes 'bf16' (or leave it out), got {self.amp!r}.")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ConfigError(f"--steps-per-epoch must be at least 1, got {self.steps_per_epoch}.")
        if self.channels_last and not self.device.startswith("cuda"):
            raise ConfigError(f"--channels-last is for CUDA devices only, got --device {self.device}: on CPU, "
                              f"channels-last activations drive oneDNN's AVX2 strided 1x1 backward kernel into heap "
                              f"corruption. Drop --channels-last, or run on --device cuda.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def method_record(self) -> Method:
        """The method as this search runs it: its sampler and normalizer, or those ``sampler`` / ``normalizer``
        put in their place (whose options then start empty), with ``sampler_options`` over the sampler's."""
        swapped = with_parts(resolve_method(self.method), sampler=self.sampler, normalizer=self.normalizer)
        return resolve_method(swapped, sampler_options={**swapped.sampler_options, **self.sampler_options})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        """The config that ``to_dict`` wrote; also reads those of the versions before spaces were plugins, whose
        shape options and sampler options (DARTS' init_channels, layers, stem; K) were fields of their own: a
        field that is an option of the config's space (or of a sampler) goes back among that space's options."""
        data = dict(data)
        known = {f.name for f in fields(cls)}
        if set(data) - known:
            space = registry.available("search_space").get(data.get("space") or registry.default("search_space"))
            shape = {key: data.pop(key) for key in list(data) if key not in known and space and key in space.options}
            if shape:
                data["space_options"] = {**shape, **data.get("space_options", {})}
            sampler = {key: data.pop(key) for key in sampler_shortcuts() if key not in known and key in data}
            if sampler := {key: value for key, value in sampler.items() if value is not None}:
                data["sampler_options"] = {**data.get("sampler_options", {}), **sampler}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"config.json has unknown field(s) {', '.join(unknown)}; it was written by another "
                              f"version of nasbench-pc. Start a new search with that version or without --resume.")
        return cls(**data)


def _option(name: str) -> str:
    return name.replace("_", "-")
