"""Train a genotype's network from scratch: the reference evaluation recipe, resumable.

``paper`` is the reference recipe: on CIFAR-style data (``cifar`` network) the PC-DARTS
``train.py`` (600 epochs, batch 96, lr 0.025 cosine to 0, momentum 0.9, wd 3e-4, grad clip 5,
auxiliary weight 0.4, cutout 16, drop path 0.3 raised linearly from 0 over the epochs, C=36,
20 cells); on ImageNet (``imagenet`` network) ``train_imagenet.py`` (250 epochs, batch 1024,
lr 0.5 with its linear decay, 5 warm-up epochs, wd 3e-5, label smoothing 0.1, auxiliary 0.4,
C=48, 14 cells). Every value can be overridden.

A run directory holds ``config.json``, ``genotype.json``, ``metrics.jsonl`` (one line per
epoch), ``checkpoint.pt`` (written atomically after every epoch) and, at the end, ``model/``:
the timm folder that :mod:`nasbench_pc.export` writes. The random state of each epoch (data
order, augmentation, drop path) is seeded from ``(seed, epoch)``, so on CPU a run resumed from
its checkpoint ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from nasbench_pc import genotypes, registry
from nasbench_pc.data import DatasetInfo, get_dataset
from nasbench_pc.derived import DartsNetwork
from nasbench_pc.devices import check_device
from nasbench_pc.errors import ConfigError, check_finite
from nasbench_pc.export import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    TRAIN_RUN_KIND,
    load_checkpoint,
    provenance,
    spec_from_checkpoint,
    write_folder,
)
from nasbench_pc.files import atomic_torch_save, atomic_write_text
from nasbench_pc.genotypes import Genotype

NETWORKS = ("cifar", "imagenet")
LR_SCHEDULES = ("cosine", "linear")


@dataclass(frozen=True)
class TrainHParams:
    """Training hyperparameters; the defaults are the reference CIFAR evaluation recipe."""

    epochs: int = 600
    batch_size: int = 96
    lr: float = 0.025
    lr_min: float = 0.0
    lr_schedule: str = "cosine"  # 'cosine' or 'linear' (reference train_imagenet.py adjust_lr)
    warmup_epochs: int = 0  # linear LR warm-up, (epoch + 1) / warmup_epochs of the scheduled LR
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    auxiliary_weight: float = 0.4  # 0 builds no auxiliary head
    drop_path: float = 0.3  # final drop-path probability; epoch e uses drop_path * e / epochs
    cutout: int = 16
    label_smoothing: float = 0.0
    init_channels: int = 36
    layers: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        positive = ("epochs", "batch_size", "init_channels", "layers")
        bad = [f"{name}={getattr(self, name)}" for name in positive if getattr(self, name) < 1]
        bad += [f"{name}={getattr(self, name)}" for name in ("lr", "grad_clip") if getattr(self, name) <= 0]
        bad += [f"{name}={getattr(self, name)}" for name in ("lr_min", "weight_decay", "momentum", "warmup_epochs",
                                                             "auxiliary_weight", "cutout") if getattr(self, name) < 0]
        if not 0 <= self.drop_path < 1:
            bad.append(f"drop_path={self.drop_path}")
        if not 0 <= self.label_smoothing < 1:
            bad.append(f"label_smoothing={self.label_smoothing}")
        if bad:
            raise ConfigError(
                f"Invalid training setting(s): {', '.join(bad)}. Counts must be positive, lr and grad_clip above "
                f"0, the other rates non-negative, and drop_path and label_smoothing below 1."
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"Unknown lr_schedule {self.lr_schedule!r}; use one of {', '.join(LR_SCHEDULES)}.")


#: preset -> network -> hyperparameters.
PRESETS: dict[str, dict[str, TrainHParams]] = {
    "paper": {
        "cifar": TrainHParams(),
        "imagenet": TrainHParams(epochs=250, batch_size=1024, lr=0.5, lr_schedule="linear", warmup_epochs=5,
                                 weight_decay=3e-5, drop_path=0.0, cutout=0, label_smoothing=0.1,
                                 init_channels=48, layers=14),
    },
}


@dataclass(frozen=True)
class TrainConfig:
    """A training job: what to train, on which data, with which hyperparameters."""

    genotype: Genotype
    dataset: str = "synthetic"
    network: str = "cifar"
    hparams: TrainHParams = field(default_factory=TrainHParams)
    preset: str = "paper"
    data_root: str | None = None
    download: bool = False
    limit: int | None = None
    image_size: int | None = None
    in_channels: int | None = None
    source: str = ""
    method: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.update(genotype=genotypes.to_dict(self.genotype), hparams=asdict(self.hparams))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return cls(**{**data, "genotype": genotypes.from_dict(data["genotype"]),
                      "hparams": TrainHParams(**data["hparams"])})


def make_config(source: str | Genotype, *, dataset: str = "synthetic", preset: str = "paper",
                network: str | None = None, data_root: str | None = None, download: bool = False,
                limit: int | None = None, image_size: int | None = None, in_channels: int | None = None,
                **overrides: Any) -> TrainConfig:
    """Resolve a training job: the genotype from ``source`` (anything :func:`genotypes.parse` takes),
    the network ('imagenet' for the imagenet dataset, else 'cifar'), the preset's hyperparameters
    for that network, then ``overrides`` (any :class:`TrainHParams` field)."""
    genotype = genotypes.parse(source)
    network = network or ("imagenet" if dataset == "imagenet" else "cifar")
    if network not in NETWORKS:
        raise ConfigError(f"Unknown network {network!r}; use 'cifar' (32x32 stem) or 'imagenet' (mobile stem).")
    if preset not in PRESETS:
        raise ConfigError(f"Unknown preset {preset!r}; available: {', '.join(PRESETS)}.")
    valid = {f.name for f in fields(TrainHParams)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ConfigError(f"Unknown training option(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}.")
    hparams = replace(PRESETS[preset][network], **{k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(genotype=genotype, dataset=dataset, network=network, hparams=hparams, preset=preset,
                       data_root=data_root, download=download, limit=limit, image_size=image_size,
                       in_channels=in_channels, source=str(source) if not isinstance(source, Genotype) else "",
                       method=None if isinstance(source, Genotype) else provenance(str(source)))


def lr_at(hp: TrainHParams, epoch: int) -> float:
    """The learning rate of ``epoch`` (0-based), set once at its start as the reference does."""
    if hp.lr_schedule == "cosine":
        lr = hp.lr_min + (hp.lr - hp.lr_min) * (1 + math.cos(math.pi * epoch / hp.epochs)) / 2
    elif hp.epochs > 5:
        # reference adjust_lr: linear to ~0 over epochs - 5, with a gentler slope over the last 5 epochs
        if hp.epochs - epoch > 5:
            lr = hp.lr * (hp.epochs - 5 - epoch) / (hp.epochs - 5)
        else:
            lr = hp.lr * (hp.epochs - epoch) / ((hp.epochs - 5) * 5)
    else:
        lr = hp.lr * (hp.epochs - epoch) / hp.epochs
    if epoch < hp.warmup_epochs:
        lr *= (epoch + 1) / hp.warmup_epochs
    return lr


class TrainProgress:
    """Receives progress events; the CLI draws them with rich. The base class ignores them."""

    def start(self, config: TrainConfig, info: DatasetInfo, steps_per_epoch: int, first_epoch: int) -> None:
        """Before the first epoch to run (``first_epoch`` > 0 on resume)."""

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
    return seed * 100_003 + epoch


def _load_data(config: TrainConfig, split: str) -> tuple[Any, DatasetInfo]:
    return get_dataset(config.dataset, split=split, root=config.data_root, download=config.download,
                       limit=config.limit, seed=config.hparams.seed, augment=split == "train",
                       cutout=config.hparams.cutout if split == "train" else 0, in_channels=config.in_channels,
                       image_size=config.image_size)


def model_args(config: TrainConfig, info: DatasetInfo) -> dict[str, Any]:
    """Constructor arguments of the network trained by ``config`` on data described by ``info``."""
    return {
        "genotype": genotypes.to_dict(config.genotype),
        "stem": config.network,
        "init_channels": config.hparams.init_channels,
        "layers": config.hparams.layers,
        "num_classes": info.num_classes,
        "in_chans": info.in_channels,
    }


def _check_runs(model: DartsNetwork, info: DatasetInfo, device: torch.device) -> None:
    """Fail before training, with advice, when the network cannot take the dataset's images."""
    x = torch.zeros(1, info.in_channels, info.image_size, info.image_size, device=device)
    model.eval()
    with torch.no_grad():
        try:
            model(x)
        except RuntimeError as exc:
            raise ConfigError(
                f"The {model.stem_type} network cannot run on {info.image_size}x{info.image_size} images ({exc}). "
                f"Resize the data with --image-size (32 for the cifar network, 224 for imagenet)."
            ) from None
        try:
            model.forward_with_aux(x)
        except RuntimeError:
            raise ConfigError(
                f"The reference auxiliary head after cell {model.aux_index} expects the reference map size there "
                f"(8x8 from 32x32 images on the cifar network, 7x7 from 224x224 on imagenet) and cannot run on "
                f"{info.image_size}x{info.image_size} images. Pass --auxiliary-weight 0 to train without it, or "
                f"--image-size to resize the data."
            ) from None


