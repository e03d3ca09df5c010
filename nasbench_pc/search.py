"""The bilevel search loop (the reference ``train_search.py``), its run directory and resume.

Per epoch: for every weight-split batch, an architecture step on the next architecture-split
batch (from the method's first non-warm-up epoch on), then an SGD step of the weights with
gradient clipping; the learning rate follows a cosine from ``lr`` to ``lr_min`` over the epochs
(after an optional linear warm-up). At the end of each epoch the architecture split is evaluated,
one line goes to ``metrics.jsonl`` and a checkpoint is written atomically.

Nothing here depends on the method's name: the supernet comes from the method's plugins and the
architecture gradient order from ``Method.order``.
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
import resource
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from nasbench_pc import genotypes, registry
from nasbench_pc.api import create_supernet, resolve_method
from nasbench_pc.architect import Architect
from nasbench_pc.data import DatasetInfo, get_dataset, per_class_split, search_split, targets_of
from nasbench_pc.distributed import Context, check_batch, global_batchnorm
from nasbench_pc.errors import ConfigError, check_finite
from nasbench_pc.files import atomic_torch_save, atomic_write_bytes
from nasbench_pc.genotypes import Genotype

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
METRICS = "metrics.jsonl"
GENOTYPE_HISTORY = "genotypes.jsonl"
GENOTYPE = "genotype.json"


@dataclass(frozen=True)
class SearchConfig:
    """Everything that defines a search; saved as ``config.json`` and reloaded by ``--resume``."""

    method: str
    dataset: str = "synthetic"
    data_root: str | None = None
    download: bool = False
    limit: int | None = None
    in_channels: int | None = None
    image_size: int | None = None
    augment: bool = True
    cutout: int = 0
    epochs: int = 50
    batch_size: int = 64
    lr: float = 0.025
    lr_min: float = 0.001
    lr_warmup_epochs: int = 0  # linear LR warm-up (the ImageNet search, batch > 256)
    momentum: float = 0.9
    weight_decay: float = 3e-4
    init_channels: int = 16
    layers: int = 8
    k: int | None = None  # partial-channel K; None keeps the method's
    stem: str = "cifar"
    train_portion: float = 0.5
    arch_portion: float | None = None  # set: per-class fractions (train_portion, arch_portion) as on ImageNet
    arch_lr: float = 3e-4
    arch_weight_decay: float = 1e-3
    grad_clip: float = 5.0
    warmup_epochs: int = 0  # epochs before the first architecture step
    seed: int = 2
    steps_per_epoch: int | None = None  # cap on weight steps per epoch, for smoke tests and benchmarks
    workers: int = 0
    device: str = "cpu"
    amp: str | None = None  # None or "bf16"
    channels_last: bool = False
    preset: str = "paper"

    def __post_init__(self) -> None:
        positive = ("epochs", "batch_size", "init_channels", "layers")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}.")
        for name in ("lr", "lr_min", "arch_lr", "weight_decay", "arch_weight_decay", "grad_clip", "momentum"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} cannot be negative, got {getattr(self, name)}.")
        if self.warmup_epochs < 0 or self.lr_warmup_epochs < 0 or self.workers < 0:
            raise ConfigError("--warmup-epochs, --lr-warmup-epochs and --workers cannot be negative.")
        if self.amp not in (None, "bf16"):
            raise ConfigError(f"--amp takes 'bf16' (or leave it out), got {self.amp!r}.")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ConfigError(f"--steps-per-epoch must be at least 1, got {self.steps_per_epoch}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"config.json has unknown field(s) {', '.join(unknown)}; it was written by another "
                              f"version of nasbench-pc. Start a new search with that version or without --resume.")
        return cls(**data)


class Reporter(Protocol):
    """Receives progress; the CLI draws it, tests and library users may pass None."""

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None: ...

    def step(self, step: int, stats: dict[str, float]) -> None: ...

    def epoch_end(self, record: dict[str, Any]) -> None: ...


@dataclass
class SearchResult:
    run_dir: Path | None
    dataset: DatasetInfo
    genotype: Genotype
    history: list[dict[str, Any]]
    seconds: float
    arch_parameters: list[torch.Tensor]


# ---------------------------------------------------------------------------------------------------------------
# data streams


class BatchStream:
    """Global batches of one split in a seeded order, one pass at a time, sharded over ranks.

    The order of pass ``p`` depends only on (seed, p), so the stream's whole state is
    ``(pass_no, position)``: that is what a checkpoint stores for the persistent architecture iterator.
    """

    def __init__(self, dataset: Dataset, indices: list[int], *, batch_size: int, seed: int, ctx: Context,
                 workers: int, pin_memory: bool):
        self.dataset, self.indices, self.batch_size, self.seed = dataset, indices, batch_size, seed
        self.ctx, self.workers, self.pin_memory = ctx, workers, pin_memory
        self.pass_no, self.position = 0, 0
        self._iter: Iterator[tuple[torch.Tensor, torch.Tensor, int]] | None = None

    def batches(self, pass_no: int) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + pass_no)
        order = [self.indices[i] for i in torch.randperm(len(self.indices), generator=g).tolist()]
        out = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        return [b for b in out if len(b) >= self.ctx.world_size]  # every rank needs at least one example

    def iterate(self, pass_no: int, start: int = 0, stop: int | None = None
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
        """(inputs, targets, global batch size) of this rank for batches ``start:stop`` of a pass."""
        chosen = self.batches(pass_no)[start:stop]
        shards = [b[self.ctx.shard(len(b))] for b in chosen]
        # its own generator, so creating a loader never draws from the global RNG (bit-exact resume)
        loader = DataLoader(self.dataset, batch_sampler=shards, num_workers=self.workers,
                            pin_memory=self.pin_memory, generator=torch.Generator())
        for (x, y), b in zip(loader, chosen, strict=True):
            yield x, y, len(b)

    def next(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """The next batch of the persistent iterator, starting a new pass when one is exhausted."""
        for _ in range(2):
            if self._iter is None:
                self._iter = self.iterate(self.pass_no, self.position)
            try:
                batch = next(self._iter)
            except StopIteration:
                self._iter, self.pass_no, self.position = None, self.pass_no + 1, 0
                continue
            self.position += 1
            return batch
        raise ConfigError("The architecture split has no batch; use more data or a smaller --batch-size.")

    def state_dict(self) -> dict[str, int]:
        return {"pass_no": self.pass_no, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.pass_no, self.position, self._iter = int(state["pass_no"]), int(state["position"]), None


# ---------------------------------------------------------------------------------------------------------------
# the search


def learning_rate(config: SearchConfig, epoch: int) -> float:
    """Cosine annealing from lr to lr_min over the epochs (the reference CosineAnnealingLR stepped per
    epoch), with a linear warm-up ``lr * (epoch + 1) / lr_warmup_epochs`` during the warm-up epochs."""
    if epoch < config.lr_warmup_epochs:
        return config.lr * (epoch + 1) / config.lr_warmup_epochs
    return config.lr_min + (config.lr - config.lr_min) * (1 + math.cos(math.pi * epoch / config.epochs)) / 2


def peak_memory(device: torch.device) -> tuple[str, float]:
    """(field name, MiB): CUDA max allocated on a GPU, else the process's max resident set size."""
    if device.type == "cuda":
        return "peak_cuda_allocated_mib", torch.cuda.max_memory_allocated(device) / 2**20
    return "peak_cpu_rss_mib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def alpha_entropy(alphas: torch.Tensor) -> float:
    """Mean entropy (nats) of the per-edge op distributions softmax(alpha)."""
    p = F.softmax(alphas.detach().float(), dim=-1)
    return float(-(p * p.clamp_min(1e-12).log()).sum(-1).mean())


