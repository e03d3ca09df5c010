"""``search``: run, watch and resume a bilevel architecture search."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click
import torch
from click.core import ParameterSource
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nasbench_pc import genotypes, registry
from nasbench_pc.cli._plugin_options import method_option, plugin_option_flags, plugin_overrides
from nasbench_pc.cli._settings import settings_options
from nasbench_pc.console import console
from nasbench_pc.errors import ConfigError
from nasbench_pc.results.tracking import tracking
from nasbench_pc.runtime import distributed
from nasbench_pc.runtime.devices import check_device, default_device
from nasbench_pc.runtime.runkit import CONFIG, GENOTYPE
from nasbench_pc.search import AlreadyFinished, SearchConfig, SearchResult, load_run_config, run_search
from nasbench_pc.search.presets import PRESETS, resolve_config
from nasbench_pc.search.runspec import check_reuse


def genotype_table(genotype: Any) -> Table:
    """The space's cells side by side, one row per node (its ``cell_lines``)."""
    cells = genotypes.space_of(genotype).cell_lines(genotype)
    table = Table(show_header=True, header_style="bold", box=None)
    for name in cells:
        table.add_column(name)
    rows = max(map(len, cells.values()))
    for i in range(rows):
        table.add_row(*(lines[i] if i < len(lines) else "" for lines in cells.values()))
    return table


class ConsoleReporter:
    """Rich progress: an epoch bar and a step bar with live loss, accuracy and throughput."""

    def __init__(self, progress: Progress, epochs_done: int, epochs: int):
        self.progress = progress
        self.epochs = progress.add_task("epochs", total=epochs, completed=epochs_done, stats="")
        self.steps = progress.add_task("steps", total=1, stats="")

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        self.progress.reset(self.steps, total=steps, description=f"epoch {epoch + 1}/{epochs}", stats="")

    def step(self, step: int, stats: dict[str, float]) -> None:
        text = f"loss {stats['loss']:.3f}  acc {stats['acc']:.1%}  {stats['img_s']:.0f} img/s"
        if "arch_loss" in stats:
            text += f"  arch loss {stats['arch_loss']:.3f}"
        self.progress.update(self.steps, completed=step + 1, stats=text)

    def epoch_end(self, record: dict[str, Any]) -> None:
        self.progress.update(self.epochs, advance=1, stats=f"arch acc {record['arch_acc']:.1%}")
        memory = next((f"{v:.0f} MiB" for k, v in record.items() if k.startswith("peak_")), "")
        self.progress.console.print(
            f"epoch {record['epoch']:>3}  train {record['train_loss']:.3f}/{record['train_acc']:.1%}  "
            f"arch split {record['arch_loss']:.3f}/{record['arch_acc']:.1%}  lr {record['lr']:.3g}  "
            f"{record['epoch_seconds']:.0f}s  {memory}  skips {record['skip_connects']}"
            + ("" if record["arch_updates"] else "  (arch warm-up)")
        )


def _summary(result: SearchResult, config: SearchConfig) -> Panel:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    last = result.history[-1] if result.history else {}
    table.add_row("method", f"{config.method} on {config.dataset} ({config.preset} preset, {config.device})")
    info = result.dataset
    channels = "native channels" if config.in_channels is None else (
        f"--in-channels {config.in_channels}: grayscale is replicated, RGB reduced to luminance")
    table.add_row("data", f"{info.name}: {info.num_classes} classes, {info.in_channels}x{info.image_size}x"
                          f"{info.image_size} ({channels})")
    table.add_row("epochs", f"{len(result.history)}, {result.seconds:.1f}s in total")
    if last:
        table.add_row("final", f"train acc {last['train_acc']:.1%}, architecture-split acc {last['arch_acc']:.1%}")
        memory = next(((k, v) for k, v in last.items() if k.startswith("peak_")), None)
        if memory:
            table.add_row("memory", f"{memory[1]:.0f} MiB ({memory[0].removeprefix('peak_').removesuffix('_mib')})")
    table.add_row("genotype", genotype_table(result.genotype))
    if result.run_dir is not None:
        table.add_row("artifacts", f"{result.run_dir}/  genotype.json  metrics.jsonl  genotypes.jsonl  config.json  "
                                   f"checkpoint.pt")
        table.add_row("next", f"nasbench-pc train {result.run_dir}")
    return Panel(table, title="[bold green]search finished", border_style="green", expand=False)


def _check_device(device: str, ctx: distributed.Context) -> str:
    checked = check_device(device)
    # under torchrun, plain "cuda" means this process's GPU
    return f"cuda:{ctx.local_rank}" if ctx.active and device == "cuda" else checked


