"""Train a genotype's network from scratch, resumable: the loop, its run directory and its checkpoints.

What is trained, and with which recipe, is :mod:`nasbench_pc.networks.recipes`.

A run directory holds ``config.json``, ``genotype.json``, ``metrics.jsonl`` (one line per epoch),
``checkpoint.pt`` (written atomically after every epoch, and mid-epoch when Ctrl-C or SIGTERM stops
the run) and, at the end, ``model/``: the timm folder that :mod:`nasbench_pc.networks.export` writes. An
epoch's batch order comes from its own generator seeded by ``(seed, epoch)``; the global RNG
(augmentation, drop path) is seeded from ``(seed, epoch)`` at the epoch's start and saved with a
mid-epoch checkpoint. So on CPU (workers=0) a run resumed from any checkpoint ends bit-identical to an
uninterrupted one.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from nasbench_pc import _moved, genotypes, registry
from nasbench_pc.errors import ConfigError, check_finite
from nasbench_pc.networks.export import (
    CHECKPOINT_FORMAT,
    TRAIN_RUN_KIND,
    describe_shape,
    is_train_run,
    load_checkpoint,
    spec_from_checkpoint,
    write_folder,
)

# what a train run is configured with; choose_recipe and make_config are re-exported for the scripts that import
# them from here, as they did before recipes.py
from nasbench_pc.networks.recipes import TrainConfig, TrainHParams, learning_rate
from nasbench_pc.networks.recipes import choose_recipe as choose_recipe
from nasbench_pc.networks.recipes import make_config as make_config
from nasbench_pc.records import NetworkSpec
from nasbench_pc.runtime.data import DatasetInfo, get_dataset
from nasbench_pc.runtime.devices import check_device, is_out_of_memory
from nasbench_pc.runtime.files import atomic_torch_save, atomic_write_text
from nasbench_pc.runtime.interrupt import StopSignals
from nasbench_pc.runtime.rundir import claim, writing
from nasbench_pc.runtime.runkit import CHECKPOINT, CONFIG, GENOTYPE, METRICS, accuracy, peak_memory, topk_correct

__getattr__ = _moved.old_names(__name__, {  # the names this module had before issue 21
    "lr_at": "nasbench_pc.networks.recipes:learning_rate",
    "recipe_hparams": "nasbench_pc.networks.recipes:recipe_hparams",
    "recipes": "nasbench_pc.networks.recipes:recipes",
    "auto_recipe_help": "nasbench_pc.networks.recipes:auto_recipe_help",
    "network_shape": "nasbench_pc.networks.recipes:TrainConfig.model_options",
})

MODEL_DIR = "model"
#: Every file and folder a train run writes (what --force removes).
RUN_FILES = (CONFIG, GENOTYPE, METRICS, CHECKPOINT, MODEL_DIR)


class TrainProgress:
    """Receives progress events; the CLI draws them with rich. The base class ignores them."""

    def start(self, config: TrainConfig, info: DatasetInfo, steps_per_epoch: int, first_epoch: int,
              first_step: int) -> None:
        """Before the first step to run (epoch ``first_epoch``, after ``first_step`` steps of it, on resume)."""

    def step(self, epoch: int, loss: float, top1: float, images: int) -> None:
        """After each training step: running loss and top-1 of the epoch, images in this step."""

    def epoch(self, record: dict[str, Any]) -> None:
        """After each epoch (its metrics line) once the checkpoint is on disk."""


@dataclass
class TrainResult:
    run_dir: Path
    model_dir: Path
    history: list[dict[str, Any]]

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1]


def _epoch_seed(seed: int, epoch: int) -> int:
    """Seed of the global RNG (augmentation, drop path) at the start of ``epoch``."""
    return seed * 100_003 + epoch


def epoch_batches(num_examples: int, batch_size: int, seed: int, epoch: int
                  ) -> tuple[list[list[int]], torch.Generator]:
    """The shuffled batches of ``epoch`` and the generator that drew them, seeded by (seed, epoch) alone.

    The order never depends on DataLoader internals, so a resumed run starts at a saved batch index of
    the same list. The generator, past the shuffle, also seeds the DataLoader's workers.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(num_examples, generator=g).tolist()
    return [order[i:i + batch_size] for i in range(0, num_examples, batch_size)], g


