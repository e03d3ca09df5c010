"""Choosing and checking the torch device named on the command line."""

from __future__ import annotations

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
