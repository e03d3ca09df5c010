"""Who may write a run folder: one writer at a time, on one host or on many sharing a filesystem.

A writer claims a run folder by creating its lease file exclusively (``O_CREAT | O_EXCL``, which NFS v3+ and
every local filesystem honour; no ``fcntl`` lock, unreliable on NFS). The lease names the writer (host, pid,
the cluster job it runs in, a random token) and a heartbeat time that a background thread refreshes every
``HEARTBEAT_SECONDS``. Another writer finds the lease and either

- waits (:class:`LeaseHeld`): the holder is alive, or may be;
- takes it over: the heartbeat is older than ``stale_after`` seconds (a host that died or lost the filesystem),
  the holder is a process on this very host that no longer exists (SIGKILL, OOM), or the holder is the same
  cluster job (a Slurm job requeued after preemption or a time limit, whose new process finds its own old lease).

A takeover first creates ``.lease.break.TOKEN`` exclusively for the stale holder's token: of several writers
that saw the same stale lease, exactly one creates that file, and only it removes the lease and creates its own;
the others find the new lease and wait. A holder whose lease was taken over (it looked stale, yet lives) sees
another token at its next heartbeat and stops writing (:attr:`Lease.lost`).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nasbench_pc.errors import ConfigError
from nasbench_pc.runtime.files import atomic_write_text

LEASE = ".lease.json"
#: how often a holder refreshes its heartbeat
HEARTBEAT_SECONDS = 30.0
#: a lease whose heartbeat is older than this is stale (10 heartbeats: a filesystem hiccup is not a death)
STALE_SECONDS = float(os.environ.get("NASBENCH_PC_LEASE_STALE_SECONDS", 300))
#: environment variables naming the cluster job a process runs in, most specific first
JOB_VARIABLES = (("SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"), ("SLURM_JOB_ID",), ("NASBENCH_PC_JOB_ID",))


def job_id(environ: dict[str, str] | None = None) -> str | None:
    """The cluster job this process runs in (Slurm's array task ``BASE_INDEX`` or job id; an executor may set
    ``NASBENCH_PC_JOB_ID``), or None outside one. A requeued Slurm job keeps its id."""
    env = os.environ if environ is None else environ
    for names in JOB_VARIABLES:
        if all(env.get(name) for name in names):
            return "_".join(env[name] for name in names)
    return None


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    job: str | None
    token: str
    started: float
    heartbeat: float

    @classmethod
    def me(cls) -> Holder:
        now = time.time()
        return cls(host=socket.gethostname(), pid=os.getpid(), job=job_id(), token=secrets.token_hex(8),
                   started=now, heartbeat=now)

    def describe(self) -> str:
        job = f", job {self.job}" if self.job else ""
        return f"pid {self.pid} on {self.host}{job}, last heartbeat {max(0.0, time.time() - self.heartbeat):.0f} s ago"


class LeaseHeld(ConfigError):
    """The run folder is being written by another live writer. The CLI exits with 75 (EX_TEMPFAIL: try again
    later), which ``compare``'s workers read as "another process has it"."""

    exit_code = 75

    def __init__(self, run_dir: Path, holder: Holder | None, stale_after: float):
        self.run_dir, self.holder = run_dir, holder
        who = holder.describe() if holder else "a writer whose lease file is being written right now"
        super().__init__(f"{run_dir} is being written by another process ({who}). Two writers of one run would "
                         f"damage it, so this one does not start. Wait for that process to finish; if it is gone "
                         f"without a trace (a dead host), its lease goes stale {stale_after:.0f} s after its last "
                         f"heartbeat and the next start takes the run over.")


