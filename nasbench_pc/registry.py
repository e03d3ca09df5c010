"""The plugin manager and the registries built from its hooks.

Plugins are loaded one entry point at a time: one that fails to import, or that implements a hook no spec
names, is recorded (:func:`failures`) and skipped, so a broken outside package never breaks every command.
A hook implementation that raises or returns something malformed loses only its own contribution. Two
plugins registering one name stay an error (:class:`PluginError` where that registry is used): which one
the user wants is theirs to decide. Modules named in :data:`PLUGINS_ENV` (``--plugin``) load too, and
their failures are errors, since the user asked for them by name.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import pluggy

from nasbench_pc import hookspecs
from nasbench_pc.errors import ConfigError, PluginError, unknown_name
from nasbench_pc.records import Method

KINDS = {
    "search_space": "register_search_spaces",
    "sampler": "register_samplers",
    "normalizer": "register_normalizers",
    "evaluator": "register_evaluators",
    "method": "register_methods",
    "dataset": "register_datasets",
    "executor": "register_executors",
    "logger": "register_loggers",
}

# What each hook promises per entry (hookspecs.py); an entry that is not is skipped where it would crash later.
_PROMISED: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "search_space": ("a search space (an object with build())", lambda v: callable(getattr(v, "build", None))),
    "sampler": ("a sampler factory (a callable)", callable),
    "normalizer": ("a normalizer factory (a callable)", callable),
    "evaluator": ("an evaluator (an object with evaluate() and metrics)",
                  lambda v: callable(getattr(v, "evaluate", None)) and isinstance(getattr(v, "metrics", None), tuple)),
    "method": ("a nasbench_pc.interfaces.Method", lambda v: isinstance(v, Method)),
    "dataset": ("a dataset loader (a callable)", callable),
    "executor": ("an executor (an object with run())", lambda v: callable(getattr(v, "run", None))),
    "logger": ("a logger (an object with check())", lambda v: callable(getattr(v, "check", None))),
}

PLUGINS_ENV = "NASBENCH_PC_PLUGINS"
"""Comma-separated plugin modules loaded besides the entry points (``--plugin`` sets it; child processes inherit it)."""

AD_HOC = "ad hoc (--plugin)"  # the distribution shown for a module loaded through PLUGINS_ENV


@dataclass(frozen=True)
class PluginInfo:
    """Where a plugin comes from: its entry-point name, distribution, version and module (``pkg.mod``)."""

    name: str
    distribution: str
    version: str
    module: str


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that failed to load (``hook`` None) or a hook of it that failed; ``error`` is one line."""

    plugin: PluginInfo
    hook: str | None
    error: str


@dataclass(frozen=True)
class _Loaded:
    pm: pluggy.PluginManager
    plugins: dict[str, PluginInfo]
    failures: list[PluginFailure]  # plugins that failed to load
    pending: tuple[str, ...] = ()  # plugin modules that were still being imported (see _loaded)


@dataclass(frozen=True)
class _Registry:
    entries: dict[str, Any]
    by_plugin: dict[str, list[str]]  # plugin name -> the names it registers
    failures: list[PluginFailure]  # hook implementations that raised or returned something malformed
    conflict: str | None  # the first name two plugins register, as an error message


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _register(pm: pluggy.PluginManager, plugin: object, name: str) -> str | None:
    """Register ``plugin`` as ``name``; the reason it cannot be (then nothing of it stays registered), or None."""
    if pm.has_plugin(name):
        return f"another plugin ({getattr(pm.get_plugin(name), '__name__', '?')}) is already registered as {name!r}"
    if pm.is_registered(plugin):
        return f"its module is already registered as {pm.get_name(plugin)!r}"
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:  # a hook implementation whose arguments its spec does not have
        pm.unregister(name=name)
        return _one_line(exc)
    if any(not caller.has_spec() for caller in pm.get_hookcallers(plugin) or []):
        error = str(_unknown_hook(pm, plugin))
        pm.unregister(name=name)
        return error
    return None


def _env_modules() -> list[str]:
    return [module.strip() for module in os.environ.get(PLUGINS_ENV, "").split(",") if module.strip()]


def _load_ad_hoc(pm: pluggy.PluginManager, module: str) -> bool:
    """Import and register a :data:`PLUGINS_ENV` module (False: it already was); any failure is an error,
    since it was asked for by name."""
    fix = (f"Give the dotted path of an importable module (`python -c \"import {module}\"` must work: put its "
           f"folder on PYTHONPATH or install its package), or leave it out of --plugin and {PLUGINS_ENV}.")
    try:
        plugin = importlib.import_module(module)
    except Exception as exc:
        raise PluginError(f"The plugin module {module!r} given with --plugin (or {PLUGINS_ENV}) could not be "
                          f"imported: {_one_line(exc)}. {fix}") from exc
    if pm.is_registered(plugin):
        return False  # already loaded through its entry point
    error = _register(pm, plugin, module)
    if error is not None:
        raise PluginError(f"The plugin module {module!r} given with --plugin (or {PLUGINS_ENV}) cannot be "
                          f"registered: {error}")
    return True


