"""``show``: a genotype's cells and its parameters and MACs."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from nasbench_pc import genotypes
from nasbench_pc.cli._options import NETWORK
from nasbench_pc.console import console
from nasbench_pc.cost import SETTINGS, genotype_cost
from nasbench_pc.render import cell_tree, save_png
from nasbench_pc.train import NETWORKS


@click.command()
@click.argument("genotype")
@click.option("--network", type=NETWORK, default=None, help="Cost for this network only (default: both).")
@click.option("--init-channels", "-C", type=int, default=None, help="Initial channels (default: reference).")
@click.option("--layers", type=int, default=None, help="Number of cells (default: reference).")
@click.option("--num-classes", type=int, default=None, help="Classes (default: 10 CIFAR, 1000 ImageNet).")
@click.option("--image-size", type=int, default=None, help="Input side for MACs (default: 32 / 224).")
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also draw both cells into this PNG file (needs matplotlib).")
def show(genotype: str, network: str | None, init_channels: int | None, layers: int | None,
         num_classes: int | None, image_size: int | None, png: Path | None) -> None:
    """Render GENOTYPE's cells and its parameters and MACs.

    GENOTYPE is a name from KNOWN, a genotype.json, a search run directory or JSON text.
    """
    parsed = genotypes.parse(genotype)
    console.print(cell_tree(parsed, genotype if genotype in genotypes.KNOWN else "genotype"))
    custom = any(v is not None for v in (init_channels, layers, num_classes, image_size))
    table = Table(title="Cost (auxiliary head excluded; MACs of convolutions and linear layers)")
    for col in ("network", "C", "cells", "classes", "input", "params", "MACs"):
        table.add_column(col, justify="right" if col in ("params", "MACs") else "left")
    for net in [network] if network else (["cifar"] if custom else list(NETWORKS)):
        c, n, k, size = SETTINGS[net]
        cost = genotype_cost(parsed, stem=net, init_channels=init_channels, layers=layers, num_classes=num_classes,
                             image_size=image_size)
        table.add_row(net, str(init_channels or c), str(layers or n), str(num_classes or k),
                      "x".join(map(str, cost.input_size)), f"{cost.params:,} ({cost.params / 1e6:.2f}M)",
                      f"{cost.macs / 1e6:,.1f}M")
    console.print(table)
    console.print(f"[dim]reference literal:[/dim] {genotypes.to_python(parsed)}")
    if png is not None:
        console.print(f"cell diagram written to [bold]{save_png(parsed, png, title=genotype)}[/bold]")


COMMANDS = (show,)
