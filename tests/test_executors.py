"""Executors: where `compare` runs its searches. `print` and `local` everywhere; `submitit-local` with submitit;
`slurm` on the real single-node Slurm cluster that `.ci/run` starts (tests/slurm/local_cluster.sh). Every
executor's runs come back only as run folders, so the table is the same whatever ran them."""

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from nasbench_pc import genotypes
from nasbench_pc.cli import main
from nasbench_pc.runtime.jobs import Ledger

TINY = ["--epochs", "1", "--limit", "64", "--steps-per-epoch", "2", "--batch-size", "8", "--init-channels", "4",
        "--layers", "3", "--image-size", "16"]
#: measurements of the machine a run ran on; everything else in a row is decided by the runs' results
TIMING = ("step_seconds", "time_vs_baseline", "epoch_seconds", "search_hours", "images_per_second")


def _text(output: str) -> str:
    return " ".join(output.replace("│", " ").replace("╭", " ").replace("╰", " ").replace("─", " ").split())


def _rows(text: str) -> list[dict]:
    return [{k: v for k, v in row.items() if not any(t in k for t in TIMING)} for row in json.loads(text)]


def slurm_up() -> str | None:
    """None when a Slurm cluster answers here, else why not."""
    if shutil.which("sbatch") is None or shutil.which("scontrol") is None:
        return "Slurm's client tools (sbatch, scontrol) are not installed"
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    if ping.returncode != 0 or "UP" not in ping.stdout:
        return f"no slurmctld answers (`scontrol ping`: {ping.stdout.strip() or ping.stderr.strip()})"
    return None


def _need_slurm() -> None:
    why = slurm_up()
    if why is not None:
        if os.environ.get("CI"):  # CI starts the cluster (.ci/run): a skip there would hide a broken setup
            pytest.fail(f"CI must run the Slurm tests, but {why}; .ci/run starts tests/slurm/local_cluster.sh")
        pytest.skip(f"SLURM TESTS SKIPPED: {why}. Start one with `bash tests/slurm/local_cluster.sh start` (root).")


def _cli(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nasbench_pc", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200", **(env or {})}, timeout=900)


@pytest.fixture(scope="module")
def in_process(tmp_path_factory) -> tuple[Path, list[dict]]:
    """darts-1st and pc-darts, seeds 0 and 1, in this process: the table every executor must reproduce."""
    save = tmp_path_factory.mktemp("in-process")
    result = _cli("compare", "darts-1st", "pc-darts", "--seeds", "0", "1", *TINY, "--save", save, "--format", "json")
    assert result.returncode == 0, result.stderr
    return save, _rows(result.stdout)


@pytest.fixture(scope="module")
def seed0(in_process) -> list[dict]:
    """The same table for seed 0 alone (the cheaper executor tests run 2 searches, not 4)."""
    result = _cli("compare", "--from", f"{in_process[0]}/runs/*-seed0", "--format", "json")
    assert result.returncode == 0, result.stderr
    return _rows(result.stdout)