@cache
def _loaded() -> _Loaded:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    plugins: dict[str, PluginInfo] = {}
    failures: list[PluginFailure] = []
    pending: list[str] = []
    for ep in importlib.metadata.entry_points(group=hookspecs.PROJECT):
        info = PluginInfo(ep.name, ep.dist.name if ep.dist else "", ep.dist.version if ep.dist else "", ep.value)
        try:
            plugin = ep.load()
        except Exception as exc:  # SyntaxError included: an outside package's bug must not stop the others
            failures.append(PluginFailure(info, None, _one_line(exc)))
            continue
        if _importing(plugin):
            # user code imported this plugin first, and its `import nasbench_pc` brought us here: its hooks are
            # not defined yet. It is registered once its import has finished (_settle).
            pending.append(plugin.__name__)
            continue
        error = _register(pm, plugin, ep.name)
        if error is None:
            plugins[ep.name] = info
        else:
            failures.append(PluginFailure(info, None, error))
    if not plugins and not failures and not pending:
        raise PluginError(
            "No nasbench_pc plugins were found, not even the built-in ones. The package metadata is missing: "
            "install the project with `pip install -e .` (or `pip install nasbench-pc`) rather than putting "
            "it on PYTHONPATH."
        )
    for module in _env_modules():
        if _load_ad_hoc(pm, module):
            plugins[module] = PluginInfo(module, AD_HOC, "", module)
    return _Loaded(pm, plugins, failures, tuple(pending))


def _importing(module: object) -> bool:
    """Whether ``module`` is a module whose import is still running."""
    return bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


def _settle() -> None:
    """Load the plugins again once every plugin module that was mid-import when they were loaded has finished."""
    pending = _loaded().pending
    if pending and not any(_importing(sys.modules.get(name)) for name in pending):
        reload()


def plugin_manager() -> pluggy.PluginManager:
    """The loaded pluggy manager: hook specs plus every ``nasbench_pc`` entry point that loaded cleanly and
    the modules in :data:`PLUGINS_ENV`."""
    _settle()
    return _loaded().pm


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
    """Load every plugin now (a broken one is recorded, see :func:`failures`); a :class:`PluginError`
    (no plugins at all, a :data:`PLUGINS_ENV` module that fails) is kept for the first real use."""
    try:
        plugin_manager()
    except PluginError:
        pass  # plugin_manager() raises it again (its cache keeps no failures)


def add_plugin_modules(modules: Iterable[str]) -> None:
    """Load the plugin modules ``modules`` (dotted import paths) in this process and the processes it starts.

    They are added to :data:`PLUGINS_ENV` and every plugin is loaded again; a module that fails raises
    :class:`PluginError` and leaves the environment as it was.
    """
    previous = os.environ.get(PLUGINS_ENV)
    os.environ[PLUGINS_ENV] = ",".join(dict.fromkeys([*_env_modules(), *modules]))
    reload()
    try:
        plugin_manager()
    except PluginError:
        if previous is None:
            del os.environ[PLUGINS_ENV]
        else:
            os.environ[PLUGINS_ENV] = previous
        reload()
        raise


def reload() -> None:
    """Forget loaded plugins and registries (after installing a plugin in a running process)."""
    _loaded.cache_clear()
    _registry.cache_clear()


def _info(pm: pluggy.PluginManager, name: str) -> PluginInfo:
    """Where plugin ``name`` comes from (one registered by hand has no distribution)."""
    if name in _loaded().plugins:
        return _loaded().plugins[name]
    plugin = pm.get_plugin(name)
    return PluginInfo(name, "", "", getattr(plugin, "__name__", type(plugin).__name__))


@cache
def _registry(kind: str) -> _Registry:
    pm = plugin_manager()
    hook = KINDS[kind]
    promised, keeps_promise = _PROMISED[kind]
    entries: dict[str, Any] = {}
    owner: dict[str, str] = {}
    by_plugin: dict[str, list[str]] = {}
    failures: list[PluginFailure] = []
    conflict = None
    for impl in getattr(pm.hook, hook).get_hookimpls():  # registration order
        try:
            contributed = impl.function()
        except Exception as exc:  # a plugin's bug costs its own contribution, not the command
            failures.append(PluginFailure(_info(pm, impl.plugin_name), hook, _one_line(exc)))
            continue
        if contributed is None:
            continue
        if not isinstance(contributed, dict):
            failures.append(PluginFailure(_info(pm, impl.plugin_name), hook,
                                          f"returned a {type(contributed).__name__}, not a dict {{name: {promised}}}"))
            continue
        for name, value in contributed.items():
            if not isinstance(name, str) or not keeps_promise(value):
                failures.append(PluginFailure(_info(pm, impl.plugin_name), hook,
                                              f"registered {name!r} as a {type(value).__name__}, not {promised}"))
                continue
            by_plugin.setdefault(impl.plugin_name, []).append(name)
            if name in entries:
                conflict = conflict or (
                    f"Two plugins register a {kind.replace('_', ' ')} named {name!r}: {owner[name]} and "
                    f"{impl.plugin_name}. Uninstall one of them or rename the entry in one plugin.")
                continue
            entries[name] = value
            owner[name] = impl.plugin_name
    return _Registry(entries, by_plugin, failures, conflict)


