"""The timm side of the derived networks: registration, pretrained_cfg, features, the model interface."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import timm
import torch
from timm.models import group_parameters

import nasbench_pc  # noqa: F401  (registers the timm models)
from nasbench_pc import genotypes
from nasbench_pc.errors import ConfigError
from nasbench_pc.plugins.darts_space.network import DartsNetwork, checkpoint_filter_fn

TINY = dict(init_channels=4, layers=5)  # reductions at cells 1 and 3


def test_all_models_are_registered() -> None:
    assert set(timm.list_models("*darts*")) >= {
        "pc_darts_cifar", "pc_darts_imagenet", "darts_v1_cifar", "darts_v2_cifar", "darts_v2_imagenet",
        "darts_cifar", "darts_imagenet", "fairdarts_a_cifar",
    }


def test_cifar_data_config_has_cifar_statistics_and_32px() -> None:
    model = timm.create_model("pc_darts_cifar", **TINY)
    config = timm.data.resolve_model_data_config(model)
    assert config["input_size"] == (3, 32, 32)
    assert config["mean"] == (0.4914, 0.4822, 0.4465)
    assert config["std"] == (0.2470, 0.2435, 0.2616)
    assert model.num_classes == 10
    assert model.pretrained_cfg["first_conv"] == "stem.0"
    assert model.pretrained_cfg["classifier"] == "classifier"


def test_imagenet_data_config_is_224px_with_1000_classes() -> None:
    model = timm.create_model("darts_v2_imagenet", **TINY)
    config = timm.data.resolve_model_data_config(model)
    assert config["input_size"] == (3, 224, 224)
    assert config["mean"] == (0.485, 0.456, 0.406)
    assert model.num_classes == 1000
    assert model.pretrained_cfg["first_conv"] == "stem0.0"


def test_features_only_returns_one_map_per_stage_on_cifar() -> None:
    model = timm.create_model("pc_darts_cifar", features_only=True, **TINY)
    feats = model(torch.randn(2, 3, 32, 32))
    assert [tuple(f.shape) for f in feats] == [(2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8)]
    assert model.feature_info.channels() == [16, 32, 64]
    assert model.feature_info.reduction() == [1, 2, 4]


def test_features_only_on_imagenet_adds_the_stride_4_stem() -> None:
    model = timm.create_model("pc_darts_imagenet", features_only=True, **TINY)
    feats = model(torch.randn(1, 3, 224, 224))
    assert [tuple(f.shape) for f in feats] == [(1, 4, 56, 56), (1, 16, 28, 28), (1, 32, 14, 14), (1, 64, 7, 7)]
    assert model.feature_info.reduction() == [4, 8, 16, 32]


def test_features_only_with_out_indices_prunes_later_cells() -> None:
    model = timm.create_model("pc_darts_cifar", features_only=True, out_indices=(1,), **TINY)
    assert len(model.model.cells) == 3  # cells 0..2; stage 2 ends at cell 2
    assert [tuple(f.shape) for f in model(torch.randn(1, 3, 32, 32))] == [(1, 32, 16, 16)]


def test_forward_intermediates_matches_forward_features() -> None:
    model = timm.create_model("darts_cifar", genotype="DARTS_V2", **TINY).eval()
    x = torch.randn(2, 3, 32, 32)
    final, inter = model.forward_intermediates(x)
    assert torch.equal(final, model.forward_features(x))
    assert torch.equal(inter[-1], final)
    assert [t.shape[1] for t in inter] == [16, 32, 64]
    early = model.forward_intermediates(x, indices=[0], stop_early=True, intermediates_only=True)
    assert len(early) == 1 and torch.equal(early[0], inter[0])


def test_head_interface() -> None:
    model = timm.create_model("pc_darts_cifar", **TINY).eval()
    x = torch.randn(2, 3, 32, 32)
    assert model.num_features == 64
    assert model.get_classifier() is model.classifier
    pre = model.forward_head(model.forward_features(x), pre_logits=True)
    assert pre.shape == (2, 64)
    torch.testing.assert_close(model.classifier(pre), model(x))
    model.reset_classifier(3)
    assert model(x).shape == (2, 3) and model.num_classes == 3
    model.reset_classifier(0)
    assert model(x).shape == (2, 64)


def test_timm_kwargs_reach_the_network() -> None:
    model = timm.create_model("darts_cifar", genotype="PC_DARTS_cifar", num_classes=5, in_chans=1,
                              drop_rate=0.2, drop_path_rate=0.1, global_pool="max", **TINY)
    assert model.stem[0].in_channels == 1
    assert model.num_classes == 5 and model.drop_rate == 0.2 and model.drop_path_prob == 0.1
    assert model.global_pool.pool_type == "max"
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 5)


def test_grad_checkpointing_gives_the_same_gradients() -> None:
    torch.manual_seed(0)
    model = timm.create_model("pc_darts_cifar", **TINY)
    x = torch.randn(2, 3, 32, 32)
    model(x).sum().backward()
    plain = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.set_grad_checkpointing(True)
    model(x).sum().backward()
    for a, p in zip(plain, model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, a)


def test_group_matcher_puts_stem_then_each_cell_then_head() -> None:
    model = timm.create_model("pc_darts_cifar", **TINY)
    groups = group_parameters(model, model.group_matcher())
    assert len(groups) == 1 + 5 + 1
    assert groups[0] == ["stem.0.weight", "stem.1.weight", "stem.1.bias"]
    assert groups[6] == ["classifier.weight", "classifier.bias"]


@pytest.mark.parametrize("form", ["name", "path", "run_dir", "json", "dict", "genotype"])
def test_darts_cifar_takes_any_genotype_form(form: str, tmp_path) -> None:
    g = genotypes.KNOWN["DARTS_V1"]
    genotypes.save(g, tmp_path / "genotype.json")
    spec = {"name": "DARTS_V1", "path": str(tmp_path / "genotype.json"), "run_dir": str(tmp_path),
            "json": genotypes.to_json(g), "dict": genotypes.to_dict(g), "genotype": g}[form]
    model = timm.create_model("darts_cifar", genotype=spec, num_classes=10, **TINY)
    assert model.genotype == g


@pytest.mark.parametrize(("name", "default"), [("darts_cifar", "PC_DARTS_cifar"), ("darts_imagenet", "PC_DARTS_image")])
def test_generic_model_defaults_to_the_pc_darts_genotype(name: str, default: str) -> None:
    # timm creates every registered name without arguments (its own model tests do).
    assert timm.create_model(name, **TINY).genotype == genotypes.KNOWN[default]


def test_published_model_refuses_a_genotype() -> None:
    with pytest.raises(ConfigError, match="use timm.create_model\\('darts_cifar', genotype=...\\)"):
        timm.create_model("pc_darts_cifar", genotype="DARTS_V2")


def test_genotype_model_arg_survives_json() -> None:
    model = timm.create_model("darts_cifar", genotype="PC_DARTS_cifar", **TINY)
    args = json.loads(json.dumps({"genotype": genotypes.to_dict(model.genotype)}))
    assert DartsNetwork(**args, **TINY).genotype == model.genotype


def test_checkpoint_filter_accepts_reference_style_checkpoints() -> None:
    source = DartsNetwork("DARTS_V2", auxiliary=True, **TINY)
    wrapped = {"state_dict": {"module." + k: v for k, v in source.state_dict().items()}}
    target = DartsNetwork("DARTS_V2", **TINY)
    filtered = checkpoint_filter_fn(wrapped, target)
    assert not any(k.startswith(("module.", "auxiliary_head.")) for k in filtered)
    target.load_state_dict(filtered)  # strict
    source.eval(), target.eval()
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(source(x), target(x))


@pytest.mark.parametrize(("name", "size"), [("darts_cifar", 32), ("darts_imagenet", 64)])
def test_torchscript_gives_the_eager_outputs_in_eval_and_with_drop_path(name: str, size: int) -> None:
    model = timm.create_model(name, drop_path_rate=0.3, **TINY)
    scripted = torch.jit.script(model)
    x = torch.randn(2, 3, size, size)
    torch.manual_seed(0)
    eager_train = model(x)
    torch.manual_seed(0)  # the same drop-path masks: drawn in the same order from the same generator
    torch.testing.assert_close(scripted(x), eager_train)
    model.eval(), scripted.eval()
    torch.testing.assert_close(scripted(x), model(x))
    assert not torch.allclose(model(x), eager_train)  # drop path (and train-mode BN) did act in training


def test_fx_trace_runs_and_scripts_like_the_model() -> None:
    model = timm.create_model("pc_darts_imagenet", **TINY).eval()
    traced = torch.jit.script(torch.fx.symbolic_trace(model))  # fails on postponed (string) annotations
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(traced(x), model(x))


def test_factory_device_and_dtype_place_every_parameter() -> None:
    meta = timm.create_model("darts_imagenet", device="meta", **TINY)
    assert {t.device.type for t in [*meta.parameters(), *meta.buffers()]} == {"meta"}
    double = timm.create_model("pc_darts_cifar", dtype=torch.float64, **TINY)
    assert {p.dtype for p in double.parameters()} == {torch.float64}


def test_reset_classifier_follows_the_network_dtype_and_mode() -> None:
    model = timm.create_model("pc_darts_cifar", **TINY).to(torch.float64).eval()
    model.reset_classifier(3)
    assert model.classifier.weight.dtype == torch.float64
    assert not any(m.training for m in model.modules())
    assert model(torch.randn(1, 3, 32, 32, dtype=torch.float64)).shape == (1, 3)


def test_pruning_to_the_stem_tap_ends_the_features_at_stem0() -> None:
    model = timm.create_model("pc_darts_imagenet", **TINY).eval()
    x = torch.randn(1, 3, 64, 64)
    tap = model.forward_intermediates(x, indices=[0], intermediates_only=True)[0]
    assert model.prune_intermediate_layers([0], prune_norm=True) == [0]
    assert len(model.cells) == 0 and model.auxiliary_head is None
    features = model.forward_features(x)
    assert features.shape == (1, 4, 16, 16)
    assert torch.equal(features, tap)


# --- tests/timm_suite: the runner of timm's own model tests, on a stand-in for timm's test_models.py ----

SUITE = Path(__file__).parent / "timm_suite"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"timm_suite_{name}", SUITE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_timm_tests(tmp_path: Path, names: tuple[str, ...]) -> Path:
    """A tests/ folder whose test_models.py holds no-op ``names`` tests over resnet18 and our models;
    the model named by FAKE_SKIP is skipped."""
    tests = tmp_path / "timm_tests"
    tests.mkdir()
    (tests / "__init__.py").write_text("")
    test = '\n@pytest.mark.parametrize("model_name", NAMES)\ndef {}(model_name, batch_size=1):\n    _run(model_name)\n'
    body = "".join(test.format(name) for name in names)
    (tests / "test_models.py").write_text(
        "import os\nimport pytest\nfrom conftest import our_models\n\nNAMES = ['resnet18', *our_models()]\n\n"
        "def _run(model_name):\n    if model_name == os.environ.get('FAKE_SKIP'):\n        pytest.skip('fake')\n" + body
    )
    return tests


def _run_suite(tests: Path, skip: str = "") -> subprocess.CompletedProcess:
    code = f"import os, sys; os.environ['FAKE_SKIP'] = {skip!r}; sys.path.insert(0, {str(SUITE)!r}); " \
           f"import run; sys.exit(run.main(['--timm-tests', {str(tests)!r}]))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_suite_runs_only_our_models_and_fails_when_one_is_skipped(tmp_path: Path) -> None:
    plugin = _load("conftest_timm")
    ours = plugin.our_models()
    assert {"darts_cifar", "pc_darts_imagenet"} <= set(ours) and "resnet18" not in ours
    names = (*plugin.REQUIRED, "test_prune_intermediate_layers_contract")
    tests = _fake_timm_tests(tmp_path, names)
    # 11 tests in test_models.py and 3 more in the copied intermediates.py, each on every model of ours;
    # resnet18 runs nowhere.
    passing = _run_suite(tests)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert f"{14 * len(ours)} passed, 11 deselected" in passing.stdout
    skipping = _run_suite(tests, skip="pc_darts_cifar")
    assert skipping.returncode == 1
    assert "FAILED: 14 of nasbench_pc's timm tests were skipped" in skipping.stdout


def test_suite_refuses_to_run_when_a_required_test_misses_our_models(tmp_path: Path) -> None:
    tests = _fake_timm_tests(tmp_path, ("test_model_forward",))
    (tests / "test_models.py").write_text((tests / "test_models.py").read_text().replace("*our_models()", ""))
    result = _run_suite(tests)
    assert result.returncode == 4  # pytest's usage error
    assert "timm's model tests did not collect all of nasbench_pc's models (test_model_forward lacks darts_cifar, " \
           "darts_imagenet," in result.stderr