class _DefaultMethod(click.Option):
    """--method, whose default is the registered method that says ``default=True``, named in the help."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self.default, self.show_default = registry.default("method"), True
        return super().get_help_record(ctx)


@click.command()
@click.option("--method", "-m", cls=_DefaultMethod, default=lambda: registry.default("method"),
              help="Registered search method.")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="quick", show_default=True,
              help="quick: CPU smoke test (the space's small supernet, DARTS: C=8, 5 cells; 16x16 images, batch 32, "
                   "1000 examples, 10 epochs); paper: the method's reference settings on the space (CIFAR-10's on "
                   "DARTS); imagenet: the PC-DARTS ImageNet search (DARTS space only).")
@settings_options(SearchConfig, helps={"dataset": "Registered dataset [synthetic; imagenet with --preset imagenet]."})
@plugin_option_flags
@method_option
@click.option("--out", "-o", type=click.Path(file_okay=False), help="Run directory "
              "[runs/<method>-<dataset>-<timestamp>].")
@click.option("--resume", type=click.Path(file_okay=False, exists=True), help="Continue the search in this run "
              "directory (its config.json decides every option but --device and --log).")
@click.option("--force", is_flag=True, help="Start over in an --out folder that holds another search, replacing "
              "its files.")
@click.option("--resume-if-stopped", is_flag=True, help="With --out: continue the search there if the folder holds an "
              "unfinished one of these very settings (a requeued or re-run cluster job), end at once if it holds the "
              "finished one, refuse one of other settings. What compare's workers and cluster jobs run.")
@click.option("--threads", type=int, help="CPU threads for PyTorch.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or summary; print only the run directory.")
@click.pass_context
def search(ctx: click.Context, method: str, preset: str, out: str | None, resume: str | None, force: bool,
           resume_if_stopped: bool, threads: int | None, quiet: bool, **options: Any) -> None:
    """Search a cell architecture with METHOD's bilevel optimisation and write a run directory.

    \b
    nasbench-pc search --method pc-darts --dataset synthetic --epochs 2
    nasbench-pc search --method darts --dataset fashion-mnist --limit 2000 --epochs 3
    nasbench-pc search --method pc-darts --preset paper --dataset cifar10 --data-root data --download
    torchrun --nproc_per_node 4 -m nasbench_pc search --method pc-darts --preset paper --dataset cifar10
    nasbench-pc search --resume runs/pc-darts-synthetic-20260101-120000

    Ctrl-C (or SIGTERM) stops after the current step with a checkpoint; --resume continues from it.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    given = {name for name in (*options, "method", "preset")
             if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)}
    dist_ctx = distributed.init_from_env(options["device"] or default_device())
    try:
        if resume_if_stopped and (resume or force or not out):
            raise ConfigError("--resume-if-stopped goes with --out and the search's settings (it decides by itself "
                              "whether to start, continue or leave the run); drop --resume / --force, or give --out.")
        if resume:
            extra = sorted(given - {"device", "log"}) + (["force"] if force else [])
            if extra:
                raise ConfigError(f"--resume takes every option but --device and --log from {Path(resume) / CONFIG}; "
                                  f"drop "
                                  f"{', '.join('--' + g.replace('_', '-') for g in extra)} "
                                  f"(or start a new search with another --out).")
            run_dir = Path(resume)
            config = load_run_config(run_dir)
            device = _check_device(options["device"] or config.device, dist_ctx)
            log = options["log"] if "log" in given else config.log  # the loggers it had, unless --log says others
            config = SearchConfig.from_dict({**config.to_dict(), "device": device, "log": log})
        else:
            overrides = {k: v for k, v in options.items() if k in given}
            overrides.update(plugin_overrides(overrides))
            overrides["device"] = _check_device(options["device"] or default_device(), dist_ctx)
            config = resolve_config(method, preset, **overrides)
            stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            default = Path("runs") / f"{config.method}-{config.dataset}-{stamp}"
            run_dir = Path(dist_ctx.broadcast_object(str(Path(out) if out else default)))
        wanted: bool | None = bool(resume)
        if resume_if_stopped:
            check_reuse(run_dir, config, elsewhere="another --out")
            if (run_dir / GENOTYPE).exists():  # finished already (an earlier attempt of this job): nothing to do
                click.echo(str(run_dir))
                return
            wanted = None  # continue a checkpoint if there is one, looked for under the run's lease
        if dist_ctx.is_main and not quiet:
            console.print(Panel(_config_table(config, dist_ctx), title=f"[bold]search {config.method}",
                                subtitle=str(run_dir), expand=False))
        # Ctrl-C / SIGTERM: run_search stops at a step boundary and raises Interrupted (exit 128 + signal)
        try:
            result = _run(config, run_dir, wanted, force, dist_ctx, quiet)
        except AlreadyFinished:  # --resume-if-stopped: another attempt of this job ended it meanwhile
            click.echo(str(run_dir))
            return
        if dist_ctx.is_main:
            if quiet:
                click.echo(str(run_dir))
            else:
                console.print(_summary(result, config))
                console.print(genotypes.to_text(result.genotype), soft_wrap=True, markup=False, highlight=False)
    finally:
        distributed.shutdown()


def _run(config: SearchConfig, run_dir: Path, resume: bool | None, force: bool, dist_ctx: distributed.Context,
         quiet: bool) -> SearchResult:
    """run_search, with a progress bar on rank 0 unless ``quiet``; ``--track`` checked before it starts."""
    track = tracking(config) if dist_ctx.is_main else None  # rank 0 scores and writes the records
    if quiet or not dist_ctx.is_main:
        return run_search(config, run_dir, resume=resume, force=force, ctx=dist_ctx, track=track)
    with Progress(TextColumn("{task.description:>12}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("{task.fields[stats]}"), console=console) as progress:
        done = _epochs_done(run_dir) if resume is not False else 0
        return run_search(config, run_dir, resume=resume, force=force, ctx=dist_ctx, track=track,
                          reporter=ConsoleReporter(progress, done, config.epochs))


def _epochs_done(run_dir: Path) -> int:
    metrics = run_dir / "metrics.jsonl"
    return len(metrics.read_text().splitlines()) if metrics.exists() else 0


def _config_table(config: SearchConfig, dist_ctx: distributed.Context) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    table.add_column(style="dim")
    table.add_column()
    items = [(k, v) for k, v in config.to_dict().items() if v is not None]
    if dist_ctx.active:
        items.append(("processes", dist_ctx.world_size))
    half = (len(items) + 1) // 2
    for left, right in zip(items[:half], items[half:] + [("", "")], strict=False):
        table.add_row(left[0], str(left[1]), right[0], str(right[1]))
    return table


COMMANDS = (search,)
