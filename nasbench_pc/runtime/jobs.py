"""What a comparison's driver keeps about the jobs it hands to an executor, in the comparison's folder, so that a
driver stopped and run again (on any host sharing the folder) finds them, and ``compare --cancel`` can stop them.

- ``SAVE/jobs/ledger.HOST.PID.jsonl``: one line per job a driver submitted (run folder, executor, job id, log,
  when, by which driver). Each driver writes only its own file (rewritten atomically), so two drivers on one
  folder never write the same file; readers take the union.
- ``RUN/.stop-request``: written by ``compare --cancel`` into every unfinished run folder. A search sees it within
  a step (the same path as SIGTERM: it finishes the step, writes its mid-epoch checkpoint and stops); a job that
  starts later on that run stops at once. It stays until the comparison is run again (or ``search --resume`` is
  typed by hand), which removes it: the request is the user's, on disk, for every host, whatever the executor.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from nasbench_pc.runtime.files import atomic_write_text
from nasbench_pc.runtime.lease import LeaseHeld, holder_of, is_live
from nasbench_pc.runtime.runkit import GENOTYPE

STOP_REQUEST = ".stop-request"
JOBS = "jobs"
#: exit status of a search that stopped on a signal or a stop request (128 + SIGTERM), as Interrupted gives it
STOPPED_EXIT = 128 + signal.SIGTERM


def request_stop(run_dir: Path, why: str) -> None:
    atomic_write_text(run_dir / STOP_REQUEST, json.dumps({"why": why, "host": socket.gethostname(),
                                                          "pid": os.getpid(), "time": time.time()}) + "\n")


def stop_requested(run_dir: Path | None) -> bool:
    return run_dir is not None and (run_dir / STOP_REQUEST).exists()


def clear_stop(run_dir: Path) -> None:
    (run_dir / STOP_REQUEST).unlink(missing_ok=True)


def ended_as(code: int, run_dir: Path) -> str | None:
    """How a job's search process that exited with ``code`` ended: "done", "held" (another writer has the run),
    "cancelled" (it stopped on ``compare --cancel``'s request, checkpoint kept) or None (it failed)."""
    if code == 0 or (run_dir / GENOTYPE).exists():
        return "done"
    # torchrun (a multi-process job) exits 1 whatever its processes did: the folder says what happened then
    holder = holder_of(run_dir)
    if code == LeaseHeld.exit_code or (holder is not None and is_live(holder)):  # ours is released when ours exits
        return "held"
    if stop_requested(run_dir):
        return "cancelled"
    return None


@dataclass(frozen=True)
class Submission:
    """One job a driver handed to an executor."""

    run: str  # the run folder
    executor: str
    job_id: str
    log: str | None
    time: float
    host: str
    pid: int  # the driver's


class Ledger:
    """The submissions of a comparison folder (every driver's), and this driver's own file."""

    def __init__(self, save: Path):
        self.folder = save / JOBS
        self.path = self.folder / f"ledger.{socket.gethostname()}.{os.getpid()}.jsonl"
        self._mine: list[str] = []

    def add(self, run: Path, executor: str, job_id: str, log: str | None = None) -> Submission:
        entry = Submission(run=str(run), executor=executor, job_id=job_id, log=log, time=time.time(),
                           host=socket.gethostname(), pid=os.getpid())
        self._mine.append(json.dumps(asdict(entry)))
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, "\n".join(self._mine) + "\n")
        return entry

    def entries(self) -> list[Submission]:
        """Every driver's submissions, oldest first (a damaged line, from a file being replaced, is skipped)."""
        found = []
        for path in sorted(self.folder.glob("ledger.*.jsonl")) if self.folder.is_dir() else ():
            try:
                lines = path.read_text().splitlines()
            except OSError:
                continue
            for line in lines:
                try:
                    found.append(Submission(**json.loads(line)))
                except (ValueError, TypeError):
                    continue
        return sorted(found, key=lambda s: s.time)

    def latest(self, run: Path, executor: str | None = None) -> Submission | None:
        """The newest submission of ``run`` (by ``executor`` when given)."""
        mine = [s for s in self.entries() if Path(s.run) == run and executor in (None, s.executor)]
        return mine[-1] if mine else None