def _run_epoch(model: DartsNetwork, loader: DataLoader, optimizer: torch.optim.Optimizer, criterion: nn.Module,
               hp: TrainHParams, device: torch.device, epoch: int, progress: TrainProgress) -> dict[str, float]:
    model.train()
    loss_sum, top1, top5, count = 0.0, 0, 0, 0
    for inputs, targets in loader:
        inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        logits, logits_aux = model.forward_with_aux(inputs)
        loss = criterion(logits, targets)
        if logits_aux is not None:
            loss = loss + hp.auxiliary_weight * criterion(logits_aux, targets)
        check_finite(loss.item(), what="training loss", epoch=epoch + 1, lr=optimizer.param_groups[0]["lr"],
                     kept="The checkpoint of every finished epoch is kept in the run directory.")
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), hp.grad_clip)
        optimizer.step()
        n = targets.numel()
        ranked = logits.detach().topk(min(5, logits.shape[1]), dim=1).indices
        hits = ranked == targets[:, None]
        loss_sum += loss.item() * n
        top1 += int(hits[:, 0].sum())
        top5 += int(hits.any(dim=1).sum())
        count += n
        progress.step(epoch, loss_sum / count, top1 / count, n)
    return {"train_loss": loss_sum / count, "train_top1": top1 / count, "train_top5": top5 / count}


