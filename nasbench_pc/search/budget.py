"""Memory and speed of each method's supernet over batch sizes, and the largest batch a budget fits.

On CUDA, memory is the peak allocated over one training step and the largest batch is found by
trying batches (out-of-memory is caught, never fatal). On CPU, memory is the bytes saved for
backward; it grows linearly with the batch, so the largest batch is extrapolated from two
measured batches and marked as such.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from nasbench_pc import _moved, registry
from nasbench_pc.api import create_supernet, resolve_method
from nasbench_pc.errors import ConfigError
from nasbench_pc.records import flag_for
from nasbench_pc.runtime.data import DatasetInfo
from nasbench_pc.runtime.devices import cpu_memory_left, is_out_of_memory
from nasbench_pc.runtime.distributed import Context
from nasbench_pc.runtime.profiling import step_cost, step_seconds
from nasbench_pc.search.config import SearchConfig
from nasbench_pc.supernet import prepare_layout

__getattr__ = _moved.old_names(__name__, {"BenchShape": "nasbench_pc.search.budget:SupernetShape"})  # before issue 21

#: unit -> bytes: b; kb, mb, gb, tb (and k, m, g, t) in powers of 1000; kib, mib, gib, tib in powers of 1024
_UNITS = {"": 1, "b": 1, **{f"{prefix}{suffix}": base ** power for power, prefix in enumerate("kmgt", start=1)
                            for suffix, base in (("", 1000), ("b", 1000), ("ib", 1024))}}


def parse_bytes(text: str) -> int:
    """'11GB' -> 11e9 bytes, '11GiB' -> 11 * 2**30, '500MB' -> 5e8."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise ConfigError(f"Cannot read the memory budget {text!r}; write a number with a unit such as 11GB, "
                          f"11GiB or 500MB (GB = 10^9 bytes, GiB = 2^30).")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


@dataclass(frozen=True)
class SupernetShape:
    """The supernet a bench or plan measures.

    Attributes:
        image_size: side of the square input images.
        num_classes: classifier outputs.
        space: the search space; None is each method's own (DARTS for the built-ins).
        options: :func:`~nasbench_pc.api.create_supernet` options: the space's shape options (DARTS:
            ``init_channels``, ``layers``, ...), ``k`` and ``sampler_options`` (over the method's own).
    """

    image_size: int = 32
    num_classes: int = 10
    space: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


def checkpointed(method: str, shape: SupernetShape) -> SupernetShape | None:
    """``shape`` with activations recomputed in backward (the space's ``recompute_option``, e.g. what
    ``--checkpoint cells`` sets), or None where ``method``'s space has no such option or ``shape`` sets it already."""
    space = registry.get("search_space", shape.space or resolve_method(method).space)
    option = getattr(space, "recompute_option", None)
    if option is None or shape.options.get(option):
        return None
    return replace(shape, options={**shape.options, option: True})


@dataclass(frozen=True)
class BenchPoint:
    method: str
    batch: int
    memory_kind: str  # "CUDA peak" or "saved for backward"
    memory_bytes: int | None  # None: out of memory
    step_seconds: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _net(method: str, shape: SupernetShape, device: torch.device) -> torch.nn.Module:
    options = dict(shape.options)
    if "sampler_options" in options and "sampler" not in options:  # set over the method's own, as a search does
        options["sampler_options"] = {**resolve_method(method).sampler_options, **options["sampler_options"]}
    net = create_supernet(method, space=shape.space, num_classes=shape.num_classes, **options)
    prepare_layout(device)  # the layout a search on this device runs in
    return net.to(device).train()


def measure(method: str, batch: int, *, shape: SupernetShape = SupernetShape(), device: str = "cpu",
            repeats: int = 2, net: torch.nn.Module | None = None) -> BenchPoint:
    """One warm-up step that counts memory, then ``repeats`` timed steps (median)."""
    dev = torch.device(device)
    kind = "CUDA peak" if dev.type == "cuda" else "saved for backward"
    net = net if net is not None else _net(method, shape, dev)
    x = torch.randn(batch, 3, shape.image_size, shape.image_size, device=dev)
    y = torch.randint(0, shape.num_classes, (batch,), device=dev)
    try:
        cost = step_cost(net, x, y)
        times = [step_seconds(net, x, y) for _ in range(repeats)]
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        if not is_out_of_memory(exc):
            raise
        net.zero_grad(set_to_none=True)
        del x, y
        torch.cuda.empty_cache()
        return BenchPoint(method, batch, kind, None, None)
    memory = cost.peak_cuda_bytes if dev.type == "cuda" else cost.saved_bytes
    return BenchPoint(method, batch, kind, memory, statistics.median(times) if times else None)


@dataclass(frozen=True)
class Fit:
    method: str
    batch: int
    extrapolated: bool  # True on CPU: computed from a linear fit, not run
    memory_bytes: int | None


