"""`compare` on a --save folder it shares: with its own earlier runs (reused only when they are this comparison's),
with a run stopped mid-way (continued, also by `--devices` workers), and with a second driver at the same time
(each run searched once, by one writer; both print the same table)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from nasbench_pc.cli import main

TINY = ["--epochs", "1", "--limit", "64", "--steps-per-epoch", "2", "--batch-size", "8", "--init-channels", "4",
        "--layers", "3", "--image-size", "16"]


def _text(output: str) -> str:
    return " ".join(output.replace("│", " ").split())


def _cli(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "nasbench_pc", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


def _writers(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "writers.jsonl").read_text().splitlines()]


def test_a_run_of_another_budget_or_setting_in_save_is_refused_never_reused(tmp_path):
    runner, out = CliRunner(), tmp_path / "out"
    first = runner.invoke(main, ["compare", "darts-1st", *TINY, "--save", str(out), "--format", "json"])
    assert first.exit_code == 0, first.output
    run = out / "runs" / "darts-1st-seed0"
    kept = {name: (run / name).read_bytes() for name in ("metrics.jsonl", "genotype.json", "checkpoint.pt")}

    again = runner.invoke(main, ["compare", "darts-1st", *TINY, "--save", str(out), "--format", "json"])
    assert again.exit_code == 0, again.output  # the same comparison reuses its finished run
    assert json.loads(again.stdout) == json.loads(first.stdout)
    assert len(_writers(run)) == 1  # searched once

    longer = [*TINY[:1], "2", *TINY[2:]]  # --epochs 2
    for args, differs in ((longer, "epochs 1 there, 2 here"),
                          ([*TINY, "--lr", "0.01"], "lr 0.003125 there, 0.01 here"),
                          ([*TINY, "--dataset", "synthetic", "--limit", "32"], "limit 64 there, 32 here")):
        refused = runner.invoke(main, ["compare", "darts-1st", *args, "--save", str(out), "--format", "json"])
        assert refused.exit_code == 2, refused.output
        text = _text(refused.output).replace(" ", "")  # rich wraps the long path anywhere
        assert f"{run}holdsafinishedsearchwithothersettingsthanaskedfor({differs})".replace(" ", "") in text, text
        assert f"Chooseanother--saveforthesesettings,ordelete{run}tosearchitagainwiththem." in text
        assert "Traceback" not in refused.output
    assert {name: (run / name).read_bytes() for name in kept} == kept  # nothing of the finished run touched
    # the machine is not part of a run's settings: another device or data folder reuses it
    moved = runner.invoke(main, ["compare", "darts-1st", *TINY, "--save", str(out), "--format", "json",
                                 "--device", "cpu", "--workers", "0"])
    assert moved.exit_code == 0, moved.output


def test_devices_workers_continue_a_run_stopped_by_sigterm(tmp_path):
    slow = ["--epochs", "2", "--limit", "256", "--steps-per-epoch", "16", "--batch-size", "8", "--init-channels",
            "4", "--layers", "3", "--image-size", "16"]
    save = tmp_path / "save"
    run = save / "runs" / "darts-1st-seed0"
    # what a --devices worker starts, stopped after its first checkpoint (the driver was stopped as well)
    victim = _cli("search", "--quiet", "--method", "darts-1st", "--seed", "0", "--device", "cpu", "--out", run, *slow)
    deadline = time.time() + 240
    while not (run / "checkpoint.pt").exists() and victim.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    victim.send_signal(signal.SIGTERM)
    _, err = victim.communicate(timeout=240)
    assert victim.returncode == 128 + signal.SIGTERM, err
    assert not (run / "genotype.json").exists()

    driver = _cli("compare", "darts-1st", "pc-darts", "--seeds", "0", *slow, "--devices", "cpu,cpu", "--save", save,
                  "--format", "json")
    whole = tmp_path / "whole"  # the uninterrupted run, side by side with the driver
    ref = _cli("search", "--quiet", "--method", "darts-1st", "--seed", "0", "--device", "cpu", "--out", whole, *slow)
    stdout, stderr = driver.communicate(timeout=600)
    assert driver.returncode == 0, stderr
    rows = json.loads(stdout)
    assert [r["method"] for r in rows] == ["darts-1st", "pc-darts"]
    assert [w["resumed"] for w in _writers(run)] == [False, True]  # continued, not started over
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]

    # and it ends where an uninterrupted run ends (CPU, one thread, fixed seed)
    assert ref.wait(timeout=600) == 0, ref.stderr.read()
    assert (run / "genotype.json").read_text() == (whole / "genotype.json").read_text()


def test_two_drivers_on_one_save_search_each_run_once_and_print_the_same_table(tmp_path):
    save = tmp_path / "save"
    args = ["compare", "darts-1st", "pc-darts", "--seeds", "0", "1", "--epochs", "2", "--limit", "128",
            "--steps-per-epoch", "6", "--batch-size", "8", "--init-channels", "4", "--layers", "3", "--image-size",
            "16", "--save", save, "--format", "json"]
    drivers = [_cli(*args) for _ in range(2)]  # as two hosts on a shared filesystem would
    outputs = [d.communicate(timeout=600) for d in drivers]
    assert [d.returncode for d in drivers] == [0, 0], [err[-2000:] for _, err in outputs]
    assert json.loads(outputs[0][0]) == json.loads(outputs[1][0])
    assert "Traceback" not in outputs[0][1] + outputs[1][1]
    runs = sorted((save / "runs").iterdir())
    assert [r.name for r in runs] == ["darts-1st-seed0", "darts-1st-seed1", "pc-darts-seed0", "pc-darts-seed1"]
    writers = [_writers(r) for r in runs]
    assert all(len(w) == 1 for w in writers), writers  # each run searched exactly once
    assert {w[0]["pid"] for w in writers} <= {d.pid for d in drivers}
    for run in runs:
        epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert epochs == [1, 2]
        assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []  # no lease, no staging file
    json.loads((save / "compare.json").read_text())  # whole
