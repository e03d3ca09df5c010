"""`methods` and `supernet` on every registered search space."""

import pytest
from click.testing import CliRunner

from nasbench_pc.cli import main
from nasbench_pc.console import console


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(console, "width", 250)  # rich would fold the tables at 80 columns outside a terminal


def _rows(output: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in output.splitlines() if "│" in line]


def test_methods_lists_each_methods_space_and_the_spaces():
    result = CliRunner().invoke(main, ["methods"])
    assert result.exit_code == 0, result.output
    spaces, _ = result.output.split("Evaluators (")  # the evaluators table names nas-bench-201 too
    rows = {row[0]: row for row in _rows(spaces)}
    pc_darts = next(line.split() for line in result.output.splitlines() if line.split()[:1] == ["pc-darts"])
    assert pc_darts[:9] == ["pc-darts", "partial", "k=4", "edge", "1", "256", "0.1", "0.0006", "15"]
    assert "(space darts)" in " ".join(pc_darts)
    assert rows["nas-bench-201"][1:] == [
        "none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3",
        "init_channels=16, cells_per_stage=5, track_running_stats=True, checkpoint_cells=False", "cifar"]
    assert rows["darts"][3] == "cifar, imagenet"


def test_methods_lists_the_evaluators_with_metrics_needs_and_options():
    result = CliRunner().invoke(main, ["methods"])
    assert result.exit_code == 0, result.output
    rows = {row[0]: row for row in _rows(result.output.split("Evaluators (")[1])}
    assert rows["supernet-accuracy"][1:4] == ["supernet acc % (higher is better)", "run", "-"]
    assert rows["synflow"][1:4] == ["synflow (higher is better)", "data", "init_channels=None layers=None seed=None"]
    assert rows["proxy-train"][1].startswith("proxy acc % (higher is better), proxy loss (lower is better)")
    assert rows["nas-bench-201"][2] == "benchmark"


def test_supernet_summarises_a_method_on_another_space():
    result = CliRunner().invoke(main, ["supernet", "pc-darts", "--space", "nas-bench-201", "--space-option",
                                       "cells_per_stage=1", "--k", "2"])
    assert result.exit_code == 0, result.output
    rows = dict(_rows(result.output))
    assert rows["search space"] == "nas-bench-201"
    assert rows["shape"] == "init_channels=16, cells_per_stage=1, track_running_stats=True, checkpoint_cells=False"
    assert rows["sampler"] == "partial {'k': 2}"
    assert (rows["alphas"], rows["betas"]) == ("6x5", "6")
    assert rows["genotype at init"].startswith("|") and rows["genotype at init"].count("~") == 6


def test_supernet_keeps_the_darts_shortcuts():
    result = CliRunner().invoke(main, ["supernet", "darts", "-C", "8", "--layers", "5"])
    assert result.exit_code == 0, result.output
    rows = dict(_rows(result.output))
    assert rows["shape"] == ("init_channels=8, layers=5, steps=4, multiplier=4, stem_multiplier=3, stem=cifar, "
                             "checkpoint_cells=False, drop_none=False")
    assert (rows["alphas_normal"], rows["alphas_reduce"]) == ("14x8", "14x8")
    assert "betas_normal" not in rows  # no edge normalization


def test_methods_at_80_columns_keeps_every_name_whole(monkeypatch):
    monkeypatch.setattr(console, "width", 80)
    result = CliRunner().invoke(main, ["methods"])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    names = ["beta-darts", "darts", "darts-1st", "darts-minus", "drnas", "en-only", "fairdarts", "gdas", "pc-darts",
             "pc-only", "sdarts-adv", "sdarts-rs"]
    assert [line.split()[0] for line in result.output.splitlines()[2:2 + len(names)]] == names
    assert "pc-only (space darts): Ablation: partial channels (K=4) without edge normalization" in " ".join(
        result.output.split())
