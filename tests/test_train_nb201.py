"""``train`` and ``export`` of NAS-Bench-201 genotypes: the space's derived network (``nasbench201_cifar``), its
recipe, run folders, and timm folders that load in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import timm
import torch
from cli_output import flat
from click.testing import CliRunner

import nasbench_pc  # noqa: F401  (registers the timm models)
from nasbench_pc import genotypes
from nasbench_pc.cli import main
from nasbench_pc.errors import ConfigError
from nasbench_pc.export import ExportSpec, load_checkpoint, resolve_source, write_folder
from nasbench_pc.train import TrainProgress, choose_recipe, make_config, resume, train

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
TINY = dict(dataset="synthetic", limit=24, epochs=2, batch_size=12, init_channels=4, layers=1)
TINY_ARGS = ["--dataset", "synthetic", "--limit", "24", "--epochs", "1", "--batch-size", "12", "-C", "4", "--layers",
             "1", "--device", "cpu", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _run_folder(path: Path) -> Path:
    """A run folder holding only a NAS-Bench-201 genotype.json, as a search over that space leaves one."""
    path.mkdir()
    (path / "genotype.json").write_text(genotypes.to_json(genotypes.parse(BEST)) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-epoch NAS-Bench-201 training run (read-only for the tests)."""
    out = tmp_path_factory.mktemp("nb201") / "run"
    train(make_config(BEST, **TINY), out)
    return out


def test_auto_recipe_of_a_nb201_genotype_is_the_spaces_recipe() -> None:
    recipe, reason = choose_recipe(BEST)
    assert recipe == "nas-bench-201"
    assert reason.startswith("the nas-bench-201 recipe is the one for nas-bench-201 genotypes: no NAS-Bench-201 "
                             "training recipe is on record here, so the DARTS CIFAR recipe without auxiliary head")
    assert choose_recipe("NB201_best_cifar10")[0] == "nas-bench-201"


def test_nb201_recipe_is_the_darts_cifar_recipe_without_auxiliary_and_drop_path() -> None:
    config = make_config(BEST, dataset="cifar10")
    assert (config.recipe, config.network, config.network_spec().model) == ("nas-bench-201", "cifar",
                                                                             "nasbench201_cifar")
    hp = config.hparams
    assert (hp.epochs, hp.batch_size, hp.lr, hp.lr_min, hp.lr_schedule, hp.momentum, hp.weight_decay) == \
        (600, 96, 0.025, 0.0, "cosine", 0.9, 3e-4)
    assert (hp.auxiliary_weight, hp.drop_path, hp.cutout, hp.grad_clip) == (0.0, 0.0, 16, 5.0)
    assert (hp.init_channels, hp.layers) == (16, 5)


def test_a_darts_recipe_network_or_extra_for_a_nb201_genotype_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"The darts recipe trains darts networks, and this is a nas-bench-201 "
                                          r"genotype. Use --recipe auto or --recipe nas-bench-201."):
        make_config(BEST, recipe="darts")
    with pytest.raises(ConfigError, match=r"The nas-bench-201 recipe trains nas-bench-201 networks, and this is a "
                                          r"darts genotype"):
        make_config("DARTS_V2", recipe="nas-bench-201")
    with pytest.raises(ConfigError, match=r"The nas-bench-201 search space has no network 'imagenet'; its networks "
                                          r"are cifar \(nasbench201_cifar\). Pass one of those with --network."):
        make_config(BEST, network="imagenet")
    with pytest.raises(ConfigError, match="The nasbench201_cifar network has no auxiliary head, so it cannot train "
                                          "with --auxiliary-weight 0.4. Pass --auxiliary-weight 0."):
        train(make_config(BEST, **TINY, auxiliary_weight=0.4), tmp_path / "aux")
    with pytest.raises(ConfigError, match="has no drop path, so it cannot train with --drop-path 0.2"):
        train(make_config(BEST, **TINY, drop_path=0.2), tmp_path / "drop")


def test_imagenet_dataset_keeps_the_nb201_cifar_network() -> None:
    """The default network is the one named like the dataset only where the space has one."""
    assert make_config(BEST, dataset="imagenet").network == "cifar"
    assert make_config("DARTS_V2", dataset="imagenet").network == "imagenet"


def test_training_writes_the_space_model_and_genotype_text(trained: Path) -> None:
    assert sorted(p.name for p in trained.iterdir()) == [
        "checkpoint.pt", "config.json", "genotype.json", "metrics.jsonl", "model"]
    config = json.loads((trained / "config.json").read_text())
    assert (config["space"], config["model"], config["genotype_text"], config["recipe"]) == \
        ("nas-bench-201", "nasbench201_cifar", BEST, "nas-bench-201")
    assert config["model_args"] == {"genotype": genotypes.to_dict(genotypes.parse(BEST)), "init_channels": 4,
                                    "cells_per_stage": 1, "num_classes": 10, "in_chans": 3}
    assert genotypes.load(trained / "genotype.json") == genotypes.parse(BEST)
    lines = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["lr"], r["drop_path"]) for r in lines] == [(1, 0.025, 0.0), (2, pytest.approx(0.0125), 0.0)]
    assert all(0 <= r["test_top1"] <= r["test_top5"] <= 1 for r in lines)


