"""Click options made from setting definitions (:mod:`nasbench_pc.settings`), so that a setting's flag, type, choices
and help are written once, in its config class (internal).

``settings_options(SearchConfig)`` adds one option per setting the command line sets (``cli=True``): ``--lr-min``
for ``lr_min``, ``--augment/--no-augment`` for a bool, a ``click.Choice`` for a setting with choices. Unless a
command gives defaults, every option defaults to None ("not given"), so that presets, recipes and ``--resume``
decide what the user left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import click

from nasbench_pc.settings import Declared, declared, flag


def _choice_converter(kind: type) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def convert(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        return None if value is None else kind(value)
    return convert


def setting_option(item: Declared, *, default: Any = None, help: str | None = None,
                   show_default: bool = False) -> Callable[[Any], Any]:
    """One click option for a declared setting."""
    record, dashed = item.setting, flag(item.name)
    text = help if help is not None else record.help
    names = [dashed, *record.flags]
    if item.type is bool:
        return click.option(f"{dashed}/--no-{dashed[2:]}", *record.flags, item.name, default=default, help=text,
                            show_default=show_default)
    if record.choices:
        kind = type(record.choices[0])
        return click.option(*names, item.name, type=click.Choice([str(c) for c in record.choices]),
                            default=None if default is None else str(default), help=text, show_default=show_default,
                            callback=None if kind is str else _choice_converter(kind))
    kind = item.type if item.type in (int, float, str) else str
    return click.option(*names, item.name, type=kind, default=default, help=text, show_default=show_default)


def settings_options(cls: type, *, only: Iterable[str] | None = None, exclude: Iterable[str] = (),
                     defaults: Mapping[str, Any] | None = None, helps: Mapping[str, str] | None = None
                     ) -> Callable[[Any], Any]:
    """A decorator adding an option for each command-line setting of ``cls`` (those in ``only``, if given, minus
    ``exclude``), in declaration order. ``defaults`` shows and applies a default for some (``--dataset
    synthetic``); ``helps`` words some help for this command."""
    chosen = set(only) if only is not None else None
    items = [item for item in declared(cls) if item.setting.cli and item.name not in set(exclude)
             and (chosen is None or item.name in chosen)]
    defaults, helps = dict(defaults or {}), dict(helps or {})

    def decorate(command: Any) -> Any:
        for item in reversed(items):
            command = setting_option(item, default=defaults.get(item.name), help=helps.get(item.name),
                                     show_default=item.name in defaults)(command)
        return command

    return decorate


def option_names(cls: type, *, exclude: Iterable[str] = ()) -> list[str]:
    """The parameter names :func:`settings_options` adds for ``cls``."""
    return [item.name for item in declared(cls) if item.setting.cli and item.name not in set(exclude)]
