"""Choosing and checking the torch device named on the command line."""

from __future__ import annotations

import os
import resource
from pathlib import Path

import torch

from nasbench_pc.errors import ConfigError


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str | torch.device) -> str:
    """``device`` as a string after checking that this machine has it ('cpu', 'cuda', 'cuda:N')."""
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"Unknown device {str(device)!r}; use cpu, cuda or cuda:N.") from None
    if resolved.type == "cpu":
        return "cpu"
    if resolved.type != "cuda":
        raise ConfigError(f"Unknown device {str(device)!r}; use cpu, cuda or cuda:N.")
    if not torch.cuda.is_available():
        raise ConfigError(f"--device {device} asks for a CUDA GPU, but this PyTorch sees none. Use --device cpu, "
                          f"or install a CUDA build of PyTorch on a machine with a GPU.")
    if resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {device}: only {torch.cuda.device_count()} GPU(s) are visible; use cuda:0 to "
                          f"cuda:{torch.cuda.device_count() - 1}.")
    return str(resolved)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a device running out of memory: CUDA's ``torch.OutOfMemoryError``, or the CPU allocator's
    failure, which PyTorch raises as a plain RuntimeError ("DefaultCPUAllocator: can't allocate memory")."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and "DefaultCPUAllocator" in text and (
        "can't allocate memory" in text or "not enough memory" in text)


def cpu_memory_left() -> int:
    """Bytes of CPU memory this process may still allocate: the machine's available memory, or less where an
    address-space limit (``ulimit -v``) leaves less room."""
    try:
        meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        left = int(meminfo["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        left = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit != resource.RLIM_INFINITY:
        try:
            used = int(Path("/proc/self/status").read_text().split("VmSize:")[1].split()[0]) * 1024
        except (OSError, IndexError, ValueError):
            used = 0
        left = min(left, max(0, limit - used))
    return left
