"""The bilevel search loop (the reference ``train_search.py``), its run directory and resume.

Per epoch: for every weight-split batch, an architecture step on the next architecture-split
batch (from the method's first non-warm-up epoch on), then an SGD step of the weights with
gradient clipping; the learning rate follows a cosine from ``lr`` to ``lr_min`` over the epochs
(after an optional linear warm-up). At the end of each epoch the architecture split is evaluated,
one line goes to ``metrics.jsonl`` and a checkpoint is written atomically.

Stopping: SIGINT / SIGTERM end the search after the current weight step with a mid-epoch
checkpoint (the same ``checkpoint.pt``: position in the epoch, its running sums, every rank's
random state), and ``--resume`` continues inside that epoch; on CPU with ``workers=0`` the
resumed run is bit-identical to an uninterrupted one. SIGKILL loses at most the steps since the
last checkpoint (writes are atomic; a half-written temporary file is discarded on the next start).
CUDA out of memory stops with the batch that ``nasbench-pc plan`` suggests instead.

Nothing here depends on the method's name: the supernet comes from the method's plugins and the
architecture gradient order from ``Method.order``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from nasbench_pc import genotypes, registry
from nasbench_pc.api import create_supernet, method_hooks
from nasbench_pc.console import err_console
from nasbench_pc.errors import ConfigError, NasbenchError, PluginError, brief, check_finite
from nasbench_pc.runtime.data import DatasetInfo
from nasbench_pc.runtime.devices import is_out_of_memory
from nasbench_pc.runtime.distributed import Context, check_batch, global_batchnorm
from nasbench_pc.runtime.files import atomic_write_bytes
from nasbench_pc.runtime.interrupt import Interrupted, StopSignals
from nasbench_pc.runtime.jobs import STOP_REQUEST, clear_stop, stop_requested
from nasbench_pc.runtime.lease import Lease
from nasbench_pc.runtime.rundir import WRITERS, claim, record_writer, writing
from nasbench_pc.runtime.runkit import CHECKPOINT, CONFIG, GENOTYPE, METRICS, accuracy, peak_memory, scheduled_lr
from nasbench_pc.search import stages
from nasbench_pc.search.architect import Architect
from nasbench_pc.search.budget import out_of_memory_error
from nasbench_pc.search.checkpoint import CHECKPOINT_FORMAT, restore, save_checkpoint, versions
from nasbench_pc.search.config import SearchConfig
from nasbench_pc.search.streams import batch_loader, derived_seed, search_data
from nasbench_pc.supernet import prepare_layout

GENOTYPE_HISTORY = "genotypes.jsonl"
RUN_FILES = (CONFIG, METRICS, GENOTYPE_HISTORY, GENOTYPE, CHECKPOINT, WRITERS)


class AlreadyFinished(ConfigError):
    """``run_search(resume=None)`` found the run finished once it held the folder's lease: nothing to do."""


class Reporter(Protocol):
    """Receives progress; the CLI draws it, tests and library users may pass None."""

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None: ...

    def step(self, step: int, stats: dict[str, float]) -> None: ...

    def epoch_end(self, record: dict[str, Any]) -> None: ...


@dataclass
class SearchResult:
    run_dir: Path | None
    dataset: DatasetInfo
    genotype: Any  # of the search space's genotype type
    history: list[dict[str, Any]]
    seconds: float
    arch_parameters: list[torch.Tensor]


# ---------------------------------------------------------------------------------------------------------------
# the search


def learning_rate(config: SearchConfig, epoch: int) -> float:
    """Cosine annealing from lr to lr_min over the epochs (the reference CosineAnnealingLR stepped per
    epoch), with a linear warm-up ``lr * (epoch + 1) / lr_warmup_epochs`` during the warm-up epochs."""
    return scheduled_lr(epoch, lr=config.lr, lr_min=config.lr_min, epochs=config.epochs,
                 warmup_epochs=config.lr_warmup_epochs, warmup_base="lr")


def alpha_entropy(probabilities: list[list[float]]) -> float:
    """Mean entropy (nats) of the per-edge op distributions softmax(alpha), given as rows of probabilities."""
    p = torch.tensor(probabilities, dtype=torch.float64)
    return float(-(p * p.clamp_min(1e-12).log()).sum(-1).mean())