def _entries(kind: str) -> dict[str, Any]:
    _settle()
    registry = _registry(kind)
    if registry.conflict:
        raise PluginError(registry.conflict)
    return registry.entries


def available(kind: str) -> dict[str, Any]:
    """All registered things of a kind ('method', 'sampler', ...), by name."""
    return dict(_entries(kind))


def registered_by(kind: str) -> dict[str, list[str]]:
    """The names of a kind each plugin registers, by plugin name (conflicting names included)."""
    _settle()
    return {plugin: list(names) for plugin, names in _registry(kind).by_plugin.items()}


def loaded_plugins() -> list[PluginInfo]:
    """Every registered plugin, in registration order."""
    pm = plugin_manager()
    return [_info(pm, name) for name, _ in pm.list_name_plugin()]


def failures() -> list[PluginFailure]:
    """Every plugin that failed to load and every hook implementation that failed (this calls every hook)."""
    _settle()
    return [*_loaded().failures, *(failure for kind in KINDS for failure in _registry(kind).failures)]


def default(kind: str) -> str:
    """The name of the registered ``kind`` ('search_space', 'sampler', 'normalizer') that says ``default = True``,
    else of the only one registered: what a method or a genotype naming none gets."""
    entries = _entries(kind)
    marked = [name for name, entry in entries.items() if getattr(entry, "default", False) is True]
    if len(marked) == 1:
        return marked[0]
    if not marked and len(entries) == 1:
        return next(iter(entries))
    what = kind.replace("_", " ")
    claim = (f"{' and '.join(marked)} each say they are" if marked
             else f"none of {', '.join(entries) or 'them'} says it is")
    raise ConfigError(f"There is no default {what}: {claim} the default (`default = True`). Name the {what} "
                      f"explicitly, or uninstall the plugin that also claims to be the default.")


def get(kind: str, name: str) -> Any:
    """The registered thing of ``kind`` named ``name``; a ConfigError naming the choices (and any plugin that
    failed, the likely reason a name is missing) otherwise."""
    entries = _entries(kind)
    if name not in entries:
        failed = [*_loaded().failures, *_registry(kind).failures]
        notes = [f"(the plugin {f.plugin.name!r} failed to load: {f.error})" if f.hook is None
                 else f"(the plugin {f.plugin.name!r} failed in {f.hook}: {f.error})" for f in failed]
        raise unknown_name(kind.replace("_", " "), name, list(entries),
                           " ".join([*notes, "Plugins add more through the 'nasbench_pc' entry-point group."]))
    return entries[name]


def loggers(names: str | None) -> tuple[str, ...]:
    """The loggers ``--log`` names (comma-separated), each registered and able to run here (its ``check()``: a
    missing extra is a ConfigError naming it); () for None."""
    chosen = tuple(dict.fromkeys(name.strip() for name in (names or "").split(",") if name.strip()))
    for name in chosen:
        get("logger", name).check()
    return chosen


#: The lifecycle hooks (hookspecs.py), called by :func:`notify`.
LIFECYCLE = ("on_run_start", "on_step_end", "on_epoch_end", "on_run_end", "on_evaluation_done")


def notify(hook: str, *, after: str = "", **kwargs: Any) -> None:
    """Call every implementation of the lifecycle hook ``hook`` in registration order, each with the keyword
    arguments it names. One that raises becomes a PluginError naming the plugin; ``after`` says what is kept
    and how to go on (e.g. the resume command)."""
    pm = plugin_manager()
    for impl in getattr(pm.hook, hook).get_hookimpls():
        try:
            impl.function(**{name: kwargs[name] for name in impl.argnames})
        except Exception as exc:
            plugin = _info(pm, impl.plugin_name)
            raise PluginError(
                f"The nasbench_pc plugin {plugin.name!r} ({plugin.module}) failed in {hook}: {_one_line(exc)}. "
                f"{after + ' ' if after else ''}Fix or uninstall that plugin (`nasbench-pc plugins` lists where it "
                f"comes from), then run the command again."
            ) from exc
