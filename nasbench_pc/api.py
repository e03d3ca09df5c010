"""The public entry point for building supernets: a method's plugins on a search space."""

from __future__ import annotations

import ast
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from nasbench_pc import registry
from nasbench_pc.errors import ConfigError, NasbenchError, PluginError, brief, short_repr
from nasbench_pc.protocols import SearchSpace
from nasbench_pc.records import Method

_METHOD_OPTIONS = ("space", "search_space", "sampler", "sampler_options", "normalizer", "normalizer_options", "options")
#: the registry kind of each plugin a method names
_PARTS = {"space": "search_space", "sampler": "sampler", "normalizer": "normalizer"}


def resolve_method(method: str | Method, **overrides: Any) -> Method:
    """The method record with overrides applied. An option a channel sampler takes, given by name (``k=2``), is a
    shortcut for ``sampler_options={'k': 2}``, added to the method's other sampler options (its sampler refuses one
    that is not its own).
    What the method leaves open (its space, sampler or normalizer: None) becomes the registered default
    (:func:`nasbench_pc.registry.default`)."""
    base = method if isinstance(method, Method) else registry.get("method", method)
    changes = {key: overrides.pop(key) for key in _METHOD_OPTIONS if key in overrides}
    if "search_space" in changes:  # the name ``space`` had before
        changes["space"] = changes.pop("search_space")
    if "sampler" in changes and "sampler_options" not in changes:
        changes["sampler_options"] = {}  # the new sampler does not inherit the old one's options
    if "normalizer" in changes and "normalizer_options" not in changes:
        changes["normalizer_options"] = {}
    own = sampler_shortcuts()
    if shortcuts := {key: overrides.pop(key) for key in list(overrides) if key in own}:
        changes["sampler_options"] = {**changes.get("sampler_options", base.sampler_options), **shortcuts}
    if overrides:
        raise ConfigError(
            f"Unknown option(s) {', '.join(sorted(overrides))} for method {base.name!r}. Valid options: "
            f"{', '.join(_METHOD_OPTIONS + tuple(own))} and the search space's shape options."
        )
    for field_name, kind in _PARTS.items():
        if (changes.get(field_name) or getattr(base, field_name)) is None:  # left to the registered default
            changes[field_name] = registry.default(kind)
    return base.with_overrides(**changes)


def sampler_option_names(sampler: str) -> list[str]:
    """The options the registered channel sampler ``sampler`` takes: its factory's keyword parameters."""
    try:
        parameters = inspect.signature(registry.get("sampler", sampler)).parameters.values()
    except (TypeError, ValueError):  # a factory without an introspectable signature
        return []
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def sampler_shortcuts() -> list[str]:
    """The option names that channel samplers take, in registration order: given by name to
    :func:`resolve_method` or :func:`create_supernet`, such an option goes to the method's sampler (``k=2``), which
    refuses it when it is not its own."""
    return list(dict.fromkeys(name for sampler in registry.available("sampler")
                              for name in sampler_option_names(sampler)))


def with_parts(method: Method, *, sampler: str | None = None, normalizer: str | None = None) -> Method:
    """``method`` with ``sampler`` / ``normalizer`` in place of its own where given and different (a replaced
    sampler's options start empty: the method's were for its own)."""
    swaps = {key: value for key, value in (("sampler", sampler), ("normalizer", normalizer))
             if value is not None and value != getattr(method, key)}
    return resolve_method(method, **swaps)


def space_options(space: SearchSpace, options: Mapping[str, Any]) -> dict[str, Any]:
    """The space's shape options: its defaults with ``options`` applied, each checked against the default's type."""
    return resolve_options(space.options, options, owner=f"the search space {space.name!r}",
                           where=f"The {space.name} option")