def alpha_entropies(arch: Mapping[str, Any]) -> dict[str, float]:
    """``alpha_entropy_<cell>`` of each cell type of a space's architecture record (``SearchSpace.arch_record``)."""
    return {f"alpha_entropy_{key.removeprefix('alphas_')}": alpha_entropy(rows)
            for key, rows in arch.items() if key.startswith("alphas_")}


#: the key of an epoch record that holds the metrics ``--track`` scored (nasbench_pc.results.tracking)
TRACKED = "tracked"
#: the orders of one search step's two halves a method may ask for (``SearchHooks.step_order``); the first is DARTS'
STEP_ORDERS = ("arch_then_weight", "weight_then_arch")
_KEPT = "The checkpoint and metrics of every finished epoch are kept in the run directory."


@dataclass
class EpochProgress:
    """How far the current epoch got: what a mid-epoch checkpoint adds to continue inside the epoch."""

    step: int = 0  # weight steps done
    # this rank's loss sum, correct predictions and examples
    totals: torch.Tensor = field(default_factory=lambda: torch.zeros(3, dtype=torch.float64))
    seen: int = 0  # global examples
    seconds: float = 0.0


class Search:
    """The supernet, its optimizers and data streams for one search configuration."""

    def __init__(self, config: SearchConfig, *, ctx: Context | None = None):
        self.config = config
        self.ctx = ctx or Context()
        check_batch(config.batch_size, self.ctx)
        self.device = torch.device(config.device)
        self.method = config.method_record()
        self.space = registry.get("search_space", config.space)
        data = search_data(config, self.ctx, pin_memory=self.device.type == "cuda")
        self.dataset, self.info = data.dataset, data.info
        self.weight_stream, self.arch_stream, self.eval_batches = data.weights, data.architecture, data.eval_batches

        torch.manual_seed(config.seed)
        if self.device.type == "cuda":
            torch.cuda.manual_seed_all(config.seed)
            torch.backends.cudnn.benchmark = True
        model = create_supernet(self.method, space=config.space, num_classes=self.info.num_classes,
                                in_channels=self.info.in_channels, **config.space_options)
        if self.ctx.active:
            global_batchnorm(model)
            torch.manual_seed(config.seed + self.ctx.rank)  # different augmentation draws on each rank
        self.layout = prepare_layout(self.device)  # stacked edges channels-last where checked safe (CPU)
        if self.layout.failed and self.ctx.is_main:
            err_console.print(f"[yellow]oneDNN's channels-last kernels failed this machine's check "
                              f"({self.layout.reason}), so the supernet runs in the default memory layout: the same "
                              f"results, only slower. NASBENCH_PC_CHANNELS_LAST=0 skips the check.[/yellow]")
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.model = model.to(self.device, memory_format=self.memory_format)
        self.optimizer = torch.optim.SGD(self.model.weight_parameters(), lr=config.lr, momentum=config.momentum,
                                         weight_decay=config.weight_decay)
        # the method's own behaviour in the loop (Method.hooks, made from its settings): the supernet's relaxation
        self.hooks = (model.relaxation if hasattr(model, "fixed_weights")
                      else method_hooks(self.method, space=config.space))
        self.weight_first = self._step_order() == "weight_then_arch"
        # a staged method (DrNAS' progressive search): its stages on this search's epochs, and the one it is in
        self.spans = stages.plan(self.hooks.stages, config.epochs) if getattr(self.hooks, "stages", None) else None
        self.stage = 0
        self.architect = Architect(self.model, arch_lr=config.arch_lr, arch_weight_decay=config.arch_weight_decay,
                                   order=self.method.order, momentum=config.momentum,
                                   weight_decay=config.weight_decay, loss_fn=self.loss, reduce=self.ctx.all_reduce,
                                   grad_clip=config.arch_grad_clip, autocast=self._autocast,
                                   extra_loss=self._arch_loss_terms if hasattr(self.hooks, "arch_loss") else None,
                                   optimizer=self._arch_optimizer())
        self.epoch = 0  # epochs finished
        self.progress = EpochProgress()  # of the epoch after them
        #: called after every weight step with (the run's step count, the step's values) when a logger wants them
        self.on_step: Callable[[int, dict[str, float]], None] | None = None
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
        """Cross-entropy of this rank's shard divided by the global batch size (summed over ranks = the mean),
        in the precision of the caller (the architect decides where autocast applies)."""
        x, y, n = batch
        return F.cross_entropy(model(x).float(), y, reduction="sum") / n

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor, int], *, lr: float, arch_step: bool
                   ) -> tuple[float, int, float | None]:
        """Architecture step (when enabled) then weight step, or the other way round when the method's
        ``step_order`` says ``weight_then_arch`` (AutoDL's GDAS); returns (loss sum, correct, arch loss)."""
        self.model.train()
        arch_loss = None
        if arch_step and not self.weight_first:
            arch_loss = self._arch_step(batch, lr)
        result = self._weight_step(batch, lr)
        if arch_step and self.weight_first:
            arch_loss = self._arch_step(batch, lr)
        return (*result, arch_loss)

    def _arch_step(self, batch: tuple[torch.Tensor, torch.Tensor, int], lr: float) -> float:
        arch_batch = self.to_device(self.arch_stream.next())
        arch_loss = float(self.architect.step(batch, arch_batch, eta=lr, weight_optimizer=self.optimizer))
        check_finite(arch_loss, what="architecture-split loss", epoch=self.epoch + 1, lr=lr, kept=_KEPT)
        return arch_loss

    def _weight_step(self, batch: tuple[torch.Tensor, torch.Tensor, int], lr: float) -> tuple[float, int]:
        x, y, n = batch
        self.optimizer.zero_grad(set_to_none=True)
        with self._perturbed(batch), self._autocast():
            logits = self.model(x)
        loss = F.cross_entropy(logits.float(), y, reduction="sum") / n
        check_finite(loss.item(), what="weight-split loss", epoch=self.epoch + 1, lr=lr, kept=_KEPT)
        loss.backward()
        weights = self.model.weight_parameters()
        self.ctx.all_reduce([p.grad for p in weights if p.grad is not None])
        torch.nn.utils.clip_grad_norm_(weights, self.config.grad_clip)
        self.optimizer.step()
        return loss.item() * n, int((logits.detach().argmax(1) == y).sum())

    def _enter_stage(self, epoch: int) -> None:
        """Move to the stage ``epoch`` belongs to, through every stage boundary since the last epoch."""
        if self.spans is None:
            return
        while self.stage < stages.index_at(self.spans, epoch):
            self.stage += 1
            self._stage_structure(self.stage, prune=True)

    def _stage_structure(self, index: int, *, prune: bool) -> None:
        """Stage ``index``'s supernet and optimizer: its ops pruned (when ``prune``; a resume sets the saved masks
        instead), its K (the MixedOps widened), the weight optimizer rebuilt with its momentum carried."""
        span, before = self.spans[index], self.spans[index - 1]
        try:
            if prune and span.keep is not None:
                self.model.prune(span.keep)
            k_before = next((s.k for s in reversed(self.spans[:index]) if s.k is not None), None)
            widened = self.model.set_k(span.k) if span.k is not None and span.k != k_before else []
        except NasbenchError:
            raise
        except Exception as exc:
            raise PluginError(f"The method {self.method.name} could not enter its stage {index + 1} (epoch "
                              f"{before.end + 1}): {brief(exc)}. {_KEPT}") from exc
        self.optimizer = stages.rebuild_optimizer(self.optimizer, self.model.weight_parameters(), widened)

    def _step_order(self) -> str:
        """The method's ``step_order`` (``arch_then_weight``, DARTS', by default), checked once."""
        order = getattr(self.hooks, "step_order", STEP_ORDERS[0])
        if order not in STEP_ORDERS:
            raise PluginError(f"The method {self.method.name} asks for the step order {order!r}; a method's "
                              f"step_order is one of {', '.join(STEP_ORDERS)}.")
        return order

    def _call_hook(self, name: str, **kwargs: Any) -> Any:
        """The method's hook ``name``; a failure that is not a NasbenchError becomes a PluginError naming it."""
        try:
            return getattr(self.hooks, name)(**kwargs)
        except NasbenchError:
            raise
        except Exception as exc:
            raise PluginError(f"The {name} hook of the method {self.method.name} failed at epoch {self.epoch + 1}: "
                              f"{brief(exc)}. {_KEPT}") from exc

    def _arch_loss_terms(self, model: torch.nn.Module) -> torch.Tensor | None:
        """The method's terms on the architecture loss (``arch_loss(supernet)``), in the architecture step only."""
        return self._call_hook("arch_loss", supernet=model)

    def _arch_optimizer(self) -> torch.optim.Optimizer | None:
        """The method's optimizer of the architecture parameters (``arch_optimizer``), or None for DARTS' Adam."""
        if not hasattr(self.hooks, "arch_optimizer"):
            return None
        optimizer = self._call_hook("arch_optimizer", parameters=self.model.arch_parameters(), lr=self.config.arch_lr,
                                    weight_decay=self.config.arch_weight_decay)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise PluginError(f"The arch_optimizer hook of the method {self.method.name} returned {optimizer!r}; it "
                              f"returns a torch.optim.Optimizer over the parameters it was given.")
        return optimizer

    def _perturbed(self, batch: tuple[torch.Tensor, torch.Tensor, int]) -> contextlib.AbstractContextManager:
        """The weight step's op weights: the method's ``perturb_weights`` (SDARTS) pins perturbed probabilities for
        the weight step alone; without it, a no-op. The architecture step never runs inside it."""
        if not hasattr(self.hooks, "perturb_weights"):
            return contextlib.nullcontext()
        model = self.model

        def loss_at(weights: list[torch.Tensor]) -> torch.Tensor:
            with model.fixed_weights(weights), self._autocast():
                return self.loss(model, batch)

        pinned = self._call_hook("perturb_weights", supernet=model, probabilities=model.probabilities(),
                                 loss_at=loss_at)
        return model.fixed_weights([w.detach() for w in pinned])

    # -- one epoch -------------------------------------------------------------------------------------------------

    def train_epoch(self, reporter: Reporter | None = None, stopping: Callable[[], bool] = lambda: False
                    ) -> dict[str, Any] | None:
        """Run the rest of the current epoch and return its record; or None when ``stopping()`` (asked after
        every weight step) says to stop, with ``self.progress`` holding how far the epoch got."""
        config, epoch, progress = self.config, self.epoch, self.progress
        lr = learning_rate(config, epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self._enter_stage(epoch)
        arch_step = epoch >= config.warmup_epochs and (
            self.spans is None or epoch - self.spans[self.stage].start >= self.spans[self.stage].warmup)
        method_values = self._method_epoch_start(epoch)
        steps = len(self.weight_stream.batches(epoch)[:config.steps_per_epoch])
        if reporter:
            reporter.epoch_start(epoch, config.epochs, steps)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        start = time.perf_counter() - progress.seconds
        batches = self.weight_stream.iterate(epoch, progress.step, config.steps_per_epoch)
        for step, batch in enumerate(batches, start=progress.step):
            loss_sum, correct, arch_loss = self.train_step(self.to_device(batch), lr=lr, arch_step=arch_step)
            progress.totals += torch.tensor([loss_sum, correct, len(batch[1])], dtype=torch.float64)
            progress.seen += batch[2]
            progress.step, progress.seconds = step + 1, time.perf_counter() - start
            if reporter:
                totals = progress.totals.tolist()
                stats = {"loss": totals[0] / totals[2], "acc": totals[1] / totals[2],
                         "img_s": progress.seen / progress.seconds}
                if arch_loss is not None:
                    stats["arch_loss"] = arch_loss
                reporter.step(step, stats)
            if self.on_step is not None:
                self.on_step(epoch * steps + step + 1, self._step_values(epoch, lr, loss_sum, correct, len(batch[1]),
                                                                         arch_loss))
            if stopping():
                return None
        totals = progress.totals.clone()
        self.ctx.all_reduce([totals])
        arch_metrics = self.evaluate_arch_split()
        self.epoch, self.progress = self.epoch + 1, EpochProgress()
        record = self._epoch_record(epoch, lr, arch_step, totals, arch_metrics, progress, method_values)
        self.history.append(record)
        if reporter:
            reporter.epoch_end(record)
        return record

    def _step_values(self, epoch: int, lr: float, loss_sum: float, correct: float, count: int,
                     arch_loss: float | None) -> dict[str, float]:
        """One weight step's values for the loggers (``on_step_end``): its batch's loss and accuracy, the learning
        rate, the architecture loss when it updated the architecture, and the architecture's state now."""
        arch = self.space.arch_record(self.model)
        values = {"epoch": epoch + 1, "train_loss": loss_sum / count, "train_acc": correct / count, "lr": lr,
                  **alpha_entropies(arch), "skip_connects": self.space.stats(self.model.genotype()).skip_connects}
        if arch_loss is not None:
            values["arch_loss"] = arch_loss
        return values

    def _epoch_record(self, epoch: int, lr: float, arch_step: bool, totals: torch.Tensor,
                      arch_metrics: dict[str, float], progress: EpochProgress, method_values: dict[str, Any]
                      ) -> dict[str, Any]:
        """The epoch's metrics.jsonl line: losses and accuracies, time, memory, the architecture and its genotype."""
        genotype = self.model.genotype()
        stats = self.space.stats(genotype)
        arch = self.space.arch_record(self.model)
        memory_field, memory = peak_memory(self.device)
        record = {
            "epoch": epoch + 1,
            "lr": lr,
            "arch_updates": arch_step,
            "train_loss": totals[0].item() / totals[2].item(),
            "train_acc": totals[1].item() / totals[2].item(),
            "arch_loss": arch_metrics["loss"],
            "arch_acc": arch_metrics["top1"],
            "epoch_seconds": progress.seconds,
            "images_per_second": progress.seen / progress.seconds,
            memory_field: memory,
            **alpha_entropies(arch),
            "skip_connects": stats.skip_connects,
            "collapsed": stats.collapsed,
            "genotype": genotypes.to_dict(genotype),
            "arch_weights": arch,
        }
        if method_values:
            record["method"] = method_values
        if self.spans is not None:
            span = self.spans[self.stage]
            record["stage"] = {"index": self.stage + 1, "K": span.k, "ops_kept": span.keep, "warmup": span.warmup}
        return record

    def _method_epoch_start(self, epoch: int) -> dict[str, Any]:
        """The method's ``epoch_start`` hook, if it has one (a temperature schedule sets the supernet's temperature):
        called at the start of every epoch, also of one continued after a resume, so it must depend on the epoch
        alone. What it returns goes into the epoch's record under ``"method"``."""
        if not hasattr(self.hooks, "epoch_start"):
            return {}
        values = self._call_hook("epoch_start", epoch=epoch, epochs=self.config.epochs, supernet=self.model)
        if values is not None and not isinstance(values, Mapping):
            raise PluginError(f"The epoch_start hook of the method {self.method.name} returned {values!r}; it "
                              f"returns a dict of numbers for the epoch's record, or None.")
        return dict(values or {})

    def evaluate_arch_split(self) -> dict[str, float]:
        """Loss and top-1 on the whole architecture split (the reference ``infer`` on valid_queue)."""
        shards = [b[self.ctx.shard(len(b))] for b in self.eval_batches if len(b) >= self.ctx.world_size]
        loader = batch_loader(self.dataset, shards, workers=self.config.workers, pin_memory=self.device.type == "cuda",
                         seed=derived_seed(self.config.seed, "evaluation", self.epoch, self.ctx.rank))
        batches = ((x.contiguous(memory_format=self.memory_format), y) for x, y in loader)
        with self._autocast():
            metrics = accuracy(self.model, batches, self.device)
        count = metrics["count"]
        sums = torch.tensor([metrics["loss"] * count if count else 0.0, metrics["top1"] * count if count else 0.0,
                             count], dtype=torch.float64)
        self.ctx.all_reduce([sums])
        return {"loss": (sums[0] / sums[2]).item(), "top1": (sums[1] / sums[2]).item()}

    # -- checkpoints -----------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The whole search state, mid-epoch included. Collective: every rank calls it (their random states and
        running sums are gathered), rank 0 writes it."""
        rank_state = {"rng_cpu": torch.get_rng_state(), "totals": self.progress.totals,
                      "rng_cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None}
        return {
            "format": CHECKPOINT_FORMAT,
            "epoch": self.epoch,  # the LR schedule is a function of the epoch, so this is its whole state
            "step": self.progress.step,
            "seen": self.progress.seen,
            "epoch_seconds": self.progress.seconds,
            "model": self.model.state_dict(),
            "weight_optimizer": self.optimizer.state_dict(),
            "arch_optimizer": self.architect.optimizer.state_dict(),
            "arch_stream": self.arch_stream.state_dict(),
            "ranks": self.ctx.gather_object(rank_state),
            "history": self.history,
            "stage": self.stage,  # a staged method's: the structure to rebuild before the weights load
            "op_masks": getattr(self.model, "op_masks", None),
        }

    def restore_structure(self, state: dict[str, Any]) -> None:
        """A staged search's supernet and optimizer as they were when ``state`` was saved (the stages it had
        entered: K lowered, ops pruned), so that the saved weights fit; nothing for another method."""
        for index in range(self.stage + 1, int(state.get("stage", 0)) + 1):
            self.stage = index
            self._stage_structure(index, prune=False)
        if state.get("op_masks") is not None:
            self.model.set_op_masks(state["op_masks"])

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state``. Each rank restores its own random state; when the checkpoint was written by
        another number of processes, each rank's generators are reseeded from (seed, epoch, step, rank) instead,
        and rank 0 carries the epoch's running sums."""
        self.restore_structure(state)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["weight_optimizer"])
        self.architect.optimizer.load_state_dict(state["arch_optimizer"])
        self.arch_stream.load_state_dict(state["arch_stream"])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        ranks, rank = state["ranks"], self.ctx.rank
        if len(ranks) == self.ctx.world_size:
            torch.set_rng_state(ranks[rank]["rng_cpu"])
            if self.device.type == "cuda" and ranks[rank]["rng_cuda"] is not None:
                torch.cuda.set_rng_state(ranks[rank]["rng_cuda"], self.device)
            totals = ranks[rank]["totals"]
        else:
            torch.manual_seed(derived_seed(self.config.seed, int(state["epoch"]), int(state["step"]), rank))
            totals = sum(r["totals"] for r in ranks) if rank == 0 else torch.zeros(3, dtype=torch.float64)
        self.progress = EpochProgress(step=int(state["step"]), totals=totals.to(torch.float64),
                                      seen=int(state["seen"]), seconds=float(state["epoch_seconds"]))


