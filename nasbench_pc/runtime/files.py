"""Atomic file writes: a killed process leaves the old file or the new one, never half of one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def temporary_path(path: Path) -> Path:
    """Where an atomic write of ``path`` stages its bytes (a kill mid-write leaves only this behind)."""
    return path.with_name(f".{path.name}.tmp")


def _open_new(tmp: Path):
    """A fresh temporary file: a leftover file or a symlink planted at ``tmp`` is removed, never followed."""
    tmp.unlink(missing_ok=True)
    return os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644), "wb")


def _sync_dir(path: Path) -> None:
    """Make a rename in ``path``'s folder durable (a power cut after it keeps the new file)."""
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a synced temporary file and a rename. A symlink at ``path`` is
    replaced, never followed, so a write cannot land outside ``path``'s folder."""
    tmp = temporary_path(path)
    with _open_new(tmp) as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _sync_dir(path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save to a synced temporary file, then rename over ``path``."""
    tmp = temporary_path(path)
    with _open_new(tmp) as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _sync_dir(path)
