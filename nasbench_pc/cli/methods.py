"""``methods``, ``plugins`` and ``supernet``: look at what is registered and what it builds."""

from __future__ import annotations

import click
from rich.table import Table

from nasbench_pc import registry
from nasbench_pc.api import create_supernet, resolve_method
from nasbench_pc.console import console
from nasbench_pc.genotypes import to_python


@click.command()
def methods() -> None:
    """List the registered search methods and their presets."""
    table = Table(title="Search methods")
    for col in ("method", "sampler", "normalizer", "order", "batch", "lr", "arch lr", "warm-up", "description"):
        table.add_column(col)
    for name, m in sorted(registry.available("method").items()):
        sampler = m.sampler + "".join(f" {k}={v}" for k, v in m.sampler_options.items())
        h = m.hparams
        table.add_row(name, sampler, m.normalizer, str(m.order), str(h.batch_size), f"{h.lr:g}", f"{h.arch_lr:g}",
                      str(h.warmup_epochs), m.description)
    console.print(table)


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
@click.option("--init-channels", "-C", default=16, show_default=True, help="Initial channels C.")
@click.option("--layers", default=8, show_default=True, help="Number of cells.")
@click.option("--k", "k", type=int, default=None, help="Partial-channel K (partial samplers only).")
def supernet(method: str, init_channels: int, layers: int, k: int | None) -> None:
    """Build METHOD's supernet and summarise it: parameters, architecture tensors, initial genotype."""
    overrides = {} if k is None else {"k": k}
    resolved = resolve_method(method, **overrides)
    net = create_supernet(resolved, init_channels=init_channels, layers=layers)
    table = Table(title=f"Supernet of {resolved.name}: {resolved.description}")
    table.add_column("item")
    table.add_column("value")
    weights = sum(p.numel() for p in net.weight_parameters())
    table.add_row("sampler", f"{resolved.sampler} {resolved.sampler_options or ''}".strip())
    table.add_row("normalizer", resolved.normalizer)
    table.add_row("cells", f"{layers} (reduction at {layers // 3} and {2 * layers // 3}), C={init_channels}")
    table.add_row("weights", f"{weights:,} ({weights / 1e6:.2f}M)")
    for name, p in zip(("alphas_normal", "alphas_reduce", "betas_normal", "betas_reduce"), net.arch_parameters()):
        table.add_row(name, "x".join(map(str, p.shape)))
    table.add_row("genotype at init", to_python(net.genotype()))
    console.print(table)


COMMANDS = (methods, plugins, supernet)
