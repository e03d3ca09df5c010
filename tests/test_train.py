"""``nasbench-pc train``: the paper recipes, LR schedules, run directories, resume, and the final export."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import timm
import torch
from click.testing import CliRunner

import nasbench_pc  # noqa: F401  (registers the timm models)
from nasbench_pc.cli import main
from nasbench_pc.errors import ConfigError
from nasbench_pc.networks.export import load_checkpoint, resolve_source
from nasbench_pc.networks.recipes import TrainHParams, make_config, recipe_hparams
from nasbench_pc.networks.recipes import learning_rate as lr_at
from nasbench_pc.networks.train import TrainProgress, resume, train

TINY = dict(dataset="synthetic", limit=24, epochs=2, batch_size=12, init_channels=4, layers=3)


pytestmark = pytest.mark.usefixtures("one_thread")


def _text(output: str) -> str:
    """CLI output without rich's panel borders and line wrapping."""
    return " ".join(output.replace("│", " ").split())


def test_pc_darts_recipe_is_the_reference_recipe() -> None:
    cifar, imagenet = (recipe_hparams("darts", "pc-darts", "cifar"),
                       recipe_hparams("darts", "pc-darts", "imagenet"))
    assert (cifar.epochs, cifar.batch_size, cifar.lr, cifar.lr_min, cifar.weight_decay, cifar.momentum) == \
        (600, 96, 0.025, 0.0, 3e-4, 0.9)
    assert (cifar.auxiliary_weight, cifar.cutout, cifar.drop_path, cifar.grad_clip) == (0.4, 16, 0.3, 5.0)
    assert (cifar.init_channels, cifar.layers, cifar.lr_schedule) == (36, 20, "cosine")
    assert (imagenet.epochs, imagenet.batch_size, imagenet.lr, imagenet.weight_decay) == (250, 1024, 0.5, 3e-5)
    assert (imagenet.label_smoothing, imagenet.warmup_epochs, imagenet.auxiliary_weight) == (0.1, 5, 0.4)
    assert (imagenet.init_channels, imagenet.layers, imagenet.lr_schedule) == (48, 14, "linear")


def test_make_config_picks_the_network_and_applies_overrides() -> None:
    assert make_config("PC_DARTS_image", dataset="imagenet").hparams == recipe_hparams("darts", "pc-darts", "imagenet")
    config = make_config("DARTS_V2", dataset="cifar10", drop_path=0.2, epochs=None)
    assert config.network == "cifar"
    assert config.hparams.drop_path == 0.2 and config.hparams.epochs == 600
    assert config.method == "darts (second order), published genotype"
    with pytest.raises(ConfigError, match="Unknown training option"):
        make_config("DARTS_V2", epoch=3)
    with pytest.raises(ConfigError, match="--drop-path 1.0"):
        make_config("DARTS_V2", drop_path=1.0)


def test_cosine_schedule_matches_the_reference() -> None:
    hp = TrainHParams(epochs=600, lr=0.025)
    assert lr_at(hp, 0) == 0.025
    assert lr_at(hp, 300) == pytest.approx(0.0125)
    assert lr_at(hp, 599) == pytest.approx(0.025 * (1 + math.cos(math.pi * 599 / 600)) / 2)


def test_linear_schedule_and_warmup_match_reference_train_imagenet() -> None:
    hp = recipe_hparams("darts", "pc-darts", "imagenet")
    assert lr_at(hp, 0) == pytest.approx(0.5 * 1 / 5)  # warm-up epoch 1 of 5
    assert lr_at(hp, 4) == pytest.approx(0.5 * 241 / 245)  # last warm-up epoch, full schedule value
    assert lr_at(hp, 100) == pytest.approx(0.5 * 145 / 245)
    assert lr_at(hp, 245) == pytest.approx(0.5 * 5 / (245 * 5))  # gentler slope over the last 5 epochs
    assert lr_at(hp, 249) == pytest.approx(0.5 * 1 / (245 * 5))


