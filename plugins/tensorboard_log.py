"""``--log tensorboard``: a run's progress as TensorBoard event files in ``RUN/tensorboard/`` (optional extra
``nasbench-pc[tensorboard]``: tensorboard for the writer and reader, matplotlib for the images).

Off unless ``--log tensorboard`` names it (on search and compare; a resumed search keeps the loggers it had): a
run folder does not grow event files nobody asked for, and a missing extra is said before the run starts rather
than found at its end. What it writes, each value the one metrics.jsonl holds:

- ``step/<value>`` after every weight step, at the run's step count (1, 2, ...): the batch's ``train_loss`` and
  ``train_acc``, ``lr``, ``arch_loss`` when the step updated the architecture, one ``alpha_entropy_<cell>`` per
  cell type and the ``skip_connects`` of the genotype derived at that step;
- ``epoch/<field>`` after every epoch, at the epoch (1, 2, ...): every number of the epoch's metrics.jsonl line
  (losses, accuracies, learning rate, time, memory, entropies, skip count, ``collapsed`` as 0/1, and the method's
  own values as ``epoch/method/<name>``);
- per epoch of a search, the images ``arch/alphas_<cell>`` (each cell type's softmax(alpha), edges x ops, as a
  heatmap) and ``arch/cells`` (the space's drawing of the genotype derived then), and the histograms
  ``arch/alphas_<cell>`` of those weights;
- at the end, the run's settings and its last epoch's scores as hparams (``hparams/<score>``), so TensorBoard's
  HParams tab compares a comparison's runs: ``tensorboard --logdir SAVE`` shows every run of ``compare --save
  SAVE`` side by side (each run writes into its own folder's ``tensorboard/``).

A resumed run continues the same event files without duplicate steps: before its first new event, the events the
checkpoint does not cover (the steps and epochs a crashed process logged after its last checkpoint) are dropped by
rewriting the folder's files, under the run's lease like every other file of the run.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from nasbench_pc import genotypes, hookimpl, registry
from nasbench_pc.errors import ConfigError
from nasbench_pc.search.config import HOST_SETTINGS

NAME = "tensorboard"
FOLDER = "tensorboard"
#: the last epoch's values HParams shows beside the settings (a search's and a training's), and any tracked one
SCORES = ("arch_acc", "arch_loss", "train_acc", "train_loss", "skip_connects", "collapsed", "test_top1", "test_loss")
#: event tags a resume may have to drop, by what their step counts
STEP_TAGS, EPOCH_TAGS = "step/", ("epoch/", "arch/")


class TensorBoardLogger:
    description = ("TensorBoard event files in RUN/tensorboard/: per step and epoch the losses, accuracies, learning "
                   "rate, alpha entropy and skip count; per epoch the alpha heatmaps, the cells and histograms; "
                   "hparams at the end. pip install 'nasbench-pc[tensorboard]'.")

    def check(self) -> None:
        try:
            import matplotlib  # noqa: F401
            import tensorboard  # noqa: F401
        except ImportError:
            raise ConfigError('--log tensorboard writes TensorBoard event files (and draws its images with '
                              'matplotlib), and tensorboard or matplotlib is not installed. Install the extra: pip '
                              'install "nasbench-pc[tensorboard]", or leave out --log tensorboard.') from None


class _Run:
    """One run's writer, opened at its first event (after dropping what a resume must not repeat)."""

    def __init__(self, folder: Path, epochs_kept: int):
        self.folder, self.epochs_kept = folder, epochs_kept
        self.writer: Any = None

    def open(self, first_step: int | None) -> Any:
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            _drop_uncovered(self.folder, self.epochs_kept, first_step)
            self.writer = SummaryWriter(str(self.folder), max_queue=1000, flush_secs=30)
        return self.writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


_runs: dict[Path, _Run] = {}


def _run(run_dir: Path | None, loggers: tuple[str, ...]) -> _Run | None:
    return _runs.get(run_dir) if run_dir is not None and NAME in loggers else None


def _drop_uncovered(folder: Path, epochs_kept: int, first_step: int | None) -> None:
    """Rewrite the event files in ``folder`` without the events a resumed run logs again: epoch-counted ones past
    ``epochs_kept``, step-counted ones from ``first_step`` on (all of them when None), and the hparams of an
    earlier end (none: a finished run is not resumed; kept out all the same)."""
    files = sorted(folder.glob("events.out.tfevents.*")) if folder.is_dir() else []
    if not files:
        return
    # the events as written (EventFileLoader would migrate scalars into tensors on the way)
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
    from torch.utils.tensorboard.writer import FileWriter

    def kept(event: Any) -> bool:
        if not event.HasField("summary"):
            return False  # the file-version header and session logs: the new file has its own
        tags = [value.tag for value in event.summary.value]
        if any(tag.startswith(STEP_TAGS) for tag in tags):
            return first_step is not None and event.step < first_step
        if any(tag.startswith(EPOCH_TAGS) for tag in tags):
            return event.step <= epochs_kept
        return False  # hparams

    staging = folder / f".resume-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    writer = FileWriter(str(staging))
    for path in files:
        for event in LegacyEventFileLoader(str(path)).Load():
            if kept(event):
                writer.add_event(event)
    writer.close()
    for path in files:
        path.unlink()
    for path in staging.iterdir():
        path.rename(folder / path.name)
    staging.rmdir()