def _load_data(config: TrainConfig, split: str) -> tuple[Dataset, DatasetInfo]:
    """A split as the reference evaluation reads it: the training split augmented, with ColorJitter on
    ImageNet-style data (both papers' train_imagenet.py)."""
    training = split == "train"
    return get_dataset(config.dataset, split=split, root=config.data_root, download=config.download,
                       limit=config.limit, seed=config.hparams.seed, augment=training, color_jitter=training,
                       cutout=config.hparams.cutout if training else 0, in_channels=config.in_channels,
                       image_size=config.image_size, bad_images=config.bad_images)


def model_args(config: TrainConfig, info: DatasetInfo) -> dict[str, Any]:
    """What ``timm.create_model(config.network_spec().model, **model_args)`` builds the trained network from (the
    exported one too): the genotype, the network's shape and the data's classes and channels."""
    return {"genotype": genotypes.to_dict(config.genotype), **config.model_options(), "num_classes": info.num_classes,
            "in_chans": info.in_channels}


def _build(spec: NetworkSpec, args: dict[str, Any], hp: TrainHParams) -> nn.Module:
    """The network to train: ``args`` plus the training-only parts ``hp`` asks for, an auxiliary head
    (``auxiliary=True``, then ``forward_with_aux``) and drop path (``drop_path_prob``, raised every epoch), which
    DARTS networks have and others may lack."""
    if hp.auxiliary_weight == 0:
        model = timm.create_model(spec.model, **args)
    else:
        try:
            model = timm.create_model(spec.model, **args, auxiliary=True)
        except TypeError as exc:
            if "auxiliary" not in str(exc):
                raise
            raise _lacks(spec, "auxiliary head", "--auxiliary-weight", hp.auxiliary_weight) from None
    if hp.drop_path > 0 and not hasattr(model, "drop_path_prob"):
        raise _lacks(spec, "drop path", "--drop-path", hp.drop_path)
    return model


def _lacks(spec: NetworkSpec, part: str, option: str, value: float) -> ConfigError:
    return ConfigError(f"The {spec.model} network has no {part}, so it cannot train with {option} {value}. "
                       f"Pass {option} 0.")


def _check_runs(model: nn.Module, spec: NetworkSpec, hp: TrainHParams, info: DatasetInfo,
                device: torch.device) -> None:
    """Fail before training, with advice, when the network cannot take the dataset's images."""
    x = torch.zeros(1, info.in_channels, info.image_size, info.image_size, device=device)
    side = f"{info.image_size}x{info.image_size}"
    model.eval()
    with torch.no_grad():
        try:
            model(x)
        except RuntimeError as exc:
            if is_out_of_memory(exc):
                raise
            raise ConfigError(
                f"The {spec.model} network cannot run on {side} images ({exc}). Resize the data with --image-size "
                f"(the network is made for {spec.image_size}x{spec.image_size})."
            ) from None
        if hp.auxiliary_weight == 0:
            return
        try:
            model.forward_with_aux(x)
        except RuntimeError as exc:
            if is_out_of_memory(exc):
                raise
            raise ConfigError(
                f"The auxiliary head of the {spec.model} network expects the feature map that "
                f"{spec.image_size}x{spec.image_size} images give where it sits, and cannot run on {side} images. "
                f"Pass --auxiliary-weight 0 to train without it, or --image-size {spec.image_size} to resize the data."
            ) from None


@dataclass
class _Running:
    """The sums of the epoch in progress: what a mid-epoch checkpoint keeps to finish the epoch's metrics."""

    loss_sum: float = 0.0
    top1: int = 0
    top5: int = 0
    count: int = 0
    seconds: float = 0.0  # spent on this epoch by earlier processes (a resumed epoch)