def test_training_writes_a_run_directory_and_a_loadable_timm_folder(tmp_path: Path) -> None:
    result = train(make_config("PC_DARTS_cifar", **TINY), tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "checkpoint.pt", "config.json", "genotype.json", "metrics.jsonl", "model"]
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert [r["lr"] for r in lines] == [0.025, pytest.approx(0.0125)]
    assert [r["drop_path"] for r in lines] == [0.0, 0.15]  # 0.3 * epoch / epochs
    assert all(0 <= r["test_top1"] <= r["test_top5"] <= 1 for r in lines)
    assert result.final == lines[-1]
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert ckpt["epoch"] == 2
    assert any(k.startswith("auxiliary_head.") for k in ckpt["state_dict"])  # auxiliary weight 0.4
    model = timm.create_model(f"local-dir:{result.model_dir}", pretrained=True).eval()
    trained = nasbench_pc.plugins.darts_space.network.DartsNetwork(**ckpt["model_args"]).eval()
    trained.load_state_dict({k: v for k, v in ckpt["state_dict"].items() if not k.startswith("auxiliary_head.")})
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model(x), trained(x))
    from_file = resolve_source(str(tmp_path / "run" / "checkpoint.pt"))  # the checkpoint alone exports too
    assert from_file.dataset == "synthetic" and from_file.metrics["test_top1"] == lines[-1]["test_top1"]
    card = (result.model_dir / "README.md").read_text()
    assert f"test top-1 {lines[-1]['test_top1']:.2%}" in card


class _StopAfterFirstEpoch(TrainProgress):
    def epoch(self, record: dict[str, Any]) -> None:
        raise KeyboardInterrupt  # like Ctrl-C right after the first checkpoint


def test_resumed_run_ends_bit_identical_to_an_uninterrupted_one(tmp_path: Path) -> None:
    config = make_config("DARTS_V2", **TINY)
    straight = train(config, tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut", progress=_StopAfterFirstEpoch())
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["epoch"] == 1
    resumed = resume(tmp_path / "cut")
    assert resumed.history == [
        {**r, "seconds": pytest.approx(r["seconds"], abs=1e9)} for r in straight.history]
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")["state_dict"]
    b = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_second_run_into_the_same_directory_is_refused(tmp_path: Path) -> None:
    train(make_config("DARTS_V2", **{**TINY, "epochs": 1}), tmp_path / "run")
    with pytest.raises(ConfigError, match="already holds a finished training run"):
        train(make_config("DARTS_V2", **TINY), tmp_path / "run")


def test_cli_train_then_export_gives_identical_logits(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["train", "PC_DARTS_cifar", "--dataset", "synthetic", "--limit", "24",
                                  "--epochs", "1", "--batch-size", "12", "-C", "4", "--layers", "3",
                                  "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "test top-1" in result.output
    result = runner.invoke(main, ["export", str(tmp_path / "run"), "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    exported = timm.create_model(f"local-dir:{tmp_path / 'm'}", pretrained=True).eval()
    at_end = timm.create_model(f"local-dir:{tmp_path / 'run' / 'model'}", pretrained=True).eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(exported(x), at_end(x))
    result = runner.invoke(main, ["export", str(tmp_path / "run"), "--out", str(tmp_path / "m2"), "-C", "8"])
    assert result.exit_code == 2 and "holds trained weights" in _text(result.output)


def test_cli_resume_refuses_new_settings(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["train", "--resume", str(tmp_path), "--epochs", "5"])
    assert result.exit_code == 2
    assert "--epochs cannot be given" in _text(result.output)


def test_images_too_small_for_the_auxiliary_head_are_a_clear_error(tmp_path: Path) -> None:
    config = make_config("DARTS_V2", **{**TINY, "image_size": 28})
    with pytest.raises(ConfigError, match="--auxiliary-weight 0"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_an_unusable_device_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Unknown device 'tpu9'"):
        train(make_config("DARTS_V2", **TINY), tmp_path / "run", device="tpu9")
    assert not (tmp_path / "run").exists()