def _numbers(record: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The record's numbers (booleans as 0/1; nested dicts of numbers as ``prefix/key``), NaN and inf left out."""
    out: dict[str, float] = {}
    for key, value in record.items():
        if isinstance(value, bool) or (isinstance(value, (int, float)) and math.isfinite(value)):
            out[f"{prefix}{key}"] = float(value)
        elif isinstance(value, dict) and key in ("method", "stage", "tracked"):
            out.update(_numbers(value, f"{prefix}{key}/"))
    return out


@hookimpl
def register_loggers() -> dict[str, TensorBoardLogger]:
    return {NAME: TensorBoardLogger()}


@hookimpl
def on_run_start(run_dir: Path | None, history: list[dict[str, Any]], loggers: tuple[str, ...]) -> None:
    if run_dir is None or NAME not in loggers:
        return
    if run_dir in _runs:
        _runs.pop(run_dir).close()
    _runs[run_dir] = _Run(run_dir / FOLDER, len(history))


@hookimpl
def on_step_end(run_dir: Path | None, step: int, values: dict[str, float], loggers: tuple[str, ...]) -> None:
    run = _run(run_dir, loggers)
    if run is None:
        return
    writer = run.open(first_step=step)
    for key, value in _numbers(values).items():
        if key != "epoch":
            writer.add_scalar(f"{STEP_TAGS}{key}", value, step)
    writer.flush()  # a stopped run's checkpoint covers this step: its events are on disk too (no end hook runs)


@hookimpl
def on_epoch_end(kind: str, run_dir: Path | None, config: dict[str, Any], record: dict[str, Any],
                 loggers: tuple[str, ...]) -> None:
    run = _run(run_dir, loggers)
    if run is None:
        return
    writer = run.open(first_step=None)
    epoch = int(record["epoch"])
    for key, value in _numbers(record).items():
        if key != "epoch":
            writer.add_scalar(f"epoch/{key}", value, epoch)
    if kind == "search":
        _architecture(writer, config, record, epoch)
    writer.flush()  # the epoch's checkpoint is on disk: so are its events


def _architecture(writer: Any, config: dict[str, Any], record: dict[str, Any], epoch: int) -> None:
    """The epoch's alpha heatmaps and histograms, and the drawing of its genotype."""
    import numpy as np

    from nasbench_pc.results.plots import pyplot

    plt = pyplot("--log tensorboard's images", "--log tensorboard")
    space = registry.get("search_space", config["space"])
    for key, rows in (record.get("arch_weights") or {}).items():
        if not key.startswith("alphas_") or not rows:
            continue
        weights = np.asarray(rows, dtype=np.float64)
        writer.add_histogram(f"arch/{key}", weights, epoch)
        ops = list(space.primitives)[-weights.shape[1]:]  # rows without 'none' (drop_none) have one op fewer
        cell = key.removeprefix("alphas_")
        fig, ax = plt.subplots(figsize=(2.0 + 0.6 * len(ops), 1.6 + 0.3 * len(rows)))
        # the colours span this epoch's weights (early on they all lie near 1/ops; the numbers say how far apart)
        image = ax.imshow(weights, aspect="auto", cmap="viridis")
        for (edge, op), value in np.ndenumerate(weights):
            ax.text(op, edge, f"{value:.2f}", ha="center", va="center", fontsize=6, color="white")
        ax.set_xticks(range(len(ops)), ops, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(rows)), [str(i) for i in range(len(rows))], fontsize=7)
        ax.set_ylabel("edge")
        ax.set_title(f"{'' if cell == 'cell' else cell + ' '}cell: softmax(alpha), epoch {epoch}", fontsize=9)
        fig.colorbar(image, ax=ax)
        fig.tight_layout()
        writer.add_figure(f"arch/{key}", fig, epoch, close=True)
    if record.get("genotype"):
        from PIL import Image

        with tempfile.TemporaryDirectory() as scratch:
            path = space.draw(genotypes.from_dict(record["genotype"]), Path(scratch) / "cells.png",
                              title=f"epoch {epoch}")
            with Image.open(path) as image:
                writer.add_image("arch/cells", np.asarray(image.convert("RGB")), epoch, dataformats="HWC")


def hparams_of(config: dict[str, Any]) -> dict[str, Any]:
    """The run's settings HParams can show: the flat numbers, texts and flags (shape and method options as
    ``space_options.layers`` ...), the host's settings left out."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in HOST_SETTINGS:
            continue
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items() if isinstance(v, (bool, int, float, str))})
        elif isinstance(value, (bool, int, float, str)):
            out[key] = value
    return out


@hookimpl
def on_run_end(run_dir: Path | None, config: dict[str, Any], history: list[dict[str, Any]],
               loggers: tuple[str, ...]) -> None:
    run = _run(run_dir, loggers)
    if run is None:
        return
    from torch.utils.tensorboard.summary import hparams

    writer = run.open(first_step=None)
    last = _numbers(history[-1]) if history else {}
    scores = {f"hparams/{k}": v for k, v in last.items() if k in SCORES or k.startswith("tracked/")}
    for summary in hparams(hparams_of(config), scores):
        writer.file_writer.add_summary(summary)
    for tag, value in scores.items():
        writer.add_scalar(tag, value, int(last.get("epoch", 0)))
    _runs.pop(run_dir).close()