def test_the_trained_model_folder_loads_in_a_fresh_process_with_identical_logits(trained: Path,
                                                                                 tmp_path: Path) -> None:
    folder = trained / "model"
    exported = json.loads((folder / "config.json").read_text())
    assert exported["architecture"] == "nasbench201_cifar"
    assert exported["model_args"]["genotype"] == genotypes.to_dict(genotypes.parse(BEST))  # with "space"
    assert (exported["model_args"]["init_channels"], exported["model_args"]["cells_per_stage"]) == (4, 1)
    assert (exported["nasbench_pc"]["space"], exported["nasbench_pc"]["genotype_text"]) == ("nas-bench-201", BEST)
    ckpt = load_checkpoint(trained / "checkpoint.pt")
    model = timm.create_model("nasbench201_cifar", **ckpt["model_args"]).eval()
    model.load_state_dict(ckpt["state_dict"])
    x = torch.randn(2, 3, 32, 32)
    torch.save({"x": x, "logits": model(x)}, tmp_path / "io.pt")
    done = subprocess.run([sys.executable, "-c", (
        "import torch, timm, nasbench_pc\n"
        f"m = timm.create_model('local-dir:{folder}', pretrained=True).eval()\n"
        f"d = torch.load('{tmp_path / 'io.pt'}', weights_only=True)\n"
        "print(type(m).__name__, torch.equal(m(d['x']), d['logits']))\n")],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Nb201Network", "True"]
    card = (folder / "README.md").read_text()
    assert "| search space | nas-bench-201 |" in card
    assert "`nasbench201_cifar` (cifar network, C=4 and 1 cells per stage)" in card
    assert BEST in card and "no NAS-Bench-201 training recipe is on record here" in card


def test_cli_train_of_a_nb201_run_folder_then_export(tmp_path: Path) -> None:
    runner = CliRunner()
    search = _run_folder(tmp_path / "search")
    result = runner.invoke(main, ["train", str(search), *TINY_ARGS, "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["recipe"] == "nas-bench-201"
    result = runner.invoke(main, ["export", str(tmp_path / "run"), "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    exported = timm.create_model(f"local-dir:{tmp_path / 'm'}", pretrained=True).eval()
    at_end = timm.create_model(f"local-dir:{tmp_path / 'run' / 'model'}", pretrained=True).eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(exported(x), at_end(x))


def test_cli_export_of_a_nb201_genotype_is_the_benchmarks_network(tmp_path: Path) -> None:
    """Untrained: the benchmark's C=16, N=5 network, whose parameter count is the reference TinyNetwork's."""
    search = _run_folder(tmp_path / "search")
    result = CliRunner().invoke(main, ["export", str(search), "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "untrained nasbench201_cifar (C=16 and 5 cells per stage, 10 classes)" in flat(result.output)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["architecture"] == "nasbench201_cifar" and config["nasbench_pc"]["params"] == 1_288_506
    model = timm.create_model(f"local-dir:{tmp_path / 'm'}", pretrained=False)
    assert sum(p.numel() for p in model.parameters()) == 1_288_506
    result = CliRunner().invoke(main, ["export", BEST, "--out", str(tmp_path / "small"), "-C", "8", "--layers", "2",
                                       "--num-classes", "100"])
    assert result.exit_code == 0, result.output
    args = json.loads((tmp_path / "small" / "config.json").read_text())["model_args"]
    assert (args["init_channels"], args["cells_per_stage"], args["num_classes"]) == (8, 2, 100)
    result = CliRunner().invoke(main, ["export", BEST, "--out", str(tmp_path / "x"), "--network", "imagenet"])
    assert result.exit_code == 2 and "has no network 'imagenet'" in flat(result.output)


def test_shape_options_map_to_the_models_own_keywords() -> None:
    spec = ExportSpec(genotypes.parse(BEST), init_channels=8, layers=2)
    assert spec.model_args() == {"genotype": genotypes.to_dict(genotypes.parse(BEST)), "init_channels": 8,
                                 "cells_per_stage": 2, "num_classes": 10, "in_chans": 3}
    darts = ExportSpec(genotypes.KNOWN["DARTS_V2"], network="imagenet", layers=8)
    assert (darts.architecture, darts.shape(), darts.classes()) == ("darts_imagenet",
                                                                    {"init_channels": 48, "layers": 8}, 1000)


class _StopAfterFirstEpoch(TrainProgress):
    def epoch(self, record: dict[str, Any]) -> None:
        raise KeyboardInterrupt


def test_a_resumed_nb201_run_ends_bit_identical(trained: Path, tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        train(make_config(BEST, **TINY), tmp_path / "cut", progress=_StopAfterFirstEpoch())
    resume(tmp_path / "cut")
    a = load_checkpoint(trained / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in a["history"]] == \
        [{k: v for k, v in r.items() if k != "seconds"} for r in b["history"]]


def test_export_of_a_checkpoint_keeps_the_network(trained: Path, tmp_path: Path) -> None:
    spec = resolve_source(str(trained / "checkpoint.pt"))
    assert (spec.architecture, spec.network_name, spec.shape()) == ("nasbench201_cifar", "cifar",
                                                                     {"init_channels": 4, "cells_per_stage": 1})
    assert spec.recipe["recipe"] == "nas-bench-201"
    out = write_folder(spec, tmp_path / "m")
    assert json.loads((out / "config.json").read_text())["nasbench_pc"]["trained"] is True
