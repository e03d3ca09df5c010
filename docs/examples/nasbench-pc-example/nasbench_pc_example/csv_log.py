# nasbench_pc_example/csv_log.py
"""A CSV run log: ``metrics.csv`` in the run folder of every search and training run, one row per finished epoch.

The lifecycle hooks drive it. ``on_run_start`` writes the file anew from ``history``, the epochs the run's checkpoint
holds (so a resumed run drops the rows of epochs it is about to repeat), and keeps it open; ``on_epoch_end`` appends
the epoch's row and flushes it; ``on_run_end`` closes it. The columns are the records' scalar entries (numbers,
booleans, text) in the order they first appear; nested ones (the genotype, the architecture weights) stay in
metrics.jsonl. A record that brings a new column rewrites the file under the wider header. A run without a folder
(``run_search(config, None)``) writes nothing.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, TextIO

from nasbench_pc import hookimpl

FILE = "metrics.csv"
_SCALARS = (bool, int, float, str)

_open: dict[Path, tuple[TextIO, csv.DictWriter]] = {}  # run folder -> its open metrics.csv and writer


def scalars(record: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``record`` that fit in a CSV cell."""
    return {key: value for key, value in record.items() if isinstance(value, _SCALARS)}


def _close(run_dir: Path) -> None:
    handle, _ = _open.pop(run_dir, (None, None))
    if handle is not None:
        handle.close()


def _rewrite(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """Write ``metrics.csv`` from ``history`` and keep it open for the next rows."""
    _close(run_dir)
    rows = [scalars(record) for record in history]
    handle = (run_dir / FILE).open("w", newline="")
    writer = csv.DictWriter(handle, list(dict.fromkeys(key for row in rows for key in row)), lineterminator="\n")
    if rows:
        writer.writeheader()
        writer.writerows(rows)
    handle.flush()
    _open[run_dir] = handle, writer


@hookimpl
def on_run_start(run_dir: Path | None, history: list[dict[str, Any]]) -> None:
    if run_dir is not None:
        _rewrite(run_dir, history)


@hookimpl
def on_epoch_end(run_dir: Path | None, record: dict[str, Any], history: list[dict[str, Any]]) -> None:
    if run_dir is None:
        return
    row = scalars(record)
    handle, writer = _open.get(run_dir, (None, None))
    if writer is None or not writer.fieldnames or set(row) - set(writer.fieldnames):
        _rewrite(run_dir, history)  # the first row, or a new column: write the header again
        return
    writer.writerow(row)
    handle.flush()


@hookimpl
def on_run_end(run_dir: Path | None) -> None:
    if run_dir is not None:
        _close(run_dir)
