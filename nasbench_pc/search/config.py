"""What defines a search: :class:`SearchConfig`, saved as ``config.json`` and reloaded by ``--resume``."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from nasbench_pc import registry
from nasbench_pc.api import resolve_method, sampler_shortcuts, with_parts
from nasbench_pc.errors import ConfigError
from nasbench_pc.records import Method, SearchHParams
from nasbench_pc.runtime.data import DataSettings
from nasbench_pc.settings import (
    Check,
    SettingError,
    at_least,
    fraction,
    not_negative,
    setting,
    validate,
    values_of,
)

#: settings that say where a search runs, not what it computes (another host may mount the data elsewhere, another
#: GPU may take channels_last): a run folder is reused across them (``compare``), never across any other
HOST_SETTINGS = ("device", "workers", "data_root", "download", "channels_last", "log", "track", "benchmark_file")


def spec_of(config: dict[str, Any]) -> dict[str, Any]:
    """A stored or resolved search config without :data:`HOST_SETTINGS`, JSON-normalised (tuples as lists)."""
    return json.loads(json.dumps({k: v for k, v in config.items() if k not in HOST_SETTINGS}))


@dataclass(frozen=True, kw_only=True)
class SearchConfig(SearchHParams, DataSettings):
    """Everything that defines a search; saved as ``config.json`` and reloaded by ``--resume``.

    Each field is defined once, as a setting (:mod:`nasbench_pc.settings`): the data settings come from
    :class:`~nasbench_pc.runtime.data.DataSettings` (shared with training and evaluation), the method's
    hyperparameters from :class:`~nasbench_pc.records.SearchHParams` (the ``hparams`` group presets take from the
    method), the rest are below. The command line's options, their checks and this file's round trip follow from
    these lines; a new search setting is one more line here."""

    method: str
    preset: str = setting("paper", "The preset the other settings started from.", cli=False)
    augment: bool = setting(True, "Reference crop/flip augmentation.")
    cutout: int = setting(0, "Cutout length (0 = off).", check=not_negative())
    lr_warmup_epochs: int = setting(0, "Linear learning-rate warm-up epochs (the ImageNet search, batch > 256).",
                                    check=not_negative())
    space: str | None = setting(None, "Search space plugin [the method's own].", cli=False)
    space_options: dict[str, Any] = setting({}, "Shape options over the space's defaults.", cli=False)
    sampler: str | None = setting(None, "A channel sampler in place of the method's (`nasbench-pc plugins` lists "
                                  "them); its options start empty: set them with --sampler-option.")
    sampler_options: dict[str, Any] = setting({}, "The sampler's options over the method's.", cli=False)
    normalizer: str | None = setting(None, "An edge normalizer in place of the method's (`nasbench-pc plugins` "
                                     "lists them).")
    method_options: dict[str, Any] = setting({}, "The method's own settings, every one it declares.", cli=False)
    arch_portion: float | None = setting(None, "Per-class fraction for the architecture (enables per-class sampling "
                                         "of --train-portion and --arch-portion, as in the ImageNet search).",
                                         check=fraction("the training set"))
    arch_grad_clip: float | None = setting(None, "Clip the architecture gradient's norm (imagenet preset: 5) [off].",
                                           check=Check(lambda v: 0 < v < math.inf, "must be positive (or left out "
                                                       "for no clipping)"))
    steps_per_epoch: int | None = setting(None, "Cap on weight steps per epoch (smoke tests, benchmarks).",
                                          check=at_least(1))
    workers: int = setting(0, "DataLoader worker processes.", check=not_negative())
    device: str = setting("cpu", "cpu, cuda or cuda:N [cuda when available].")
    amp: str | None = setting(None, "Mixed precision for the weight steps and first-order architecture steps "
                              "(second-order ones stay in float32).", choices=("bf16",))
    channels_last: bool = setting(False, "channels_last memory format (CUDA only).")
    track: str | None = setting(None, "Evaluators scored on the derived cell after every epoch, into metrics.jsonl "
                                "under 'tracked' (nas-bench-201 with --benchmark-file, synflow, ...; "
                                "NAME:key=value,... for options).")
    benchmark_file: str | None = setting(None, "The tabular benchmark file a tracked lookup reads (--track "
                                         "nas-bench-201).")
    log: str | None = setting(None, "Loggers besides metrics.jsonl, comma-separated (`nasbench-pc plugins` lists "
                              "them): tensorboard writes RUN/tensorboard/ (pip install 'nasbench-pc[tensorboard]').")

    def __post_init__(self) -> None:
        if self.space is None:  # frozen: set once, to the space the method searches
            object.__setattr__(self, "space", resolve_method(self.method).space)
        validate(self)
        if self.lr_min > self.lr:
            raise SettingError(f"{{lr_min}} ({self.lr_min}) is above {{lr}} ({self.lr}); the cosine schedule anneals "
                               f"from {{lr}} down to {{lr_min}}. Lower {{lr_min}} or raise {{lr}}.", "lr_min", "lr")
        if self.channels_last and not self.device.startswith("cuda"):
            raise SettingError(f"{{channels_last}} is for CUDA devices only, got {{device}} {self.device}: on CPU, "
                               f"channels-last activations drive oneDNN's AVX2 strided 1x1 backward kernel into heap "
                               f"corruption. Drop {{channels_last}}, or run on {{device}} cuda.", "channels_last",
                               "device")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def spec(self) -> dict[str, Any]:
        """What makes two runs the same search, whichever machine runs them: every setting but
        :data:`HOST_SETTINGS`, in its JSON form (as config.json stores it)."""
        return spec_of(self.to_dict())

    def method_record(self) -> Method:
        """The method as this search runs it: its sampler and normalizer, or those ``sampler`` / ``normalizer``
        put in their place (whose options then start empty), with ``sampler_options`` over the sampler's, and its
        own settings (``options``) at ``method_options`` over their defaults."""
        swapped = with_parts(resolve_method(self.method), sampler=self.sampler, normalizer=self.normalizer)
        return resolve_method(swapped, sampler_options={**swapped.sampler_options, **self.sampler_options},
                              options=method_settings(swapped, self.method_options))

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


def method_settings(method: Method, given: dict[str, Any]) -> dict[str, Any]:
    """Every setting ``method`` declares, at ``given``'s value or its default (did-you-mean for an unknown key)."""
    return values_of(f"the method {method.name}", method.settings, given,
                     flag_of=lambda name: f"--method-option {name}")
