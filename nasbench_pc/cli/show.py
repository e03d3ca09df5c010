"""``show``: a genotype of any search space: its cells, and the parameters and MACs of its derived networks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from nasbench_pc import genotypes
from nasbench_pc.cli._options import NETWORK
from nasbench_pc.console import console
from nasbench_pc.networks.cost import derived_network, model_cost, network_spec
from nasbench_pc.networks.export import network_options
from nasbench_pc.protocols import SearchSpace


def cell_tree(space: SearchSpace, genotype: Any, title: str) -> Tree:
    """The space's ``cell_lines`` as a tree: one branch per cell type, one leaf per line."""
    tree = Tree(f"[bold]{escape(title)}[/bold]")
    for cell, lines in space.cell_lines(genotype).items():
        branch = tree.add(f"[cyan]{escape(cell)}[/cyan]")
        for line in lines:
            branch.add(escape(line))
    return tree


@click.command()
@click.argument("genotype")
@click.option("--network", type=NETWORK, help="Cost for this derived network of the genotype's space only "
              "(DARTS: cifar or imagenet; default: each of the space's networks).")
@click.option("--init-channels", "-C", type=int, default=None, help="Initial channels (default: reference).")
@click.option("--layers", type=int, default=None, help="Cells (DARTS: in all; NAS-Bench-201: per stage; default: "
              "reference).")
@click.option("--num-classes", type=int, default=None, help="Classes (default: the network's, e.g. 10 CIFAR, 1000 "
              "ImageNet).")
@click.option("--image-size", type=int, default=None, help="Input side for MACs (default: the network's, e.g. "
              "32 / 224).")
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also draw the cells into this PNG file (needs matplotlib).")
def show(genotype: str, network: str | None, init_channels: int | None, layers: int | None,
         num_classes: int | None, image_size: int | None, png: Path | None) -> None:
    """Render GENOTYPE's cells and its parameters and MACs.

    Any search space's genotype: its cells as the space reads them, and the cost of each network the space
    derives from it (or of --network).

    GENOTYPE is a published name (DARTS_V2, PC_DARTS_cifar, NB201_best_cifar10, ...), a genotype.json, a search
    run directory, JSON text, or the space's own text format (a Genotype(...) literal; a NAS-Bench-201
    string such as '|nor_conv_3x3~0|+|...|').
    """
    parsed = genotypes.parse(genotype)
    space = genotypes.space_of(parsed)
    console.print(f"search space: [bold]{escape(space.name)}[/bold]")
    console.print(cell_tree(space, parsed, genotype if genotype in space.known else "genotype"))
    classes = {} if num_classes is None else {"num_classes": num_classes}
    custom = any(v is not None for v in (init_channels, layers, num_classes, image_size))
    # a custom setting describes one network: the chosen one, else the space's default
    names = [network] if network else list(space.networks)[:1] if custom else list(space.networks)
    columns: dict[str, dict[str, str]] = {}  # one column per network: a few networks read better side by side
    for name in names:
        _, spec = network_spec(parsed, name)
        shape = network_options(spec, init_channels=init_channels, layers=layers)  # --layers: cells_per_stage on NB201
        model, spec = derived_network(parsed, name, **shape, **classes)
        side = image_size or spec.image_size
        cost = model_cost(model, (3, side, side))
        columns[name] = {"model": spec.model, **{k: str(v) for k, v in shape.items()},
                         "classes": str(model.num_classes), "input": "x".join(map(str, cost.input_size)),
                         "params": f"{cost.params:,} ({cost.params / 1e6:.2f}M)", "MACs": f"{cost.macs / 1e6:,.1f}M"}
    table = Table(title="Derived networks", caption="params: auxiliary head excluded; MACs: convolutions and "
                  "linear layers")
    table.add_column("network", style="bold")
    for name in columns:
        table.add_column(name, justify="right")
    for row in dict.fromkeys(key for values in columns.values() for key in values):
        table.add_row(row, *[values.get(row, "-") for values in columns.values()])
    console.print(table)
    console.print(f"[dim]text:[/dim] {escape(genotypes.to_text(parsed))}", soft_wrap=True, highlight=False)
    if png is not None:
        console.print(f"cell diagram written to [bold]{space.draw(parsed, png, title=genotype)}[/bold]")


COMMANDS = (show,)
