"""``slurm`` and ``submitit-local``: a comparison's searches as jobs through submitit (optional extra
``nasbench-pc[slurm]``), one job per run, submitted together as one Slurm job array (``--array=...%N`` with
``array_parallelism=N``).

Each job runs ``nasbench-pc search ... --out RUN --resume-if-stopped`` as a child process, so a job is exactly what
a user would type. Slurm's warning before a time limit or a preemption (USR2, ``signal_delay_s`` seconds ahead)
reaches the search directly (it stops after its step with a mid-epoch checkpoint) and submitit's handler in the
job process, whose :meth:`SearchTask.checkpoint` waits for that checkpoint and requeues the job: the requeued job
runs the same line, which continues the checkpoint (the run's lease lets the same Slurm job take its own run
over). A job that dies without warning is resumed from its last checkpoint when the driver is run again.

``--executor-option KEY=VALUE`` passes any submitit parameter through: the generic ones (``timeout_min``,
``mem_gb``, ``gpus_per_node``, ``cpus_per_task``, ``nodes``, ``tasks_per_node``, ``name``) as they are, and every
other key as the cluster's own (``partition`` -> ``slurm_partition``, ``array_parallelism``,
``signal_delay_s``, ``additional_parameters``, ...). ``max_num_timeout`` (default 3) caps the requeues after a
time limit. Values are read as JSON where they parse (numbers, booleans, objects), else taken as text.
"""

from __future__ import annotations

import json
import shutil
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

#: AutoExecutor's parameters that every cluster shares; any other key is the cluster's own (slurm_KEY)
GENERIC = ("timeout_min", "mem_gb", "gpus_per_node", "cpus_per_task", "nodes", "tasks_per_node", "name",
           "stderr_to_stdout")
EXTRA = {"slurm": "slurm", "local": "slurm"}  # the extra that installs submitit


def _submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise ConfigError('The slurm and submitit-local executors run jobs through submitit, which is not installed. '
                          'Install the extra: pip install "nasbench-pc[slurm]".') from None
    return submitit


class SearchTask:
    """What one job runs: ``nasbench-pc ARGV`` as a child process (pickled by submitit; importable as
    ``nasbench_pc.plugins.submitit_executor.SearchTask`` in the job)."""

    def __init__(self, argv: Sequence[str], device: str | None = None):
        self.argv, self.device = list(argv), device
        self._child: subprocess.Popen | None = None

    def __call__(self) -> str:
        self._child = subprocess.Popen(search_command(self.argv, self.device))
        code = self._child.wait()
        if code == LeaseHeld.exit_code:
            return "held"
        if code != 0:
            raise RuntimeError(f"`{' '.join(search_command(self.argv, self.device))}` exited with status {code}")
        return "done"

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit's handler of Slurm's USR2: let the search write its mid-epoch checkpoint, then requeue."""
        child = self._child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)  # a second signal during its checkpoint write is ignored
            child.wait()
        return _submitit().helpers.DelayedSubmission(SearchTask(self.argv, self.device))

    def __getstate__(self) -> dict[str, Any]:
        return {"argv": self.argv, "device": self.device}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.argv, self.device, self._child = state["argv"], state["device"], None


def parameters(options: dict[str, str]) -> dict[str, Any]:
    """``--executor-option`` pairs as AutoExecutor parameters (see the module docstring)."""
    params: dict[str, Any] = {}
    for key, text in options.items():
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        params[key if key in GENERIC or key.startswith("slurm_") else f"slurm_{key}"] = value
    return params


class Submitit:
    """The searches as submitit jobs on ``cluster`` ("slurm" or "local")."""

    options = None  # every key passes through to submitit

    def __init__(self, cluster: str):
        self.cluster = cluster
        self.description = (
            "Slurm: one job per run, submitted as a job array (array_parallelism=N for %N) through submitit; "
            "--executor-option passes Slurm parameters (partition, gpus_per_node, timeout_min, signal_delay_s, ...); "
            "requeued with a checkpoint on preemption. pip install 'nasbench-pc[slurm]'." if cluster == "slurm" else
            "submitit's local executor: the same jobs as `slurm`, as processes on this machine (tests, laptops). "
            "pip install 'nasbench-pc[slurm]'.")

    def run(self, jobs: Sequence[SearchJob], *, save: Path, options: dict[str, str], device: str | None,
            console: Console) -> list[JobOutcome]:
        submitit = _submitit()
        if self.cluster == "slurm" and shutil.which("sbatch") is None:
            raise ConfigError("The slurm executor submits with sbatch, which is not on this machine's PATH: run "
                              "compare on a Slurm login node (or a machine with Slurm's client tools and access "
                              "to the cluster), or choose another --executor (local, submitit-local, ray, print).")
        opts = dict(options)
        max_timeouts = int(opts.pop("max_num_timeout", "3"))
        folder = save / "jobs" / "%j"
        kwargs: dict[str, Any] = {"slurm_max_num_timeout": max_timeouts} if self.cluster == "slurm" else {}
        executor = submitit.AutoExecutor(folder=folder, cluster=self.cluster, **kwargs)
        params = {"name": "nasbench-pc", "timeout_min": 24 * 60, **parameters(opts)}
        if self.cluster == "local":  # submitit's local executor knows no slurm_* parameters
            params = {k: v for k, v in params.items() if not k.startswith("slurm_")}
        try:
            executor.update_parameters(**params)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"submitit refused an --executor-option of the {self.cluster} executor: "
                              f"{' '.join(str(exc).split())[:600]}") from None
        try:
            with executor.batch():
                handles = [executor.submit(SearchTask(job.argv, device)) for job in jobs]
        except Exception as exc:  # sbatch's refusal (bad partition, limits) comes back as submitit's error
            raise ConfigError(f"The cluster refused the {len(jobs)} jobs (nothing was lost; finished runs are kept): "
                              f"{' '.join(str(exc).split())[:800]}") from None
        console.print(f"submitted {len(jobs)} searches as {self.cluster} jobs "
                      f"{', '.join(h.job_id for h in handles)} (logs: {save / 'jobs'})", highlight=False)
        outcomes = []
        for job, handle in zip(jobs, handles, strict=True):
            log = str(handle.paths.stderr)
            try:
                state = handle.result()
            except Exception as exc:
                outcomes.append(JobOutcome(job.name, "failed", job_id=handle.job_id, log=log,
                                           error=_error_tail(handle, exc)))
                console.print(f"[red]failed[/] {job.method} seed {job.seed} (job {handle.job_id})", highlight=False)
            else:
                outcomes.append(JobOutcome(job.name, state, job_id=handle.job_id, log=log))
                if state == "done":
                    console.print(f"done {job.method} seed {job.seed} (job {handle.job_id})", highlight=False)
        return outcomes


def _error_tail(handle: Any, exc: Exception) -> str:
    """The last lines of the job's stderr (what the search printed), else the exception."""
    try:
        text = Path(handle.paths.stderr).read_text(errors="replace")
    except OSError:
        text = ""
    return (text.strip()[-1500:] or " ".join(str(exc).split())[-1500:])


@hookimpl
def register_executors() -> dict[str, Any]:
    return {"slurm": Submitit("slurm"), "submitit-local": Submitit("local")}