def test_print_runs_nothing_and_its_lines_run_by_hand_give_the_same_table(tmp_path, seed0):
    save = tmp_path / "save"
    printed = _cli("compare", "darts-1st", "pc-darts", *TINY, "--save", save, "--executor", "print")
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert len(lines) == 2 and not (save / "runs").exists()  # nothing ran
    assert lines[0] == ("nasbench-pc search --quiet --method darts-1st --seed 0 --out "
                        f"{save}/runs/darts-1st-seed0 --resume-if-stopped " + " ".join(TINY))
    assert "2 searches printed, none run" in _text(printed.stderr)
    assert all(shlex.split(line)[0] == "nasbench-pc" for line in lines)
    tasks = [subprocess.Popen([sys.executable, "-m", "nasbench_pc", *shlex.split(line)[1:]], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
             for line in lines]  # what a user's array script does with them: the tasks run side by side
    for task in tasks:
        _, stderr = task.communicate(timeout=600)
        assert task.returncode == 0, stderr
    again = _cli(*shlex.split(lines[0])[1:])  # a line run again (a requeued array task) ends at once
    assert again.returncode == 0 and again.stdout.strip() == f"{save}/runs/darts-1st-seed0"
    table = _cli("compare", "--from", f"{save}/runs/*", "--format", "json")
    assert table.returncode == 0, table.stderr
    assert _rows(table.stdout) == seed0


def test_bad_executor_input_is_one_clear_paragraph(tmp_path, monkeypatch):
    runner = CliRunner()
    cases = [
        (["--executor", "sge"], "Unknown executor 'sge'"),
        (["--executor", "local", "--executor-option", "partition=gpu"],
         "The local executor takes no option 'partition'. Its options: devices"),
        (["--executor", "print", "--devices", "cpu,cpu"],
         "--devices runs one worker process per device on this machine (the local executor)"),
    ]
    for args, expected in cases:
        result = runner.invoke(main, ["compare", "darts-1st", *TINY, "--save", str(tmp_path / "s"), *args])
        assert result.exit_code == 2, result.output
        assert expected in _text(result.output), result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "s").exists()  # refused before any run

    # submitit missing: the extra is named
    monkeypatch.setitem(sys.modules, "submitit", None)
    result = runner.invoke(main, ["compare", "darts-1st", *TINY, "--save", str(tmp_path / "s"), "--executor",
                                  "submitit-local"])
    assert result.exit_code == 2, result.output
    assert 'Install the extra: pip install "nasbench-pc[slurm]".' in _text(result.output)
    monkeypatch.delitem(sys.modules, "submitit")

    # sbatch not on PATH
    monkeypatch.setenv("PATH", str(tmp_path))
    result = runner.invoke(main, ["compare", "darts-1st", *TINY, "--save", str(tmp_path / "s"), "--executor",
                                  "slurm"])
    assert result.exit_code == 2, result.output
    assert "The slurm executor submits with sbatch, which is not on this machine's PATH" in _text(result.output)


def test_submitit_local_runs_real_processes_and_gives_the_same_table(tmp_path, seed0):
    pytest.importorskip("submitit", reason='submitit is the [slurm] extra: pip install "nasbench-pc[slurm]"')
    save = tmp_path / "save"
    result = _cli("compare", "darts-1st", "pc-darts", *TINY, "--save", save, "--format", "json",
                  "--executor", "submitit-local")
    assert result.returncode == 0, result.stderr
    assert _rows(result.stdout) == seed0
    assert "submitted 2 searches as local jobs" in _text(result.stderr)


def test_slurm_runs_one_array_task_per_run_and_gives_the_same_table(tmp_path, in_process):
    pytest.importorskip("submitit", reason='submitit is the [slurm] extra: pip install "nasbench-pc[slurm]"')
    _need_slurm()
    save = tmp_path / "save"
    result = _cli("compare", "darts-1st", "pc-darts", "--seeds", "0", "1", *TINY, "--save", save, "--format", "json",
                  "--executor", "slurm", "--executor-option", "array_parallelism=2", "--executor-option",
                  "cpus_per_task=1")
    assert result.returncode == 0, result.stderr
    rows = _rows(result.stdout)
    assert rows == in_process[1]
    writers = [json.loads((save / "runs" / name / "writers.jsonl").read_text().splitlines()[0])
               for name in ("darts-1st-seed0", "darts-1st-seed1", "pc-darts-seed0", "pc-darts-seed1")]
    ids = [w["job"] for w in writers]  # SLURM_ARRAY_JOB_ID_SLURM_ARRAY_TASK_ID of the process that wrote each run
    assert len(set(ids)) == 4  # 4 distinct Slurm jobs...
    base = {i.split("_")[0] for i in ids}
    assert len(base) == 1 and sorted(i.split("_")[1] for i in ids) == ["0", "1", "2", "3"]  # ...of one job array
    assert f"submitted 4 searches as slurm jobs {', '.join(sorted(ids))}" in _text(result.stderr)
    states = subprocess.run(["sacct", "-n", "-X", "-P", "-j", base.pop(), "-o", "JobID,State"], capture_output=True,
                            text=True).stdout.split()
    assert sorted(states) == sorted(f"{i}|COMPLETED" for i in ids), states
    again = _cli("compare", "--from", f"{save}/runs/*", "--format", "json")
    assert _rows(again.stdout) == rows


