"""The run log: ``metrics.jsonl`` (one JSON line per finished epoch) and, for a search, ``genotypes.jsonl`` (the
genotype derived after each epoch), written through the lifecycle hooks exactly as an outside logger would be.

Each file is rewritten whole and atomically from ``history``: when a run resumes, the lines of epochs finished
after its last checkpoint are dropped, so the log always matches the checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nasbench_pc import hookimpl
from nasbench_pc.runtime.files import atomic_write_text
from nasbench_pc.runtime.runkit import METRICS
from nasbench_pc.search.loop import GENOTYPE_HISTORY


def write(kind: str, run_dir: Path | None, history: list[dict[str, Any]]) -> None:
    """Write the log of ``history`` into ``run_dir`` (nothing for a run without a folder)."""
    if run_dir is None:
        return
    atomic_write_text(run_dir / METRICS, "".join(json.dumps(record) + "\n" for record in history))
    if kind == "search":
        atomic_write_text(run_dir / GENOTYPE_HISTORY, "".join(
            json.dumps({"epoch": record["epoch"], "genotype": record["genotype"]}) + "\n" for record in history))


@hookimpl
def on_run_start(kind: str, run_dir: Path | None, history: list[dict[str, Any]]) -> None:
    write(kind, run_dir, history)


@hookimpl
def on_epoch_end(kind: str, run_dir: Path | None, history: list[dict[str, Any]]) -> None:
    write(kind, run_dir, history)
