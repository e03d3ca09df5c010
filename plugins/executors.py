"""The built-in executors that need nothing installed: ``local`` (this process, or one worker process per device)
and ``print`` (run nothing; one ``nasbench-pc search`` line per run for an array script of your own).

Registered through the ``register_executors`` hook exactly as an outside package's executor would be; the
cluster executors (``slurm``, ``submitit-local``, ``ray``) live in their own modules, importable without their
optional packages.
"""

from __future__ import annotations

import queue
import shlex
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from nasbench_pc import hookimpl
from nasbench_pc.records import JobOutcome, SearchJob, search_command
from nasbench_pc.results.board import JobBoard
from nasbench_pc.results.tracking import tracking
from nasbench_pc.runtime.devices import check_device, default_device
from nasbench_pc.runtime.interrupt import Interrupted
from nasbench_pc.runtime.jobs import ended_as, stop_requested
from nasbench_pc.runtime.lease import LeaseHeld
from nasbench_pc.search import AlreadyFinished, run_search

#: how much of a failed worker's stderr an outcome keeps
ERROR_TAIL = 2000


def tail(text: str, limit: int = ERROR_TAIL) -> str:
    return text.strip()[-limit:]


class Local:
    """The searches on this machine: one after another in this process, or one worker process per device."""

    description = ("This machine: the searches one after another in this process, or one worker process per device "
                   "(devices=cpu,cpu or cuda:0,cuda:1; `compare --devices` sets it).")
    default = True  # what `compare` runs its searches with when no --executor is named
    options = {"devices": "comma-separated devices, one worker process each (e.g. cuda:0,cuda:1 or cpu,cpu)"}

    def run(self, jobs: Sequence[SearchJob], *, save: Path, options: dict[str, str], device: str | None,
            console: Console, board: JobBoard) -> list[JobOutcome]:
        devices = [d.strip() for d in options.get("devices", "").split(",") if d.strip()]
        if devices:
            return _on_devices(jobs, devices, console, board)
        return _in_process(jobs, check_device(device or default_device()), console, board)


def _in_process(jobs: Sequence[SearchJob], device: str, console: Console, board: JobBoard) -> list[JobOutcome]:
    """Each run in this process, in the main thread (SIGINT / SIGTERM stop a run with a checkpoint and stop the
    comparison; an error stops it too, as it always did in-process)."""
    outcomes = []
    for job in jobs:
        if outcomes and outcomes[-1].state == "cancelled":  # `compare --cancel`: start nothing more
            outcomes.append(JobOutcome(job.name, "cancelled"))
            board.update(job, "cancelled")
            continue
        state = "done"
        try:  # resume=None: a checkpoint is continued, looked for under the run's lease
            config = replace(job.config, device=device)
            run_search(config, job.run_dir, resume=None, track=tracking(config))
        except LeaseHeld:
            state = "held"
        except AlreadyFinished:
            pass  # another process finished it between our look and our start: the run is there, as wanted
        except Interrupted:
            if not stop_requested(job.run_dir):
                raise  # Ctrl-C / SIGTERM of this process: the comparison stops here
            state = "cancelled"  # `compare --cancel`: this run stopped with its checkpoint; the next ones stop too
        board.update(job, state)
        if state == "done":
            console.print(f"done {job.name}", highlight=False)
        outcomes.append(JobOutcome(job.name, state))
    return outcomes


def _on_devices(jobs: Sequence[SearchJob], devices: list[str], console: Console,
                board: JobBoard) -> list[JobOutcome]:
    """One worker process at a time per device, each pulling the next run."""

    cancelled = threading.Event()

    def runner(device: str) -> Callable[[SearchJob], JobOutcome]:
        def run(job: SearchJob) -> JobOutcome:
            if cancelled.is_set():  # `compare --cancel` stopped a run: start nothing more
                board.update(job, "cancelled")
                return JobOutcome(job.name, "cancelled")
            board.update(job, "queued", job_id=device)
            result = subprocess.run(search_command(job.argv, device), capture_output=True, text=True)
            state = ended_as(result.returncode, job.run_dir)
            board.update(job, state or "failed", error=tail(result.stderr) if state is None else "")
            if state is None:
                console.print(f"[red]failed[/] {job.name} on {device}", highlight=False)
                return JobOutcome(job.name, "failed", job_id=device, error=tail(result.stderr))
            if state == "done":
                console.print(f"done {job.name} on {device}", highlight=False)
            if state == "cancelled":
                cancelled.set()
            return JobOutcome(job.name, state, job_id=device)
        return run

    return parallel(jobs, [runner(d) for d in devices])


def parallel(jobs: Sequence[SearchJob], runners: list[Callable[[SearchJob], JobOutcome]]) -> list[JobOutcome]:
    """Hand ``jobs`` out to the runners (one thread each, each taking the next job when it is free); the
    outcomes in the jobs' order."""
    todo: queue.Queue = queue.Queue()
    for job in jobs:
        todo.put(job)
    done: dict[str, JobOutcome] = {}

    def work(run: Callable[[SearchJob], JobOutcome]) -> None:
        while True:
            try:
                job = todo.get_nowait()
            except queue.Empty:
                return
            done[job.name] = run(job)

    threads = [threading.Thread(target=work, args=(run,)) for run in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [done[job.name] for job in jobs]


class Print:
    """Run nothing: print each run's command, for a job array of your own."""

    description = ("Run nothing: print one `nasbench-pc search ...` line per run (for an sbatch --array script of "
                   "your own); then aggregate with `nasbench-pc compare --from 'SAVE/runs/*'`.")
    options: dict[str, str] = {}
    live = False  # nothing runs: no status table

    def run(self, jobs: Sequence[SearchJob], *, save: Path, options: dict[str, str], device: str | None,
            console: Console, board: JobBoard) -> list[JobOutcome]:
        for job in jobs:
            click.echo(shlex.join(["nasbench-pc", *job.argv, *(["--device", device] if device else [])]))
        return [JobOutcome(job.name, "printed") for job in jobs]


@hookimpl
def register_executors() -> dict[str, Any]:
    return {"local": Local(), "print": Print()}