def arch_weights(model: torch.nn.Module) -> dict[str, list | None]:
    """softmax(alpha) per edge and op, and the normalized edge weights (None without edge normalization):
    the per-epoch trajectories that `compare --plot` draws."""
    with torch.no_grad():
        out: dict[str, list | None] = {}
        for cell, reduction in (("normal", False), ("reduce", True)):
            alphas = model.alphas_reduce if reduction else model.alphas_normal
            edge = model.edge_weights(reduction)
            out[f"alphas_{cell}"] = [[round(v, 6) for v in row] for row in F.softmax(alphas.float(), -1).tolist()]
            out[f"edge_weights_{cell}"] = None if edge is None else [round(v, 6) for v in edge.float().tolist()]
    return out


_KEPT = "The checkpoint and metrics of every finished epoch are kept in the run directory."


class Search:
    """The supernet, its optimizers and data streams for one search configuration."""

    def __init__(self, config: SearchConfig, *, ctx: Context | None = None):
        self.config = config
        self.ctx = ctx or Context()
        check_batch(config.batch_size, self.ctx)
        self.device = torch.device(config.device)
        self.method = resolve_method(config.method, **({} if config.k is None else {"k": config.k}))
        data_options = {"split": "train", "root": config.data_root, "limit": config.limit, "seed": config.seed,
                        "augment": config.augment, "cutout": config.cutout, "in_channels": config.in_channels,
                        "image_size": config.image_size}
        if config.download and self.ctx.is_main:  # one rank downloads; the others wait, then read the files
            get_dataset(config.dataset, download=True, **data_options)
        self.ctx.barrier()
        dataset, self.info = get_dataset(config.dataset, **data_options)
        if config.arch_portion is None:
            weight_idx, arch_idx = search_split(len(dataset), config.train_portion)
        else:
            weight_idx, arch_idx = per_class_split(targets_of(dataset), config.train_portion, config.arch_portion,
                                                   config.seed)
        stream = {"batch_size": config.batch_size, "ctx": self.ctx, "workers": config.workers,
                  "pin_memory": self.device.type == "cuda"}
        self.weight_stream = BatchStream(dataset, weight_idx, seed=config.seed, **stream)
        self.arch_stream = BatchStream(dataset, arch_idx, seed=config.seed + 1, **stream)
        self.eval_batches = [arch_idx[i:i + config.batch_size] for i in range(0, len(arch_idx), config.batch_size)]
        self.dataset = dataset
        if self.weight_stream.batches(0) == []:
            raise ConfigError("The weight split has no batch; use more data or a smaller --batch-size.")

        torch.manual_seed(config.seed)
        if self.device.type == "cuda":
            torch.cuda.manual_seed_all(config.seed)
            torch.backends.cudnn.benchmark = True
        model = create_supernet(self.method, init_channels=config.init_channels, layers=config.layers,
                                num_classes=self.info.num_classes, in_channels=self.info.in_channels,
                                stem=config.stem)
        if self.ctx.active:
            global_batchnorm(model)
            torch.manual_seed(config.seed + self.ctx.rank)  # different augmentation draws on each rank
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.model = model.to(self.device, memory_format=self.memory_format)
        self.optimizer = torch.optim.SGD(self.model.weight_parameters(), lr=config.lr, momentum=config.momentum,
                                         weight_decay=config.weight_decay)
        self.architect = Architect(self.model, arch_lr=config.arch_lr, arch_weight_decay=config.arch_weight_decay,
                                   order=self.method.order, momentum=config.momentum,
                                   weight_decay=config.weight_decay, loss_fn=self.loss, reduce=self.ctx.all_reduce)
        self.epoch = 0  # epochs finished
        self.history: list[dict[str, Any]] = []

    # -- one step --------------------------------------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.config.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def to_device(self, batch: tuple[torch.Tensor, torch.Tensor, int]) -> tuple[torch.Tensor, torch.Tensor, int]:
        x, y, n = batch
        x = x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        return x, y.to(self.device, non_blocking=True), n

    def loss(self, model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor, int]) -> torch.Tensor:
        """Cross-entropy of this rank's shard divided by the global batch size (summed over ranks = the mean)."""
        x, y, n = batch
        with self._autocast():
            logits = model(x)
        return F.cross_entropy(logits.float(), y, reduction="sum") / n

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor, int], *, lr: float, arch_step: bool
                   ) -> tuple[float, int, float | None]:
        """Architecture step (when enabled) then weight step; returns (loss sum, correct, arch loss)."""
        self.model.train()
        arch_loss = None
        if arch_step:
            arch_batch = self.to_device(self.arch_stream.next())
            arch_loss = float(self.architect.step(batch, arch_batch, eta=lr, weight_optimizer=self.optimizer))
            check_finite(arch_loss, what="architecture-split loss", epoch=self.epoch + 1, lr=lr, kept=_KEPT)
        x, y, n = batch
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            logits = self.model(x)
        loss = F.cross_entropy(logits.float(), y, reduction="sum") / n
        check_finite(loss.item(), what="weight-split loss", epoch=self.epoch + 1, lr=lr, kept=_KEPT)
        loss.backward()
        weights = self.model.weight_parameters()
        self.ctx.all_reduce([p.grad for p in weights if p.grad is not None])
        torch.nn.utils.clip_grad_norm_(weights, self.config.grad_clip)
        self.optimizer.step()
        return loss.item() * n, int((logits.detach().argmax(1) == y).sum()), arch_loss

    # -- one epoch -------------------------------------------------------------------------------------------------

    def train_epoch(self, reporter: Reporter | None = None) -> dict[str, Any]:
        config, epoch = self.config, self.epoch
        lr = learning_rate(config, epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        arch_step = epoch >= config.warmup_epochs
        steps = len(self.weight_stream.batches(epoch)[:config.steps_per_epoch])
        if reporter:
            reporter.epoch_start(epoch, config.epochs, steps)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        start = time.perf_counter()
        totals = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, examples (this rank)
        seen = 0
        for step, batch in enumerate(self.weight_stream.iterate(epoch, 0, config.steps_per_epoch)):
            loss_sum, correct, arch_loss = self.train_step(self.to_device(batch), lr=lr, arch_step=arch_step)
            totals += torch.tensor([loss_sum, correct, len(batch[1])], dtype=torch.float64)
            seen += batch[2]
            if reporter:
                stats = {"loss": totals[0].item() / totals[2].item(), "acc": totals[1].item() / totals[2].item(),
                         "img_s": seen / (time.perf_counter() - start)}
                if arch_loss is not None:
                    stats["arch_loss"] = arch_loss
                reporter.step(step, stats)
        self.ctx.all_reduce([totals])
        seconds = time.perf_counter() - start
        arch_metrics = self.evaluate_arch_split()
        self.epoch += 1
        genotype = self.model.genotype()
        memory_field, memory = peak_memory(self.device)
        record = {
            "epoch": epoch + 1,
            "lr": lr,
            "arch_updates": arch_step,
            "train_loss": totals[0].item() / totals[2].item(),
            "train_acc": totals[1].item() / totals[2].item(),
            "arch_loss": arch_metrics["loss"],
            "arch_acc": arch_metrics["top1"],
            "epoch_seconds": seconds,
            "images_per_second": seen / seconds,
            memory_field: memory,
            "alpha_entropy_normal": alpha_entropy(self.model.alphas_normal),
            "alpha_entropy_reduce": alpha_entropy(self.model.alphas_reduce),
            "normal_skip_connects": sum(op == "skip_connect" for op, _ in genotype.normal),
            "genotype": genotypes.to_dict(genotype),
            "arch_weights": arch_weights(self.model),
        }
        self.history.append(record)
        if reporter:
            reporter.epoch_end(record)
        return record

    def evaluate_arch_split(self) -> dict[str, float]:
        """Loss and top-1 on the whole architecture split (the reference ``infer`` on valid_queue)."""
        shards = [b[self.ctx.shard(len(b))] for b in self.eval_batches if len(b) >= self.ctx.world_size]
        loader = DataLoader(self.dataset, batch_sampler=shards, num_workers=self.config.workers,
                            pin_memory=self.device.type == "cuda", generator=torch.Generator())
        batches = ((x.contiguous(memory_format=self.memory_format), y) for x, y in loader)
        with self._autocast():
            metrics = registry.get("evaluator", "accuracy").evaluate(self.model, batches, self.device)
        count = metrics["count"]
        sums = torch.tensor([metrics["loss"] * count if count else 0.0, metrics["top1"] * count if count else 0.0,
                             count], dtype=torch.float64)
        self.ctx.all_reduce([sums])
        return {"loss": (sums[0] / sums[2]).item(), "top1": (sums[1] / sums[2]).item()}

    # -- checkpoints -----------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "format": 1,
            "epoch": self.epoch,  # the LR schedule is a function of the epoch, so this is its whole state
            "model": self.model.state_dict(),
            "weight_optimizer": self.optimizer.state_dict(),
            "arch_optimizer": self.architect.optimizer.state_dict(),
            "arch_stream": self.arch_stream.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "history": self.history,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["weight_optimizer"])
        self.architect.optimizer.load_state_dict(state["arch_optimizer"])
        self.arch_stream.load_state_dict(state["arch_stream"])
        torch.set_rng_state(state["rng_cpu"])
        if self.device.type == "cuda" and state["rng_cuda"]:
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])


