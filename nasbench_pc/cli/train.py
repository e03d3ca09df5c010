"""``train``: train a genotype's network from scratch and export it for timm."""

from __future__ import annotations

import re
import signal
import time
from dataclasses import asdict
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import click
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from nasbench_pc import genotypes
from nasbench_pc.cli._options import NETWORK
from nasbench_pc.cli._settings import option_names, settings_options
from nasbench_pc.console import console
from nasbench_pc.errors import ConfigError
from nasbench_pc.networks.export import describe_shape, existing_path
from nasbench_pc.networks.recipes import TrainConfig, TrainHParams, auto_recipe_help, make_config
from nasbench_pc.networks.train import TrainProgress, resume, train
from nasbench_pc.runtime.data import DatasetInfo, DataSettings
from nasbench_pc.runtime.devices import default_device
from nasbench_pc.runtime.interrupt import Interrupted
from nasbench_pc.runtime.runkit import CHECKPOINT, GENOTYPE


class RichTrainProgress(TrainProgress):
    """Epoch and step bars with live loss, accuracy and throughput."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=console, disable=quiet,
        )
        self.epochs: Any = None
        self.steps: Any = None
        self.tick = time.perf_counter()

    def start(self, config: TrainConfig, info: DatasetInfo, steps_per_epoch: int, first_epoch: int,
              first_step: int) -> None:
        hp = config.hparams
        if not self.quiet:
            space = genotypes.space_of(config.genotype).name
            shape = describe_shape(config.network_spec(), config.model_options())
            console.print(Panel(
                f"{config.source or 'genotype'} as the {config.network} network of the {space} space "
                f"({config.network_spec().model}, {shape}) on {info.name}: {info.num_classes} classes, "
                f"{info.in_channels}x{info.image_size}x{info.image_size}\nrecipe {config.recipe} "
                f"({config.recipe_reason}): " + ", ".join(f"{k}={v}" for k, v in asdict(hp).items()),
                title="train", expand=False))
        self.progress.start()
        self.epochs = self.progress.add_task("epochs", total=hp.epochs, completed=first_epoch, info="")
        self.steps = self.progress.add_task("steps", total=steps_per_epoch, completed=first_step, info="")

    def step(self, epoch: int, loss: float, top1: float, images: int) -> None:
        now = time.perf_counter()
        rate = images / max(now - self.tick, 1e-9)
        self.tick = now
        self.progress.update(self.steps, advance=1, description=f"epoch {epoch + 1}",
                             info=f"loss {loss:.3f}  top-1 {top1:.1%}  {rate:.0f} img/s")

    def epoch(self, record: dict[str, Any]) -> None:
        self.progress.update(self.epochs, advance=1,
                             info=f"test top-1 {record['test_top1']:.2%}  top-5 {record['test_top5']:.2%}")
        self.progress.reset(self.steps)
        self.tick = time.perf_counter()

    def stop(self) -> None:
        if self.steps is not None:
            self.progress.remove_task(self.steps)  # the finished run needs only the epoch bar
            self.steps = None
        self.progress.stop()


def _default_out(source: str, dataset: str) -> Path:
    path = existing_path(source)
    if source in genotypes.known():
        name = source
    elif path is not None:  # a run directory's name, or the folder of its genotype.json
        name = path.resolve().parent.name if path.name == GENOTYPE else path.resolve().stem
    else:  # JSON text or a space's genotype text
        name = "genotype"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:40] or "genotype"
    return Path("runs") / f"train-{name}-{dataset}-{datetime.now():%Y%m%d-%H%M%S}"


_HPARAM_OPTIONS = tuple(option_names(TrainHParams))
_JOB_OPTIONS = (*option_names(DataSettings), "recipe", "network", "out", "force")


class _RecipeOption(click.Option):
    """--recipe, whose help ends with what auto picks in each installed space, asked when help is shown."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self.help = f"{self.help.split(' auto: ')[0]} {auto_recipe_help()}"
        return super().get_help_record(ctx)


@click.command(name="train")
@click.argument("source", required=False)
@settings_options(DataSettings, defaults={"dataset": "synthetic", "download": False, "bad_images": "stop"},
                  helps={"limit": "Use at most N examples of each split."})
@click.option("--recipe", default="auto", show_default=True, cls=_RecipeOption,
              help="A training recipe of the genotype's search space (`nasbench-pc methods` lists each space's).")
