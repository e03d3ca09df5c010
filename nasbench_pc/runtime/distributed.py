"""Data-parallel search with torch.distributed (``torchrun --nproc_per_node N -m nasbench_pc search ...``).

Every rank holds the whole supernet and draws the same global batches; each takes its own
contiguous shard. Gradients of the weights and of the architecture parameters are summed over
ranks (the loss is divided by the global batch size), and batch normalisation computes its
statistics over the global batch, so N ranks follow the single-process run of the same global
batch up to float rounding. Rank 0 alone writes the run directory; what differs between ranks
(random states, running sums) is gathered to it first, so a checkpoint holds every rank's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from nasbench_pc.errors import ConfigError


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    joined: bool = False  # a process group was joined (torchrun), even one of a single process

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        """Whether collectives run: several processes, or one that torchrun started (its group is real, so a
        single GPU exercises the NCCL path that N GPUs take)."""
        return self.world_size > 1 or self.joined

    @property
    def backend(self) -> str | None:
        """The process group's backend ('nccl', 'gloo'), None without one."""
        return dist.get_backend() if self.active and dist.is_initialized() else None

    def shard(self, size: int) -> slice:
        """This rank's contiguous part of a global batch of ``size`` examples."""
        return slice(self.rank * size // self.world_size, (self.rank + 1) * size // self.world_size)

    def all_reduce(self, tensors: Sequence[torch.Tensor]) -> None:
        """Sum tensors over ranks, in place (one flat message)."""
        if not self.active or not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat)
        offset = 0
        for t in tensors:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()

    def broadcast_object(self, obj: object) -> object:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_object(self, obj: object) -> list[object]:
        """Every rank's ``obj``, in rank order (on every rank)."""
        if not self.active:
            return [obj]
        out: list[object] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def any_rank(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any: ranks agree on when to stop, so none of them
        waits forever in a collective the others left."""
        if not self.active:
            return flag
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        box = torch.tensor([int(flag)], device=device)
        dist.all_reduce(box, op=dist.ReduceOp.MAX)
        return bool(box.item())

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def init_from_env(device: str) -> Context:
    """Join the process group torchrun describes (WORLD_SIZE, RANK, LOCAL_RANK), NCCL on CUDA and gloo on CPU; a plain
    run is rank 0 of 1 with no group. ``torchrun --nproc_per_node 1`` joins a group of one, so the data-parallel
    path (global batch norm, all-reduces, NCCL) can be checked on a single GPU."""
    if "RANK" not in os.environ and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Context()
    if not dist.is_initialized():
        if device.startswith("cuda"):
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))  # one GPU per process for NCCL
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return Context(rank=dist.get_rank(), world_size=dist.get_world_size(),
                   local_rank=int(os.environ.get("LOCAL_RANK", "0")), joined=True)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def check_batch(batch_size: int, ctx: Context) -> None:
    if batch_size < ctx.world_size:
        raise ConfigError(f"The global batch of {batch_size} cannot be split over {ctx.world_size} processes. "
                          f"Raise --batch-size to at least {ctx.world_size} or start fewer processes.")


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose gradient is again the sum over ranks (every rank's loss uses the sum)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """Differentiable sum of ``x`` over ranks."""
    return _AllReduceSum.apply(x)


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the global batch across ranks (any backend, gloo included).

    Uses differentiable all-reduces (:func:`all_reduce_sum`), so gradients flow through the shared
    statistics exactly as in one process.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        dims = (0, 2, 3)
        out_dtype, x = x.dtype, x.float()  # statistics in fp32 under autocast too
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)
        total = all_reduce_sum(torch.cat([x.sum(dims), count]))
        n = total[-1]
        mean = total[:-1] / n
        var = all_reduce_sum((x - mean[None, :, None, None]).pow(2).sum(dims)) / n
        if self.track_running_stats:
            with torch.no_grad():
                m = self.momentum if self.momentum is not None else 0.1
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1), alpha=m)
                self.num_batches_tracked.add_(1)
        y = (x - mean[None, :, None, None]) * torch.rsqrt(var[None, :, None, None] + self.eps)
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(out_dtype)


def global_batchnorm(model: nn.Module) -> nn.Module:
    """Swap every BatchNorm2d of ``model`` for :class:`GlobalBatchNorm2d`, keeping parameters and buffers."""
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            replacement = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                            child.track_running_stats)
            replacement.load_state_dict(child.state_dict())
            setattr(model, name, replacement.to(next(child.buffers(), torch.empty(0)).device))
        else:
            global_batchnorm(child)
    return model

