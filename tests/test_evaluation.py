"""The evaluator contract (nasbench_pc/evaluation.py): option specs, kept and reused records, what an evaluator
needs, malformed results, Kendall tau, and the built-in supernet-accuracy and proxy-train evaluators."""

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from nasbench_pc import genotypes, hookimpl, registry
from nasbench_pc.errors import ConfigError, PluginError
from nasbench_pc.interfaces import Metric
from nasbench_pc.results import evaluation
from nasbench_pc.results.evaluation import evaluate, parse_spec, resolve, slug, target_from_genotype
from nasbench_pc.results.ranking import kendall_tau
from nasbench_pc.search import SearchConfig, run_search

NB201_BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


class Counting:
    """An evaluator that counts its calls and returns the genotype's edge count times ``scale``."""

    description = "edges x scale"
    needs = frozenset()
    options = {"scale": 1.0, "label": None}
    metrics = (Metric("edges", "edges", higher_is_better=False, fmt=".0f"),)

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def evaluate(self, target, *, scale, label):
        self.calls.append({"scale": scale, "label": label, "work_dir": target.work_dir})
        return {"edges": len(target.space.edges(target.genotype)) * scale}


class Broken:
    description = "returns the wrong keys"
    needs = frozenset()
    options: dict = {}
    metrics = (Metric("score", "score"),)

    def evaluate(self, target):
        return {"scores": 1.0}


@contextmanager
def registered(**evaluators) -> Iterator[None]:
    class Plugin:
        @hookimpl
        def register_evaluators(self):
            return evaluators

    pm = registry.plugin_manager()
    pm.register(Plugin(), name="test_evaluators")
    registry._registry.cache_clear()
    try:
        yield
    finally:
        pm.unregister(name="test_evaluators")
        registry._registry.cache_clear()


def test_spec_reads_name_and_typed_options() -> None:
    assert parse_spec("proxy-train:epochs=4,lr=0.05,recipe=darts") == (
        "proxy-train", {"epochs": 4, "lr": 0.05, "recipe": "darts"})
    assert parse_spec("synflow") == ("synflow", {})
    with pytest.raises(ConfigError, match="names no evaluator"):
        parse_spec(":epochs=4")
    with pytest.raises(ConfigError, match="not an option setting"):
        parse_spec("proxy-train:epochs")


def test_options_are_checked_against_the_defaults() -> None:
    _, options = resolve("proxy-train", {"epochs": 3})
    assert (options["epochs"], options["batch_size"], options["init_channels"]) == (3, 64, None)
    with pytest.raises(ConfigError, match=r"Unknown option\(s\) 'epoch' for the evaluator 'proxy-train'. Its options "
                                          r"are epochs \(default 2\)"):
        resolve("proxy-train", {"epoch": 3})
    with pytest.raises(ConfigError, match="option epochs takes a int \\(default 2\\), got 'many'"):
        resolve("proxy-train", {"epochs": "many"})
    with pytest.raises(ConfigError, match="Unknown evaluator 'synflw'. Did you mean 'synflow'?"):
        resolve("synflw", {})


def test_slug_names_default_settings_plainly_and_hashes_the_others() -> None:
    counting = Counting()
    assert slug("count", counting, {"scale": 1.0, "label": None}) == "count"
    changed = slug("count", counting, {"scale": 2.0, "label": None})
    assert changed.startswith("count-") and len(changed) == len("count-") + 8
    assert changed == slug("count", counting, {"label": None, "scale": 2.0})
    assert changed != slug("count", counting, {"scale": 3.0, "label": None})


