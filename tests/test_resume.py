"""Kill a search with SIGKILL mid-run, resume it, and get the uninterrupted run's result bit for bit."""

import json
import signal
import subprocess
import sys
import time

import torch

from nasbench_pc import genotypes
from nasbench_pc.search import save_checkpoint

ARGS = ["--method", "pc-darts", "--dataset", "synthetic", "--epochs", "3", "--warmup-epochs", "1", "--limit", "160",
        "-C", "4", "--layers", "3", "--image-size", "8", "--batch-size", "16", "--threads", "1", "-q"]


def _search(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nasbench_pc", "search", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _arch(run_dir):
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    return state, {k: v for k, v in state["model"].items() if k.startswith(("alphas_", "betas_"))}


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    reference = _search(*ARGS, "--out", str(full))
    victim = _search(*ARGS, "--out", str(killed))
    deadline = time.monotonic() + 240
    while not (killed / "checkpoint.pt").exists():  # epoch 1 is finished once its checkpoint exists
        assert victim.poll() is None and time.monotonic() < deadline, victim.stdout.read() if victim.stdout else ""
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    stopped_at = torch.load(killed / "checkpoint.pt", weights_only=True)["epoch"]
    assert stopped_at < 3 and not (killed / "genotype.json").exists()  # killed before the search finished

    resumed = _search("--resume", str(killed), "--threads", "1", "-q")
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read()
    assert reference.wait(timeout=300) == 0, reference.stdout.read()

    full_state, full_arch = _arch(full)
    resumed_state, resumed_arch = _arch(killed)
    assert resumed_state["epoch"] == full_state["epoch"] == 3
    assert full_arch.keys() == resumed_arch.keys() and len(full_arch) == 4  # alphas and betas
    for name in full_arch:
        assert torch.equal(full_arch[name], resumed_arch[name]), name
    for name, tensor in full_state["model"].items():  # weights and BN statistics too
        assert torch.equal(tensor, resumed_state["model"][name]), name
    assert genotypes.load(killed / "genotype.json") == genotypes.load(full / "genotype.json")
    full_metrics = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines()]
    resumed_metrics = [json.loads(x) for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in resumed_metrics] == [1, 2, 3]
    assert [m["train_loss"] for m in resumed_metrics] == [m["train_loss"] for m in full_metrics]
    assert [m["arch_updates"] for m in resumed_metrics] == [False, True, True]


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint({"epoch": 1}, path)

    def crash(obj, fh):  # a kill during the write leaves only the temporary file behind
        fh.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    try:
        save_checkpoint({"epoch": 2}, path)
    except KeyboardInterrupt:
        pass
    assert torch.load(path, weights_only=True) == {"epoch": 1}


def test_resuming_from_a_corrupt_checkpoint_is_a_clear_error(tmp_path):
    from cli_output import flat
    from click.testing import CliRunner

    from nasbench_pc.cli import main

    run = tmp_path / "run"
    run.mkdir()
    args = ["search", "--method", "pc-darts", "--epochs", "1", "--limit", "64", "--steps-per-epoch", "1",
            "--batch-size", "8", "-C", "4", "--layers", "3", "--image-size", "16", "--out", str(run), "--quiet"]
    assert CliRunner().invoke(main, args).exit_code == 0
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    result = CliRunner().invoke(main, ["search", "--resume", str(run)])
    assert result.exit_code == 2
    assert "cannot be read" in flat(result.output)
    assert "damaged or not a nasbench-pc search checkpoint" in flat(result.output)
    assert "Traceback" not in result.output
    assert (run / "metrics.jsonl").read_text().count("\n") == 1  # the finished epoch is still there