@dataclass
class _Run:
    """A training run's model, optimizer and history, and the checkpoint that saves and restores them."""

    config: TrainConfig
    out: Path
    args: dict[str, Any]
    info: DatasetInfo
    model: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    history: list[dict[str, Any]] = field(default_factory=list)
    #: called after every batch with (the run's step count, the step's values) when a logger wants them
    on_step: Callable[[int, dict[str, float]], None] | None = None

    def save(self, epoch: int, step: int, running: _Running) -> None:
        """Checkpoint after ``epoch`` finished epochs and ``step`` batches of the next one (0: at its start),
        with the global RNG state that the rest of that epoch draws from."""
        atomic_torch_save({
            "format": CHECKPOINT_FORMAT, "version": 3, "epoch": epoch, "step": step, "running": asdict(running),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            "config": self.config.to_dict(), "model_args": self.args, "data": asdict(self.info),
            "state_dict": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "history": self.history,
        }, self.out / CHECKPOINT)

    def restore(self, ckpt: dict[str, Any]) -> tuple[int, int, _Running]:
        """Load a checkpoint; returns (finished epochs, batches done in the next one, that epoch's sums).

        A mid-epoch checkpoint also restores the global RNG, so nothing may draw from it after this call
        and before the epoch goes on."""
        try:
            self.model.load_state_dict(ckpt["state_dict"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            epoch, step = int(ckpt["epoch"]), int(ckpt.get("step", 0))
            if len(ckpt["history"]) != epoch:
                raise ValueError(f"{len(ckpt['history'])} epochs of metrics for {epoch} finished epochs")
            running = _Running(**ckpt["running"]) if step else _Running()
            if step:
                torch.set_rng_state(ckpt["rng_cpu"])
                if self.device.type == "cuda" and ckpt["rng_cuda"] is not None:
                    torch.cuda.set_rng_state(ckpt["rng_cuda"], self.device)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ConfigError(
                f"{self.out / CHECKPOINT} does not fit the run it belongs to ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:200]}): its weights do not match the architecture recorded with it, "
                f"or a field is missing or garbled, so it was edited or written by another version of nasbench-pc. "
                f"Start the run again with --force; metrics.jsonl keeps the numbers of the finished epochs."
            ) from None
        self.history = list(ckpt["history"])
        return epoch, step, running


def train(config: TrainConfig, out: str | Path, *, device: str | torch.device = "cpu", workers: int = 0,
          progress: TrainProgress | None = None, force: bool = False, log: str | None = None) -> TrainResult:
    """Train ``config`` into the run directory ``out``. A folder that holds a training run, finished or not, is
    refused unless ``force``, which removes that run's files first. ``log`` names loggers (``--log``)."""
    loggers = registry.loggers(log)  # an unknown logger, or its extra missing: before the folder is touched
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a directory path for the training run.")
    device = _device(device)
    with writing(out, RUN_FILES):
        claim(out, what="training run", started=CHECKPOINT, finished=MODEL_DIR, files=RUN_FILES, force=force,
              resume=f"nasbench-pc train --resume {out}")
        with _memory_guard(config, out):
            return _fit(config, out, None, device, workers, progress or TrainProgress(), loggers)


def resume(run_dir: str | Path, *, device: str | torch.device = "cpu", workers: int = 0,
           progress: TrainProgress | None = None, log: str | None = None) -> TrainResult:
    """Continue the run in ``run_dir`` from its checkpoint (the last finished epoch, or mid-epoch); ``log`` names
    loggers (``--log``; a training run does not store them: give them again)."""
    loggers = registry.loggers(log)
    run_dir = Path(run_dir)
    if not is_train_run(run_dir):
        raise ConfigError(
            f"{run_dir} is not a `nasbench-pc train` run directory (it has no config.json of kind "
            f"'{TRAIN_RUN_KIND}'), so there is nothing to resume. A search run continues with `nasbench-pc search "
            f"--resume {run_dir}` and its genotype trains with `nasbench-pc train {run_dir}`; a new training run "
            f"starts with `nasbench-pc train SOURCE --out DIR`."
        )
    if not (run_dir / CHECKPOINT).is_file():
        raise ConfigError(
            f"{run_dir} holds no {CHECKPOINT}, so there is nothing to resume (a run writes it after its first "
            f"epoch, or when Ctrl-C stops it). Start the run again without --resume."
        )
    device = _device(device)
    ckpt = load_checkpoint(run_dir / CHECKPOINT)
    try:
        config = TrainConfig.from_dict(ckpt["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"The settings stored in {run_dir / CHECKPOINT} cannot be read ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}): it was edited or written by another version of nasbench-pc. "
            f"Start the run again with --force, or resume it with the version that wrote it."
        ) from None
    with writing(run_dir, RUN_FILES), _memory_guard(config, run_dir):
        return _fit(config, run_dir, ckpt, device, workers, progress or TrainProgress(), loggers)


def _device(device: str | torch.device) -> torch.device:
    return torch.device(check_device(device))


@contextmanager
def _memory_guard(config: TrainConfig, out: Path) -> Iterator[None]:
    """Turn running out of GPU memory into advice instead of a traceback."""
    try:
        yield
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        if not is_out_of_memory(exc):
            raise
        hp = config.hparams
        raise ConfigError(
            f"Out of memory: a batch of {hp.batch_size} images on the network with "
            f"{describe_shape(config.network_spec(), config.model_options())} did not fit on the "
            f"device. The checkpoint of every finished epoch is kept in {out} (`nasbench-pc "
            f"export {out}` exports it). --resume keeps the stored batch size, so start a new run "
            f"with a lower --batch-size (e.g. {max(1, hp.batch_size // 2)}) in another --out, or with --force to "
            f"replace this one."
        ) from None


def _fit(config: TrainConfig, out: Path, ckpt: dict[str, Any] | None, device: torch.device, workers: int,
         progress: TrainProgress, loggers: tuple[str, ...] = ()) -> TrainResult:
    hp = config.hparams
    train_data, info = _load_data(config, "train")
    test_data, _ = _load_data(config, "test")
    spec = config.network_spec()
    args = model_args(config, info)
    torch.manual_seed(hp.seed)
    model = _build(spec, args, hp).to(device)
    _check_runs(model, spec, hp, info, device)
    optimizer = torch.optim.SGD(model.parameters(), hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
    criterion = nn.CrossEntropyLoss(label_smoothing=hp.label_smoothing)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    test_loader = DataLoader(test_data, batch_size=hp.batch_size, shuffle=False, num_workers=workers,
                             pin_memory=device.type == "cuda", generator=torch.Generator())
    run = _Run(config, out, args, info, model, optimizer, device)
    if ckpt is None:
        first_epoch, step, running = 0, 0, _Running()
        # the space, timm model and genotype text too, for the reader: resume reads the checkpoint's config
        about = {"space": genotypes.space_of(config.genotype).name, "model": spec.model, "model_args": args,
                 "genotype_text": genotypes.to_text(config.genotype)}
        atomic_write_text(out / CONFIG, json.dumps({"kind": TRAIN_RUN_KIND, **config.to_dict(), **about}, indent=2)
                          + "\n")
        atomic_write_text(out / GENOTYPE, genotypes.to_json(config.genotype) + "\n")
    else:
        first_epoch, step, running = run.restore(ckpt)  # the last thing before the loop (it may set the RNG)
    settings = config.to_dict()
    kept = f"The checkpoint of every finished epoch is kept; `nasbench-pc train --resume {out}` goes on."
    registry.notify("on_run_start", kind="train", run_dir=out, config=settings, history=run.history, loggers=loggers,
                    after=kept)
    if loggers:
        run.on_step = lambda step, values: registry.notify(
            "on_step_end", kind="train", run_dir=out, config=settings, step=step, values=values, loggers=loggers,
            after=kept)
    progress.start(config, info, math.ceil(len(train_data) / hp.batch_size), first_epoch, step)
    with StopSignals() as stop:
        for epoch in range(first_epoch, hp.epochs):
            started = time.perf_counter()
            record = _train_epoch(run, train_data, epoch, step, running, criterion, workers, progress, stop)
            test = accuracy(model, test_loader, device)
            record.update(test_loss=test["loss"], test_top1=test["top1"], test_top5=test["top5"],
                          seconds=running.seconds + time.perf_counter() - started)
            if device.type == "cuda":  # the CPU's max RSS is the process's, which a resumed run would not repeat
                key, mib = peak_memory(device)
                record[key] = mib
            run.history.append(record)
            step, running = 0, _Running()
            run.save(epoch + 1, step, running)
            registry.notify("on_epoch_end", kind="train", run_dir=out, config=settings, record=record,
                            history=run.history, loggers=loggers, after=kept)
            progress.epoch(record)
            if stop.requested:
                raise stop.interrupted("training", str(out), f"nasbench-pc train --resume {out}")
    model_dir = write_folder(spec_from_checkpoint(load_checkpoint(out / CHECKPOINT), str(out)), out / MODEL_DIR)
    registry.notify("on_run_end", kind="train", run_dir=out, config=settings, history=run.history,
                    result={"model_dir": str(model_dir)}, loggers=loggers,
                    after=f"The trained model is kept in {model_dir}.")
    return TrainResult(run_dir=out, model_dir=model_dir, history=run.history)


def _train_epoch(run: _Run, data: Dataset, epoch: int, step: int, running: _Running, criterion: nn.Module,
                 workers: int, progress: TrainProgress, stop: StopSignals) -> dict[str, Any]:
    """Train epoch ``epoch`` from batch ``step`` on (``running`` holds the sums of the batches before it).

    After every batch, a requested stop writes a mid-epoch checkpoint and raises
    :class:`~nasbench_pc.runtime.interrupt.Interrupted`."""
    hp, model, optimizer, device = run.config.hparams, run.model, run.optimizer, run.device
    started = time.perf_counter()
    lr = learning_rate(hp, epoch)
    for group in optimizer.param_groups:
        group["lr"] = lr
    drop_path = hp.drop_path * epoch / hp.epochs
    if hp.drop_path > 0:  # only networks with drop path get here (see _build)
        model.drop_path_prob = drop_path
    if step == 0:  # a resumed epoch goes on with the RNG state saved with its checkpoint
        torch.manual_seed(_epoch_seed(hp.seed, epoch))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    batches, generator = epoch_batches(len(data), hp.batch_size, hp.seed, epoch)
    loader = DataLoader(data, batch_sampler=batches[step:], num_workers=workers, pin_memory=device.type == "cuda",
                        generator=generator)
    model.train()
    for done, (inputs, targets) in enumerate(loader, start=step + 1):
        inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        if hp.auxiliary_weight > 0:
            logits, logits_aux = model.forward_with_aux(inputs)
            loss = criterion(logits, targets) + hp.auxiliary_weight * criterion(logits_aux, targets)
        else:
            logits = model(inputs)
            loss = criterion(logits, targets)
        check_finite(loss.item(), what="training loss", epoch=epoch + 1, lr=lr,
                     kept="The checkpoint of every finished epoch is kept in the run directory.")
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), hp.grad_clip)
        optimizer.step()
        n = targets.numel()
        top1, top5 = topk_correct(logits, targets)
        running.loss_sum += loss.item() * n
        running.top1 += top1
        running.top5 += top5
        running.count += n
        progress.step(epoch, running.loss_sum / running.count, running.top1 / running.count, n)
        if run.on_step is not None:
            run.on_step(epoch * len(batches) + done, {"epoch": epoch + 1, "train_loss": loss.item(),
                                                      "train_acc": float(top1) / n, "lr": lr})
        if stop.requested:
            run.save(epoch, done, replace(running, seconds=running.seconds + time.perf_counter() - started))
            raise stop.interrupted("training", str(run.out), f"nasbench-pc train --resume {run.out}")
    return {"epoch": epoch + 1, "lr": lr, "drop_path": drop_path,
            "train_loss": running.loss_sum / running.count, "train_top1": running.top1 / running.count,
            "train_top5": running.top5 / running.count}