def test_records_are_kept_and_reused_per_setting(tmp_path: Path) -> None:
    counting = Counting()
    target = target_from_genotype("PC_DARTS_cifar", tmp_path)
    with registered(count=counting):
        first = evaluate(target, "count")
        again = evaluate(target, "count")
        doubled = evaluate(target, "count", {"scale": 2.0})
        redone = evaluate(target, "count", reuse=False)
    assert (first.metrics, first.reused) == ({"edges": 16.0}, False)
    assert (again.metrics, again.reused) == ({"edges": 16.0}, True)
    assert (doubled.metrics, doubled.reused) == ({"edges": 32.0}, False)
    assert not redone.reused
    assert [c["scale"] for c in counting.calls] == [1.0, 2.0, 1.0]
    assert counting.calls[0]["work_dir"] == tmp_path / "evaluations" / "count"
    record = json.loads((tmp_path / "evaluations" / "count.json").read_text())
    assert (record["evaluator"], record["metrics"], record["directions"]) == ("count", {"edges": 16.0},
                                                                              {"edges": "lower"})
    assert record["genotype"] == genotypes.to_dict(genotypes.parse("PC_DARTS_cifar"))


def test_a_damaged_record_is_evaluated_again(tmp_path: Path) -> None:
    counting = Counting()
    target = target_from_genotype("DARTS_V2", tmp_path)
    (tmp_path / "evaluations").mkdir()
    (tmp_path / "evaluations" / "count.json").write_text("{ half written")
    with registered(count=counting):
        result = evaluate(target, "count")
    assert (result.reused, len(counting.calls)) == (False, 1)


def test_a_folder_of_another_genotype_is_refused(tmp_path: Path) -> None:
    with registered(count=Counting()):
        evaluate(target_from_genotype("DARTS_V2", tmp_path), "count")
        with pytest.raises(ConfigError, match="keeps evaluations of another genotype .*own --out folder"):
            evaluate(target_from_genotype("PC_DARTS_cifar", tmp_path), "count")


def test_a_result_without_the_declared_metrics_is_a_plugin_error(tmp_path: Path) -> None:
    with registered(broken=Broken()), pytest.raises(PluginError, match="lacks its declared metric\\(s\\) score"):
        evaluate(target_from_genotype("DARTS_V2", tmp_path), "broken")
    assert not (tmp_path / "evaluations" / "broken.json").exists()


def test_an_evaluator_that_needs_a_run_refuses_a_bare_genotype(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'supernet-accuracy' needs a search run folder"):
        evaluate(target_from_genotype(NB201_BEST, tmp_path), "supernet-accuracy")


@pytest.mark.parametrize("x, y, tau", [
    ([1, 2, 3, 4, 5], [3, 1, 2, 5, 4], 0.4),  # 7 concordant, 3 discordant pairs
    ([1, 2, 3], [3, 2, 1], -1.0),
    ([1, 1, 2, 3], [1, 2, 2, 3], 0.8),  # tau-b: 4 concordant, one tie in each: 4 / sqrt(5 * 5)
    ([1, 2, math.nan, 3], [1, 2, 0, 3], 1.0),  # a run without a score is left out
])
def test_kendall_tau_b(x, y, tau) -> None:
    assert kendall_tau(x, y) == pytest.approx(tau)


@pytest.mark.parametrize("x, y", [([1.0], [2.0]), ([1, 2, 3], [5, 5, 5]), ([], [])])
def test_kendall_tau_is_undefined_without_two_ordered_items(x, y) -> None:
    assert math.isnan(kendall_tau(x, y))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, one_thread) -> Path:
    out = tmp_path_factory.mktemp("evaluated") / "run"
    config = SearchConfig(method="pc-darts", epochs=1, batch_size=8, limit=64, steps_per_epoch=2, seed=3,
                          space_options={"init_channels": 4, "layers": 2}, sampler_options={"k": 2}, preset="quick")
    run_search(config, out)
    return out


def test_a_run_target_carries_the_search_settings(run_dir: Path) -> None:
    target = evaluation.target_from_run(run_dir)
    assert (target.run_dir, target.evaluations_dir, target.method) == (run_dir, run_dir / "evaluations", "pc-darts")
    assert (target.dataset, target.limit, target.seed) == ("synthetic", 64, 3)
    assert target.network_shape() == (4, 2)
    assert target.network_shape(init_channels=6) == (6, 2)
    assert target.genotype == genotypes.load(run_dir / "genotype.json")