# ---------------------------------------------------------------------------------------------------------------
# run directory


save_checkpoint = atomic_torch_save  # a kill never leaves a half-written checkpoint


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("nasbench-pc", "torch", "torchvision", "timm"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _write_run_files(run_dir: Path, history: list[dict[str, Any]]) -> None:
    lines = "".join(json.dumps(r) + "\n" for r in history)
    atomic_write_bytes(run_dir / METRICS, lines.encode())
    gens = "".join(json.dumps({"epoch": r["epoch"], "genotype": r["genotype"]}) + "\n" for r in history)
    atomic_write_bytes(run_dir / GENOTYPE_HISTORY, gens.encode())


def load_run_config(run_dir: Path) -> SearchConfig:
    path = run_dir / CONFIG
    try:
        saved = json.loads(path.read_text())
        return SearchConfig.from_dict(saved["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{run_dir} is not a search run directory ({path} is missing or unreadable: {exc}). Pass "
                          f"the folder a search wrote with --out (it holds config.json and checkpoint.pt).") from None


def run_search(config: SearchConfig, run_dir: Path | None, *, resume: bool = False, reporter: Reporter | None = None,
               ctx: Context | None = None) -> SearchResult:
    """Run (or, with ``resume``, continue) a search; rank 0 writes ``run_dir`` unless it is None."""
    ctx = ctx or Context()
    writer = run_dir if ctx.is_main else None
    if writer is not None and not resume and (writer / CHECKPOINT).exists():
        raise ConfigError(f"{writer} already holds a search. Continue it with --resume {writer}, or choose another "
                          f"--out so that its results are not overwritten.")
    search = Search(config, ctx=ctx)
    started = time.perf_counter()
    elapsed_before = 0.0
    if resume:
        if run_dir is None or not (run_dir / CHECKPOINT).exists():
            raise ConfigError(f"No checkpoint in {run_dir}: the search stopped before its first epoch ended. "
                              f"Start it again without --resume (same --out).")
        try:
            state = torch.load(run_dir / CHECKPOINT, map_location=search.device, weights_only=True)
        except Exception as exc:  # torch raises many types for a truncated or foreign file
            raise ConfigError(f"{run_dir / CHECKPOINT} cannot be read ({type(exc).__name__}: {str(exc)[:120]}); it is "
                              f"damaged or not a nasbench-pc search checkpoint. metrics.jsonl and genotypes.jsonl in "
                              f"{run_dir} still hold the finished epochs; start the search again with a new --out.") \
                from None
        search.load_state_dict(state)
        elapsed_before = float(state.get("seconds", 0.0))
    if writer is not None:
        writer.mkdir(parents=True, exist_ok=True)
        meta = {"config": config.to_dict(), "method": asdict(search.method),
                "dataset": asdict(search.info), "world_size": ctx.world_size, "versions": _versions(),
                "plugins": sorted(name for name, _ in registry.plugin_manager().list_name_plugin())}
        atomic_write_bytes(writer / CONFIG, (json.dumps(meta, indent=2) + "\n").encode())
        _write_run_files(writer, search.history)  # drop any line written after the last checkpoint
    while search.epoch < config.epochs:
        search.train_epoch(reporter if ctx.is_main else None)
        if writer is not None:
            state = search.state_dict()
            state["seconds"] = elapsed_before + time.perf_counter() - started
            save_checkpoint(state, writer / CHECKPOINT)
            _write_run_files(writer, search.history)
    genotype = search.model.genotype()
    if writer is not None:
        atomic_write_bytes(writer / GENOTYPE, (genotypes.to_json(genotype) + "\n").encode())
    return SearchResult(run_dir=writer, dataset=search.info, genotype=genotype, history=search.history,
                        seconds=elapsed_before + time.perf_counter() - started,
                        arch_parameters=[p.detach().cpu().clone() for p in search.model.arch_parameters()])
