"""``ray``: a comparison's searches as Ray tasks (optional extra ``nasbench-pc[ray]``), one task per run.

Each task runs ``nasbench-pc search ... --out RUN --resume-if-stopped`` as a child process on whichever node Ray
places it, with ``gpus`` GPUs (default: 1 where the cluster has GPUs, else 0) and ``cpus`` CPUs. A task whose
search is killed (a signal: the OOM killer, SIGKILL), or whose worker or node dies, is retried (``retries``,
default 3) and, being the same line, continues the run from its last checkpoint; the run's lease lets it take
the run over once the dead writer's pid is gone (same host) or its heartbeat is stale (another host).

Options (``--executor-option KEY=VALUE``): ``address`` (a running cluster, e.g. ``auto`` or
``ray://head:10001``; default: start a local Ray for this call), ``gpus``, ``cpus``, ``retries``, ``processes``
(search processes per task, started by torchrun; default one per GPU of the task).

Ray's tasks belong to the driver: stopping ``compare`` ends them (their runs keep their last checkpoint), and
running it again submits the unfinished runs anew, which continue from there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from nasbench_pc import hookimpl
from nasbench_pc.errors import ConfigError
from nasbench_pc.records import JobOutcome, SearchJob, search_command
from nasbench_pc.results.board import JobBoard
from nasbench_pc.runtime.jobs import ended_as

ERROR_TAIL = 1500


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError('The ray executor runs jobs through Ray, which is not installed. Install the extra: pip '
                          'install "nasbench-pc[ray]".') from None
    return ray


class SearchKilled(RuntimeError):
    """The search process was killed by a signal (OOM killer, SIGKILL): Ray retries the task, which continues the
    run from its last checkpoint."""


def _die_with_parent() -> None:
    """In the search process (Linux): SIGKILL it when the Ray worker that started it dies, so that a retried task
    never finds its own orphan still writing the run."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_line(argv: Sequence[str], run_dir: str, device: str | None, processes: int = 1) -> str:
    """What one task runs (on a Ray worker): the search line; "done", "held" or "cancelled", or raises with its
    stderr."""
    cmd = search_command(argv, device, processes)
    result = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=_die_with_parent)
    state = ended_as(result.returncode, Path(run_dir))
    if state is not None:
        return state
    if result.returncode < 0:
        raise SearchKilled(f"`{' '.join(cmd)}` was killed by signal {-result.returncode}")
    raise RuntimeError(f"`{' '.join(cmd)}` exited with status {result.returncode}: "
                       f"{result.stderr.strip()[-ERROR_TAIL:]}")


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Ray's own messages (a task's retry, from its C++ core) go to this process's stdout; while Ray runs, file
    descriptor 1 points at stderr, so that stdout keeps only what compare prints (``--format json`` stays
    parseable)."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


class Ray:
    description = ("Ray: one task per run (gpus=1 each where the cluster has GPUs), retried when its process or "
                   "node dies; address=auto joins a running cluster. pip install 'nasbench-pc[ray]'.")
    options = {"address": "a running Ray cluster (auto, ray://head:10001) [start a local one]",
               "gpus": "GPUs per task [1 where the cluster has GPUs, else 0]",
               "cpus": "CPUs per task [1]",
               "retries": "retries of a task whose process or node died [3]",
               "processes": "search processes per task, started by torchrun [one per GPU of the task]"}

    def run(self, jobs: Sequence[SearchJob], *, save: Path, options: dict[str, str], device: str | None,
            console: Console, board: JobBoard) -> list[JobOutcome]:
        ray = _ray()
        try:
            cpus, retries = float(options.get("cpus", 1)), int(options.get("retries", 3))
            gpus_given, processes_given = options.get("gpus"), options.get("processes")
            gpus = float(gpus_given) if gpus_given is not None else None
            processes = int(processes_given) if processes_given is not None else None
        except ValueError as exc:
            raise ConfigError(f"A ray executor option is not a number ({exc}); cpus, gpus, retries and processes "
                              f"take numbers.") from None
        with _stdout_to_stderr():
            return self._run(ray, jobs, device, console, board, address=options.get("address"), cpus=cpus, gpus=gpus,
                             retries=retries, processes=processes)

    def _run(self, ray: Any, jobs: Sequence[SearchJob], device: str | None, console: Console, board: JobBoard, *,
             address: str | None, cpus: float, gpus: float | None, retries: int, processes: int | None
             ) -> list[JobOutcome]:
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        try:
            if gpus is None:
                gpus = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
            per_task = processes if processes is not None else max(int(gpus), 1)
            task = ray.remote(run_line).options(num_cpus=cpus, num_gpus=gpus, max_retries=retries,
                                                retry_exceptions=[SearchKilled])
            refs = [task.remote(list(job.argv), str(job.run_dir), device, per_task) for job in jobs]
            for job, ref in zip(jobs, refs, strict=True):
                board.submitted(job, ref.hex()[:16])
            console.print(f"submitted {len(jobs)} searches as Ray tasks ({cpus:g} CPU, {gpus:g} GPU each, "
                          f"{retries} retries)", highlight=False)
            outcomes: dict[str, JobOutcome] = {}
            waiting = dict(zip(refs, jobs, strict=True))
            while waiting:
                ready, _ = ray.wait(list(waiting), num_returns=1)
                job = waiting.pop(ready[0])
                try:
                    state = ray.get(ready[0])
                except Exception as exc:  # the task's RuntimeError, or Ray's for a task that died past its retries
                    error = " ".join(str(exc).split())[-ERROR_TAIL:]
                    outcomes[job.name] = JobOutcome(job.name, "failed", job_id=ready[0].hex()[:16], error=error)
                    board.update(job, "failed", error=error)
                    console.print(f"[red]failed[/] {job.name}", highlight=False)
                else:
                    outcomes[job.name] = JobOutcome(job.name, state, job_id=ready[0].hex()[:16])
                    board.update(job, state)
                    if state == "done":
                        console.print(f"done {job.name}", highlight=False)
            return [outcomes[job.name] for job in jobs]
        finally:
            if started_here:
                ray.shutdown()


@hookimpl
def register_executors() -> dict[str, Any]:
    return {"ray": Ray()}