def test_supernet_accuracy_is_the_last_recorded_architecture_split_accuracy(run_dir: Path) -> None:
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    result = evaluate(evaluation.target_from_run(run_dir), "supernet-accuracy", reuse=False)
    assert result.metrics == {"supernet_acc": last["arch_acc"]}


def test_proxy_train_trains_the_derived_network_in_its_own_resumable_run(run_dir: Path) -> None:
    target = evaluation.target_from_run(run_dir)
    result = evaluate(target, "proxy-train", {"epochs": 2, "batch_size": 16}, reuse=False)
    folder = result.path.with_suffix("")
    config = json.loads((folder / "config.json").read_text())
    history = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert (config["kind"], config["dataset"], config["limit"]) == ("train", "synthetic", 64)
    hp = config["hparams"]
    assert (hp["epochs"], hp["batch_size"], hp["init_channels"], hp["layers"], hp["seed"]) == (2, 16, 4, 2, 3)
    assert (hp["auxiliary_weight"], hp["drop_path"], hp["cutout"]) == (0.0, 0.0, 0)
    assert config["genotype"] == genotypes.to_dict(target.genotype)
    assert len(history) == 2 and (folder / "model" / "model.safetensors").is_file()
    assert result.metrics == {"proxy_acc": history[-1]["test_top1"], "proxy_loss": history[-1]["test_loss"]}
    # a lost record is rebuilt from the finished training run, which is not trained again
    result.path.unlink()
    stamp = (folder / "checkpoint.pt").stat().st_mtime_ns
    again = evaluate(target, "proxy-train", {"epochs": 2, "batch_size": 16})
    assert again.metrics == result.metrics and (folder / "checkpoint.pt").stat().st_mtime_ns == stamp


class _StopAfterFirstEpoch(Exception):
    pass


def test_proxy_train_resumes_an_interrupted_training_run(run_dir: Path, tmp_path: Path) -> None:
    from nasbench_pc.networks import train

    class Stop(train.TrainProgress):
        def epoch(self, record):
            raise _StopAfterFirstEpoch  # after epoch 1's checkpoint is written, as a crash would

    target = replace(evaluation.target_from_run(run_dir), evaluations_dir=tmp_path)
    options = {"epochs": 2, "batch_size": 16, "seed": 5}
    key = slug("proxy-train", registry.get("evaluator", "proxy-train"), resolve("proxy-train", options)[1])
    config = train.make_config(target.genotype, dataset="synthetic", limit=64, epochs=2, batch_size=16,
                               init_channels=4, layers=2, auxiliary_weight=0.0, drop_path=0.0, cutout=0, seed=5)
    with pytest.raises(_StopAfterFirstEpoch):
        train.train(config, tmp_path / key, progress=Stop())
    first = json.loads((tmp_path / key / "metrics.jsonl").read_text())
    result = evaluate(target, "proxy-train", options)
    history = [json.loads(line) for line in (tmp_path / key / "metrics.jsonl").read_text().splitlines()]
    assert len(history) == 2 and history[0] == first
    assert result.metrics["proxy_acc"] == history[1]["test_top1"]


class NeedsBenchmark(Counting):
    needs = frozenset({"benchmark"})


def test_a_lookup_is_redone_for_another_benchmark_file(tmp_path: Path) -> None:
    lookup = NeedsBenchmark()
    first, second = tmp_path / "v1_0.pth", tmp_path / "v1_1.pth"
    with registered(lookup=lookup):
        evaluate(target_from_genotype(NB201_BEST, tmp_path, benchmark_file=str(first)), "lookup")
        same = evaluate(target_from_genotype(NB201_BEST, tmp_path, benchmark_file=str(first)), "lookup")
        other = evaluate(target_from_genotype(NB201_BEST, tmp_path, benchmark_file=str(second)), "lookup")
    assert (same.reused, other.reused, len(lookup.calls)) == (True, False, 2)
    assert json.loads(other.path.read_text())["benchmark_file"] == str(second.resolve())
