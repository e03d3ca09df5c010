"""The search loop, presets and the ``search`` command, on tiny supernets."""

import json
import os
import re
from pathlib import Path

import pytest
import torch
from cli_output import flat
from click.testing import CliRunner

from nasbench_pc import genotypes
from nasbench_pc.cli import main
from nasbench_pc.plugins.datasets import DEBIAN_FASHION_MNIST
from nasbench_pc.search import Search, SearchConfig, learning_rate
from nasbench_pc.search.presets import resolve_config

IN_CI = os.environ.get("CI", "").lower() == "true"
TINY = ["-C", "4", "--layers", "3", "--image-size", "8", "--batch-size", "16"]


def tiny_config(method: str = "pc-darts", **changes) -> SearchConfig:
    values = dict(init_channels=4, layers=3, image_size=8, batch_size=16, limit=64, epochs=2, warmup_epochs=0)
    values.update(changes)
    return resolve_config(method, "quick", **values)


def test_paper_presets_are_the_reference_cifar10_settings():
    pc = resolve_config("pc-darts", "paper")
    assert (pc.batch_size, pc.lr, pc.lr_min, pc.arch_lr, pc.warmup_epochs, pc.epochs) == (256, 0.1, 0.0, 6e-4, 15, 50)
    assert (pc.train_portion, pc.seed, pc.grad_clip, pc.space) == (0.5, 2, 5.0, "darts")
    assert pc.space_options == {"init_channels": 16, "layers": 8, "steps": 4, "multiplier": 4, "stem_multiplier": 3,
                                "stem": "cifar", "checkpoint_cells": False, "drop_none": False}
    assert pc.sampler_options == {"k": 4}
    darts = resolve_config("darts", "paper")
    assert (darts.batch_size, darts.lr, darts.lr_min, darts.arch_lr, darts.warmup_epochs) == (64, 0.025, 0.001,
                                                                                             3e-4, 0)
    assert resolve_config("darts", "paper", lr=0.5, epochs=3).lr == 0.5


def test_imagenet_preset_follows_the_pc_darts_imagenet_search():
    pc = resolve_config("pc-darts", "imagenet")
    assert (pc.sampler_options["k"], pc.space_options["stem"], pc.dataset, pc.batch_size, pc.lr, pc.lr_min,
            pc.arch_lr) == (2, "imagenet", "imagenet", 1024, 0.5, 0.0, 6e-3)
    assert (pc.train_portion, pc.arch_portion, pc.warmup_epochs, pc.epochs, pc.lr_warmup_epochs) == (
        0.1, 0.025, 35, 50, 5)
    assert resolve_config("pc-darts", "imagenet", batch_size=256).lr_warmup_epochs == 0  # warm-up only above 256
    assert resolve_config("darts", "imagenet").sampler_options == {}  # no partial channels to set


def test_quick_preset_scales_warmup_and_lr():
    assert resolve_config("pc-darts", "quick").warmup_epochs == 3  # 15/50 of 10 epochs
    assert resolve_config("pc-darts", "quick", epochs=2).warmup_epochs == 0
    quick = resolve_config("pc-darts", "quick")
    assert (quick.batch_size, quick.lr, quick.space_options["init_channels"], quick.space_options["layers"]) == (
        32, 0.0125, 8, 5)


def test_learning_rate_is_cosine_with_optional_linear_warmup():
    c = SearchConfig(method="darts", lr=0.1, lr_min=0.0, epochs=10)
    assert learning_rate(c, 0) == 0.1
    assert learning_rate(c, 5) == pytest.approx(0.05)
    w = SearchConfig(method="darts", lr=0.5, lr_min=0.0, epochs=50, lr_warmup_epochs=5)
    assert [learning_rate(w, e) for e in range(5)] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])


