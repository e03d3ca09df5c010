"""The search's two data streams (weights, architecture): seeded global batches, one pass at a time,
sharded over ranks, whose whole state is (pass, position)."""

from __future__ import annotations

import hashlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from nasbench_pc.errors import ConfigError
from nasbench_pc.runtime.data import DatasetInfo, get_dataset, per_class_split, search_split, targets_of
from nasbench_pc.runtime.distributed import Context
from nasbench_pc.search.config import SearchConfig
from nasbench_pc.settings import SettingError


def derived_seed(*parts: int | str) -> int:
    """A 63-bit seed from a tuple such as (seed, stream, pass, rank): different tuples give unrelated seeds."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") >> 1


def _ignore_ctrl_c(worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C (sent to the terminal's whole process group) to the main process, which
    stops at a step boundary and then ends them; a worker killed by it would fail the step instead. (SIGTERM
    keeps its default: the main process ends daemonic workers with it at exit.)"""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def batch_loader(dataset: Dataset, batches: list[list[int]], *, workers: int, pin_memory: bool, seed: int
                 ) -> DataLoader:
    """A DataLoader over fixed batches with its own generator seeded by ``seed``: worker processes seed their
    augmentation from it, so it must differ per (stream, pass, rank) or the draws repeat; and creating the
    loader never draws from the global RNG (the main process's draws stay bit-exact across a resume)."""
    return DataLoader(dataset, batch_sampler=batches, num_workers=workers, pin_memory=pin_memory,
                      generator=torch.Generator().manual_seed(seed), worker_init_fn=_ignore_ctrl_c)


class BatchStream:
    """Global batches of one split in a seeded order, one pass at a time, sharded over ranks.

    The order of pass ``p`` depends only on (seed, p), so the stream's whole state is
    ``(pass_no, position)``: that is what a checkpoint stores for the persistent architecture iterator.
    ``name`` ('weights', 'architecture') keeps the augmentation draws of two streams apart.
    """

    def __init__(self, dataset: Dataset, indices: list[int], *, name: str, batch_size: int, seed: int, ctx: Context,
                 workers: int, pin_memory: bool):
        self.dataset, self.indices, self.batch_size, self.seed = dataset, indices, batch_size, seed
        self.name, self.ctx, self.workers, self.pin_memory = name, ctx, workers, pin_memory
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
        # start too: a pass continued after a resume does not replay the draws of its first batches
        seed = derived_seed(self.seed, self.name, pass_no, start, self.ctx.rank)
        loader = batch_loader(self.dataset, shards, workers=self.workers, pin_memory=self.pin_memory, seed=seed)
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


@dataclass
class SearchData:
    """The search's dataset split in two: the weight stream, the architecture stream, and the architecture split's
    batches in order (for its end-of-epoch evaluation)."""

    dataset: Dataset
    info: DatasetInfo
    weights: BatchStream
    architecture: BatchStream
    eval_batches: list[list[int]]


def search_data(config: SearchConfig, ctx: Context, *, pin_memory: bool) -> SearchData:
    """Load ``config``'s dataset (rank 0 downloads it first, if asked) and split it as the search does: the
    reference's first-half / second-half split, or per-class fractions with ``arch_portion`` (ImageNet)."""
    data_options = {"split": "train", "root": config.data_root, "limit": config.limit, "seed": config.seed,
                    "augment": config.augment, "cutout": config.cutout, "in_channels": config.in_channels,
                    "image_size": config.image_size, "bad_images": config.bad_images,
                    "color_jitter": False}  # the reference ImageNet search has no ColorJitter
    if config.download and ctx.is_main:  # one rank downloads; the others wait, then read the files
        get_dataset(config.dataset, download=True, **data_options)
    ctx.barrier()
    dataset, info = get_dataset(config.dataset, **data_options)
    if config.arch_portion is None:
        weight_idx, arch_idx = search_split(len(dataset), config.train_portion)
    else:
        weight_idx, arch_idx = per_class_split(targets_of(dataset), config.train_portion, config.arch_portion,
                                               config.seed)
    stream = {"batch_size": config.batch_size, "ctx": ctx, "workers": config.workers, "pin_memory": pin_memory}
    weights = BatchStream(dataset, weight_idx, name="weights", seed=config.seed, **stream)
    architecture = BatchStream(dataset, arch_idx, name="architecture", seed=config.seed + 1, **stream)
    eval_batches = [arch_idx[i:i + config.batch_size] for i in range(0, len(arch_idx), config.batch_size)]
    if weights.batches(0) == []:
        raise SettingError("The weight split has no batch; use more data or a smaller {batch_size}.", "batch_size")
    return SearchData(dataset, info, weights, architecture, eval_batches)