def read_holder(path: Path) -> Holder | None:
    """The lease at ``path``; None when it is missing, being written or damaged."""
    try:
        return Holder(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def takeover_reason(holder: Holder, me: Holder, stale_after: float, now: float | None = None) -> str | None:
    """Why ``me`` may take over ``holder``'s lease, or None when it must wait."""
    now = time.time() if now is None else now
    if holder.token == me.token:
        return "it is this writer's own"
    if holder.job is not None and holder.job == me.job:
        return f"the same job {holder.job} (requeued)"
    if holder.host == me.host and not _pid_alive(holder.pid):
        return f"its process {holder.pid} on {holder.host} no longer exists"
    if now - holder.heartbeat > stale_after:
        return f"its heartbeat is {now - holder.heartbeat:.0f} s old (stale after {stale_after:.0f} s)"
    return None


class Lease:
    """The lease of one run folder; a context manager that acquires it, keeps it fresh and releases it."""

    def __init__(self, run_dir: Path, *, stale_after: float = STALE_SECONDS,
                 heartbeat_every: float = HEARTBEAT_SECONDS):
        self.run_dir, self.path = run_dir, run_dir / LEASE
        self.stale_after, self.heartbeat_every = stale_after, heartbeat_every
        self.me = Holder.me()
        self.took_over: str | None = None  # why, when this writer took a stale lease over
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- acquiring ------------------------------------------------------------------------------------------
    def acquire(self) -> Lease:
        """Create the lease, or take a stale one over; :class:`LeaseHeld` when a live writer holds it."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(50):  # each pass either creates, waits or removes one stale lease
            if self._create():
                self._start_heartbeat()
                return self
            holder = read_holder(self.path)
            if holder is None:
                if self._unreadable_is_stale():
                    holder = Holder(host="?", pid=-1, job=None, token="damaged", started=0.0, heartbeat=0.0)
                else:
                    time.sleep(0.05)  # the creator is between its create and its write
                    continue
            reason = takeover_reason(holder, self.me, self.stale_after)
            if reason is None:
                raise LeaseHeld(self.run_dir, holder, self.stale_after)
            if self._break(holder):
                self.took_over = reason
            else:
                time.sleep(0.05)  # another writer is taking it over; look again
        raise LeaseHeld(self.run_dir, read_holder(self.path), self.stale_after)

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(asdict(self.me)))
            fh.flush()
            os.fsync(fh.fileno())
        return True

    def _unreadable_is_stale(self) -> bool:
        try:
            return time.time() - self.path.stat().st_mtime > self.stale_after
        except FileNotFoundError:
            return False

    def _break(self, holder: Holder) -> bool:
        """Remove ``holder``'s lease if this writer is the one that claims its breaking."""
        marker = self.run_dir / f".lease.break.{holder.token}"
        try:
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            return False
        current = read_holder(self.path)
        if holder.token != "damaged" and (current is None or current.token != holder.token):
            return False  # it changed under us: someone else's lease now
        self.path.unlink(missing_ok=True)
        return True

    # -- holding --------------------------------------------------------------------------------------------
    def _start_heartbeat(self) -> None:
        self._thread = threading.Thread(target=self._beat, name=f"lease {self.run_dir}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_every):
            self.heartbeat()

    def heartbeat(self) -> bool:
        """Refresh the heartbeat; False (and :attr:`lost`) when another writer has taken the lease over."""
        current = read_holder(self.path)
        if current is None or current.token != self.me.token:
            self.lost = True
            return False
        atomic_write_text(self.path, json.dumps({**asdict(self.me), "heartbeat": time.time()}))
        return True

    def check(self) -> None:
        """Raise when the lease was lost: this writer looked dead and another took the run over."""
        if self.lost or not self.heartbeat():
            raise ConfigError(f"{self.run_dir} was taken over by another writer ({self.holder_text()}) while this "
                              f"process wrote it (its heartbeat looked stale); this process stops and leaves the "
                              f"run to that writer.")

    def holder_text(self) -> str:
        holder = read_holder(self.path)
        return holder.describe() if holder else "unknown"

    def release(self) -> None:
        """Stop the heartbeat and remove the lease (and this writer's break markers) if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        current = read_holder(self.path)
        if current is not None and current.token == self.me.token:
            self.path.unlink(missing_ok=True)
        for marker in self.run_dir.glob(".lease.break.*"):
            marker.unlink(missing_ok=True)

    def __enter__(self) -> Lease:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def is_live(holder: Holder, stale_after: float = STALE_SECONDS) -> bool:
    """Whether ``holder`` may still be writing, as a new writer on this host would judge it (a dead pid here, or a
    stale heartbeat elsewhere, is not; a requeued job's own old lease, seen from outside that job, still is)."""
    me = Holder.me()
    return takeover_reason(holder, me, stale_after) is None or holder.token == me.token


def holder_of(run_dir: Path) -> Holder | None:
    """The current lease of ``run_dir`` (for status displays), or None."""
    return read_holder(run_dir / LEASE)
