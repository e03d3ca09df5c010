"""`compare`, `bench` and `plan` run end to end on tiny supernets."""

import json

import pytest
from click.testing import CliRunner

from nasbench_pc import genotypes
from nasbench_pc.cli import main
from nasbench_pc.cli.compare import _cli_args, default_methods
from nasbench_pc.console import console
from nasbench_pc.errors import ConfigError
from nasbench_pc.networks.cost import genotype_cost


def _text(output: str) -> str:
    """The output as one line of words (rich wraps lines and draws panel borders)."""
    return " ".join(output.replace("│", " ").split())


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
    assert rows[1]["memory_mib"][0] < rows[0]["memory_mib"][0] / 2.5
    # the ratios divide by the table's first method, darts-1st
    assert [r["baseline"] for r in rows] == ["darts-1st", "darts-1st"]
    assert (rows[0]["memory_vs_baseline"], rows[0]["time_vs_baseline"]) == (1.0, 1.0)
    assert rows[1]["memory_vs_baseline"] == pytest.approx(rows[1]["memory_mib"][0] / rows[0]["memory_mib"][0])
    assert rows[1]["time_vs_baseline"] == pytest.approx(rows[1]["step_seconds"][0] / rows[0]["step_seconds"][0])
    assert "memory vs darts-1st,step s,step vs darts-1st" in (out / "compare.csv").read_text().splitlines()[0]
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
    # --baseline picks the denominator; the rows keep their order
    by_pc = runner.invoke(main, ["compare", "--from", str(out / "runs" / "*"), "--format", "json", "--baseline",
                                 "pc-darts"])
    assert by_pc.exit_code == 0, by_pc.output
    pc_rows = json.loads(by_pc.stdout)
    assert [(r["method"], r["baseline"]) for r in pc_rows] == [("darts-1st", "pc-darts"), ("pc-darts", "pc-darts")]
    assert pc_rows[0]["memory_vs_baseline"] == pytest.approx(rows[0]["memory_mib"][0] / rows[1]["memory_mib"][0])
    assert pc_rows[0]["time_vs_baseline"] == pytest.approx(rows[0]["step_seconds"][0] / rows[1]["step_seconds"][0])
    assert (pc_rows[1]["memory_vs_baseline"], pc_rows[1]["time_vs_baseline"]) == (1.0, 1.0)
    unknown = runner.invoke(main, ["compare", "--from", str(out / "runs" / "*"), "--baseline", "darts"])
    assert unknown.exit_code == 2 and "Traceback" not in unknown.output
    assert ("--baseline 'darts' is not among the compared methods (darts-1st, pc-darts)" in _text(unknown.output))
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
    # a baseline that is not compared is one paragraph, before any search; the message lists the methods compared
    # (with none named: the default ones, in the table's order) and the fix
    result = runner.invoke(main, ["compare", "--baseline", "darts-1st", *TINY, "--save", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()  # nothing ran
    text = _text(result.output)
    assert ("--baseline 'darts-1st' is not among the compared methods (darts, pc-darts, pc-only, en-only)" in text
            and "leave --baseline out to compare against the first (darts)" in text)
    result = runner.invoke(main, ["compare", "pc-darts", "darts", "--baseline", "en-only", *TINY])
    assert result.exit_code == 2 and "not among the compared methods (darts, pc-darts)" in _text(result.output)


def test_methods_declare_the_default_list():
    assert default_methods() == ["darts", "pc-darts", "pc-only", "en-only"]  # by default_rank
    # bench and plan take them too when none is named (seen in errors raised before anything is measured)
    result = CliRunner().invoke(main, ["bench", "--baseline", "darts-1st"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--baseline 'darts-1st' is not among the compared methods (darts, pc-darts, pc-only, en-only)" in _text(
        result.output)
    result = CliRunner().invoke(main, ["plan", "--budget", "1GB", "--sampler-option", "nope=1"])
    assert result.exit_code == 2
    assert "takes the option 'nope' (darts, pc-darts, pc-only, en-only)" in _text(result.output)


def test_bench_reports_saved_bytes_ratio_and_budget(tmp_path):
    runner = CliRunner()
    report = tmp_path / "bench.json"
    result = runner.invoke(main, ["bench", "darts", "pc-darts", "--batch", "4", "8", "--init-channels", "16",
                                  "--layers", "5", "--image-size", "16", "--repeats", "1", "--budget", "1GB", "--json",
                                  str(report)])
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["baseline"] == "darts"  # the first method
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


NB201_TINY = ["--space", "nas-bench-201", "--epochs", "1", "--limit", "64", "--steps-per-epoch", "2", "--batch-size",
              "8", "--init-channels", "8", "--space-option", "cells_per_stage=1", "--image-size", "16"]


def test_compare_runs_the_methods_on_the_space_given(tmp_path, monkeypatch):
    monkeypatch.setattr(console, "width", 200)
    runner = CliRunner()
    out = tmp_path / "nb201"
    result = runner.invoke(main, ["compare", "darts-1st", "pc-darts", *NB201_TINY, "--save", str(out), "--plot",
                                  str(tmp_path / "plots")])
    assert result.exit_code == 0, result.output
    plots = sorted(p.name for p in (tmp_path / "plots").iterdir())  # the cells as the space draws them
    assert plots == ["accuracy.png", "arch_trajectories.png", "cells_darts-1st.png", "cells_pc-darts.png",
                     "memory_vs_batch.png"]
    assert "darts-1st vs pc-darts on nas-bench-201" in result.output
    assert "skips (of 6)" in result.output
    rows = json.loads((out / "compare.json").read_text())
    assert [(r["method"], r["space"], r["k"], r["skip_edges"]) for r in rows] == [
        ("darts-1st", "nas-bench-201", None, 6), ("pc-darts", "nas-bench-201", 4, 6)]
    for row in rows:
        best = genotypes.from_dict(row["best_genotype"], space="nas-bench-201")
        # printed as the space reads it, node by node; the saved table keeps the benchmark's string
        lines = genotypes.space_of(best).cell_lines(best)["cell"]
        assert all(line in result.output for line in lines)
        assert genotypes.to_text(best) in (out / "compare.csv").read_text()
        assert row["derived_params"] == genotype_cost(best).params  # nasbench201_cifar at C=16, N=5
    config = json.loads((out / "runs" / "pc-darts-seed0" / "config.json").read_text())["config"]
    assert (config["space"], config["space_options"], config["sampler_options"]) == (
        "nas-bench-201",
        {"init_channels": 8, "cells_per_stage": 1, "track_running_stats": True, "checkpoint_cells": False}, {"k": 4})
    # runs of two spaces are never one table: one table each
    darts = tmp_path / "darts"
    assert runner.invoke(main, ["compare", "darts-1st", *TINY, "--save", str(darts)]).exit_code == 0
    both = ["--from", str(out / "runs" / "*"), "--from", str(darts / "runs" / "*")]
    mixed = runner.invoke(main, ["compare", *both, "--format", "json"])
    assert mixed.exit_code == 0, mixed.output
    tables = json.loads(mixed.output)
    assert {space: [r["method"] for r in rows] for space, rows in tables.items()} == {
        "nas-bench-201": ["darts-1st", "pc-darts"], "darts": ["darts-1st"]}
    assert _untimed(tables["nas-bench-201"]) == _untimed(rows)
    assert _untimed(tables["darts"]) == _untimed(json.loads((darts / "compare.json").read_text()))
    csv = runner.invoke(main, ["compare", *both, "--format", "csv"])
    assert csv.exit_code == 2 and "--format csv prints one table, and these runs come from 2 search spaces" in \
        " ".join(csv.output.replace("│", " ").split())


def _untimed(rows: list[dict]) -> list[dict]:
    timing = ("step_seconds", "time_vs_baseline", "epoch_seconds", "search_hours", "images_per_second")
    return [{k: v for k, v in row.items() if not any(t in k for t in timing)} for row in rows]


def test_several_spaces_in_one_call_give_one_table_each_under_one_save(tmp_path, monkeypatch):
    monkeypatch.setattr(console, "width", 200)
    runner = CliRunner()
    save = tmp_path / "both"
    # each space takes the shape options it has: --layers goes to darts, cells_per_stage to nas-bench-201
    result = runner.invoke(main, ["compare", "darts-1st", "--space", "darts", "--space", "nas-bench-201", *TINY,
                                  "--space-option", "cells_per_stage=1", "--save", str(save), "--format", "markdown"])
    assert result.exit_code == 0, result.output
    assert "## darts\n" in result.output and "## nas-bench-201\n" in result.output
    for space, skips in (("darts", 8), ("nas-bench-201", 6)):
        [row] = json.loads((save / space / "compare.json").read_text())
        assert (row["space"], row["skip_edges"], row["method"]) == (space, skips, "darts-1st")
        config = json.loads((save / space / "runs" / "darts-1st-seed0" / "config.json").read_text())["config"]
        assert config["space"] == space and config["space_options"]["init_channels"] == 4
    assert json.loads((save / "darts" / "runs" / "darts-1st-seed0" / "config.json").read_text())["config"][
        "space_options"]["layers"] == 3
    alone = tmp_path / "alone"  # the darts table is the one a single-space comparison gives
    assert runner.invoke(main, ["compare", "darts-1st", *TINY, "--save", str(alone)]).exit_code == 0
    assert _untimed(json.loads((save / "darts" / "compare.json").read_text())) == _untimed(
        json.loads((alone / "compare.json").read_text()))
    wrong = runner.invoke(main, ["compare", "darts-1st", "--space", "darts", "--space", "nas-bench-201", *TINY,
                                 "--space-option", "depth=3"])
    assert wrong.exit_code == 2 and "No compared search space has the option 'depth' (darts, nas-bench-201)" in \
        " ".join(wrong.output.replace("│", " ").split())


def test_bench_and_plan_measure_the_space_given(tmp_path, monkeypatch):
    monkeypatch.setattr(console, "width", 200)
    report = tmp_path / "bench.json"
    result = CliRunner().invoke(main, ["bench", "darts-1st", "pc-darts", "--space", "nas-bench-201", "--batch", "4",
                                       "--init-channels", "8", "--space-option", "cells_per_stage=1",
                                       "--image-size", "16", "--repeats", "1", "--json", str(report),
                                       "--baseline", "pc-darts"])
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["shape"] == {"image_size": 16, "num_classes": 10, "space": "nas-bench-201",
                             "options": {"init_channels": 8, "cells_per_stage": 1}}
    points = {p["method"]: p["memory_bytes"] for p in data["points"]}
    assert 0 < points["pc-darts"] < points["darts-1st"]
    # --baseline pc-darts: its memory over each method's
    assert data["baseline"] == "pc-darts" and "pc-darts / method" in result.output
    cells = {row[1].strip(): row[4].strip() for row in (line.split("│") for line in result.output.splitlines())
             if len(row) > 4}
    assert cells == {"darts-1st": f"{points['pc-darts'] / points['darts-1st']:.2f}x", "pc-darts": "1.00x"}
    result = CliRunner().invoke(main, ["plan", "pc-darts", "--budget", "200MB", "--space", "nas-bench-201",
                                       "--space-option", "cells_per_stage=1", "--sampler-option", "k=2",
                                       "--image-size", "16"])
    assert result.exit_code == 0, result.output
    assert ("--space nas-bench-201 --space-option cells_per_stage=1 --sampler-option k=2 --preset paper"
            in _text(result.output))
    result = CliRunner().invoke(main, ["plan", "darts", "--budget", "1GB", "--space", "nas-bench-201",
                                       "--layers", "3"])
    assert result.exit_code == 2
    assert "Unknown option(s) 'layers' for the search space 'nas-bench-201'" in _text(result.output)


def test_worker_processes_get_the_space_options_back_as_flags():
    given = {"space": "nas-bench-201", "space_option": ("cells_per_stage=1", "init_channels=8"),
             "sampler_option": ("k=2",), "epochs": 1, "augment": False}
    assert _cli_args(given) == ["--space", "nas-bench-201", "--space-option", "cells_per_stage=1", "--space-option",
                                "init_channels=8", "--sampler-option", "k=2", "--epochs", "1", "--no-augment"]


def test_k_applies_to_the_partial_channel_methods_of_a_comparison(tmp_path) -> None:
    from nasbench_pc.cli.compare import check_sampler_options as _check_sampler_options
    from nasbench_pc.cli.compare import for_method as _for_method

    given = {"k": 2, "sampler_option": ("k=2",), "epochs": 1}
    assert _for_method(given, "darts") == {"epochs": 1, "sampler_option": ()}
    assert _for_method(given, "pc-darts") == given
    with pytest.raises(ConfigError, match="No compared method's sampler takes the option 'k' .darts, en-only."):
        _check_sampler_options({"k": 2}, ["darts", "en-only"])
    _check_sampler_options({"k": 2}, ["darts", "pc-darts"])  # pc-darts takes it


def test_plan_with_k_sets_k_of_the_partial_channel_methods_only() -> None:
    result = CliRunner().invoke(main, ["plan", "darts", "pc-darts", "--budget", "300MB", "--k", "2", "-C", "4",
                                       "--layers", "3", "--image-size", "16"])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "--space-option init_channels=4 --space-option layers=3 --sampler-option k=2" in flat
    refused = CliRunner().invoke(main, ["plan", "darts", "--budget", "300MB", "--k", "2"])
    assert refused.exit_code == 2 and "No compared method's sampler takes the option 'k' (darts)" in refused.output