# ---------------------------------------------------------------------------------------------------------------
# run directory




def run_search(config: SearchConfig, run_dir: Path | None, *, resume: bool | None = False, force: bool = False,
               reporter: Reporter | None = None, ctx: Context | None = None,
               track: Callable[[torch.nn.Module, Path | None], dict[str, float]] | None = None) -> SearchResult:
    """Run (or, with ``resume``, continue) a search; rank 0 writes ``run_dir`` unless it is None.

    ``resume=None`` continues the checkpoint in ``run_dir`` when there is one, decided under the folder's lease (a
    driver cannot know beforehand whether another process has written one meanwhile).

    A ``run_dir`` holding another search is refused unless ``force`` (then its files are replaced).
    With a ``run_dir``, SIGINT / SIGTERM stop after the current step with a checkpoint and raise
    :class:`~nasbench_pc.runtime.interrupt.Interrupted`.

    ``track(supernet, run_dir)`` scores the cell derived after each epoch for ``config.track``
    (``nasbench_pc.results.tracking.tracking(config)``, built above this layer); its metrics go into the epoch's
    record under ``"tracked"`` before the checkpoint.
    """
    ctx = ctx or Context()
    loggers = registry.loggers(config.log)  # an unknown logger, or its extra missing: before the folder is touched
    if config.track and track is None and ctx.is_main:
        raise ConfigError(f"This search tracks {config.track!r} (--track), and run_search was given nothing to score "
                          f"it with: pass track=nasbench_pc.results.tracking.tracking(config), as the command line "
                          f"does, or leave track out of the config.")
    writer = run_dir if ctx.is_main else None
    if writer is None:
        return _search(config, run_dir, None, None, resume=resume, force=force, reporter=reporter, ctx=ctx,
                       track=track, loggers=loggers)
    # one writer per run folder, across processes and hosts (a live one makes this start refuse: LeaseHeld)
    with writing(writer, RUN_FILES) as lease:
        return _search(config, run_dir, writer, lease, resume=resume, force=force, reporter=reporter, ctx=ctx,
                       track=track, loggers=loggers)


