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
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from nasbench_pc import hookimpl
from nasbench_pc.errors import ConfigError
from nasbench_pc.records import JobOutcome, SearchJob, search_command
from nasbench_pc.results.board import JobBoard
from nasbench_pc.runtime.jobs import Submission, ended_as, stop_requested

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
    ``nasbench_pc.plugins.submitit_executor.SearchTask`` in the job), torchrun for several ``processes``."""

    def __init__(self, argv: Sequence[str], run_dir: str, device: str | None = None, processes: int = 1):
        self.argv, self.run_dir, self.device, self.processes = list(argv), run_dir, device, processes
        self._child: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return search_command(self.argv, self.device, self.processes)

    def __call__(self) -> str:
        self._child = subprocess.Popen(self.command())
        code = self._child.wait()
        state = ended_as(code, Path(self.run_dir))
        if state is None:
            raise RuntimeError(f"`{' '.join(self.command())}` exited with status {code}")
        return state

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit's handler of Slurm's USR2: let the search write its mid-epoch checkpoint, then requeue."""
        child = self._child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)  # a second signal during its checkpoint write is ignored
            child.wait()
        if stop_requested(Path(self.run_dir)):
            return None  # `compare --cancel`: not requeued
        return _submitit().helpers.DelayedSubmission(SearchTask(self.argv, self.run_dir, self.device,
                                                                self.processes))

    def __getstate__(self) -> dict[str, Any]:
        return {"argv": self.argv, "run_dir": self.run_dir, "device": self.device, "processes": self.processes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["argv"], state["run_dir"], state["device"], state["processes"])  # type: ignore[misc]


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


def processes_per_job(params: dict[str, Any], given: str | None) -> int:
    """How many search processes a job runs: ``processes=N`` when given, else one per GPU of the job."""
    try:
        count = int(given) if given is not None else int(params.get("gpus_per_node") or 1)
    except (TypeError, ValueError):
        wrong = given or params.get("gpus_per_node")
        raise ConfigError(f"processes and gpus_per_node take whole numbers (got {wrong!r}).") from None
    if count > 1 and int(params.get("nodes") or 1) > 1:
        raise ConfigError("A search job runs on one node (torchrun --standalone, one process per GPU); nodes>1 is not "
                          "supported. Drop --executor-option nodes=..., or run torchrun across nodes yourself (docs/"
                          "search.md).")
    if count > 1 and int(params.get("tasks_per_node") or 1) > 1:
        raise ConfigError("With several processes per job, torchrun starts them: leave tasks_per_node at 1.")
    return max(count, 1)


#: Slurm states of a job that is not over (it runs, or will)
LIVE = ("PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "COMPLETING", "SUSPENDED",
        "RESIZING", "SIGNALING", "STAGE_OUT")
POLL_SECONDS = 2.0


