"""``ray``: a comparison's searches as Ray tasks (optional extra ``nasbench-pc[ray]``), one task per run.

Each task runs ``nasbench-pc search ... --out RUN --resume-if-stopped`` as a child process on whichever node Ray
places it, with ``gpus`` GPUs (default: 1 where the cluster has GPUs, else 0) and ``cpus`` CPUs. A task whose
search is killed (a signal: the OOM killer, SIGKILL), or whose worker or node dies, is retried (``retries``,
default 3) and, being the same line, continues the run from its last checkpoint; the run's lease lets it take
the run over once the dead writer's pid is gone (same host) or its heartbeat is stale (another host).

Options (``--executor-option KEY=VALUE``): ``address`` (a running cluster, e.g. ``auto`` or
``ray://head:10001``; default: start a local Ray for this call), ``gpus``, ``cpus``, ``retries``.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from nasbench_pc import hookimpl
from nasbench_pc.errors import ConfigError
from nasbench_pc.records import JobOutcome, SearchJob, search_command
from nasbench_pc.runtime.lease import LeaseHeld

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


def run_line(argv: Sequence[str], device: str | None) -> tuple[str, str]:
    """What one task runs (on a Ray worker): the search line; ("done" | "held", "") or raises with its stderr."""
    cmd = search_command(argv, device)
    result = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=_die_with_parent)
    if result.returncode == LeaseHeld.exit_code:
        return "held", ""
    if result.returncode < 0:
        raise SearchKilled(f"`{' '.join(cmd)}` was killed by signal {-result.returncode}")
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` exited with status {result.returncode}: "
                           f"{result.stderr.strip()[-ERROR_TAIL:]}")
    return "done", ""


class Ray:
    description = ("Ray: one task per run (gpus=1 each where the cluster has GPUs), retried when its process or "
                   "node dies; address=auto joins a running cluster. pip install 'nasbench-pc[ray]'.")
    options = {"address": "a running Ray cluster (auto, ray://head:10001) [start a local one]",
               "gpus": "GPUs per task [1 where the cluster has GPUs, else 0]",
               "cpus": "CPUs per task [1]",
               "retries": "retries of a task whose process or node died [3]"}

    def run(self, jobs: Sequence[SearchJob], *, save: Path, options: dict[str, str], device: str | None,
            console: Console) -> list[JobOutcome]:
        ray = _ray()
        try:
            cpus, retries = float(options.get("cpus", 1)), int(options.get("retries", 3))
            gpus_given = options.get("gpus")
            gpus = float(gpus_given) if gpus_given is not None else None
        except ValueError as exc:
            raise ConfigError(f"A ray executor option is not a number ({exc}); cpus, gpus and retries take numbers.")\
                from None
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=options.get("address"), include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        try:
            if gpus is None:
                gpus = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
            task = ray.remote(run_line).options(num_cpus=cpus, num_gpus=gpus, max_retries=retries,
                                                retry_exceptions=[SearchKilled])
            refs = [task.remote(list(job.argv), device) for job in jobs]
            console.print(f"submitted {len(jobs)} searches as Ray tasks ({cpus:g} CPU, {gpus:g} GPU each, "
                          f"{retries} retries)", highlight=False)
            outcomes = []
            for job, ref in zip(jobs, refs, strict=True):
                try:
                    state, _ = ray.get(ref)
                except Exception as exc:  # the task's RuntimeError, or Ray's for a task that died past its retries
                    outcomes.append(JobOutcome(job.name, "failed", job_id=ref.hex()[:16],
                                               error=" ".join(str(exc).split())[-ERROR_TAIL:]))
                    console.print(f"[red]failed[/] {job.method} seed {job.seed}", highlight=False)
                else:
                    outcomes.append(JobOutcome(job.name, state, job_id=ref.hex()[:16]))
                    if state == "done":
                        console.print(f"done {job.method} seed {job.seed}", highlight=False)
            return outcomes
        finally:
            if started_here:
                ray.shutdown()


@hookimpl
def register_executors() -> dict[str, Any]:
    return {"ray": Ray()}
