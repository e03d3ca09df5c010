"""Memory and time of one supernet training step (used by `nasbench-pc bench` and benchmarks/).

On CPU, memory is the bytes of every tensor autograd saves for backward during the forward
pass (torch.autograd.graph.saved_tensors_hooks), summed over saved tensors as the reference
figures were counted; the distinct storage behind them is reported too. On CUDA it is
torch.cuda.max_memory_allocated over a full step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class StepCost:
    saved_bytes: int  # sum over tensors saved for backward
    distinct_bytes: int  # bytes of the distinct storages behind them
    peak_cuda_bytes: int | None  # max_memory_allocated over one step, CUDA only


def _loss(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(net(x), y)


def step_cost(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> StepCost:
    """Run one forward + backward of ``net`` on (x, y), counting what autograd keeps."""
    total = 0
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    cuda = x.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(x.device)
        torch.cuda.reset_peak_memory_stats(x.device)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = _loss(net, x, y)
    loss.backward()
    peak = None
    if cuda:
        torch.cuda.synchronize(x.device)
        peak = torch.cuda.max_memory_allocated(x.device)
    net.zero_grad(set_to_none=True)
    return StepCost(total, sum(storages.values()), peak)


def step_seconds(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Wall time of one forward + backward (synchronised on CUDA)."""
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
    start = time.perf_counter()
    _loss(net, x, y).backward()
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
    elapsed = time.perf_counter() - start
    net.zero_grad(set_to_none=True)
    return elapsed
