"""The search-space and plugin options that search, compare, bench and plan share (internal).

``--space NAME`` picks the search space; ``--space-option key=value`` sets one of its shape options and
``--sampler-option key=value`` one of the sampler's. The shortcut flags for common options are declared by the
plugins that own those options (:class:`nasbench_pc.interfaces.Shortcut`: the DARTS space's ``--init-channels``,
``--layers``, ``--stem`` and ``--checkpoint cells``, the partial-channel sampler's ``--k``), collected here from
every installed search space and channel sampler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from nasbench_pc import _moved, registry
from nasbench_pc.api import parse_option
from nasbench_pc.records import Shortcut

__getattr__ = _moved.old_names(__name__, {"space_options": "nasbench_pc.cli._plugin_options:plugin_option_flags"})

#: where each kind of plugin's options go: (resolve_config override, the generic flag)
_TARGETS = {"search_space": ("space_options", "--space-option"), "sampler": ("sampler_options", "--sampler-option")}


def shortcuts() -> list[tuple[str, Shortcut]]:
    """(kind, shortcut) of every flag the installed spaces and samplers declare, each flag once: the first
    declaration (spaces, then samplers, by name) wins; a later one for another option is left out."""
    found: dict[str, tuple[str, Shortcut]] = {}
    for kind in _TARGETS:
        for _, plugin in sorted(registry.available(kind).items()):
            for shortcut in getattr(plugin, "shortcuts", ()):
                found.setdefault(shortcut.dest, (kind, shortcut))
    return list(found.values())


def shortcut_names() -> list[str]:
    """The click parameter names of the shortcut flags."""
    return [shortcut.dest for _, shortcut in shortcuts()]


def _flag(kind: str, shortcut: Shortcut) -> Callable[..., Any]:
    generic = _TARGETS[kind][1]
    if shortcut.choices:
        value = next(iter(shortcut.choices.values()))
        word = "NAME" if isinstance(value, str) else repr(value)
        return click.option(*shortcut.flags, shortcut.dest, type=click.Choice(list(shortcut.choices)),
                            help=f"{shortcut.help}; shortcut for {generic} {shortcut.option}={word}.")
    return click.option(*shortcut.flags, shortcut.dest, type=shortcut.type,
                        help=f"{shortcut.help}; shortcut for {generic} {shortcut.option}=N.")


def plugin_option_flags(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --space, --space-option, --sampler-option and the plugins' shortcut flags to a click command."""
    for option in reversed((
        click.option("--space", help="Search space plugin [the method's own]; see `nasbench-pc methods`."),
        click.option("--space-option", "space_option", multiple=True, metavar="KEY=VALUE",
                     help="A shape option of the search space (repeatable; `nasbench-pc methods` lists them)."),
        click.option("--sampler-option", "sampler_option", multiple=True, metavar="KEY=VALUE",
                     help="An option of the method's channel sampler (repeatable)."),
        *(_flag(kind, shortcut) for kind, shortcut in shortcuts()),
    )):
        command = option(command)
    return command


class _MethodOption(click.Option):
    """--method-option, whose help lists every installed method's own settings, looked up when help is shown."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self.help = f"{self.help.split(' Settings: ')[0]} Settings: {methods_settings_help()}"
        return super().get_help_record(ctx)


def methods_settings_help() -> str:
    """Each installed method's own settings (``Method.settings``) in one line, for ``--method-option``'s help."""
    parts = [f"{name}: {', '.join(f'{s.name}={s.default!r}' for s in method.settings)}"
             for name, method in sorted(registry.available("method").items()) if method.settings]
    return "; ".join(parts) + "." if parts else "no installed method declares any."


def method_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --method-option KEY=VALUE (a setting the method declares; repeatable) to a click command."""
    return click.option("--method-option", "method_option", multiple=True, metavar="KEY=VALUE", cls=_MethodOption,
                        help="A setting of the method itself (repeatable; `nasbench-pc methods METHOD` describes "
                             "them). Settings: ")(command)


def plugin_overrides(options: dict[str, Any]) -> dict[str, Any]:
    """Turn the options ``plugin_option_flags`` and ``method_option`` added (popped from ``options``) into
    resolve_config overrides: ``space``, ``space_options``, ``sampler_options`` (shortcuts included) and
    ``method_options``; unset ones left out."""
    out: dict[str, Any] = {}
    method_given = dict(parse_option(text) for text in options.pop("method_option", ()) or ())
    if method_given:
        out["method_options"] = method_given
    space = options.pop("space", None)
    if space:
        out["space"] = space
    given = {"space_options": dict(parse_option(text) for text in options.pop("space_option", ()) or ()),
             "sampler_options": dict(parse_option(text) for text in options.pop("sampler_option", ()) or ())}
    for kind, shortcut in shortcuts():
        value = options.pop(shortcut.dest, None)
        if value is not None:
            given[_TARGETS[kind][0]][shortcut.option] = shortcut.choices.get(value, value)
    out.update({key: values for key, values in given.items() if values})
    return out
