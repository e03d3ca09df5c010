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
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from nasbench_pc import hookimpl
from nasbench_pc.records import JobOutcome, SearchJob, search_command
from nasbench_pc.runtime.devices import check_device, default_device
from nasbench_pc.runtime.lease import LeaseHeld
from nasbench_pc.runtime.runkit import GENOTYPE
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
            console: Console) -> list[JobOutcome]:
        devices = [d.strip() for d in options.get("devices", "").split(",") if d.strip()]
        if devices:
            return _on_devices(jobs, devices, console)
        return _in_process(jobs, check_device(device or default_device()), console)


def _in_process(jobs: Sequence[SearchJob], device: str, console: Console) -> list[JobOutcome]:
    """Each run in this process, in the main thread (SIGINT / SIGTERM stop a run with a checkpoint and stop the
    comparison; an error stops it too, as it always did in-process)."""
    outcomes = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("searches", total=len(jobs))
        for job in jobs:
            progress.update(task, description=f"{job.method} seed {job.seed}")
            state = "done"
            try:  # resume=None: a checkpoint is continued, looked for under the run's lease
                run_search(replace(job.config, device=device), job.run_dir, resume=None)
            except LeaseHeld:
                state = "held"
            except AlreadyFinished:
                pass  # another process finished it between our look and our start: the run is there, as wanted
            outcomes.append(JobOutcome(job.name, state))
            progress.advance(task)
    return outcomes


def _on_devices(jobs: Sequence[SearchJob], devices: list[str], console: Console) -> list[JobOutcome]:
    """One worker process at a time per device, each pulling the next run."""

    def runner(device: str) -> Callable[[SearchJob], JobOutcome]:
        def run(job: SearchJob) -> JobOutcome:
            result = subprocess.run(search_command(job.argv, device), capture_output=True, text=True)
            if result.returncode == LeaseHeld.exit_code:
                return JobOutcome(job.name, "held")
            if result.returncode == 0 or (job.run_dir / GENOTYPE).exists():
                console.print(f"done {job.method} seed {job.seed} on {device}", highlight=False)
                return JobOutcome(job.name, "done", job_id=f"{device}")
            console.print(f"[red]failed[/] {job.method} seed {job.seed} on {device}", highlight=False)
            return JobOutcome(job.name, "failed", job_id=device, error=tail(result.stderr))
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

    def run(self, jobs: Sequence[SearchJob], *, save: Path, options: dict[str, str], device: str | None,
            console: Console) -> list[JobOutcome]:
        for job in jobs:
            click.echo(shlex.join(["nasbench-pc", *job.argv, *(["--device", device] if device else [])]))
        return [JobOutcome(job.name, "printed") for job in jobs]


@hookimpl
def register_executors() -> dict[str, Any]:
    return {"local": Local(), "print": Print()}