def test_a_slurm_submission_the_cluster_refuses_is_one_clear_paragraph(tmp_path):
    pytest.importorskip("submitit", reason='submitit is the [slurm] extra: pip install "nasbench-pc[slurm]"')
    _need_slurm()
    result = _cli("compare", "darts-1st", *TINY, "--save", tmp_path / "save", "--executor", "slurm",
                  "--executor-option", "partition=no-such-partition")
    assert result.returncode == 2, result.stderr
    text = _text(result.stderr)
    assert "The cluster refused the 1 jobs (nothing was lost; finished runs are kept)" in text
    assert "invalid partition" in text.lower()
    assert "Traceback" not in result.stderr


SLOW = ["--method", "pc-darts", "--seed", "0", "--epochs", "3", "--warmup-epochs", "1", "--limit", "320", "-C", "4",
        "--layers", "3", "--image-size", "8", "--batch-size", "16"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    """The SLOW search run once without a stop: what every interrupted, requeued or retried one must end as."""
    whole = tmp_path_factory.mktemp("uninterrupted") / "run"
    ref = _cli("search", *SLOW, "--out", whole, "--quiet")
    assert ref.returncode == 0, ref.stderr
    return whole


def _same_end(whole: Path, run: Path) -> None:
    """Bit for bit: architecture parameters, weights and BN statistics, and the genotype."""
    full, cut = (torch.load(d / "checkpoint.pt", weights_only=True) for d in (whole, run))
    assert full["epoch"] == cut["epoch"] == 3
    for name, tensor in full["model"].items():
        assert torch.equal(tensor, cut["model"][name]), name
    assert genotypes.load(run / "genotype.json") == genotypes.load(whole / "genotype.json")


def test_a_preempted_slurm_job_checkpoints_requeues_and_ends_bit_for_bit(tmp_path, uninterrupted):
    pytest.importorskip("submitit", reason='submitit is the [slurm] extra: pip install "nasbench-pc[slurm]"')
    _need_slurm()
    save = tmp_path / "save"
    run = save / "runs" / "pc-darts-seed0"
    cpus = os.cpu_count() or 1
    driver = subprocess.Popen(
        [sys.executable, "-m", "nasbench_pc", "compare", "pc-darts", *SLOW[4:], "--save", str(save), "--format",
         "json", "--executor", "slurm", "--executor-option", f"cpus_per_task={cpus}", "--executor-option",
         "timeout_min=30"],  # >= 15 min: submitit does not count a preemption's USR2 as a time-out then
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 300
    while not (run / "checkpoint.pt").exists():
        assert driver.poll() is None and time.time() < deadline, driver.communicate()
        time.sleep(0.2)
    # a job of the high partition needs every CPU: Slurm preempts ours (USR2, then requeue)
    subprocess.run(["sbatch", "-p", "high", "-c", str(cpus), "-o", "/dev/null", "--wrap", "sleep 3"], check=True,
                   capture_output=True)
    stdout, stderr = driver.communicate(timeout=600)
    assert driver.returncode == 0, stderr
    writers = [json.loads(line) for line in (run / "writers.jsonl").read_text().splitlines()]
    assert len(writers) == 2 and [w["resumed"] for w in writers] == [False, True], writers  # requeued once
    assert writers[0]["job"] == writers[1]["job"]  # the same Slurm job, its run taken over after the requeue
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]
    _same_end(uninterrupted, run)
    # the search stopped at a step boundary with its checkpoint (Slurm's USR2, or the task's SIGTERM after it)
    logs = " ".join(p.read_text(errors="replace") for p in (save / "jobs").rglob("*.err"))
    assert "received: the search stopped after finishing its current step and saved a checkpoint" in _text(logs)


def test_ray_gives_the_same_table_and_a_killed_task_is_retried_and_continues_bit_for_bit(tmp_path, uninterrupted):
    pytest.importorskip("ray", reason='ray is the [ray] extra: pip install "nasbench-pc[ray]"')
    save = tmp_path / "save"
    run = save / "runs" / "pc-darts-seed0"
    driver = subprocess.Popen(
        [sys.executable, "-m", "nasbench_pc", "compare", "pc-darts", *SLOW[4:], "--save", str(save), "--format",
         "json", "--executor", "ray", "--executor-option", "cpus=1"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    _wait_for(lambda: (run / "checkpoint.pt").exists() and (run / "writers.jsonl").exists(), "a checkpoint",
              driver)
    victim = json.loads((run / "writers.jsonl").read_text().splitlines()[0])["pid"]
    os.kill(victim, 9)  # the search process dies without warning (as the OOM killer does it)
    stdout, stderr = driver.communicate(timeout=600)
    assert driver.returncode == 0, stderr
    assert "submitted 1 searches as Ray tasks (1 CPU, 0 GPU each, 3 retries)" in _text(stderr)
    writers = [json.loads(line) for line in (run / "writers.jsonl").read_text().splitlines()]
    assert [w["resumed"] for w in writers] == [False, True], writers  # retried once, from the checkpoint
    assert writers[1]["took_over"] == f"its process {victim} on {writers[0]['host']} no longer exists"
    _same_end(uninterrupted, run)
    # the table is the uninterrupted run's (timing aside)
    ref = _cli("compare", "--from", uninterrupted, "--format", "json")
    assert ref.returncode == 0, ref.stderr
    assert _rows(stdout) == _rows(ref.stdout), (stdout, stderr)


def test_ray_missing_is_one_clear_paragraph(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    result = CliRunner().invoke(main, ["compare", "darts-1st", *TINY, "--save", str(tmp_path / "s"), "--executor",
                                       "ray"])
    assert result.exit_code == 2, result.output
    assert 'Install the extra: pip install "nasbench-pc[ray]".' in _text(result.output)


LONG = ["--epochs", "4", "--warmup-epochs", "1", "--limit", "320", "-C", "4", "--layers", "3", "--image-size", "8",
        "--batch-size", "16"]


def _stderr_lines(process: subprocess.Popen) -> list[str]:
    """The lines a process writes to stderr, collected as they come (in a thread)."""
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")), daemon=True).start()
    return lines


def _wait_for(condition, what: str, process: subprocess.Popen, timeout: float = 300) -> None:
    """Wait until ``condition()`` holds while ``process`` (the driver) still runs: a driver that ended fails at once,
    with what it said."""
    deadline = time.time() + timeout
    while not condition():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"waiting for {what}, the driver ended with status {process.returncode}:\n{out}\n{err}")
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_stopped_driver_reattaches_cancel_stops_the_job_and_the_same_command_goes_on(tmp_path):
    pytest.importorskip("submitit", reason='submitit is the [slurm] extra: pip install "nasbench-pc[slurm]"')
    _need_slurm()
    save = tmp_path / "save"
    run = save / "runs" / "pc-darts-seed0"
    line = ["compare", "pc-darts", *LONG, "--save", str(save), "--format", "json", "--executor", "slurm"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    start = [sys.executable, "-m", "nasbench_pc", *line]
    first = subprocess.Popen(start, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    _wait_for(lambda: (run / "checkpoint.pt").exists(), "the first checkpoint", first)
    [job] = [entry.job_id for entry in Ledger(save).entries()]
    # the job is held still (SIGSTOP through Slurm) until the cancel, so that it is alive then however fast it runs
    subprocess.run(["scontrol", "suspend", job], check=True, capture_output=True)
    first.send_signal(signal.SIGINT)  # Ctrl-C: the driver stops, its Slurm job does not
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 130, stderr
    assert "The driver stopped (Ctrl-C). Finished runs are kept" in _text(stderr)
    assert f"`nasbench-pc compare --cancel {save}` stops them." in _text(stderr)
    queue = subprocess.run(["squeue", "-h", "-o", "%i %T"], capture_output=True, text=True).stdout.split("\n")
    assert f"{job} SUSPENDED" in queue

    second = subprocess.Popen(start, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    said = _stderr_lines(second)
    _wait_for(lambda: any("reattached" in text for text in said), "the second driver to reattach", second)
    assert f"reattached to 1 live slurm jobs of an earlier call: {job}" in _text(" ".join(said))
    cancel = _cli("compare", "--cancel", save)
    assert cancel.returncode == 0, cancel.stderr
    assert f"Asked 1 unfinished runs in {save} to stop and cancelled jobs {job}" in _text(cancel.stdout)
    assert f"Stopped: no run in {save} is being written" in _text(cancel.stdout)
    second.wait(timeout=300)
    said_all = _text(" ".join(said))
    assert second.returncode == 143, said_all
    assert "submitted" not in said_all  # never submitted again
    assert "1 of 1 searches stopped on `compare --cancel` (their checkpoints are kept" in said_all
    state = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job, "-o", "State"], capture_output=True,
                           text=True).stdout.split()
    assert state and state[0].startswith("CANCELLED"), state
    done_before = len((run / "metrics.jsonl").read_text().splitlines())
    assert (run / "checkpoint.pt").exists() and not (run / "genotype.json").exists() and 1 <= done_before < 4

    third = _cli(*line)  # the same command: a new job continues the checkpoint
    assert third.returncode == 0, third.stderr
    assert "submitted 1 searches as slurm jobs" in _text(third.stderr)
    writers = [json.loads(w) for w in (run / "writers.jsonl").read_text().splitlines()]
    assert [w["resumed"] for w in writers] == [False, True] and writers[1]["job"] != job
    epochs = [json.loads(m)["epoch"] for m in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3, 4]
    assert not (run / ".stop-request").exists()


def test_cancel_stops_an_in_process_comparison_and_the_same_command_goes_on(tmp_path):
    save = tmp_path / "save"
    runs = save / "runs"
    line = ["compare", "pc-darts", "--seeds", "0", "1", *LONG[2:], "--epochs", "3", "--save", str(save), "--format",
            "json"]
    driver = subprocess.Popen([sys.executable, "-m", "nasbench_pc", *line], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"})
    _wait_for(lambda: (runs / "pc-darts-seed0" / "checkpoint.pt").exists(), "the first checkpoint", driver)
    driver.send_signal(signal.SIGSTOP)  # held still until the request is on disk, however fast the search runs
    cancel = subprocess.Popen([sys.executable, "-m", "nasbench_pc", "compare", "--cancel", str(save)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: (runs / "pc-darts-seed0" / ".stop-request").exists(), "the stop request", cancel)
    driver.send_signal(signal.SIGCONT)
    said, err = cancel.communicate(timeout=300)
    assert cancel.returncode == 0, err
    assert f"Asked 1 unfinished runs in {save} to stop;" in _text(said)
    stdout, stderr = driver.communicate(timeout=300)
    assert driver.returncode == 143 and stdout == "", stderr
    text = _text(stderr)
    assert "2 of 2 searches stopped on `compare --cancel`" in text
    assert "pc-darts seed 0 cancelled" in text and "pc-darts seed 1 cancelled" in text
    assert not (runs / "pc-darts-seed1").exists()  # the queue started nothing more

    again = _cli(*line)
    assert again.returncode == 0, again.stderr
    assert [r["seeds"] for r in json.loads(again.stdout)] == [[0, 1]]
    seed0 = [json.loads(w)["resumed"] for w in (runs / "pc-darts-seed0" / "writers.jsonl").read_text().splitlines()]
    seed1 = [json.loads(w)["resumed"] for w in (runs / "pc-darts-seed1" / "writers.jsonl").read_text().splitlines()]
    assert (seed0, seed1) == ([False, True], [False])
    epochs = [json.loads(m)["epoch"] for m in (runs / "pc-darts-seed0" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]


def test_a_job_of_two_processes_runs_its_search_under_torchrun(tmp_path):
    pytest.importorskip("submitit", reason='submitit is the [slurm] extra: pip install "nasbench-pc[slurm]"')
    save = tmp_path / "save"
    result = _cli("compare", "darts-1st", *TINY, "--save", save, "--format", "json", "--executor", "submitit-local",
                  "--executor-option", "processes=2")
    assert result.returncode == 0, result.stderr
    config = json.loads((save / "runs" / "darts-1st-seed0" / "config.json").read_text())
    assert (config["world_size"], config["backend"]) == (2, "gloo")  # two processes, one process group
    assert [r["method"] for r in json.loads(result.stdout)] == ["darts-1st"]
