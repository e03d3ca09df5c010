"""What ``search`` and ``train`` share about running epochs, defined once: the learning-rate schedules, the
top-k counter and the accuracy pass built on it, the peak-memory record and the names of a run folder's files.

Atomic file writes live in :mod:`nasbench_pc.runtime.files`, the overwrite / resume guard in
:mod:`nasbench_pc.runtime.rundir`.
"""

from __future__ import annotations

import json
import math
import resource
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasbench_pc import _moved
from nasbench_pc.errors import unknown_name

__getattr__ = _moved.old_names(__name__, {"lr_at": "nasbench_pc.runtime.runkit:scheduled_lr"})  # before issue 21

#: A run folder's files: the settings, one metrics line per epoch, the resumable state, the final genotype.
CONFIG = "config.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.pt"
GENOTYPE = "genotype.json"

#: Learning-rate schedules of :func:`scheduled_lr`.
SCHEDULES = ("cosine", "linear", "step")
#: What a linear warm-up ramps (see :func:`scheduled_lr`).
WARMUP_BASES = ("schedule", "lr")


def scheduled_lr(epoch: int, *, lr: float, lr_min: float = 0.0, epochs: int, warmup_epochs: int = 0,
          schedule: str = "cosine", gamma: float = 0.97, warmup_base: str = "schedule") -> float:
    """The learning rate of ``epoch`` (0-based), set once at its start as the reference scripts do.

    Args:
        epoch: the epoch, 0-based.
        lr: the initial learning rate.
        lr_min: where ``cosine`` ends.
        epochs: the run's length in epochs.
        warmup_epochs: epochs of linear warm-up (0: none).
        schedule: ``cosine`` from lr to lr_min (CosineAnnealingLR stepped per epoch); ``step``, lr * gamma^epoch
            (DARTS train_imagenet.py: StepLR(1, gamma)); ``linear``, PC-DARTS train_imagenet.py's adjust_lr.
        gamma: the factor per epoch of ``step``.
        warmup_base: during warm-up, ``schedule`` scales the scheduled value by (epoch + 1) / warmup_epochs
            (PC-DARTS train_imagenet.py); ``lr`` replaces it with lr * (epoch + 1) / warmup_epochs.
    """
    if schedule not in SCHEDULES:
        raise unknown_name("learning-rate schedule", schedule, SCHEDULES)
    if warmup_base not in WARMUP_BASES:
        raise unknown_name("warm-up base", warmup_base, WARMUP_BASES)
    if epoch < warmup_epochs and warmup_base == "lr":
        return lr * (epoch + 1) / warmup_epochs
    if schedule == "cosine":
        value = lr_min + (lr - lr_min) * (1 + math.cos(math.pi * epoch / epochs)) / 2
    elif schedule == "step":
        value = lr * gamma ** epoch
    elif epochs > 5:
        # adjust_lr: linear to ~0 over epochs - 5, then a gentler slope over the last 5 epochs
        if epochs - epoch > 5:
            value = lr * (epochs - 5 - epoch) / (epochs - 5)
        else:
            value = lr * (epochs - epoch) / ((epochs - 5) * 5)
    else:
        value = lr * (epochs - epoch) / epochs
    if epoch < warmup_epochs:
        value *= (epoch + 1) / warmup_epochs
    return value


def topk_correct(logits: torch.Tensor, targets: torch.Tensor, ks: Sequence[int] = (1, 5)) -> list[int]:
    """How many rows of ``logits`` (batch x classes) rank their target among the top k, for each k in ``ks``
    (a k above the number of classes counts every row)."""
    ranked = logits.detach().topk(min(max(ks), logits.shape[1]), dim=1).indices
    hits = ranked == targets[:, None]
    return [int(hits[:, :k].any(dim=1).sum()) for k in ks]


def peak_memory(device: torch.device) -> tuple[str, float]:
    """(field name, MiB): CUDA max allocated on a GPU, else the process's max resident set size."""
    if device.type == "cuda":
        return "peak_cuda_allocated_mib", torch.cuda.max_memory_allocated(device) / 2**20
    return "peak_cpu_rss_mib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    """The epoch records of a run folder's metrics.jsonl (blank lines skipped); a damaged line raises
    ``json.JSONDecodeError``."""
    return [json.loads(line) for line in (run_dir / METRICS).read_text().splitlines() if line.strip()]


def accuracy(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
             device: torch.device | str = "cpu") -> dict[str, float]:
    """Mean cross-entropy, top-1 and top-5 of ``model`` in eval mode over ``batches`` of (inputs, targets), and
    the number of examples (``count``); the model's mode is restored. NaN metrics when there is no example."""
    was_training = model.training
    model.eval()
    loss_sum, top1, top5, count = 0.0, 0, 0, 0
    with torch.no_grad():
        for inputs, targets in batches:
            inputs, targets = inputs.to(device), targets.to(device)
            logits = model(inputs)
            loss_sum += F.cross_entropy(logits, targets, reduction="sum").item()
            hits1, hits5 = topk_correct(logits, targets)
            top1 += hits1
            top5 += hits5
            count += targets.numel()
    model.train(was_training)
    if count == 0:
        return {"loss": math.nan, "top1": math.nan, "top5": math.nan, "count": 0}
    return {"loss": loss_sum / count, "top1": top1 / count, "top5": top5 / count, "count": count}
