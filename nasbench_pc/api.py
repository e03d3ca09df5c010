"""The public entry point for building supernets."""

from __future__ import annotations

from typing import Any

from nasbench_pc import registry
from nasbench_pc.errors import ConfigError
from nasbench_pc.interfaces import Method
from nasbench_pc.supernet import Supernet, SupernetConfig

_SHAPE_OPTIONS = ("steps", "multiplier", "stem_multiplier", "stem")
_METHOD_OPTIONS = ("search_space", "sampler", "sampler_options", "normalizer", "normalizer_options")


def resolve_method(method: str | Method, **overrides: Any) -> Method:
    """The method record with overrides applied. ``k=`` is a shortcut for ``sampler_options={'k': ...}``."""
    base = method if isinstance(method, Method) else registry.get("method", method)
    changes = {key: overrides.pop(key) for key in _METHOD_OPTIONS if key in overrides}
    if "k" in overrides:
        changes["sampler_options"] = {**changes.get("sampler_options", base.sampler_options), "k": overrides.pop("k")}
    if overrides:
        raise ConfigError(
            f"Unknown option(s) {', '.join(sorted(overrides))} for method {base.name!r}. Valid options: "
            f"{', '.join(_METHOD_OPTIONS + _SHAPE_OPTIONS + ('k',))}."
        )
    if "sampler" in changes and "sampler_options" not in changes:
        changes["sampler_options"] = {}  # the new sampler does not inherit the old one's options
    if "normalizer" in changes and "normalizer_options" not in changes:
        changes["normalizer_options"] = {}
    return base.with_overrides(**changes)


def create_supernet(method: str | Method, *, init_channels: int = 16, layers: int = 8, num_classes: int = 10,
                    in_channels: int = 3, **overrides: Any) -> Supernet:
    """Build the search supernet of a registered method.

    ``overrides`` may replace the method's ``search_space``, ``sampler``, ``normalizer`` (and
    their ``*_options``), set ``k`` for a partial-channel sampler, or change the cell shape
    (``steps``, ``multiplier``, ``stem_multiplier``, ``stem``).
    """
    shape = {key: overrides.pop(key) for key in _SHAPE_OPTIONS if key in overrides}
    resolved = resolve_method(method, **overrides)
    config = SupernetConfig(init_channels=init_channels, layers=layers, num_classes=num_classes,
                            in_channels=in_channels, **shape)
    space = registry.get("search_space", resolved.search_space)
    sampler = _make("sampler", resolved.sampler, resolved.sampler_options, resolved.name)
    normalizer = _make("normalizer", resolved.normalizer, resolved.normalizer_options, resolved.name)
    return space.build(config, sampler, normalizer, resolved.name)


def _make(kind: str, name: str, options: dict[str, Any], method: str) -> Any:
    factory = registry.get(kind, name)
    try:
        return factory(**options)
    except TypeError as exc:
        raise ConfigError(
            f"The {kind} {name!r} (used by method {method!r}) does not accept the option(s) "
            f"{', '.join(sorted(options)) or '(none)'}: {exc}. Drop the option or choose a {kind} that takes it."
        ) from None
