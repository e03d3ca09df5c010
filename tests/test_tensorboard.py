"""``--log tensorboard``: the event files read back with TensorBoard's own reader equal metrics.jsonl; a resume
continues them without a repeated step; a missing extra or an unknown logger is refused before any work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from nasbench_pc.cli import main

pytest.importorskip("tensorboard", reason='the [tensorboard] extra: pip install "nasbench-pc[tensorboard]"')
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader  # noqa: E402

from nasbench_pc.plugins import tensorboard_log  # noqa: E402

TINY = ["--limit", "256", "--batch-size", "32", "--steps-per-epoch", "4", "--image-size", "16", "-C", "4"]
EPOCH_FIELDS = ("train_loss", "train_acc", "arch_loss", "arch_acc", "lr", "skip_connects", "alpha_entropy_cell")


def _events(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "histograms": 0, "tensors": 0})
    events.Reload()
    return events


def _scalars(events: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_compare_logs_every_run_under_one_folder_and_the_events_equal_metrics_jsonl(tmp_path):
    save = tmp_path / "out"
    result = CliRunner().invoke(main, ["compare", "darts-1st", "pc-darts", "--space", "nas-bench-201", "--epochs", "3",
                                       "--space-option", "cells_per_stage=1", *TINY, "--log", "tensorboard",
                                       "--save", str(save)])
    assert result.exit_code == 0, result.output
    runs = sorted(p.parent.name for p in save.glob("runs/*/tensorboard"))
    assert runs == ["darts-1st-seed0", "pc-darts-seed0"]  # `tensorboard --logdir out` shows both
    for name in runs:
        run = save / "runs" / name
        events = _events(run / "tensorboard")
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        for field in EPOCH_FIELDS:  # TensorBoard keeps float32
            assert _scalars(events, f"epoch/{field}") == [
                (r["epoch"], pytest.approx(float(r[field]), rel=1e-6, abs=1e-7)) for r in records], field
        # 4 weight steps per epoch, counted across the run; the architecture is updated from epoch 1 here (no warm-up)
        for field in ("train_loss", "train_acc", "lr", "skip_connects", "alpha_entropy_cell", "arch_loss"):
            assert [step for step, _ in _scalars(events, f"step/{field}")] == list(range(1, 13)), field
        # the step's learning rate is the epoch's
        assert [v for _, v in _scalars(events, "step/lr")] == [
            pytest.approx(r["lr"], rel=1e-6) for r in records for _ in range(4)]
        # the last step's architecture is the epoch's: the same entropy and skip count as its record
        entropy = dict(_scalars(events, "step/alpha_entropy_cell"))
        assert [entropy[4 * r["epoch"]] for r in records] == [
            pytest.approx(r["alpha_entropy_cell"], rel=1e-6) for r in records]
        tags = events.Tags()
        assert sorted(tags["images"]) == ["arch/alphas_cell", "arch/cells"]
        assert [image.step for image in events.Images("arch/alphas_cell")] == [1, 2, 3]
        assert [h.step for h in events.Histograms("arch/alphas_cell")] == [1, 2, 3]
        # the settings and the last epoch's scores for the HParams tab
        hparams = events.PluginTagToContent("hparams")
        assert sorted(hparams) == ["_hparams_/experiment", "_hparams_/session_end_info",
                                   "_hparams_/session_start_info"]
        start = hparams["_hparams_/session_start_info"].decode("latin-1")
        assert name.rsplit("-seed", 1)[0] in start and "nas-bench-201" in start
        assert _scalars(events, "hparams/arch_acc") == [(3, pytest.approx(records[-1]["arch_acc"], rel=1e-6))]


ARGS = ["--method", "pc-darts", "--dataset", "synthetic", "--epochs", "2", "--warmup-epochs", "1", "--limit", "256",
        "-C", "4", "--layers", "3", "--image-size", "8", "--batch-size", "8", "--threads", "1", "-q",
        "--log", "tensorboard"]  # 16 steps an epoch


def _last_step(folder: Path) -> int:
    """The largest step of the step-counted events written so far (0 before any)."""
    steps = [event.step for path in folder.glob("events.out.tfevents.*")
             for event in LegacyEventFileLoader(str(path)).Load()
             if event.HasField("summary") and event.summary.value[0].tag.startswith("step/")]
    return max(steps, default=0)


def test_a_run_stopped_mid_epoch_and_resumed_logs_each_step_once(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "COLUMNS": "400"}
    victim = subprocess.Popen([sys.executable, "-m", "nasbench_pc", "search", *ARGS, "--out", str(run)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while _last_step(run / "tensorboard") < 18:  # epoch 1 is over and epoch 2 has begun (each step is flushed)
        assert victim.poll() is None and time.monotonic() < deadline, victim.stdout.read()
        time.sleep(0.05)
    victim.send_signal(signal.SIGTERM)
    assert victim.wait(timeout=120) == 143, victim.stdout.read()
    stopped = torch.load(run / "checkpoint.pt", weights_only=True)
    assert stopped["epoch"] == 1 and 2 <= stopped["step"] < 16
    before = _events(run / "tensorboard")
    assert [s for s, _ in _scalars(before, "step/train_loss")] == list(range(1, 17 + stopped["step"]))

    resumed = subprocess.run([sys.executable, "-m", "nasbench_pc", "search", "--resume", str(run), "--threads", "1",
                              "-q"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    events = _events(run / "tensorboard")
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [s for s, _ in _scalars(events, "step/train_loss")] == list(range(1, 33))  # once each, no gap
    assert _scalars(events, "epoch/train_loss") == [(r["epoch"], pytest.approx(r["train_loss"], rel=1e-6))
                                                    for r in records]
    assert [s for s, _ in _scalars(events, "step/arch_loss")] == list(range(17, 33))  # warm-up epoch: none
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 2  # the rewritten one and the new one


def _fake_run(run_dir: Path, epochs: int, steps: int) -> None:
    """Log ``epochs`` epochs of 4 steps and ``steps`` more through the hooks, as a process that then died would."""
    loggers = ("tensorboard",)
    tensorboard_log.on_run_start(run_dir, [], loggers)
    for step in range(1, 4 * epochs + steps + 1):
        tensorboard_log.on_step_end(run_dir, step, {"epoch": (step - 1) // 4 + 1, "train_loss": float(step)}, loggers)
        if step % 4 == 0:
            tensorboard_log.on_epoch_end("train", run_dir, {}, {"epoch": step // 4, "train_loss": step / 4}, loggers)
    tensorboard_log._runs.pop(run_dir).writer.flush()  # killed: no end hook


def test_a_resume_drops_what_the_checkpoint_does_not_cover(tmp_path):
    _fake_run(tmp_path, epochs=2, steps=3)  # steps 1-11 and epochs 1-2 on disk; say the checkpoint is at step 6
    loggers = ("tensorboard",)
    history = [{"epoch": 1}]
    tensorboard_log.on_run_start(tmp_path, history, loggers)
    tensorboard_log.on_step_end(tmp_path, 7, {"epoch": 2, "train_loss": 70.0}, loggers)
    tensorboard_log.on_epoch_end("train", tmp_path, {}, {"epoch": 2, "train_loss": 20.0}, loggers)
    tensorboard_log._runs.pop(tmp_path).close()
    events = _events(tmp_path / "tensorboard")
    assert _scalars(events, "step/train_loss") == [(s, float(s)) for s in range(1, 7)] + [(7, 70.0)]
    assert _scalars(events, "epoch/train_loss") == [(1, 1.0), (2, 20.0)]


def test_without_the_extra_the_search_is_refused_before_its_folder_exists(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["search", "--method", "pc-darts", *TINY, "--epochs", "1", "--log",
                                       "tensorboard", "--out", str(out)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.replace("│", " ").split())
    assert 'Install the extra: pip install "nasbench-pc[tensorboard]", or leave out --log tensorboard.' in text
    assert not out.exists()


def test_an_unknown_logger_names_the_ones_there_are(tmp_path):
    result = CliRunner().invoke(main, ["compare", "pc-darts", *TINY, "--epochs", "1", "--log", "tensorbord",
                                       "--save", str(tmp_path / "s")])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.replace("│", " ").split())
    assert "tensorbord" in text and "tensorboard" in text
    assert not (tmp_path / "s").exists()


def test_train_logs_its_steps_and_epochs(tmp_path):
    out = tmp_path / "train"
    result = CliRunner().invoke(main, ["train", "PC_DARTS_cifar", "--limit", "24", "--epochs", "2", "--batch-size",
                                       "12", "-C", "4", "--layers", "3", "--out", str(out), "--log", "tensorboard",
                                       "-q"])
    assert result.exit_code == 0, result.output
    events = _events(out / "tensorboard")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert _scalars(events, "epoch/test_top1") == [(r["epoch"], pytest.approx(r["test_top1"], rel=1e-6, abs=1e-7))
                                                  for r in records]
    assert [s for s, _ in _scalars(events, "step/train_loss")] == [1, 2, 3, 4]  # 24 images, batches of 12
    assert "images" not in events.Tags() or not events.Tags()["images"]  # no architecture to draw
    assert _scalars(events, "hparams/test_top1") == [(2, pytest.approx(records[-1]["test_top1"], rel=1e-6))]