@click.option("--network", type=NETWORK, default=None,
              help="A derived network of the genotype's search space (`nasbench-pc methods` lists them). "
                   "Default: the one named like --dataset, else the space's first.")
@settings_options(TrainHParams)
@click.option("--warmup-epochs", "warmup_epochs", type=int, hidden=True)  # the name before --lr-warmup-epochs
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory (default runs/train-<genotype>-<dataset>-<time>).")
@click.option("--force", is_flag=True, help="Replace a training run already in --out (its files are removed).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Continue the run in this directory with its stored settings (mid-epoch after Ctrl-C).")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available).")
@click.option("--workers", type=int, default=None, help="DataLoader workers (default: 2 on CUDA, 0 on CPU).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--log", default=None, help="Loggers besides metrics.jsonl, comma-separated: tensorboard writes "
              "RUN/tensorboard/ (pip install 'nasbench-pc[tensorboard]'). Not stored: give it again with --resume.")
@click.pass_context
def train_command(ctx: click.Context, source: str | None, resume_dir: Path | None, device: str | None,
                  workers: int | None, quiet: bool, log: str | None, **options: Any) -> None:
    """Train SOURCE's network from scratch and export it for timm.

    SOURCE is a genotype of any search space: a published name, a genotype.json, a search run directory,
    JSON text or the space's own text (a NAS-Bench-201 string). The network is the space's derived
    network; the recipe follows the genotype's space and search (--recipe auto, printed at the start and stored in
    config.json). The run directory gets checkpoints after every epoch and when Ctrl-C or SIGTERM
    stops the run (continue with --resume DIR), metrics.jsonl, and at the end model/, a folder that
    timm.create_model('local-dir:DIR/model', pretrained=True) loads.
    """
    device = device or default_device()
    workers = workers if workers is not None else (2 if device.startswith("cuda") else 0)
    progress = RichTrainProgress(quiet)
    if resume_dir is not None:
        given = [name for name in (*_HPARAM_OPTIONS, *_JOB_OPTIONS, "warmup_epochs")
                 if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
        if source is not None or given:
            extra = ", ".join(["SOURCE"] * (source is not None) + [f"--{g.replace('_', '-')}" for g in given])
            raise ConfigError(
                f"--resume continues {resume_dir} with the settings stored in it, so {extra} cannot be given "
                f"with it. Drop them, or start a new run with another --out."
            )
        run_dir = resume_dir
        run = partial(resume, run_dir, device=device, workers=workers, progress=progress, log=log)
    else:
        if source is None:
            raise ConfigError("Name the genotype to train (e.g. `nasbench-pc train PC_DARTS_cifar`), or pass "
                              "--resume RUN_DIR to continue a run.")
        hparams = {name: options.pop(name) for name in _HPARAM_OPTIONS}
        old_warmup = options.pop("warmup_epochs")
        if old_warmup is not None and hparams["lr_warmup_epochs"] is None:
            hparams["lr_warmup_epochs"] = old_warmup
        run_dir = options.pop("out") or _default_out(source, options["dataset"])
        force = options.pop("force")
        config = make_config(source, **options, **hparams)
        run = partial(train, config, run_dir, device=device, workers=workers, progress=progress, force=force,
                      log=log)
    try:
        result = run()
    except KeyboardInterrupt:  # outside the training steps (loading data, writing model/); they stop cleanly
        kept = (f"every checkpoint written so far is kept in {run_dir}; continue with `nasbench-pc train --resume "
                f"{run_dir}`" if (run_dir / CHECKPOINT).is_file() else "no checkpoint was written yet, so "
                "start the run again")
        raise Interrupted(f"Interrupted outside a training step: {kept}.", signal.SIGINT) from None
    finally:
        progress.stop()
    final = result.final
    console.print(Panel(
        f"test top-1 [bold]{final['test_top1']:.2%}[/bold]  top-5 {final['test_top5']:.2%}  "
        f"(loss {final['test_loss']:.4f}) after epoch {final['epoch']}\n"
        f"run directory: {result.run_dir}\n"
        f"timm folder:   {result.model_dir}  ->  timm.create_model('local-dir:{result.model_dir}', pretrained=True)",
        title="trained", border_style="green", expand=False))


COMMANDS = (train_command,)
