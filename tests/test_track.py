"""``search --track``: the derived cell scored after every epoch (NAS-Bench-201's lookup through a benchmark file the
test builds, tests/nb201_file.py; its numbers are made up), recorded in metrics.jsonl, TensorBoard and
``compare --plot``, without changing the search; bad input refused before any work."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from nasbench_pc import genotypes
from nasbench_pc.cli import main

pytest.importorskip("nas_201_api", reason='the lookup reads the file through the [benchmark] extra (nas-bench-201)')
import nb201_file  # noqa: E402

SEARCH = ["search", "--space", "nas-bench-201", "--method", "darts-1st", "--epochs", "3", "--limit", "256",
          "--batch-size", "32", "--steps-per-epoch", "4", "--image-size", "16", "-C", "4", "--space-option",
          "cells_per_stage=1", "-q"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    return nb201_file.build(tmp_path_factory.mktemp("nb201") / "NAS-Bench-201-test.pth")


def _text(output: str) -> str:
    return " ".join(output.replace("│", " ").split())


def _squeezed(text: str) -> str:
    """Without any whitespace: a long path the error panel wrapped reads whole again."""
    return "".join(_text(text).split())


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_each_epoch_records_the_benchmark_accuracy_of_its_cell_and_the_search_is_unchanged(tmp_path, bench):
    tracked, plain = tmp_path / "tracked", tmp_path / "plain"
    result = CliRunner().invoke(main, [*SEARCH, "--track", "nas-bench-201", "--benchmark-file", str(bench), "--out",
                                       str(tracked)])
    assert result.exit_code == 0, result.output
    index = {cell: i for i, cell in enumerate(nb201_file.cells())}
    records = _records(tracked)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    for record in records:
        cell = genotypes.to_text(genotypes.from_dict(record["genotype"]))
        assert record["tracked"]["nb201_test_acc"] == pytest.approx(nb201_file.accuracy(index[cell]) / 100)
        assert math.isnan(record["tracked"]["nb201_valid_acc"])  # cifar10 trains on train + valid: none
    # the same search without tracking: the same architecture, bit for bit
    result = CliRunner().invoke(main, [*SEARCH, "--out", str(plain)])
    assert result.exit_code == 0, result.output
    a, b = (torch.load(run / "checkpoint.pt", weights_only=True)["model"] for run in (tracked, plain))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["train_loss"] for r in _records(plain)] == [r["train_loss"] for r in records]
    assert "tracked" not in _records(plain)[0]


def test_compare_tracks_every_run_and_plots_it(tmp_path, bench):
    pytest.importorskip("tensorboard")
    save, plots = tmp_path / "save", tmp_path / "plots"
    result = CliRunner().invoke(main, ["compare", "darts-1st", "pc-darts", *SEARCH[1:3], *SEARCH[5:-1], "--track",
                                       "nas-bench-201",
                                       "--benchmark-file", str(bench), "--save", str(save), "--plot", str(plots),
                                       "--format", "json", "--log", "tensorboard"])
    assert result.exit_code == 0, result.output
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for run in ("darts-1st-seed0", "pc-darts-seed0"):
        records = _records(save / "runs" / run)
        assert [sorted(r["tracked"]) for r in records] == [["nb201_test_acc", "nb201_valid_acc"]] * 3
        events = EventAccumulator(str(save / "runs" / run / "tensorboard"), size_guidance={"scalars": 0})
        events.Reload()
        assert [(e.step, e.value) for e in events.Scalars("epoch/tracked/nb201_test_acc")] == [
            (r["epoch"], pytest.approx(r["tracked"]["nb201_test_acc"], rel=1e-6)) for r in records]
        assert "epoch/tracked/nb201_valid_acc" not in events.Tags()["scalars"]  # NaN: nothing to draw
    assert (plots / "tracked.png").stat().st_size > 10_000


def test_without_the_file_the_search_is_refused_before_any_work(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [*SEARCH, "--track", "nas-bench-201", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert ("The nas-bench-201 evaluator looks architectures up in a NAS-Bench-201 benchmark file, and none was "
            "given. Pass --benchmark-file PATH:") in _text(result.output)
    assert not out.exists()
    missing = tmp_path / "nowhere.pth"
    result = CliRunner().invoke(main, [*SEARCH, "--track", "nas-bench-201", "--benchmark-file", str(missing),
                                       "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert _squeezed(f"The NAS-Bench-201 benchmark file {missing} does not exist.") in _squeezed(result.output)
    assert not out.exists()


def test_an_unreadable_file_or_another_space_is_refused_before_any_work(tmp_path, bench):
    junk = tmp_path / "junk.pth"
    junk.write_text("not a benchmark\n")
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [*SEARCH, "--track", "nas-bench-201", "--benchmark-file", str(junk), "--out",
                                       str(out)])
    assert result.exit_code == 2, result.output
    assert _squeezed(f"Could not read the NAS-Bench-201 benchmark file {junk}: ") in _squeezed(result.output)
    result = CliRunner().invoke(main, ["search", "--method", "darts-1st", "--epochs", "1", "--track", "nas-bench-201",
                                       "--benchmark-file", str(bench), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert ("--track nas-bench-201 looks the derived cell up in NAS-Bench-201, and this search runs on the darts "
            "search space.") in _text(result.output)
    result = CliRunner().invoke(main, [*SEARCH, "--track", "supernet-accuracy", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "the evaluator 'supernet-accuracy' reads a finished search run" in _text(result.output)
    assert not out.exists()


def test_options_of_a_tracked_evaluator_follow_its_name():
    from nasbench_pc.results.tracking import split_specs

    assert split_specs("nas-bench-201:hp=12,dataset=cifar100,synflow") == [
        "nas-bench-201:hp=12,dataset=cifar100", "synflow"]
    assert split_specs("synflow,nas-bench-201,hp=200") == ["synflow", "nas-bench-201:hp=200"]
