"""`nasbench-pc evaluate` and `compare --evaluate`: metric columns, reuse of finished evaluations, the Kendall tau
ranking table, the scatter plot and the saved files."""

import csv
import json
from pathlib import Path

import pytest
from cli_output import flat
from click.testing import CliRunner

from nasbench_pc.cli import main
from nasbench_pc.results import evaluation
from nasbench_pc.results.compare import load_run
from nasbench_pc.results.ranking import ranking

TINY = ["--epochs", "1", "--limit", "64", "--steps-per-epoch", "2", "--batch-size", "8", "--init-channels", "4",
        "--layers", "2", "--image-size", "16"]
PROXY = "proxy-train:epochs=1,batch_size=16"


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory, one_thread) -> tuple[Path, dict, list[list[str]]]:
    """darts-1st and pc-darts, 2 seeds each, scored by proxy-train and synflow (JSON rows, and the CSV table)."""
    out = tmp_path_factory.mktemp("compared")
    result = CliRunner().invoke(main, ["compare", "darts-1st", "pc-darts", "--seeds", "0", "1", *TINY, "--save",
                                       str(out), "--format", "json", "--plot", str(out / "plots"), "--evaluate",
                                       PROXY, "--evaluate", "synflow"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout), list(csv.reader((out / "compare.csv").read_text().splitlines()))


def test_compare_adds_a_column_per_evaluator_metric(compared) -> None:
    out, rows, table = compared
    header = table[0]
    assert header[header.index("arch acc %") + 1:header.index("arch acc %") + 4] == [
        "proxy acc %", "proxy loss", "synflow"]
    for row in rows:
        assert sorted(row["evaluations"]) == ["proxy_acc", "proxy_loss", "synflow"]
        assert row["evaluations"]["proxy_loss"]["higher_is_better"] is False
    # the column holds the mean over the method's seeds of the kept records
    for row in rows:
        records = [json.loads(path.read_text()) for seed in (0, 1)
                   for path in (out / "runs" / f"{row['method']}-seed{seed}" / "evaluations").glob("synflow*.json")]
        assert len(records) == 2
        assert row["evaluations"]["synflow"]["mean"] == pytest.approx(
            sum(r["metrics"]["synflow"] for r in records) / 2)


def test_compare_ranks_supernet_accuracy_against_each_score(compared) -> None:
    out, _, _ = compared
    runs = [load_run(p) for p in sorted((out / "runs").iterdir())]
    for run in runs:
        for path in (Path(run.run_dir) / "evaluations").glob("*.json"):
            run.scores.update(json.loads(path.read_text())["metrics"])
    expected = {r.metric.key: r.tau for r in ranking(runs, tuple(
        m for name in ("proxy-train", "synflow") for _, m in evaluation.metrics_of([name])))}
    saved = json.loads((out / "ranking.json").read_text())
    assert [(r["metric"], r["runs"]) for r in saved] == [("proxy_acc", 4), ("proxy_loss", 4), ("synflow", 4)]
    for r in saved:
        assert r["kendall_tau"] == (None if expected[r["metric"]] != expected[r["metric"]] else
                                    pytest.approx(expected[r["metric"]]))
    markdown = (out / "compare.md").read_text()
    assert "| score | Kendall tau vs supernet acc | runs |" in markdown
    assert sorted(p.name for p in out.iterdir()) == ["compare.csv", "compare.json", "compare.md", "plots",
                                                     "ranking.csv", "ranking.json", "runs"]
    scatter = out / "plots" / "supernet_vs_scores.png"
    assert scatter.read_bytes()[:4] == b"\x89PNG"


def test_compare_reuses_finished_evaluations(compared) -> None:
    out, rows, _ = compared
    records = sorted((out / "runs").glob("*/evaluations/*.json"))
    assert len(records) == 8  # 4 runs x (proxy-train, synflow)
    stamps = [p.stat().st_mtime_ns for p in records]
    result = CliRunner().invoke(main, ["compare", "--from", str(out / "runs"), "--format", "json", "--evaluate",
                                       PROXY, "--evaluate", "synflow"])
    assert result.exit_code == 0, result.output
    assert [p.stat().st_mtime_ns for p in records] == stamps
    assert [r["evaluations"] for r in json.loads(result.stdout)] == [r["evaluations"] for r in rows]


def test_compare_table_prints_the_columns_and_the_ranking(compared) -> None:
    out, _, _ = compared
    result = CliRunner().invoke(main, ["compare", "--from", str(out / "runs"), "--evaluate", PROXY],
                                env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert "proxy acc %" in text and "proxy loss" in text
    assert "Does the supernet's accuracy rank the 4 runs as each score does?" in text
    assert "┃ score ┃ Kendall tau vs supernet acc ┃ runs ┃" in text


def test_compare_refuses_a_bad_evaluator_before_any_search(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["compare", "pc-darts", *TINY, "--save", str(tmp_path), "--evaluate",
                                       "proxy-train:epoch=1"])
    assert result.exit_code == 2
    assert "Unknown option(s) 'epoch' for the evaluator 'proxy-train'" in flat(result.output)
    assert not (tmp_path / "runs").exists()
    twice = CliRunner().invoke(main, ["compare", "pc-darts", *TINY, "--save", str(tmp_path), "--evaluate", "synflow",
                                      "--evaluate", "synflow:seed=1"])
    assert twice.exit_code == 2 and "synflow would be measured twice" in flat(twice.output)


def test_evaluate_scores_a_run_and_keeps_the_result(compared, tmp_path: Path) -> None:
    out, _, _ = compared
    run = out / "runs" / "pc-darts-seed0"
    result = CliRunner().invoke(main, ["evaluate", str(run), "--evaluate", "supernet-accuracy", "--evaluate", PROXY,
                                       "--json", str(tmp_path / "scores.json")], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert [s["evaluator"] for s in scores] == ["supernet-accuracy", "proxy-train"]
    assert [s["reused"] for s in scores] == [False, True]  # compare made the proxy-train record already
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert scores[0]["metrics"] == {"supernet_acc": last["arch_acc"]}
    text = flat(result.output)
    assert f"supernet acc % {100 * last['arch_acc']:.1f} higher" in text
    assert "proxy-train:epochs=1,batch_size=16 proxy acc %" in text
    assert f"Kept in {run / 'evaluations'}" in text


def test_evaluate_scores_a_published_genotype_in_its_own_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["evaluate", "PC_DARTS_cifar", "--evaluate", "grad-norm:batch_size=4",
                                       "--limit", "32", "--out", str(tmp_path / "pc"), "--json",
                                       str(tmp_path / "scores.json")])
    assert result.exit_code == 0, result.output
    (score,) = json.loads((tmp_path / "scores.json").read_text())
    record = json.loads((tmp_path / "pc" / "evaluations" / Path(score["record"]).name).read_text())
    assert record["metrics"] == score["metrics"] and record["genotype_text"].startswith("Genotype(normal=")


def test_evaluate_without_an_evaluator_lists_them(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["evaluate", "PC_DARTS_cifar", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "Name at least one evaluator with --evaluate NAME (available: grad-norm, nas-bench-201, naswot" in \
        flat(result.output)