def test_architecture_is_frozen_during_warmup_then_updated():
    search = Search(tiny_config(warmup_epochs=1))
    start = [p.detach().clone() for p in search.model.arch_parameters()]
    first = search.train_epoch()
    assert first["arch_updates"] is False
    assert all(torch.equal(a, b) for a, b in zip(search.model.arch_parameters(), start, strict=True))
    second = search.train_epoch()
    assert second["arch_updates"] is True
    assert all(not torch.equal(a, b) for a, b in zip(search.model.arch_parameters(), start, strict=True))
    assert search.arch_stream.state_dict() == {"pass_no": 0, "position": 2}  # drawn in epoch 2 only


def test_arch_stream_continues_across_epochs_and_restarts_when_exhausted():
    search = Search(tiny_config(limit=96))  # 48 arch examples: batches of 16, 16, 16
    stream = search.arch_stream
    first_pass = [b for b in stream.batches(0)]
    assert [len(b) for b in first_pass] == [16, 16, 16]
    assert sorted(i for b in first_pass for i in b) == list(range(48, 96))
    for _ in range(4):
        stream.next()
    assert stream.state_dict() == {"pass_no": 1, "position": 1}
    assert stream.batches(1) != first_pass  # a new order each pass


def test_cli_search_writes_the_run_directory(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["search", "--method", "pc-darts", "--dataset", "synthetic", "--epochs", "2",
                                       "--limit", "64", *TINY, "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("config.json", "metrics.jsonl", "genotypes.jsonl", "genotype.json", "checkpoint.pt"):
        assert (out / name).is_file(), name
    printed = re.search(r"^Genotype\(.*\)$", result.output, re.MULTILINE).group(0)
    assert genotypes.parse(printed) == genotypes.load(out / "genotype.json")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    for key in ("train_loss", "train_acc", "arch_loss", "arch_acc", "lr", "epoch_seconds", "peak_cpu_rss_mib",
                "alpha_entropy_normal", "alpha_entropy_reduce", "skip_connects", "collapsed", "genotype"):
        assert key in records[0], key
    assert records[0]["alpha_entropy_normal"] == pytest.approx(2.0794, abs=1e-2)  # ~log(8): alphas start near 0
    assert genotypes.from_dict(records[-1]["genotype"]) == genotypes.load(out / "genotype.json")
    assert len((out / "genotypes.jsonl").read_text().splitlines()) == 2
    saved = json.loads((out / "config.json").read_text())
    assert saved["config"]["method"] == "pc-darts" and saved["config"]["space_options"]["init_channels"] == 4
    assert "torch" in saved["versions"] and "datasets" in saved["plugins"]
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and set(state) >= {"model", "weight_optimizer", "arch_optimizer", "ranks",
                                                   "arch_stream", "step", "seconds"}
    assert state["step"] == 0 and len(state["ranks"]) == 1  # an end-of-epoch checkpoint of one process


def test_cli_refuses_to_overwrite_a_run_and_to_mix_resume_with_options(tmp_path):
    out = tmp_path / "run"
    args = ["search", "--epochs", "1", "--limit", "32", *TINY, "--out", str(out), "-q"]
    assert CliRunner().invoke(main, args).exit_code == 0
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2
    assert "already holds a finished search" in flat(again.output) and "--force" in flat(again.output)
    mixed = CliRunner().invoke(main, ["search", "--resume", str(out), "--epochs", "3"])
    assert mixed.exit_code == 2 and "drop --epochs" in flat(mixed.output)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a machine without CUDA")
def test_cli_cuda_without_gpu_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["search", "--device", "cuda", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "Use --device cpu" in flat(result.output)


def test_cli_bad_options_are_one_paragraph_errors(tmp_path):
    unknown = CliRunner().invoke(main, ["search", "--method", "pc-dart", "--out", str(tmp_path / "a")])
    assert unknown.exit_code == 2 and "Did you mean 'pc-darts'" in flat(unknown.output)
    missing = CliRunner().invoke(main, ["search", "--dataset", "cifar10", "--data-root", str(tmp_path),
                                        "--out", str(tmp_path / "b")])
    assert missing.exit_code == 2 and "--download" in flat(missing.output) and "Traceback" not in missing.output
    not_a_run = CliRunner().invoke(main, ["search", "--resume", str(tmp_path)])
    assert not_a_run.exit_code == 2 and "not a search run directory" in flat(not_a_run.output)


@pytest.mark.skipif(not Path(DEBIAN_FASHION_MNIST).is_dir() and not IN_CI,
                    reason="Debian's dataset-fashion-mnist is not installed (CI installs it)")
def test_darts_on_fashion_mnist_learns_above_chance(tmp_path):
    out = tmp_path / "fmnist"
    result = CliRunner().invoke(main, [
        "search", "--method", "darts", "--dataset", "fashion-mnist", "--data-root", DEBIAN_FASHION_MNIST,
        "--limit", "320", "--epochs", "3", "-C", "4", "--layers", "3", "--batch-size", "32", "--lr", "0.05",
        "--image-size", "16", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    # 10 classes: chance is 0.1; 0.15 on the 160 architecture-split images is 2.1 standard deviations above it
    assert records[-1]["arch_acc"] > 0.15 and records[-1]["arch_acc"] > records[0]["arch_acc"]
    assert json.loads((out / "config.json").read_text())["dataset"]["in_channels"] == 1


def test_a_diverging_search_stops_with_a_clear_error_and_keeps_finished_epochs(tmp_path, monkeypatch):
    from nasbench_pc.errors import DivergedError
    from nasbench_pc.search import loop as search
    from nasbench_pc.search import run_search
    from nasbench_pc.search.presets import resolve_config

    # epoch 1 trains at 0.01, epoch 2 at 1e38 and blows up (no valid setting schedules that, hence the patch)
    monkeypatch.setattr(search, "learning_rate", lambda config, epoch: 0.01 if epoch == 0 else 1e38)
    config = resolve_config("darts-1st", "quick", epochs=2, lr=0.01, limit=64, steps_per_epoch=3,
                            batch_size=8, init_channels=4, layers=3, image_size=16, device="cpu")
    with pytest.raises(DivergedError, match=r"The (architecture|weight)-split loss became (nan|inf) in epoch 2 "
                                            r".* The checkpoint and metrics of every finished epoch are kept"):
        run_search(config, tmp_path / "run")
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 1
    assert (tmp_path / "run" / "checkpoint.pt").exists()


def test_sampler_and_normalizer_can_replace_the_methods_and_are_recorded(tmp_path):
    """``search --method darts-1st --sampler partial --sampler-option k=2 --normalizer edge``: DARTS' first-order step
    with PC-DARTS' edges, without writing a plugin; config.json records both, and --resume keeps them."""
    run = tmp_path / "run"
    args = ["search", "--method", "darts-1st", "--sampler", "partial", "--sampler-option", "k=2", "--normalizer",
            "edge", "--epochs", "1", "--limit", "64", "--steps-per-epoch", "1", "--batch-size", "8", *TINY[:4],
            "--out", str(run), "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    meta = json.loads((run / "config.json").read_text())
    assert (meta["config"]["sampler"], meta["config"]["normalizer"], meta["config"]["sampler_options"]) == (
        "partial", "edge", {"k": 2})
    assert {k: meta["method"][k] for k in ("name", "sampler", "sampler_options", "normalizer", "order")} == {
        "name": "darts-1st", "sampler": "partial", "sampler_options": {"k": 2}, "normalizer": "edge", "order": 1}
    search = Search(SearchConfig.from_dict(meta["config"]))
    assert len(search.model.arch_parameters()) == 4  # alphas and, with edge normalization, betas
    assert search.model.cells[0]._ops[0].k == 2  # every edge a partial-channel edge with K=2
    unknown = CliRunner().invoke(main, ["search", "--method", "darts-1st", "--sampler", "partail", "-q"])
    assert unknown.exit_code == 2 and "Did you mean 'partial'" in flat(unknown.output)
