"""Lifecycle hooks (on_run_start, on_epoch_end, on_run_end, on_evaluation_done): when they are called, with what,
and what a failing one costs (a clear PluginError; the finished epochs stay on disk and the run resumes)."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from nasbench_pc import genotypes, hookimpl, registry
from nasbench_pc.errors import PluginError
from nasbench_pc.networks import train
from nasbench_pc.results.evaluation import evaluate, target_from_genotype
from nasbench_pc.search import SearchConfig, run_search

CONFIG = SearchConfig(method="pc-darts", epochs=2, batch_size=8, limit=64, steps_per_epoch=2, seed=1,
                      space_options={"init_channels": 4, "layers": 2}, sampler_options={"k": 2}, preset="quick")


class Recorder:
    """Records every lifecycle call; ``fail_at`` makes on_epoch_end raise at that epoch."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.calls: list[tuple] = []
        self.fail_at = fail_at

    @hookimpl
    def on_run_start(self, kind, run_dir, config, history):
        self.calls.append(("start", kind, run_dir, config["method"] if kind == "search" else config["network"],
                           len(history)))

    @hookimpl
    def on_epoch_end(self, kind, record, history):  # a subset of the spec's arguments is enough
        self.calls.append(("epoch", kind, record["epoch"], len(history)))
        if record["epoch"] == self.fail_at:
            raise OSError("disk full")

    @hookimpl
    def on_run_end(self, kind, history, result):
        self.calls.append(("end", kind, len(history), sorted(result)))

    @hookimpl
    def on_evaluation_done(self, evaluator, metrics, seconds):
        self.calls.append(("evaluation", evaluator, sorted(metrics), seconds >= 0))


@pytest.fixture
def recorder(request) -> Iterator[Recorder]:
    plugin = Recorder(getattr(request, "param", None))
    pm = registry.plugin_manager()
    pm.register(plugin, name="recorder")
    try:
        yield plugin
    finally:
        pm.unregister(name="recorder")


def test_a_search_calls_the_hooks_in_order(tmp_path: Path, recorder: Recorder, one_thread) -> None:
    result = run_search(CONFIG, tmp_path / "run")
    assert recorder.calls == [("start", "search", tmp_path / "run", "pc-darts", 0), ("epoch", "search", 1, 1),
                              ("epoch", "search", 2, 2), ("end", "search", 2, ["genotype"])]
    # the built-in run log is one of these hook implementations
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    history = [json.loads(line) for line in (tmp_path / "run" / "genotypes.jsonl").read_text().splitlines()]
    assert genotypes.from_dict(history[-1]["genotype"]) == result.genotype


def test_a_search_without_a_folder_still_calls_the_hooks(recorder: Recorder, one_thread) -> None:
    run_search(CONFIG, None)
    assert [c[0] for c in recorder.calls] == ["start", "epoch", "epoch", "end"] and recorder.calls[0][2] is None


@pytest.mark.parametrize("recorder", [1], indirect=True)
def test_a_failing_hook_stops_with_the_plugin_named_and_the_run_resumes(tmp_path: Path, recorder: Recorder,
                                                                        one_thread) -> None:
    run = tmp_path / "run"
    with pytest.raises(PluginError) as info:
        run_search(CONFIG, run)
    message = str(info.value)
    assert "The nasbench_pc plugin 'recorder'" in message and "failed in on_epoch_end: OSError: disk full" in message
    assert f"`nasbench-pc search --resume {run}` goes on" in message
    assert (run / "checkpoint.pt").is_file() and len((run / "metrics.jsonl").read_text().splitlines()) == 1
    recorder.fail_at = None
    recorder.calls.clear()
    run_search(CONFIG, run, resume=True)
    assert recorder.calls == [("start", "search", run, "pc-darts", 1), ("epoch", "search", 2, 2),
                              ("end", "search", 2, ["genotype"])]


def test_a_training_run_calls_the_hooks(tmp_path: Path, recorder: Recorder, one_thread) -> None:
    config = train.make_config("PC_DARTS_cifar", limit=32, epochs=1, batch_size=16, init_channels=4, layers=2,
                               auxiliary_weight=0.0, drop_path=0.0, cutout=0)
    train.train(config, tmp_path / "train")
    assert recorder.calls == [("start", "train", tmp_path / "train", "cifar", 0), ("epoch", "train", 1, 1),
                              ("end", "train", 1, ["model_dir"])]
    assert len((tmp_path / "train" / "metrics.jsonl").read_text().splitlines()) == 1


def test_evaluation_done_is_called_for_new_evaluations_only(tmp_path: Path, recorder: Recorder) -> None:
    target = target_from_genotype("PC_DARTS_cifar", tmp_path, limit=16)
    options = {"batch_size": 4, "init_channels": 4, "layers": 2}
    evaluate(target, "snip", options)
    evaluate(target, "snip", options)  # reused: no second call
    assert recorder.calls == [("evaluation", "snip", ["snip"], True)]
