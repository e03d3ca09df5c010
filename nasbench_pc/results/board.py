"""The live status of a comparison's searches, as ``compare`` shows it while its executor runs them.

What a row says comes from two places: the executor (queued, requeued, failed with its log, cancelled) and the
run folder itself, which every writer on every host updates (its lease: running, on which host, in which job;
metrics.jsonl: epochs done and the last architecture accuracy; genotype.json: done; a checkpoint without a
writer: stopped). So the board is right whatever runs the searches, a job array written by hand included.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from nasbench_pc.records import SearchJob
from nasbench_pc.runtime.jobs import Ledger, Submission
from nasbench_pc.runtime.lease import holder_of, is_live
from nasbench_pc.runtime.rundir import WRITERS
from nasbench_pc.runtime.runkit import CHECKPOINT, GENOTYPE, METRICS

STATES = ("pending", "queued", "running", "requeued", "stopped", "held", "cancelled", "failed", "done")
STYLE = {"running": "cyan", "requeued": "yellow", "stopped": "yellow", "held": "magenta", "cancelled": "yellow",
         "failed": "red", "done": "green"}
#: seconds a run folder's reading is reused (a render never reads more than this often)
READ_EVERY = 1.0


@dataclass
class Row:
    job: SearchJob
    space: str
    state: str = "pending"  # the executor's word, until the run folder says more
    job_id: str | None = None
    log: str | None = None
    error: str = ""


@dataclass(frozen=True)
class Reading:
    """What a run folder says about itself."""

    done: bool
    checkpoint: bool
    writer: str | None  # "host (job J)" of a live lease
    last_writer: str | None  # the same of the last process that wrote the run (writers.jsonl)
    epochs: int
    arch_acc: float | None


def read_run(run_dir: Path) -> Reading:
    epochs, acc = 0, None
    try:
        lines = (run_dir / METRICS).read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line being written
        epochs, acc = int(record.get("epoch", epochs + 1)), record.get("arch_acc", acc)
    holder = holder_of(run_dir)
    writer = _where(holder.host, holder.job, holder.pid) if holder is not None and is_live(holder) else None
    last = None
    try:
        last = json.loads((run_dir / WRITERS).read_text().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        pass
    return Reading(done=(run_dir / GENOTYPE).exists(), checkpoint=(run_dir / CHECKPOINT).exists(), writer=writer,
                   last_writer=_where(last.get("host"), last.get("job"), last.get("pid")) if last else None,
                   epochs=epochs, arch_acc=acc)


def _where(host: str | None, job: str | None, pid: int | None) -> str:
    return f"{host} ({'job ' + job if job else 'pid ' + str(pid)})"


class JobBoard:
    """The comparison's jobs: what the executor reports (``submitted``, ``update``) and what their run folders
    say; a rich renderable (each render reads the folders, at most every READ_EVERY seconds), and the ledger of
    submissions that lets a later driver reattach (``earlier``)."""

    def __init__(self, jobs: list[SearchJob], *, executor: str, save: Path, several_spaces: bool = False):
        self.executor, self.save, self.ledger = executor, save, Ledger(save)
        self.rows = {job.name: Row(job, getattr(job.config, "space", "")) for job in jobs}
        self.several_spaces, self.started = several_spaces, time.time()
        self._lock = threading.Lock()
        self._read: dict[str, tuple[float, Reading]] = {}

    # -- what executors call ----------------------------------------------------------------------------------
    def submitted(self, job: SearchJob, job_id: str, log: str | None = None) -> None:
        """``job`` was handed to the engine as ``job_id`` (kept in the ledger: a later driver reattaches to it)."""
        self.ledger.add(job.run_dir, self.executor, job_id, log)
        self.update(job, "queued", job_id=job_id, log=log)

    def update(self, job: SearchJob, state: str, *, job_id: str | None = None, log: str | None = None,
               error: str = "") -> None:
        if state not in STATES:
            raise ValueError(f"unknown job state {state!r}; one of {', '.join(STATES)}")
        with self._lock:
            row = self.rows[job.name]
            row.state, row.error = state, error or row.error
            row.job_id, row.log = job_id or row.job_id, log or row.log

    def earlier(self, job: SearchJob) -> Submission | None:
        """The newest submission of ``job``'s run by this executor (this driver's or an earlier one's)."""
        return self.ledger.latest(job.run_dir, self.executor)

    # -- what the driver reads --------------------------------------------------------------------------------
    def reading(self, row: Row) -> Reading:
        now = time.monotonic()
        cached = self._read.get(row.job.name)
        if cached is None or now - cached[0] >= READ_EVERY:
            cached = (now, read_run(row.job.run_dir))
            self._read[row.job.name] = cached
        return cached[1]

    def state(self, row: Row) -> str:
        seen = self.reading(row)
        if seen.done:
            return "done"
        if row.state in ("failed", "cancelled"):
            return row.state
        if seen.writer is not None:
            return "running"
        if row.state == "queued" and seen.checkpoint:
            return "requeued"  # submitted, started once, waiting to go on (Slurm's requeue, Ray's retry)
        if row.state in ("pending", "done") and seen.checkpoint:
            return "stopped"
        return row.state

    def __rich__(self) -> Table:
        with self._lock:
            rows = list(self.rows.values())
            states = [self.state(row) for row in rows]
        counts = Counter(states)
        elapsed = time.time() - self.started
        summary = ", ".join(f"{counts[s]} {s}" for s in STATES if counts[s])
        table = Table(title=f"{len(rows)} searches under {self.executor}: {summary} ({elapsed:.0f} s)",
                      title_justify="left")
        for name in ("run", *(("space",) if self.several_spaces else ()), "state", "where", "epoch", "arch acc",
                     "note"):
            table.add_column(name, overflow="fold")
        for row, state in zip(rows, states, strict=True):
            seen = self.reading(row)
            epochs = getattr(row.job.config, "epochs", None)
            where = seen.writer or (seen.last_writer if state in ("done", "stopped", "cancelled") else None) \
                or (f"job {row.job_id}" if row.job_id else "")
            note = row.log if state == "failed" and row.log else row.error[-120:] if state == "failed" else ""
            cells: list[Any] = [f"{row.job.method} seed {row.job.seed}", *((row.space,) if self.several_spaces
                                                                            else ()),
                                Text(state, style=STYLE.get(state, "")), where,
                                f"{seen.epochs}/{epochs}" if epochs else str(seen.epochs),
                                "" if seen.arch_acc is None else f"{100 * seen.arch_acc:.1f}%", note]
            table.add_row(*cells)
        return table
