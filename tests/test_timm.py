"""The timm side of the derived networks: registration, pretrained_cfg, features, the model interface."""

from __future__ import annotations

import json

import pytest
import timm
import torch
from timm.models import group_parameters

import nasbench_pc  # noqa: F401  (registers the timm models)
from nasbench_pc import genotypes
from nasbench_pc.derived import DartsNetwork, checkpoint_filter_fn
from nasbench_pc.errors import ConfigError

TINY = dict(init_channels=4, layers=5)  # reductions at cells 1 and 3


def test_all_models_are_registered() -> None:
    assert set(timm.list_models("*darts*")) >= {
        "pc_darts_cifar", "pc_darts_imagenet", "darts_v1_cifar", "darts_v2_cifar", "darts_v2_imagenet",
        "darts_cifar", "darts_imagenet",
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


def test_generic_model_without_genotype_says_what_to_pass() -> None:
    with pytest.raises(ConfigError, match="darts_cifar needs genotype="):
        timm.create_model("darts_cifar")


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