def train(config: TrainConfig, out: str | Path, *, device: str | torch.device = "cpu", workers: int = 0,
          progress: TrainProgress | None = None) -> TrainResult:
    """Train ``config`` into the new run directory ``out``."""
    out = Path(out)
    if (out / CHECKPOINT_NAME).exists():
        raise ConfigError(
            f"{out} already holds a training run. Continue it with `nasbench-pc train --resume {out}`, or pass "
            f"another --out."
        )
    device = _device(device)
    out.mkdir(parents=True, exist_ok=True)
    return _fit(config, out, None, device, workers, progress or TrainProgress())


def resume(run_dir: str | Path, *, device: str | torch.device = "cpu", workers: int = 0,
           progress: TrainProgress | None = None) -> TrainResult:
    """Continue the run in ``run_dir`` from its last finished epoch."""
    run_dir = Path(run_dir)
    if not (run_dir / CHECKPOINT_NAME).is_file():
        raise ConfigError(
            f"{run_dir} holds no {CHECKPOINT_NAME}, so there is nothing to resume (a run writes it after its first "
            f"epoch). Start the run again without --resume."
        )
    ckpt = load_checkpoint(run_dir / CHECKPOINT_NAME)
    return _fit(TrainConfig.from_dict(ckpt["config"]), run_dir, ckpt, _device(device), workers,
                progress or TrainProgress())


def _device(device: str | torch.device) -> torch.device:
    return torch.device(check_device(device))


def _fit(config: TrainConfig, out: Path, ckpt: dict[str, Any] | None, device: torch.device, workers: int,
         progress: TrainProgress) -> TrainResult:
    hp = config.hparams
    train_data, info = _load_data(config, "train")
    test_data, _ = _load_data(config, "test")
    args = model_args(config, info)
    torch.manual_seed(hp.seed)
    model = DartsNetwork(**args, auxiliary=hp.auxiliary_weight > 0).to(device)
    _check_runs(model, info, device)
    optimizer = torch.optim.SGD(model.parameters(), hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
    criterion = nn.CrossEntropyLoss(label_smoothing=hp.label_smoothing)
    history: list[dict[str, Any]] = []
    if ckpt is not None:
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        history = list(ckpt["history"])
    else:
        (out / "config.json").write_text(json.dumps({"kind": TRAIN_RUN_KIND, **config.to_dict()}, indent=2) + "\n")
        genotypes.save(config.genotype, out / "genotype.json")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    evaluator = registry.get("evaluator", "accuracy")
    test_loader = DataLoader(test_data, batch_size=hp.batch_size, shuffle=False, num_workers=workers,
                             pin_memory=device.type == "cuda")
    first_epoch = len(history)
    progress.start(config, info, math.ceil(len(train_data) / hp.batch_size), first_epoch)
    for epoch in range(first_epoch, hp.epochs):
        started = time.perf_counter()
        torch.manual_seed(_epoch_seed(hp.seed, epoch))
        lr = lr_at(hp, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.drop_path_prob = hp.drop_path * epoch / hp.epochs
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        loader = DataLoader(train_data, batch_size=hp.batch_size, shuffle=True, num_workers=workers,
                            pin_memory=device.type == "cuda", drop_last=False)
        record: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, "drop_path": model.drop_path_prob}
        record.update(_run_epoch(model, loader, optimizer, criterion, hp, device, epoch, progress))
        test = evaluator.evaluate(model, test_loader, device)
        record.update(test_loss=test["loss"], test_top1=test["top1"], test_top5=test["top5"],
                      seconds=time.perf_counter() - started)
        if device.type == "cuda":
            record["peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        history.append(record)
        atomic_torch_save({
            "format": CHECKPOINT_FORMAT, "version": 1, "epoch": epoch + 1, "config": config.to_dict(),
            "model_args": args, "data": asdict(info), "state_dict": model.state_dict(),
            "optimizer": optimizer.state_dict(), "history": history,
        }, out / CHECKPOINT_NAME)
        atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))
        progress.epoch(record)
    model_dir = write_folder(spec_from_checkpoint(load_checkpoint(out / CHECKPOINT_NAME), str(out)), out / "model")
    return TrainResult(run_dir=out, model_dir=model_dir, history=history)