def slurm_states(job_ids: Sequence[str]) -> dict[str, str]:
    """Each job's Slurm state (its first word: "CANCELLED by 0" is CANCELLED), read with one ``sacct`` call; a job
    sacct does not list yet (just submitted) is missing.

    Read here rather than through submitit's ``done()``: submitit counts every state outside its short list as
    finished and stops asking about such a job, so a SUSPENDED job (``scontrol suspend``, a gang-scheduled
    partition) would read as ended and keep reading so after it resumed."""
    if not job_ids:
        return {}
    listed = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(job_ids)],
                            capture_output=True, text=True, check=False).stdout
    states = {}
    for line in listed.splitlines():
        job_id, _, state = line.partition("|")
        if job_id in job_ids and state.split():
            states[job_id] = state.split()[0]
    return states


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
            console: Console, board: JobBoard) -> list[JobOutcome]:
        submitit = _submitit()
        if self.cluster == "slurm" and shutil.which("sbatch") is None:
            raise ConfigError("The slurm executor submits with sbatch, which is not on this machine's PATH: run "
                              "compare on a Slurm login node (or a machine with Slurm's client tools and access "
                              "to the cluster), or choose another --executor (local, submitit-local, ray, print).")
        opts = dict(options)
        max_timeouts = int(opts.pop("max_num_timeout", "3"))
        given_processes = opts.pop("processes", None)
        folder = save / "jobs" / "%j"
        kwargs: dict[str, Any] = {"slurm_max_num_timeout": max_timeouts} if self.cluster == "slurm" else {}
        executor = submitit.AutoExecutor(folder=folder, cluster=self.cluster, **kwargs)
        params = {"name": "nasbench-pc", "timeout_min": 24 * 60, **parameters(opts)}
        processes = processes_per_job(params, given_processes)
        if self.cluster == "local":  # submitit's local executor knows no slurm_* parameters
            params = {k: v for k, v in params.items() if not k.startswith("slurm_")}
        try:
            executor.update_parameters(**params)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"submitit refused an --executor-option of the {self.cluster} executor: "
                              f"{' '.join(str(exc).split())[:600]}") from None
        handles = self._reattach(jobs, folder, board, console) if self.cluster == "slurm" else {}
        fresh = [job for job in jobs if job.name not in handles]
        if fresh:
            try:
                with executor.batch():
                    submitted = [executor.submit(SearchTask(job.argv, str(job.run_dir), device, processes))
                                 for job in fresh]
            except Exception as exc:  # sbatch's refusal (bad partition, limits) comes back as submitit's error
                raise ConfigError(f"The cluster refused the {len(fresh)} jobs (nothing was lost; finished runs are "
                                  f"kept): {' '.join(str(exc).split())[:800]}") from None
            for job, handle in zip(fresh, submitted, strict=True):
                board.submitted(job, handle.job_id, str(handle.paths.stderr))
                handles[job.name] = handle
            console.print(f"submitted {len(fresh)} searches as {self.cluster} jobs "
                          f"{', '.join(h.job_id for h in submitted)} (logs: {save / 'jobs'})", highlight=False)
        return self._watch(jobs, handles, board, console)

    def _reattach(self, jobs: Sequence[SearchJob], folder: Path, board: JobBoard, console: Console) -> dict[str, Any]:
        """The jobs an earlier driver submitted that Slurm still runs or holds: watched again, not resubmitted."""
        submitit = _submitit()
        earlier = {job.name: e for job in jobs if (e := board.earlier(job)) is not None}
        states = slurm_states([e.job_id for e in earlier.values()])
        found = {}
        for job in jobs:
            if job.name in earlier and states.get(earlier[job.name].job_id) in LIVE:
                found[job.name] = submitit.SlurmJob(folder=folder, job_id=earlier[job.name].job_id)
                board.update(job, "queued", job_id=earlier[job.name].job_id, log=earlier[job.name].log)
        if found:
            console.print(f"reattached to {len(found)} live slurm jobs of an earlier call: "
                          f"{', '.join(h.job_id for h in found.values())}", highlight=False)
        return found

    def _watch(self, jobs: Sequence[SearchJob], handles: dict[str, Any], board: JobBoard,
               console: Console) -> list[JobOutcome]:
        """Wait for every job, reporting each as it ends."""
        outcomes: dict[str, JobOutcome] = {}
        while len(outcomes) < len(jobs):
            over = self._over([handles[job.name] for job in jobs if job.name not in outcomes])
            for job in jobs:
                handle = handles[job.name]
                if job.name in outcomes or handle.job_id not in over:
                    continue
                log = str(handle.paths.stderr)
                try:
                    state = handle.result()
                except Exception as exc:
                    if stop_requested(job.run_dir):  # scancel'ed or stopped by `compare --cancel`
                        outcomes[job.name] = JobOutcome(job.name, "cancelled", job_id=handle.job_id, log=log)
                        board.update(job, "cancelled")
                        continue
                    outcomes[job.name] = JobOutcome(job.name, "failed", job_id=handle.job_id, log=log,
                                                    error=_error_tail(handle, exc))
                    board.update(job, "failed", log=log, error=outcomes[job.name].error)
                    console.print(f"[red]failed[/] {job.name} (job {handle.job_id})",
                                  highlight=False)
                    continue
                outcomes[job.name] = JobOutcome(job.name, state, job_id=handle.job_id, log=log)
                board.update(job, state)
                if state == "done":
                    console.print(f"done {job.name} (job {handle.job_id})", highlight=False)
            if len(outcomes) < len(jobs):
                time.sleep(POLL_SECONDS)
        return [outcomes[job.name] for job in jobs]

    def _over(self, handles: Sequence[Any]) -> set[str]:
        """The job ids among ``handles`` that have ended (their result is written, or Slurm no longer runs or holds
        them); submitit's own record of those is refreshed so that ``result()`` does not wait on it."""
        if self.cluster != "slurm":
            return {h.job_id for h in handles if h.done()}  # local processes: submitit reads their exit itself
        states = slurm_states([h.job_id for h in handles])
        over = set()
        for handle in handles:
            if handle.paths.result_pickle.exists() or (handle.job_id in states and states[handle.job_id] not in LIVE):
                handle.done(force_check=True)
                over.add(handle.job_id)
        return over

    def cancel(self, submissions: Sequence[Submission], *, save: Path, console: Console) -> list[str]:
        """``compare --cancel``: scancel the jobs that still run or wait (Slurm sends them SIGTERM: a running search
        writes its checkpoint first); the job ids cancelled."""
        if self.cluster != "slurm":
            return []  # submitit-local jobs are processes of their driver: the stop requests end them
        states = slurm_states([s.job_id for s in submissions])
        live = [s.job_id for s in submissions if states.get(s.job_id) in LIVE]
        if live:
            subprocess.run(["scancel", *live], check=False, capture_output=True)
        return live


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
