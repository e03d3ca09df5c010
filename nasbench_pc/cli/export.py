"""``export``: a genotype or a trained run as a timm model folder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click
from rich.panel import Panel

from nasbench_pc.cli._options import NETWORK
from nasbench_pc.console import console
from nasbench_pc.errors import ConfigError
from nasbench_pc.networks.export import describe_metrics, describe_shape, resolve_source, write_folder, write_onnx
from nasbench_pc.networks.onnx_export import ONNX_NAME, require_packages


@click.command()
@click.argument("source")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write (config.json, model.safetensors, README.md; model.onnx with --onnx).")
@click.option("--network", type=NETWORK, default=None,
              help="Untrained sources: a derived network of the genotype's search space (default its first: cifar).")
@click.option("--init-channels", "-C", type=int, default=None, help="Untrained sources: initial channels.")
@click.option("--layers", type=int, default=None,
              help="Untrained sources: cells (DARTS) or cells per stage (NAS-Bench-201).")
@click.option("--num-classes", type=int, default=None, help="Untrained sources: classes.")
@click.option("--onnx", is_flag=True,
              help='Also write model.onnx (dynamic batch axis), checked against onnxruntime on CPU. Needs pip install '
                   '"nasbench-pc[onnx]".')
def export(source: str, out: Path, network: str | None, init_channels: int | None, layers: int | None,
           num_classes: int | None, onnx: bool) -> None:
    """Export SOURCE as a timm model folder: timm.create_model("local-dir:OUT") loads it.

    SOURCE is a train run directory or its checkpoint.pt (weights included), a search run directory, a
    genotype.json, a space's genotype text or a published name (architecture only: load it with
    pretrained=False). The network is the genotype's search space's derived network.
    """
    if onnx:
        require_packages()  # before any work: a missing extra is one paragraph, not a half-done export
    spec = resolve_source(source)
    shape = {"network": network, "init_channels": init_channels, "layers": layers, "num_classes": num_classes}
    given = {k: v for k, v in shape.items() if v is not None}
    if spec.state_dict is not None and given:
        raise ConfigError(
            f"{source} holds trained weights, whose network is fixed; drop "
            f"{', '.join('--' + k.replace('_', '-') for k in given)}."
        )
    spec = replace(spec, **given)
    folder = write_folder(spec, out)
    if spec.state_dict is None:
        console.print(Panel(
            f"{source} has no trained weights: wrote an untrained {spec.architecture} "
            f"({describe_shape(spec.network_spec(), spec.shape())}, "
            f"{spec.classes()} classes) to {folder}.\nLoad it with timm.create_model('local-dir:{folder}', "
            f"pretrained=False); train it with `nasbench-pc train`.",
            title="exported (architecture only)", border_style="yellow", expand=False))
    else:
        console.print(Panel(
            f"{spec.architecture} with trained weights ({spec.dataset}, "
            + describe_metrics(spec.metrics)
            + f") written to {folder}.\nLoad it with timm.create_model('local-dir:{folder}', pretrained=True) "
            "after `import nasbench_pc`.",
            title="exported", border_style="green", expand=False))
    if onnx:
        check = write_onnx(spec, folder)
        console.print(Panel(
            f"{folder / ONNX_NAME}: batch axis dynamic; checked against PyTorch: {check.describe()}.",
            title="exported to ONNX", border_style="green", expand=False))


COMMANDS = (export,)