def _search(config: SearchConfig, run_dir: Path | None, writer: Path | None, lease: Lease | None, *,
            resume: bool | None, force: bool, reporter: Reporter | None, ctx: Context,
            track: Callable[[torch.nn.Module, Path | None], dict[str, float]] | None, loggers: tuple[str, ...]
            ) -> SearchResult:
    """run_search's body, run under the run folder's lease (``writer`` and ``lease`` are None off rank 0)."""
    if resume is None:
        if writer is not None and (writer / GENOTYPE).exists():
            raise AlreadyFinished(f"{writer} holds the finished search already (another process ended it).")
        if stop_requested(run_dir):  # `compare --cancel` asked this comparison's runs to stop: a job that
            raise Interrupted(f"A stop request ({run_dir / STOP_REQUEST}) is in {run_dir}, so this job did not "
                              f"start its search (nothing was changed). Run the comparison again to go on.",
                              signal.SIGTERM)  # starts after the request stops at once
        resume = run_dir is not None and (run_dir / CHECKPOINT).exists()
    elif writer is not None:
        clear_stop(writer)  # a search started or continued by hand is wanted, whatever was asked before
    if writer is not None and not resume:
        claim(writer, what="search", started=CHECKPOINT, finished=GENOTYPE, files=RUN_FILES, force=force,
              resume=f"nasbench-pc search --resume {writer}")
    if writer is not None and lease is not None:
        record_writer(writer, lease, resumed=resume)
    search = Search(config, ctx=ctx)
    clock = time.perf_counter() - (restore(search, run_dir) if resume else 0.0)  # seconds across resumes
    if writer is not None:
        meta = {"config": config.to_dict(), "method": search.method.to_dict(),
                "dataset": asdict(search.info), "world_size": ctx.world_size,
                "backend": ctx.backend, "versions": versions(),
                "layout": {"channels_last": search.layout.ok, "why": search.layout.reason},
                "plugins": sorted(name for name, _ in registry.plugin_manager().list_name_plugin())}
        atomic_write_bytes(writer / CONFIG, (json.dumps(meta, indent=2) + "\n").encode())
    resume_hint = (f"The checkpoint of every finished epoch is kept; `nasbench-pc search --resume {run_dir}` goes "
                   f"on.") if run_dir is not None else ""
    if ctx.is_main:  # the run log (metrics.jsonl) rewrites itself from history: lines after the checkpoint go
        registry.notify("on_run_start", kind="search", run_dir=writer, config=config.to_dict(),
                        history=search.history, loggers=loggers, after=resume_hint)
        if loggers:
            search.on_step = lambda step, values: registry.notify(
                "on_step_end", kind="search", run_dir=writer, config=config.to_dict(), step=step, values=values,
                loggers=loggers, after=resume_hint)

    def save() -> None:
        state = search.state_dict()  # on every rank: it gathers theirs
        if writer is not None:
            state["seconds"] = time.perf_counter() - clock
            if lease is not None:
                lease.check()  # taken over (this process looked dead): write nothing more
            save_checkpoint(state, writer / CHECKPOINT)

    out_of_memory = False
    try:
        with StopSignals(run_dir / STOP_REQUEST) if run_dir is not None else contextlib.nullcontext() as stop:
            stopping = (lambda: ctx.any_rank(stop.requested)) if stop else (lambda: False)
            while search.epoch < config.epochs:
                record = search.train_epoch(reporter if ctx.is_main else None, stopping)
                if track is not None and ctx.is_main and record is not None:  # in the history the checkpoint holds
                    record[TRACKED] = track(search.model, writer)
                save()
                if ctx.is_main and record is not None:
                    registry.notify("on_epoch_end", kind="search", run_dir=writer, config=config.to_dict(),
                                    record=record, history=search.history, loggers=loggers, after=resume_hint)
                if record is None or (search.epoch < config.epochs and stopping()):
                    raise stop.interrupted("search", str(run_dir), f"nasbench-pc search --resume {run_dir}")
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        if not is_out_of_memory(exc):
            raise
        out_of_memory = True  # handled below, once the traceback no longer holds the step's activations
    if out_of_memory:
        info, order = search.info, search.method.order
        del search
        gc.collect()
        raise out_of_memory_error(config, info, order, torch.device(config.device), ctx, _KEPT)
    genotype = search.model.genotype()
    if writer is not None:
        atomic_write_bytes(writer / GENOTYPE, (genotypes.to_json(genotype) + "\n").encode())
    if ctx.is_main:
        registry.notify("on_run_end", kind="search", run_dir=writer, config=config.to_dict(), history=search.history,
                        result={"genotype": genotypes.to_dict(genotype)}, loggers=loggers,
                        after=f"The finished search is kept in {run_dir}." if run_dir else "")
    return SearchResult(run_dir=writer, dataset=search.info, genotype=genotype, history=search.history,
                        seconds=time.perf_counter() - clock,
                        arch_parameters=[p.detach().cpu().clone() for p in search.model.arch_parameters()])
