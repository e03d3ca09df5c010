"""``methods``, ``plugins`` and ``supernet``: look at what is registered and what it builds."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from nasbench_pc import genotypes, registry
from nasbench_pc.api import create_supernet, resolve_method, space_options
from nasbench_pc.cli._plugin_options import plugin_option_flags, plugin_overrides
from nasbench_pc.console import console
from nasbench_pc.errors import PluginError
from nasbench_pc.records import Method


def settings_table(registered: list[tuple[str, Method]]) -> Table | None:
    """The methods' own settings (``--method-option NAME=VALUE``), one row each; None when no method has any."""
    rows = [(name, s) for name, m in registered for s in m.settings]
    if not rows:
        return None
    table = Table(title="Method settings (search --method-option NAME=VALUE)")
    for col in ("method", "setting", "default", "type", "meaning"):
        table.add_column(col, overflow="fold", no_wrap=col == "setting")
    for name, s in rows:
        kind = s.type.__name__ if s.type else "any"
        table.add_row(name, s.name, repr(s.default), kind, s.help)
    return table


def _method_detail(name: str) -> None:
    m = resolve_method(name)
    table = Table(title=f"{name}: {m.description}", show_header=False)
    table.add_column("item", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("search space", m.space if not m.spaces else f"{m.space} (runs on {', '.join(m.spaces)} only)")
    table.add_row("sampler", m.sampler + "".join(f" {k}={v}" for k, v in m.sampler_options.items()))
    table.add_row("normalizer", m.normalizer)
    table.add_row("architecture gradient", "second order (unrolled)" if m.order == 2 else "first order")
    for space, h in [(m.space, m.hparams), *sorted(m.space_hparams.items())]:
        table.add_row(f"settings on {space}", ", ".join(f"{k}={v}" for k, v in h.as_dict().items()))
    for space, shape in sorted(m.space_options.items()):
        table.add_row(f"shape on {space}", ", ".join(f"{k}={v}" for k, v in shape.items()))
    table.add_row("own settings", "\n".join(f"{s.name}={s.default!r}: {s.help}" for s in m.settings) or
                  "none (--method-option has nothing to set)")
    console.print(table)


def _space_words(method: Method) -> str:
    """Its default space, or the only ones it runs on (``Method.spaces``)."""
    if method.spaces:
        return f"{', '.join(method.spaces)} only"
    return f"space {method.space}"


@click.command()
@click.argument("method", required=False)
def methods(method: str | None) -> None:
    """List the registered search methods and their presets, their own settings, the search spaces they can run on
    and the evaluators that score what they find; with METHOD, everything about that one method."""
    if method is not None:
        _method_detail(method)
        return
    registered = sorted((name, resolve_method(m)) for name, m in registry.available("method").items())
    wide = console.width >= 120  # the descriptions fit beside the settings; else they follow the table
    table = Table(title="Search methods", box=None, header_style="bold underline", padding=(0, 1))
    longest = max((len(name) for name, _ in registered), default=6)
    for col in ("method", "sampler", "normalizer", "order", "batch", "lr", "arch lr", "warm-up"):
        # the names stay whole; the other columns fold when narrow, never cut off with an ellipsis
        table.add_column(col, overflow="fold", min_width=longest if col == "method" else None)
    if wide:
        table.add_column("description", overflow="fold")
    for name, m in registered:
        sampler = m.sampler + "".join(f" {k}={v}" for k, v in m.sampler_options.items())
        h = m.hparams
        table.add_row(name, sampler, m.normalizer, str(m.order), str(h.batch_size), f"{h.lr:g}", f"{h.arch_lr:g}",
                      str(h.warmup_epochs), *([f"{m.description} ({_space_words(m)})"] if wide else []))
    console.print(table)
    if not wide:
        for name, m in registered:
            console.print(f"[bold]{escape(name)}[/bold] ({escape(_space_words(m))}): {escape(m.description)}",
                          highlight=False)
    if (own := settings_table(registered)) is not None:
        console.print(own)
    spaces = Table(title="Search spaces (--space NAME)")
    spaces.add_column("space", no_wrap=True)
    for col in ("ops", "shape options (--space-option key=value)", "networks"):
        spaces.add_column(col, overflow="fold")
    for name, space in sorted(registry.available("search_space").items()):
        spaces.add_row(name, ", ".join(space.primitives), ", ".join(f"{k}={v}" for k, v in space.options.items()),
                       ", ".join(space.networks))
    console.print(spaces)
    for name, space in sorted(registry.available("search_space").items()):
        if space.recipes:
            rule = getattr(space, "recipe_rule", "")
            console.print(f"[bold]{escape(name)}[/bold] training recipes (train --recipe): "
                          f"{escape(', '.join(space.recipes))}{'. --recipe auto: ' + escape(rule) if rule else ''}",
                          highlight=False)
    scorers = Table(title="Evaluators (--evaluate NAME[:key=value,...] on evaluate and compare)")
    scorers.add_column("evaluator", no_wrap=True)
    for col in ("metrics", "needs", "options", *(["what it scores"] if wide else [])):
        scorers.add_column(col, overflow="fold")
    evaluators = sorted(registry.available("evaluator").items())
    for name, evaluator in evaluators:
        metrics = ", ".join(f"{m.label} ({'higher' if m.higher_is_better else 'lower'} is better)"
                            for m in evaluator.metrics)
        scorers.add_row(name, metrics, ", ".join(sorted(evaluator.needs)) or "the genotype",
                        " ".join(f"{k}={v}" for k, v in evaluator.options.items()) or "-",
                        *([evaluator.description] if wide else []))
    console.print(scorers)
    if not wide:
        for name, evaluator in evaluators:
            console.print(f"[bold]{escape(name)}[/bold]: {escape(evaluator.description)}", highlight=False)


@click.command()
def plugins() -> None:
    """List the loaded plugins and what each registers, then every plugin or hook that failed and why."""
    table = Table(title="Plugins (entry-point group 'nasbench_pc')")
    table.add_column("plugin", no_wrap=True)
    table.add_column("distribution", overflow="fold")
    table.add_column("module", overflow="fold")
    table.add_column("registers", overflow="fold")
    registered = {kind: registry.registered_by(kind) for kind in registry.KINDS}
    for info in registry.loaded_plugins():
        lines = [f"{hook.removeprefix('register_')}: {', '.join(registered[kind][info.name])}"
                 for kind, hook in registry.KINDS.items() if registered[kind].get(info.name)]
        table.add_row(info.name, f"{info.distribution} {info.version}".strip(), info.module, "\n".join(lines))
    console.print(table)
    failed = Table(title="Plugins that failed (skipped)")
    failed.add_column("plugin", no_wrap=True)
    failed.add_column("distribution", overflow="fold")
    failed.add_column("module", overflow="fold")
    failed.add_column("stage", overflow="fold")
    failed.add_column("error", overflow="fold", ratio=1)
    for failure in registry.failures():
        info = failure.plugin
        failed.add_row(info.name, f"{info.distribution} {info.version}".strip(), info.module,
                       failure.hook or "load", failure.error)
    for kind, hook in registry.KINDS.items():  # a name two plugins claim fails every use of that registry
        try:
            registry.available(kind)
        except PluginError as exc:
            failed.add_row("(conflict)", "", "", hook, str(exc))
    if failed.row_count:
        console.print(failed)


@click.command()
@click.argument("method")
@plugin_option_flags
def supernet(method: str, **options: Any) -> None:
    """Build METHOD's supernet on its search space (or --space) and summarise it: shape, parameters,
    architecture tensors, initial genotype."""
    overrides = plugin_overrides(options)
    resolved = resolve_method(method)
    if "sampler_options" in overrides:  # set over the method's own, as a search does
        resolved = resolve_method(resolved, sampler_options={**resolved.sampler_options,
                                                             **overrides["sampler_options"]})
    space = registry.get("search_space", overrides.get("space", resolved.space))
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