def resolve_options(defaults: Mapping[str, Any], given: Mapping[str, Any], *, owner: str, where: str,
                    how: str = "") -> dict[str, Any]:
    """``defaults`` with ``given`` applied. A key without a default, or a value of another type than its default
    (a None default takes anything), is a ConfigError naming ``owner`` (``the search space 'darts'``) or
    ``where`` the option is (``The darts option``), with ``how`` to write options appended."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        takes = ", ".join(f"{k} (default {v!r})" for k, v in defaults.items()) or "no options"
        raise ConfigError(f"Unknown option(s) {', '.join(map(short_repr, unknown))} for {owner}. Its options are "
                          f"{takes}.{' ' + how if how else ''}")
    for key, value in given.items():
        default = defaults[key]
        if default is not None and not _same_kind(value, default):
            raise ConfigError(f"{where} {key} takes a {type(default).__name__} (default {default!r}), got "
                              f"{short_repr(value)}.")
    return {**defaults, **given}


def _same_kind(value: Any, default: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def parse_option(text: str) -> tuple[str, Any]:
    """``key=value`` from the command line; the value is read as a Python literal (``4``, ``0.5``, ``True``),
    else kept as text (``stem=imagenet``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{short_repr(text)} is not an option setting; write it as key=value, e.g. k=2.")
    try:
        value = ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = raw.strip()
    if isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    return key.strip().replace("-", "_"), value


def create_supernet(method: str | Method, *, num_classes: int = 10, in_channels: int = 3, space: str | None = None,
                    **options: Any) -> Any:
    """Build the search supernet of a registered method on a search space.

    Args:
        method: a registered method name or a :class:`Method`.
        num_classes: classifier outputs.
        in_channels: channels of the input images.
        space: the search space; default the method's own (``Method.space``, else the default space).
        options: method options (``sampler``, ``normalizer`` and their ``*_options``; an option of the sampler by
            its name, e.g. ``k`` for a partial-channel sampler) and the space's shape options (its ``options``;
            ``nasbench-pc methods`` lists them).
    """
    method_options = {key: options.pop(key) for key in (*_METHOD_OPTIONS, *sampler_shortcuts()) if key in options}
    resolved = resolve_method(method, **method_options)
    search_space = registry.get("search_space", space or resolved.space)
    shape = space_options(search_space, {**resolved.space_options.get(search_space.name, {}), **options})
    sampler = _make("sampler", resolved.sampler, resolved.sampler_options, resolved.name)
    normalizer = _make("normalizer", resolved.normalizer, resolved.normalizer_options, resolved.name)
    supernet = search_space.build(sampler, normalizer, num_classes=num_classes, in_channels=in_channels,
                                  method=resolved.name, **shape)
    hooks = method_hooks(resolved, space=search_space.name)
    relaxed = hasattr(supernet, "fixed_weights")  # built with the kit's Relaxed mixin
    wants = [name for name in RELAXATION_HOOKS if hasattr(hooks, name)]
    if wants and not relaxed:
        raise ConfigError(f"The method {resolved.name} changes how edges weigh or add to their ops "
                          f"({', '.join(wants)}), but the {search_space.name} space's supernet "
                          f"({type(supernet).__name__}) always uses softmax: build it with the kit's Relaxed mixin "
                          f"(nasbench_pc.supernet), or pick another method.")
    if relaxed:
        supernet.relaxation = hooks  # its edges' weights come from the method's arch_weights (softmax without)
    if relaxed and hasattr(hooks, "initial_alphas"):  # FairDARTS starts every alpha at 0
        with torch.no_grad():
            for alphas in supernet.alpha_parameters():
                alphas.copy_(hooks.initial_alphas(alphas))
    if getattr(hooks, "aux_op", None) is not None:  # DARTS-: every edge also runs coefficient * aux_op(x)
        supernet.attach_aux_branches(search_space.primitives, hooks.aux_op, hooks)
    return supernet


#: the hooks of :class:`nasbench_pc.protocols.SearchHooks` that need a :class:`nasbench_pc.supernet.Relaxed` supernet
RELAXATION_HOOKS = ("arch_weights", "perturb_weights", "aux_op", "initial_alphas", "derive")


def method_hooks(method: Method, *, space: str | None = None) -> Any:
    """The method's hooks object for one search: ``Method.hooks`` called with its settings (defaults filled in for
    those ``method.options`` leaves out), and with ``space=`` the search space's name when it takes that keyword (a
    method that does a thing its own way per space: GDAS' edge gradient and step order); None for a method without
    hooks."""
    if method.hooks is None:
        return None
    values = {setting.name: setting.default for setting in method.settings} | dict(method.options)
    try:
        if space is not None and _takes_space(method.hooks):
            return method.hooks(**values, space=space)
        return method.hooks(**values)
    except NasbenchError:
        raise
    except Exception as exc:
        raise PluginError(f"The method {method.name} could not make its search hooks from the settings "
                          f"{short_repr(values)}: {brief(exc)}. Check the values given with --method-option "
                          f"(`nasbench-pc methods {method.name}` lists them).") from exc


def _takes_space(factory: Callable[..., Any]) -> bool:
    try:
        return "space" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False


def _make(kind: str, name: str, options: dict[str, Any], method: str) -> Any:
    factory = registry.get(kind, name)
    try:
        return factory(**options)
    except TypeError as exc:
        raise ConfigError(
            f"The {kind} {name!r} (used by method {method!r}) does not accept the option(s) "
            f"{', '.join(sorted(options)) or '(none)'}: {exc}. Drop the option or choose a {kind} that takes it."
        ) from None


def samples_every_channel(method: Method) -> bool:
    """Whether ``method``'s sampler builds an edge whose MixedOp sees all of its channels (DARTS) rather than a
    part of them (PC-DARTS): asked of the sampler itself, so an outside sampler is judged the same way."""
    channels = math.lcm(*range(1, 17))  # any K up to 16 divides it, so every sampler accepts it
    seen: list[int] = []

    def mixed_op(c: int) -> nn.Module:
        seen.append(c)
        return nn.Identity()

    sampler = _make("sampler", method.sampler, method.sampler_options, method.name)
    sampler.build_edge(mixed_op, channels, 1)
    return seen == [channels]
