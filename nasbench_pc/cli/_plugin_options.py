"""The search-space and plugin options that search, compare, bench and plan share (internal).

``--space NAME`` picks the search space; ``--space-option key=value`` sets one of its shape options and
``--sampler-option key=value`` one of the sampler's. ``--init-channels``, ``--layers``, ``--stem``,
``--checkpoint`` and ``--k`` are shortcuts for the common ones (``--k 2`` is ``--sampler-option k=2``,
``--checkpoint cells`` is ``--space-option checkpoint_cells=True``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from nasbench_pc.api import parse_option

_SHORTCUTS = ("init_channels", "layers", "stem")


def space_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --space, --space-option, --sampler-option and the shortcuts to a click command."""
    for option in reversed((
        click.option("--space", help="Search space plugin [the method's own: darts]; see `nasbench-pc methods`."),
        click.option("--space-option", "space_option", multiple=True, metavar="KEY=VALUE",
                     help="A shape option of the search space, e.g. cells_per_stage=2 (repeatable)."),
        click.option("--sampler-option", "sampler_option", multiple=True, metavar="KEY=VALUE",
                     help="An option of the method's channel sampler, e.g. k=2 (repeatable)."),
        click.option("--init-channels", "-C", type=int, help="Shortcut for --space-option init_channels=N."),
        click.option("--layers", type=int, help="Number of cells (DARTS); shortcut for --space-option layers=N."),
        click.option("--stem", type=click.Choice(["cifar", "imagenet"]), help="DARTS stem; shortcut for "
                     "--space-option stem=NAME."),
        click.option("--checkpoint", type=click.Choice(["cells"]), help="Recompute the activations of the cells "
                     "before the last stage in backward instead of saving them: same gradients, less memory, more "
                     "time; shortcut for "
                     "--space-option checkpoint_cells=True."),
        click.option("--k", "k", type=int, help="Partial-channel K; shortcut for --sampler-option k=N."),
    )):
        command = option(command)
    return command


def plugin_overrides(options: dict[str, Any]) -> dict[str, Any]:
    """Turn the options ``space_options`` added (popped from ``options``) into resolve_config overrides:
    ``space``, ``space_options`` and ``sampler_options`` (shortcuts included; unset ones left out)."""
    out: dict[str, Any] = {}
    space = options.pop("space", None)
    if space:
        out["space"] = space
    shape = dict(parse_option(text) for text in options.pop("space_option", ()) or ())
    sampler = dict(parse_option(text) for text in options.pop("sampler_option", ()) or ())
    for key in _SHORTCUTS:
        if options.get(key) is not None:
            shape[key] = options.pop(key)
        options.pop(key, None)
    if options.pop("checkpoint", None) == "cells":
        shape["checkpoint_cells"] = True
    if options.get("k") is not None:
        sampler["k"] = options.pop("k")
    options.pop("k", None)
    if shape:
        out["space_options"] = shape
    if sampler:
        out["sampler_options"] = sampler
    return out
