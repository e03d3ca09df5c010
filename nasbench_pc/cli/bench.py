"""``bench`` and ``plan``: what each method's supernet step costs (memory, time) over batch sizes, and the batch
that fits a memory budget."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from nasbench_pc.cli._plugin_options import plugin_option_flags, plugin_overrides
from nasbench_pc.cli._settings import settings_options
from nasbench_pc.cli.compare import check_sampler_options, default_methods, for_method
from nasbench_pc.console import console
from nasbench_pc.results import compare as cmp
from nasbench_pc.runtime.devices import check_device
from nasbench_pc.search.budget import SupernetShape, checkpointed, largest_batch, measure, parse_bytes, plan
from nasbench_pc.search.config import SearchConfig


def _shape_options(f: Any) -> Any:
    """--space and its options (the space's defaults unless given), --image-size and --device."""
    f = settings_options(SearchConfig, only=("image_size", "device"), defaults={"image_size": 32, "device": "cpu"},
                         helps={"image_size": "Square side of the inputs measured.", "device": "cpu, cuda or cuda:N."}
                         )(f)
    return plugin_option_flags(f)


def _bench_shape(image_size: int, options: dict[str, Any]) -> SupernetShape:
    """The supernet shape from the options ``_shape_options`` added (popped from ``options``)."""
    overrides = plugin_overrides(options)
    shape_options = overrides.get("space_options", {})
    if "sampler_options" in overrides:
        shape_options["sampler_options"] = overrides["sampler_options"]
    return SupernetShape(image_size=image_size, space=overrides.get("space"), options=shape_options)


def _shape_title(shape: SupernetShape) -> str:
    """'darts, init_channels=16, layers=5' for a table title (the space's defaults fill what is not given)."""
    settings = [f"{k}={v}" for k, v in shape.options.items()]
    return ", ".join([shape.space or "each method's space", *settings])


@click.command()
@click.argument("methods", nargs=-1)
@click.option("--batch", "batches", type=int, multiple=True, help="Batch size(s) [32]; repeat or list: "
              "--batch 32 --batch 64, or --batch 32 64.")
@click.option("--budget", help="Also find the largest batch that fits, e.g. 11GB (CUDA: tried; CPU: extrapolated "
              "from bytes saved for backward).")
@click.option("--repeats", default=2, show_default=True, help="Timed steps per point.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the results as JSON.")
@click.option("--baseline", metavar="METHOD", help="The benched method whose memory the others' is compared to "
              "(the '<baseline> / method' column) [the first method].")
@_shape_options
def bench(methods: tuple[str, ...], batches: tuple[int, ...], budget: str | None, repeats: int,
          json_path: str | None, baseline: str | None, image_size: int, device: str, **options: Any) -> None:
    """Memory and step time of each method's supernet over batch sizes. With no METHOD: every method that
    declares a default_rank, in its order (the built-ins: darts, pc-darts, pc-only, en-only).

    \b
    nasbench-pc bench --batch 16 32
    nasbench-pc bench darts pc-darts --device cuda --batch 64 256 --budget 11GB
    nasbench-pc bench darts pc-darts --space nas-bench-201 --space-option cells_per_stage=2
    """
    device = check_device(device)
    method_list = [t for t in methods if not t.isdigit()] or default_methods()
    batch_list = list(batches) + [int(t) for t in methods if t.isdigit()] or [32]
    cmp.check_baseline(baseline, method_list)
    baseline = baseline or method_list[0]
    check_sampler_options(options, method_list)
    shapes = {m: _bench_shape(image_size, for_method(options, m)) for m in method_list}
    shape = _bench_shape(image_size, options)  # as given, for the title and the JSON
    points = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task("bench", total=len(method_list) * len(batch_list))
        for method in method_list:
            for batch in batch_list:
                progress.update(task, description=f"{method} batch {batch}")
                points.append(measure(method, batch, shape=shapes[method], device=device, repeats=repeats))
                progress.advance(task)
    kind = points[0].memory_kind
    table = Table(title=f"Supernet step cost: {_shape_title(shape)}, {image_size}x{image_size}, {device}")
    for col in ("method", "batch", f"{kind} (MiB)", f"{baseline} / method", "step s", "img/s"):
        table.add_column(col)
    base = {p.batch: p for p in points if p.method == baseline}
    for p in points:
        ref = base.get(p.batch)
        ratio = f"{ref.memory_bytes / p.memory_bytes:.2f}x" if ref and p.memory_bytes and ref.memory_bytes else "-"
        table.add_row(p.method, str(p.batch), "out of memory" if p.memory_bytes is None else
                      f"{p.memory_bytes / 2**20:,.0f}", ratio,
                      "-" if p.step_seconds is None else f"{p.step_seconds:.3f}",
                      "-" if not p.step_seconds else f"{p.batch / p.step_seconds:.0f}")
    console.print(table)
    result: dict[str, Any] = {"shape": asdict(shape), "device": device, "baseline": baseline,
                              "points": [p.as_dict() for p in points]}
    if budget:
        limit = parse_bytes(budget)
        fits = [largest_batch(m, limit, shape=shapes[m], device=device) for m in method_list]
        fit_table = Table(title=f"Largest batch within {budget}")
        for col in ("method", "largest batch", "how"):
            fit_table.add_column(col)
        for fit in fits:
            fit_table.add_row(fit.method, str(fit.batch), "extrapolated from saved bytes (CPU)" if fit.extrapolated
                              else "tried on the device")
        console.print(fit_table)
        result["budget"] = {"bytes": limit, "fits": [f.__dict__ for f in fits]}
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n")


@click.command(name="plan")
@click.argument("methods", nargs=-1)
@click.option("--budget", required=True, help="Memory budget, e.g. 11GB or 40GiB.")
@_shape_options
def plan_command(methods: tuple[str, ...], budget: str, image_size: int, device: str, **options: Any) -> None:
    """Recommend each method's batch for a memory budget, with the learning rate scaled linearly; and the batch
    each reaches with --checkpoint cells (cells recomputed in backward). With no METHOD: every method that declares
    a default_rank, in its order (the built-ins: darts, pc-darts, pc-only, en-only).

    \b
    nasbench-pc plan --budget 11GB --device cuda
    nasbench-pc plan darts pc-darts --budget 11GB --space nas-bench-201
    """
    device = check_device(device)
    method_list = list(methods) or default_methods()
    check_sampler_options(options, method_list)
    shapes = {m: _bench_shape(image_size, for_method(options, m)) for m in method_list}
    shape = _bench_shape(image_size, options)  # as given, for the title and the hint
    recomputed = {m: checkpointed(m, shapes[m]) for m in method_list}  # None: given already, or not in the space
    with_checkpoint = any(recomputed.values())
    table = Table(title=f"Search plan for {budget} ({_shape_title(shape)}, {device})")
    for col in ("method", "batch", "lr", "arch lr", "from preset", "how"):
        table.add_column(col)
    if with_checkpoint:
        table.add_column("batch (checkpoint cells)")
    limit = parse_bytes(budget)
    for method in method_list:
        p = plan(method, limit, shape=shapes[method], device=device)
        row = [p.method, str(p.batch), f"{p.lr:.4g}" if p.batch else "-", f"{p.arch_lr:g}",
               f"lr {p.reference_lr:g} at batch {p.reference_batch}",
               "extrapolated (CPU saved bytes)" if p.extrapolated else "tried on the device"]
        if with_checkpoint:
            ckpt = recomputed[method]
            fit = None if ckpt is None else largest_batch(method, limit, shape=ckpt, device=device)
            # extrapolated on CPU from bytes that leave out the cell being recomputed: a bound, not a fit
            row.append("-" if fit is None else f"<= {fit.batch}" if fit.extrapolated else str(fit.batch))
        table.add_row(*row)
    console.print(table)
    # the plan holds for the supernet measured, so the hint repeats its shape
    flags = [f"--space {shape.space}"] if shape.space else []
    flags += [f"--space-option {k}={v}" for k, v in shape.options.items() if k != "sampler_options"]
    flags += [f"--sampler-option {k}={v}" for k, v in shape.options.get("sampler_options", {}).items()]
    console.print(f"Use it: nasbench-pc search --method METHOD {' '.join([*flags, '--preset paper'])} --batch-size "
                  f"BATCH --lr LR", highlight=False)
    if with_checkpoint:
        cpu = ("; on CPU it is extrapolated from the bytes kept between forward and backward, which leave out the "
               "cell recomputed during backward, so it is only an upper bound" if device == "cpu" else "")
        console.print(f"The last column is the batch with --checkpoint cells, which recomputes the activations of the "
                      f"cells before the last stage in backward (same gradients, more step time); scale the lr to it "
                      f"the same way{cpu}.",
                      highlight=False)


COMMANDS = (bench, plan_command)
