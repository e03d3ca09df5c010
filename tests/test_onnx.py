"""``nasbench-pc export --onnx``: model.onnx with a dynamic batch axis whose logits equal the timm folder's."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

onnxruntime = pytest.importorskip("onnxruntime")

import timm  # noqa: E402
import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from torch import nn  # noqa: E402

import nasbench_pc  # noqa: E402,F401  (registers the timm models)
from nasbench_pc import genotypes  # noqa: E402
from nasbench_pc.cli import main  # noqa: E402
from nasbench_pc.errors import ConfigError  # noqa: E402
from nasbench_pc.networks.export import ExportSpec, write_folder  # noqa: E402
from nasbench_pc.networks.onnx_export import OnnxCheck, check_onnx, export_onnx  # noqa: E402
from nasbench_pc.networks.recipes import make_config  # noqa: E402
from nasbench_pc.networks.train import train  # noqa: E402


def _export(args: list[str], out: Path) -> str:
    result = CliRunner().invoke(main, ["export", *args, "--out", str(out), "--onnx"])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.replace("│", " ").split())


def _onnx_vs_timm(out: Path, side: int, *, trained: bool) -> dict[int, float]:
    """Max abs logit difference between model.onnx on onnxruntime and timm's model of the folder, at batch 1 and 7
    (an untrained folder's model made after torch.manual_seed(0), as the export made it)."""
    torch.manual_seed(0)
    model = timm.create_model(f"local-dir:{out}", pretrained=trained).eval()
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    diffs = {}
    for batch in (1, 7):
        x = torch.randn(batch, 3, side, side)
        with torch.no_grad():
            expected = model(x)
        got = torch.from_numpy(session.run(["logits"], {"image": x.numpy()})[0])
        assert got.shape == expected.shape == (batch, model.num_classes)
        diffs[batch] = (got - expected).abs().max().item()
    return diffs


@pytest.mark.parametrize("args, architecture, side, classes", [
    (["PC_DARTS_cifar", "-C", "8", "--layers", "5"], "darts_cifar", 32, 10),
    (["FairDARTS_a", "-C", "8", "--layers", "5"], "darts_cifar", 32, 10),  # sparse cells (SparseCell)
    (["PC_DARTS_image", "--network", "imagenet", "-C", "8", "--layers", "3", "--num-classes", "5"], "darts_imagenet",
     224, 5),
    (["NB201_best_cifar10", "-C", "8", "--layers", "1"], "nasbench201_cifar", 32, 10),
], ids=["darts-cifar", "darts-sparse", "darts-imagenet", "nas-bench-201"])
def test_onnx_logits_equal_timm_at_batch_1_and_7(args: list[str], architecture: str, side: int, classes: int,
                                                 tmp_path: Path) -> None:
    out = tmp_path / "m"
    printed = _export(args, out)
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in session.get_inputs()] == [("image", ["batch", 3, side, side])]
    assert [(o.name, o.shape) for o in session.get_outputs()] == [("logits", ["batch", classes])]
    diffs = _onnx_vs_timm(out, side, trained=False)
    assert max(diffs.values()) < 1e-4, diffs
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == architecture
    record = config["nasbench_pc"]["onnx"]
    assert (record["file"], record["opset"], record["onnxruntime"]) == ("model.onnx", 17, onnxruntime.__version__)
    assert sorted(record["max_abs_diff"]) == ["1", "7"] and max(record["max_abs_diff"].values()) < 1e-4
    check = OnnxCheck(17, {1: record["max_abs_diff"]["1"], 7: record["max_abs_diff"]["7"]}, onnxruntime.__version__)
    card = (out / "README.md").read_text()
    assert f"Checked on export: one random input through PyTorch and onnxruntime, {check.describe()}" in card
    assert f"onnxruntime {onnxruntime.__version__} on CPU, opset 17" in printed
    assert "torch.manual_seed(0)" in card  # how to rebuild the untrained weights model.onnx holds


def test_trained_weights_export_logits_only_without_the_auxiliary_head(tmp_path: Path) -> None:
    train(make_config("DARTS_V2", dataset="synthetic", limit=12, epochs=1, batch_size=12, init_channels=4, layers=3),
          tmp_path / "run")
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["state_dict"]
    assert any(k.startswith("auxiliary_head.") for k in state)  # trained with the head; the export drops it
    _export([str(tmp_path / "run")], tmp_path / "m")
    session = onnxruntime.InferenceSession(str(tmp_path / "m" / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["logits"]
    diffs = _onnx_vs_timm(tmp_path / "m", 32, trained=True)
    assert max(diffs.values()) < 1e-4, diffs
    assert "the trained weights" in (tmp_path / "m" / "README.md").read_text()


def test_without_onnxruntime_the_export_names_the_extra_before_writing(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    result = CliRunner().invoke(main, ["export", "PC_DARTS_cifar", "--out", str(tmp_path / "m"), "--onnx"])
    assert result.exit_code == 2
    text = " ".join(result.output.replace("│", " ").split())
    assert "onnxruntime is not installed. Install the extra: pip install \"nasbench-pc[onnx]\"." in text
    assert "Traceback" not in result.output
    assert not (tmp_path / "m").exists()


def test_an_exporter_failure_names_the_network_and_keeps_the_timm_folder(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Exporting the operator 'aten::made_up' to ONNX opset version 17 is not supported.")

    monkeypatch.setattr(torch.onnx, "export", refuse)
    out = tmp_path / "m"
    result = CliRunner().invoke(main, ["export", "PC_DARTS_cifar", "-C", "8", "--layers", "5", "--out", str(out),
                                       "--onnx"])
    assert result.exit_code == 2
    text = " ".join(result.output.replace("│", " ").split())
    assert ("The cifar network (darts_cifar) cannot be exported to ONNX: torch's exporter (TorchScript-based, opset "
            "17) stopped with RuntimeError: Exporting the operator 'aten::made_up' to ONNX opset version 17 is not "
            "supported.") in text
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json"]
    timm.create_model(f"local-dir:{out}", pretrained=False)  # the folder still loads


def test_logits_that_differ_by_1e_3_are_refused_and_the_file_removed(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    path = tmp_path / "model.onnx"
    export_onnx(model, path, (3, 8, 8), "test network")
    assert check_onnx(model, path, (3, 8, 8), "test network").opset == 17
    with torch.no_grad():
        model[0].bias += 1e-3  # every logit moves by 1e-3; the file keeps the old bias
    with pytest.raises(ConfigError, match=r"The ONNX export of the test network does not reproduce its PyTorch "
                                          r"logits: max abs logit difference 0.001 at batch 1, 0.001 at batch 7"):
        check_onnx(model, path, (3, 8, 8), "test network")
    assert not path.exists()


def test_an_export_without_onnx_removes_a_stale_model_onnx(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.onnx").write_bytes(b"another architecture")
    write_folder(ExportSpec(genotypes.KNOWN["DARTS_V2"], init_channels=4, layers=5), tmp_path / "m")
    assert not (tmp_path / "m" / "model.onnx").exists()


def test_a_file_onnxruntime_cannot_load_is_refused_and_removed(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match=r"The ONNX export of the test network was written but does not run on "
                                          r"onnxruntime \S+ \(CPU\) when loaded: "):
        check_onnx(nn.Flatten(), path, (3, 8, 8), "test network")
    assert not path.exists()
