"""What ``search`` and ``train`` share about their output folders: refusing to overwrite a run."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from nasbench_pc.errors import ConfigError


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
