"""The comparison driver's bookkeeping: the ledger of submitted jobs, stop requests, how a job's exit reads, and
the live status table, which reads each run folder as any writer on any host leaves it."""

import json
import os
import signal
import time
from pathlib import Path

import pytest
from rich.console import Console

from nasbench_pc.records import SearchJob, search_command
from nasbench_pc.results.board import JobBoard, read_run
from nasbench_pc.runtime import jobs
from nasbench_pc.runtime.interrupt import StopSignals
from nasbench_pc.runtime.lease import Lease
from nasbench_pc.search import SearchConfig


def _job(tmp_path: Path, seed: int = 0, epochs: int = 4) -> SearchJob:
    run = tmp_path / "runs" / f"pc-darts-seed{seed}"
    return SearchJob(name=run.name, method="pc-darts", seed=seed, run_dir=run, argv=("search",),
                     config=SearchConfig(method="pc-darts", epochs=epochs))


def _metrics(run: Path, accs: list[float]) -> None:
    run.mkdir(parents=True, exist_ok=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps({"epoch": i + 1, "arch_acc": a}) + "\n"
                                               for i, a in enumerate(accs)))


def _render(board: JobBoard) -> str:
    console = Console(width=200, record=True, file=open(os.devnull, "w"))
    console.print(board)
    return " ".join(console.export_text().replace("│", " ").split())


def test_the_board_reads_each_run_folder_and_what_the_executor_said(tmp_path):
    a, b, c, d = (_job(tmp_path, i) for i in range(4))
    board = JobBoard([a, b, c, d], executor="slurm", save=tmp_path)
    assert [board.state(row) for row in board.rows.values()] == ["pending"] * 4
    board.submitted(a, "17_0", "/logs/17_0.err")
    board.submitted(b, "17_1")
    _metrics(a.run_dir, [0.25, 0.3125])
    _metrics(b.run_dir, [0.5])
    (b.run_dir / "checkpoint.pt").write_bytes(b"x")  # started once, no writer now, still queued: requeued
    _metrics(c.run_dir, [0.5, 0.5, 0.5, 0.75])
    (c.run_dir / "genotype.json").write_text("{}")
    board.update(d, "failed", log="/logs/17_3.err", error="RuntimeError: boom")
    with Lease(a.run_dir):  # a live writer: running, on this host, its pid
        time.sleep(1.05)  # past the board's cached reading
        states = [board.state(row) for row in board.rows.values()]
        text = _render(board)
    assert states == ["running", "requeued", "done", "failed"]
    assert "4 searches under slurm: 1 running, 1 requeued, 1 failed, 1 done" in text
    assert f"pc-darts seed 0 running vm (pid {os.getpid()}) 2/4 31.2%" in text.replace(os.uname().nodename, "vm")
    assert "pc-darts seed 1 requeued job 17_1 1/4 50.0%" in text
    assert "pc-darts seed 3 failed job" not in text and "/logs/17_3.err" in text
    assert board.earlier(a).job_id == "17_0" and board.earlier(c) is None


def test_a_later_driver_finds_every_earlier_drivers_submissions(tmp_path, monkeypatch):
    job = _job(tmp_path)
    first = jobs.Ledger(tmp_path)
    first.add(job.run_dir, "slurm", "5_0", "/l/5_0.err")
    monkeypatch.setattr(os, "getpid", lambda: 999999)  # another driver (another file: no two writers of one)
    second = jobs.Ledger(tmp_path)
    assert second.path != first.path
    second.add(job.run_dir, "slurm", "9_0")
    second.add(job.run_dir, "ray", "abc")
    assert [(s.executor, s.job_id) for s in jobs.Ledger(tmp_path).entries()] == [
        ("slurm", "5_0"), ("slurm", "9_0"), ("ray", "abc")]
    assert second.latest(job.run_dir, "slurm").job_id == "9_0"
    assert second.latest(job.run_dir).job_id == "abc"
    assert second.latest(tmp_path / "elsewhere") is None


def test_a_jobs_exit_status_reads_as_done_held_cancelled_or_failed(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    assert jobs.ended_as(75, run) == "held"
    assert jobs.ended_as(1, run) is None  # failed
    assert jobs.ended_as(143, run) is None  # a stop nobody asked for through the folder: not cancelled
    jobs.request_stop(run, "test")
    assert jobs.ended_as(143, run) == "cancelled"
    assert jobs.ended_as(1, run) == "cancelled"  # torchrun exits 1 whatever its processes did
    with Lease(run):
        assert jobs.ended_as(1, run) == "held"  # a live writer that is not this job's
    (run / "genotype.json").write_text("{}")
    assert jobs.ended_as(1, run) == "done"
    jobs.clear_stop(run)
    assert not jobs.stop_requested(run)


def test_a_stop_request_on_disk_stops_like_sigterm(tmp_path):
    request = tmp_path / jobs.STOP_REQUEST
    stop = StopSignals(request)
    assert not stop.requested
    request.write_text("{}")
    stop._looked = 0.0  # (looked at most once a second)
    assert stop.requested and stop.signum == signal.SIGTERM
    error = stop.interrupted("search", "RUN", "nasbench-pc search --resume RUN")
    assert error.exit_code == jobs.STOPPED_EXIT == 143
    assert str(error).startswith(f"A stop request ({request}) received: the search stopped after finishing its "
                                 f"current step and saved a checkpoint in RUN.")


def test_a_job_of_several_processes_is_torchrun_on_its_node():
    one = search_command(["search", "--quiet"], "cuda")
    assert one[1:] == ["-m", "nasbench_pc", "search", "--quiet", "--device", "cuda"]
    four = search_command(["search", "--quiet"], "cuda", processes=4)
    assert four[1:] == ["-m", "nasbench_pc.runtime.torchrun", "--standalone", "--nproc_per_node", "4", "-m",
                        "nasbench_pc", "search", "--quiet", "--device", "cuda"]


def test_slurm_jobs_take_one_process_per_gpu_on_one_node():
    executor = pytest.importorskip("plugins.submitit_executor")
    assert executor.processes_per_job({"gpus_per_node": 8}, None) == 8
    assert executor.processes_per_job({"gpus_per_node": 8}, "2") == 2
    assert executor.processes_per_job({}, None) == 1
    with pytest.raises(Exception, match="nodes>1 is not supported"):
        executor.processes_per_job({"gpus_per_node": 4, "nodes": 2}, None)
    with pytest.raises(Exception, match="leave tasks_per_node at 1"):
        executor.processes_per_job({"gpus_per_node": 4, "tasks_per_node": 4}, None)
    with pytest.raises(Exception, match="take whole numbers"):
        executor.processes_per_job({}, "two")


def test_read_run_skips_a_line_being_written(tmp_path):
    _metrics(tmp_path, [0.5])
    with open(tmp_path / "metrics.jsonl", "a") as fh:
        fh.write('{"epoch": 2, "arch')
    seen = read_run(tmp_path)
    assert (seen.epochs, seen.arch_acc, seen.done, seen.writer) == (1, 0.5, False, None)
