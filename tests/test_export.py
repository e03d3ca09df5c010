"""``nasbench-pc export``: timm local-dir folders that load in a fresh Python process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from click.testing import CliRunner

import nasbench_pc  # noqa: F401  (registers the timm models)
from nasbench_pc import genotypes
from nasbench_pc.cli import main
from nasbench_pc.networks.export import ExportSpec, load_checkpoint, resolve_source, write_folder
from nasbench_pc.networks.recipes import make_config
from nasbench_pc.networks.train import train
from nasbench_pc.plugins.darts_space.network import DartsNetwork


def _fresh_python(code: str) -> str:
    """Run ``code`` in a new interpreter (nothing registered or cached from this process)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_trained_weights_round_trip_through_timm_in_a_new_process(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = DartsNetwork("PC_DARTS_cifar", init_channels=4, layers=5, num_classes=10, auxiliary=True)
    model.train()
    model(torch.randn(8, 3, 32, 32))  # move the BN running statistics away from their init
    model.eval()
    x = torch.randn(3, 3, 32, 32)
    torch.save({"x": x, "logits": model(x)}, tmp_path / "io.pt")
    spec = ExportSpec(genotypes.KNOWN["PC_DARTS_cifar"], init_channels=4, layers=5, num_classes=10,
                      image_size=32, mean=(0.5, 0.5, 0.5), std=(0.24, 0.24, 0.24), state_dict=model.state_dict(),
                      source="test", dataset="synthetic", metrics={"test_top1": 0.5})
    out = write_folder(spec, tmp_path / "m")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    printed = _fresh_python(
        "import torch, timm, nasbench_pc\n"
        f"m = timm.create_model('local-dir:{out}', pretrained=True).eval()\n"
        f"d = torch.load('{tmp_path / 'io.pt'}', weights_only=True)\n"
        "print(torch.equal(m(d['x']), d['logits']), m.auxiliary_head is None)\n"
        "print(timm.data.resolve_model_data_config(m)['mean'])\n"
    )
    assert printed.split("\n")[:2] == ["True True", "[0.5, 0.5, 0.5]"]


def test_config_json_holds_what_timm_reads(tmp_path: Path) -> None:
    out = write_folder(ExportSpec(genotypes.KNOWN["DARTS_V2"], init_channels=4, layers=5, source="DARTS_V2"),
                       tmp_path / "m")
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == "darts_cifar"
    assert config["num_classes"] == 10
    assert config["model_args"] == {"genotype": genotypes.to_dict(genotypes.KNOWN["DARTS_V2"]), "init_channels": 4,
                                    "layers": 5, "num_classes": 10, "in_chans": 3}
    assert config["pretrained_cfg"]["input_size"] == [3, 32, 32]
    assert config["pretrained_cfg"]["mean"] == [0.4914, 0.4822, 0.4465]
    assert config["nasbench_pc"]["trained"] is False
    assert config["nasbench_pc"]["params"] == sum(p.numel() for p in DartsNetwork("DARTS_V2", init_channels=4,
                                                                                   layers=5).parameters())
    assert not (out / "model.safetensors").exists()


def test_cli_export_of_a_known_name_is_an_untrained_loadable_architecture(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["export", "PC_DARTS_cifar", "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "has no trained weights" in " ".join(result.output.replace("│", " ").split())
    card = (tmp_path / "m" / "README.md").read_text()
    assert "pc-darts on CIFAR-10, published genotype" in card
    assert "3.63M params" in card
    assert "pretrained=False" in card
    model = timm.create_model(f"local-dir:{tmp_path / 'm'}", pretrained=False)
    assert sum(p.numel() for p in model.parameters()) == 3_634_678


def test_cli_export_of_a_search_run_names_its_method(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    genotypes.save(genotypes.KNOWN["DARTS_V1"], run / "genotype.json")
    (run / "config.json").write_text(json.dumps({"method": {"name": "pc-darts"}, "dataset": "synthetic"}))
    torch.save({"alphas": torch.zeros(2)}, run / "checkpoint.pt")  # a search checkpoint, not a train one
    result = CliRunner().invoke(main, ["export", str(run), "--out", str(tmp_path / "m"), "--network", "imagenet",
                                       "-C", "8", "--layers", "5", "--num-classes", "3"])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["architecture"] == "darts_imagenet"
    assert config["nasbench_pc"]["method"] == f"pc-darts on synthetic ({run})"
    assert config["model_args"]["num_classes"] == 3
    assert config["pretrained_cfg"]["input_size"] == [3, 224, 224]


def test_untrained_export_removes_a_stale_weights_file(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.safetensors").write_bytes(b"old")
    write_folder(ExportSpec(genotypes.KNOWN["DARTS_V2"], init_channels=4, layers=5), tmp_path / "m")
    assert not (tmp_path / "m" / "model.safetensors").exists()


@pytest.mark.parametrize("source, message", [
    ("NOT_A_GENOTYPE", "Cannot export 'NOT_A_GENOTYPE'"),
    ("{broken", "not valid JSON"),
])
def test_bad_sources_are_one_paragraph_errors(source: str, message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["export", source, "--out", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert message in " ".join(result.output.replace("│", " ").split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "m").exists()


def test_a_foreign_checkpoint_is_refused(tmp_path: Path) -> None:
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(nasbench_pc.ConfigError, match="is not a `nasbench-pc train` checkpoint"):
        resolve_source(str(tmp_path / "other.pt"))


def test_a_checkpoint_of_the_darts_only_versions_still_exports(tmp_path: Path) -> None:
    """Their model_args also hold ``stem``; the network is their config's ``network``."""
    train(make_config("DARTS_V2", dataset="synthetic", limit=12, epochs=1, batch_size=12, init_channels=4, layers=3,
                      auxiliary_weight=0), tmp_path / "run")
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    old = {**ckpt, "version": 2, "model_args": {**ckpt["model_args"], "stem": "cifar"}}
    torch.save(old, tmp_path / "old.pt")
    spec = resolve_source(str(tmp_path / "old.pt"))
    assert (spec.architecture, spec.shape()) == ("darts_cifar", {"init_channels": 4, "layers": 3})
    config = json.loads((write_folder(spec, tmp_path / "m") / "config.json").read_text())
    assert set(config["model_args"]) == {"genotype", "init_channels", "layers", "num_classes", "in_chans"}
    assert config["nasbench_pc"]["space"] == "darts"
