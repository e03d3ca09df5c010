"""`compare`, `bench` and `plan` run end to end on tiny supernets."""

import json

import pytest
from click.testing import CliRunner

from nasbench_pc.cli import main
from nasbench_pc.console import console

TINY = ["--epochs", "1", "--limit", "64", "--steps-per-epoch", "2", "--batch-size", "8", "--init-channels", "4",
        "--layers", "3", "--image-size", "16"]


def test_compare_runs_saves_and_reaggregates(tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(main, ["compare", "darts-1st", "pc-darts", "--seeds", "0", "1", *TINY, "--save", str(out),
                                  "--format", "json", "--plot", str(tmp_path / "plots")])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["method"] for r in rows] == ["darts-1st", "pc-darts"]
    assert [r["seeds"] for r in rows] == [[0, 1], [0, 1]]
    assert rows[1]["k"] == 4 and rows[1]["normalizer"] == "edge"
    assert rows[0]["memory_label"] == "saved for backward (CPU)"
    # partial channels: at most 1/2.5 of the full-channel supernet's saved bytes at the same batch
    assert rows[1]["memory_vs_darts"] is None  # no 'darts' among these methods: no ratio column
    assert rows[1]["memory_mib"][0] < rows[0]["memory_mib"][0] / 2.5
    assert 0.0 <= rows[0]["edge_stability"] <= 1.0
    assert sorted(p.name for p in out.iterdir()) == ["compare.csv", "compare.json", "compare.md", "runs"]
    plots = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert plots == ["accuracy.png", "arch_trajectories.png", "cells_darts-1st.png", "cells_pc-darts.png",
                     "memory_vs_batch.png"]
    assert all((tmp_path / "plots" / name).read_bytes()[:4] == b"\x89PNG" for name in plots)
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["darts-1st-seed0", "darts-1st-seed1",
                                                               "pc-darts-seed0", "pc-darts-seed1"]
    again = runner.invoke(main, ["compare", "--from", str(out / "runs" / "*"), "--format", "json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == rows
    # finished runs are never redone: a second identical command only re-aggregates
    before = (out / "runs" / "pc-darts-seed0" / "metrics.jsonl").stat().st_mtime_ns
    runner.invoke(main, ["compare", "darts-1st", "pc-darts", "--seeds", "0", "1", *TINY, "--save", str(out)])
    assert (out / "runs" / "pc-darts-seed0" / "metrics.jsonl").stat().st_mtime_ns == before


def test_compare_rejects_bad_input_clearly(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["compare", "darts", "nope", *TINY, "--save", str(tmp_path)])
    assert result.exit_code == 2 and "Unknown method 'nope'" in result.output
    assert not (tmp_path / "runs").exists()  # nothing ran
    result = runner.invoke(main, ["compare", "--from", str(tmp_path / "missing*")])
    assert result.exit_code == 2 and "No search runs match" in result.output


def test_bench_reports_saved_bytes_ratio_and_budget(tmp_path):
    runner = CliRunner()
    report = tmp_path / "bench.json"
    result = runner.invoke(main, ["bench", "--batch", "4", "8", "--init-channels", "16", "--layers", "5",
                                  "--image-size", "16", "--repeats", "1", "--budget", "1GB", "--json", str(report)])
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    points = {(p["method"], p["batch"]): p for p in data["points"]}
    assert sorted(points) == [("darts", 4), ("darts", 8), ("pc-darts", 4), ("pc-darts", 8)]
    for batch in (4, 8):
        assert points["darts", batch]["memory_bytes"] >= 3 * points["pc-darts", batch]["memory_bytes"]
    fits = {f["method"]: f for f in data["budget"]["fits"]}
    assert fits["pc-darts"]["batch"] >= 2.5 * fits["darts"]["batch"] > 0  # batches are rounded down to 8s
    assert fits["darts"]["extrapolated"] is True


def test_plan_scales_learning_rate_with_batch():
    console.width = 200
    result = CliRunner().invoke(main, ["plan", "pc-darts", "--budget", "500MB", "--init-channels", "8",
                                       "--layers", "3", "--image-size", "16"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "pc-darts" in line).split("│")
    batch, lr = int(row[2]), float(row[3])
    assert batch > 0 and batch % 8 == 0
    assert lr == pytest.approx(0.1 * batch / 256, rel=1e-3)
    assert "lr 0.1 at batch 256" in row[5]
    result = CliRunner().invoke(main, ["plan", "--budget", "lots"])
    assert result.exit_code == 2 and "Cannot read the memory budget 'lots'" in result.output