def largest_batch(method: str, budget: int, *, shape: SupernetShape = SupernetShape(), device: str = "cpu",
                  multiple: int = 8, limit: int = 65536) -> Fit:
    """The largest batch (a multiple of ``multiple``) whose step fits in ``budget`` bytes."""
    dev = torch.device(device)
    net = _net(method, shape, dev)
    if dev.type != "cuda":
        small, large = (measure(method, b, shape=shape, device=device, repeats=0, net=net) for b in (8, 16))
        if small.memory_bytes is None or large.memory_bytes is None:  # the CPU allocator refused a batch of 16
            return Fit(method, 0, True, None)
        slope = (large.memory_bytes - small.memory_bytes) / 8
        fixed = small.memory_bytes - 8 * slope
        batch = int((budget - fixed) // slope) // multiple * multiple if slope > 0 else limit
        batch = max(0, min(batch, limit))
        return Fit(method, batch, True, int(fixed + slope * batch) if batch else None)

    def fits(batch: int) -> int | None:
        point = measure(method, batch, shape=shape, device=device, repeats=0, net=net)
        return point.memory_bytes if point.memory_bytes is not None and point.memory_bytes <= budget else None

    good, good_mem, bad = 0, None, None
    batch = multiple
    while batch <= limit:  # doubling, then bisection between the last fit and the first miss
        mem = fits(batch)
        if mem is None:
            bad = batch
            break
        good, good_mem, batch = batch, mem, batch * 2
    if bad is not None:
        while bad - good > multiple:
            mid = (good + bad) // 2 // multiple * multiple
            mem = fits(mid)
            if mem is None:
                bad = mid
            else:
                good, good_mem = mid, mem
    return Fit(method, good, False, good_mem)


@dataclass(frozen=True)
class Plan:
    method: str
    batch: int
    extrapolated: bool
    lr: float
    arch_lr: float
    reference_batch: int
    reference_lr: float


def plan(method: str, budget: int, *, shape: SupernetShape = SupernetShape(), device: str = "cpu") -> Plan:
    """Largest batch under ``budget`` and the learning rate scaled linearly with it, as the paper
    did going from DARTS' 0.025 at batch 64 to PC-DARTS' 0.1 at batch 256 (the method's settings on the
    shape's search space)."""
    resolved = resolve_method(method)
    h = resolved.hparams_for(shape.space or resolved.space)
    fit = largest_batch(method, budget, shape=shape, device=device)
    lr = h.lr * fit.batch / h.batch_size if fit.batch else math.nan
    return Plan(method, fit.batch, fit.extrapolated, lr, h.arch_lr, h.batch_size, h.lr)


def _free_memory(device: torch.device) -> int:
    """Bytes a batch may use on ``device``: the GPU's free memory, or the CPU memory this process may still take."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        return torch.cuda.mem_get_info(device)[0]
    return cpu_memory_left()


def out_of_memory_error(config: SearchConfig, info: DatasetInfo, order: int, device: torch.device, ctx: Context,
                        kept: str) -> ConfigError:
    """The error for a batch that did not fit, naming the batch ``nasbench-pc plan`` suggests for this device."""
    method = config.method_record()
    shape = SupernetShape(image_size=info.image_size, num_classes=info.num_classes, space=config.space,
                          options={**config.space_options, "sampler": method.sampler, "normalizer": method.normalizer,
                                   "sampler_options": method.sampler_options})
    suggested = plan(config.method, _free_memory(device), shape=shape, device=str(device))
    where = f"{device}" if not ctx.active else f"{device} ({ctx.world_size} processes, one shard each)"
    if suggested.batch == 0:
        fix = "even a batch of 8 does not fit: make the supernet smaller (--space-option) or lower --image-size"
    else:
        batch = suggested.batch * ctx.world_size
        caveat = " (measured for a weight step; the second-order architecture step needs more)" if order == 2 else ""
        fix = (f"`nasbench-pc plan` suggests a batch of at most {batch} for {config.method} here{caveat}, with --lr "
               f"{suggested.lr:.3g} scaled linearly; start again with --batch-size {batch} --lr {suggested.lr:.3g} "
               f"and a new --out")
    space = registry.get("search_space", config.space)
    option = getattr(space, "recompute_option", None)
    if option is not None and config.space_options.get(option) is False:  # the space has the option and it is off
        flag = flag_for("--space-option", getattr(space, "shortcuts", ()), option, True)
        fix += (f" (or keep the batch and add {flag}, which recomputes the cells' activations in backward: about 4x "
                f"less memory for 1.2-1.4x the step time on CPU)")
    return ConfigError(f"Out of memory: the batch of {config.batch_size} did not fit on {where}. {kept} To go "
                       f"on, {fix}.")
