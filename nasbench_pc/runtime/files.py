"""Atomic file writes: a killed process leaves the old file or the new one, never half of one.

Each write stages its bytes in a temporary file of its own (host, process, thread and a random part in the name),
so two writers of one target, on one host or on two sharing a filesystem, never write into or delete each other's
staging file: each rename publishes one whole file, and the last rename wins. Nothing here locks (``fcntl`` locks
are unreliable on NFS); who may write a run folder at all is decided by its lease (:mod:`nasbench_pc.runtime.lease`).
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch


def temporary_path(path: Path) -> Path:
    """Where one atomic write of ``path`` stages its bytes: a name no other write, here or on another host, uses
    (a kill mid-write leaves only this behind; :func:`leftovers` finds it)."""
    writer = f"{socket.gethostname()}.{os.getpid()}.{threading.get_ident()}.{secrets.token_hex(4)}"
    return path.with_name(f".{path.name}.{writer}.tmp")


def leftovers(folder: Path, names: Iterable[str]) -> list[Path]:
    """The staging files of killed atomic writes of ``names`` in ``folder`` (any writer's, and the single
    ``.NAME.tmp`` of earlier versions). Only the folder's lease holder may remove them: another writer's may be
    half-written right now."""
    found: set[Path] = set()
    for name in names:
        found.update(folder.glob(f".{name}.*.tmp"))
        found.update(p for p in [folder / f".{name}.tmp"] if p.exists() or p.is_symlink())
    return sorted(found)


def _open_new(tmp: Path):
    """A fresh temporary file, created exclusively and never through a symlink."""
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
    _publish(path, lambda fh: fh.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save to a synced temporary file, then rename over ``path``."""
    _publish(path, lambda fh: torch.save(obj, fh))


def _publish(path: Path, write: Any) -> None:
    """Stage ``write(fh)`` in this write's own temporary file, sync it, rename it over ``path``. A write that
    fails (an object that cannot be pickled, a full disk) removes its temporary file; one that is killed leaves it
    to :func:`leftovers`."""
    tmp = temporary_path(path)
    try:
        with _open_new(tmp) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    _sync_dir(path)
