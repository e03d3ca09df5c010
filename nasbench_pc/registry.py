"""The plugin manager and the registries built from its hooks."""

from __future__ import annotations

from functools import cache
from typing import Any

import pluggy

from nasbench_pc import hookspecs
from nasbench_pc.errors import PluginError, unknown_name

KINDS = {
    "search_space": "register_search_spaces",
    "sampler": "register_samplers",
    "normalizer": "register_normalizers",
    "evaluator": "register_evaluators",
    "method": "register_methods",
    "dataset": "register_datasets",
}


@cache
def plugin_manager() -> pluggy.PluginManager:
    """The loaded pluggy manager: hook specs plus every ``nasbench_pc`` entry point."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    try:
        pm.load_setuptools_entrypoints(hookspecs.PROJECT)
    except Exception as exc:  # a broken third-party plugin must not look like our bug
        raise PluginError(
            f"A nasbench_pc plugin failed to load: {type(exc).__name__}: {exc}. Fix or uninstall the package "
            f"that provides it (`pip show` the distribution named in the entry point)."
        ) from exc
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise _unknown_hook(pm, exc.plugin) from None
    if not pm.get_plugins():
        raise PluginError(
            "No nasbench_pc plugins were found, not even the built-in ones. The package metadata is missing: "
            "install the project with `pip install -e .` (or `pip install nasbench-pc`) rather than putting "
            "it on PYTHONPATH."
        )
    return pm


def _unknown_hook(pm: pluggy.PluginManager, plugin: object) -> PluginError:
    """A ``@hookimpl`` that matches no hook spec is a typo that pluggy would otherwise ignore silently."""
    import difflib

    valid = sorted(name for name, caller in vars(pm.hook).items() if not name.startswith("_") and caller.has_spec())
    unknown = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [] if not caller.has_spec())
    guesses = [f"{name!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(name, valid, n=1))
               else repr(name) for name in unknown]
    return PluginError(
        f"The nasbench_pc plugin {pm.get_name(plugin)!r} ({getattr(plugin, '__name__', plugin)}) implements the "
        f"unknown hook(s) {', '.join(guesses)}, so nothing it registers there would be used. Rename the "
        f"function to one of the hooks in nasbench_pc.hookspecs: {', '.join(valid)}."
    )


def load_plugins() -> None:
    """Load every plugin now if they load cleanly; a :class:`PluginError` is kept for the first real use."""
    try:
        plugin_manager()
    except PluginError:
        pass  # plugin_manager() raises it again (its cache keeps no failures)


def reload() -> None:
    """Forget loaded plugins and registries (after installing a plugin in a running process)."""
    plugin_manager.cache_clear()
    _registry.cache_clear()


@cache
def _registry(kind: str) -> dict[str, Any]:
    pm = plugin_manager()
    hook = getattr(pm.hook, KINDS[kind])
    merged: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for impl in hook.get_hookimpls():  # registration order
        contributed = impl.function() or {}
        for name, value in contributed.items():
            if name in merged:
                raise PluginError(
                    f"Two plugins register a {kind.replace('_', ' ')} named {name!r}: {owner[name]} and "
                    f"{impl.plugin_name}. Uninstall one of them or rename the entry in one plugin."
                )
            merged[name] = value
            owner[name] = impl.plugin_name
    return merged


def available(kind: str) -> dict[str, Any]:
    """All registered things of a kind ('method', 'sampler', ...), by name."""
    return dict(_registry(kind))


def get(kind: str, name: str) -> Any:
    registry = _registry(kind)
    if name not in registry:
        raise unknown_name(kind.replace("_", " "), name, list(registry),
                           "Plugins add more through the 'nasbench_pc' entry-point group.")
    return registry[name]
