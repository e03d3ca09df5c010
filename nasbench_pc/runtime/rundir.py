"""What ``search`` and ``train`` share about their output folders: refusing to overwrite a run."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from nasbench_pc.errors import ConfigError
from nasbench_pc.runtime.files import atomic_write_text, leftovers
from nasbench_pc.runtime.lease import Lease

#: one line per process that wrote a run folder (its lease holder: host, pid, job, start, why it took over)
WRITERS = "writers.jsonl"


def claim(out: Path, *, what: str, started: str, finished: str, files: Sequence[str], force: bool,
          resume: str) -> None:
    """Make sure starting a new ``what`` in ``out`` loses nothing.

    ``started`` is the file a run writes once it has something to keep (its checkpoint), ``finished``
    the one it writes at its end; ``files`` are every file and folder a run writes. Without ``force``
    a folder holding either is refused with the command that continues it; with ``force`` the old
    run's files are removed (nothing else in the folder is touched).
    """
    done = (out / finished).exists()
    if not done and not (out / started).exists():
        return
    if force:
        for name in files:
            path = out / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
        return
    if done:
        raise ConfigError(f"{out} already holds a finished {what}; starting another there would overwrite its "
                          f"results. Choose another --out, or pass --force to replace it.")
    raise ConfigError(f"{out} already holds an unfinished {what}. Continue it with `{resume}`, choose another "
                      f"--out, or pass --force to start over there.")


@contextmanager
def writing(out: Path, files: Sequence[str]) -> Iterator[Lease]:
    """Hold ``out``'s lease (one writer per run folder, across processes and hosts; a live holder elsewhere
    raises :class:`~nasbench_pc.runtime.lease.LeaseHeld`) and, under it, remove what killed atomic writes of
    ``files`` left behind (only the holder may: another writer's staging file may be half-written right now)."""
    lease = Lease(out).acquire()
    try:
        for path in leftovers(out, files):
            path.unlink(missing_ok=True)
        yield lease
    finally:
        lease.release()


def record_writer(out: Path, lease: Lease, **extra: object) -> None:
    """Append the lease holder to ``out``'s writers.jsonl (rewritten atomically: only the holder writes it)."""
    path = out / WRITERS
    before = path.read_text() if path.exists() else ""
    line = json.dumps({**asdict(lease.me), "took_over": lease.took_over, **extra})
    atomic_write_text(path, before + line + "\n")
