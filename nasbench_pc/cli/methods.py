"""``methods``, ``plugins`` and ``supernet``: look at what is registered and what it builds."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from nasbench_pc import genotypes, registry
from nasbench_pc.api import create_supernet, resolve_method, space_options
from nasbench_pc.cli._plugin_options import plugin_overrides
from nasbench_pc.cli._plugin_options import space_options as space_option_flags
from nasbench_pc.console import console


@click.command()
def methods() -> None:
    """List the registered search methods and their presets, and the search spaces they can run on."""
    table = Table(title="Search methods")
    for col in ("method", "space", "sampler", "normalizer", "order", "batch", "lr", "arch lr", "warm-up",
                "description"):
        table.add_column(col)
    for name, m in sorted(registry.available("method").items()):
        sampler = m.sampler + "".join(f" {k}={v}" for k, v in m.sampler_options.items())
        h = m.hparams
        table.add_row(name, m.search_space, sampler, m.normalizer, str(m.order), str(h.batch_size), f"{h.lr:g}",
                      f"{h.arch_lr:g}", str(h.warmup_epochs), m.description)
    console.print(table)
    spaces = Table(title="Search spaces (--space NAME)")
    for col in ("space", "ops", "shape options (--space-option key=value)", "networks"):
        spaces.add_column(col)
    for name, space in sorted(registry.available("search_space").items()):
        spaces.add_row(name, ", ".join(space.primitives), ", ".join(f"{k}={v}" for k, v in space.options.items()),
                       ", ".join(space.networks))
    console.print(spaces)


@click.command()
def plugins() -> None:
    """List loaded plugins and what each contributes."""
    pm = registry.plugin_manager()
    table = Table(title="Plugins (entry-point group 'nasbench_pc')")
    table.add_column("plugin")
    table.add_column("module")
    table.add_column("contributes")
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        hooks = [h.name.removeprefix("register_") for h in pm.get_hookcallers(plugin) or []]
        table.add_row(name, getattr(plugin, "__name__", repr(plugin)), ", ".join(sorted(hooks)))
    console.print(table)


@click.command()
@click.argument("method")
@space_option_flags
def supernet(method: str, **options: Any) -> None:
    """Build METHOD's supernet on its search space (or --space) and summarise it: shape, parameters,
    architecture tensors, initial genotype."""
    overrides = plugin_overrides(options)
    resolved = resolve_method(method)
    if "sampler_options" in overrides:  # set over the method's own, as a search does
        resolved = resolve_method(resolved, sampler_options={**resolved.sampler_options,
                                                             **overrides["sampler_options"]})
    space = registry.get("search_space", overrides.get("space", resolved.search_space))
    shape = space_options(space, overrides.get("space_options", {}))
    net = create_supernet(resolved, space=space.name, **shape)
    table = Table(title=f"Supernet of {resolved.name}: {resolved.description}")
    table.add_column("item")
    table.add_column("value")
    weights = sum(p.numel() for p in net.weight_parameters())
    table.add_row("search space", space.name)
    table.add_row("shape", ", ".join(f"{k}={v}" for k, v in shape.items()))
    table.add_row("sampler", f"{resolved.sampler} {resolved.sampler_options or ''}".strip())
    table.add_row("normalizer", resolved.normalizer)
    table.add_row("weights", f"{weights:,} ({weights / 1e6:.2f}M)")
    names = {id(p): name for name, p in net.named_parameters()}
    for i, p in enumerate(net.arch_parameters()):
        table.add_row(names.get(id(p), f"architecture tensor {i}"), "x".join(map(str, p.shape)))
    table.add_row("genotype at init", genotypes.to_text(net.genotype()))
    console.print(table)


COMMANDS = (methods, plugins, supernet)
