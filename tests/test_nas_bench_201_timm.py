"""The NAS-Bench-201 derived network as the timm model ``nasbench201_cifar``.

timm's own model tests run on it in ``tests/timm_suite/run.py``; these pin what that suite cannot:
the default cell, every genotype form, the benchmark's parameter counts, the CIFAR data config, and
logits equal to xautodl's TinyNetwork (the reference helpers of tests/test_nas_bench_201.py).
"""

import json

import pytest
import test_nas_bench_201 as reference
import timm
import torch
from timm.models import model_entrypoint

import nasbench_pc  # noqa: F401  (registers the timm models)
from nasbench_pc.errors import ConfigError, GenotypeError
from nasbench_pc.plugins.nas_bench_201 import Nb201Genotype

BEST, ALL_CONV, EVERY_OP = reference.BEST, reference.ALL_CONV, reference.EVERY_OP
xautodl = reference.xautodl  # the reference fixture: a skip without xautodl, a failure in CI


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_import_registers_the_model_from_the_space_package() -> None:
    assert timm.list_models("nasbench201*") == ["nasbench201_cifar"]
    assert model_entrypoint("nasbench201_cifar").__module__ == "nasbench_pc.plugins.nas_bench_201.network"


def test_bare_model_is_the_best_cifar10_cell_with_the_cifar_data_config() -> None:
    model = timm.create_model("nasbench201_cifar")
    assert str(model.genotype) == BEST
    assert _params(model) == 1_288_506
    assert model.num_classes == 10 and model.in_chans == 3 and model.num_features == 64
    config = timm.data.resolve_model_data_config(model)
    assert config["input_size"] == (3, 32, 32)
    assert config["mean"] == (0.4914, 0.4822, 0.4465)
    assert config["std"] == (0.2470, 0.2435, 0.2616)
    cfg = model.pretrained_cfg
    assert (cfg["num_classes"], cfg["url"], cfg["first_conv"], cfg["classifier"]) == (10, "", "stem.0", "classifier")


@pytest.mark.parametrize("form", ["string", "genotype", "dict", "file", "run_dir"])
def test_genotype_takes_every_form_of_a_cell(form: str, tmp_path) -> None:
    genotype = Nb201Genotype.from_str(ALL_CONV)
    (tmp_path / "genotype.json").write_text(json.dumps(genotype.to_dict()))
    spec = {"string": f" {ALL_CONV}\n", "genotype": genotype, "dict": genotype.to_dict(),
            "file": str(tmp_path / "genotype.json"), "run_dir": tmp_path}[form]
    model = timm.create_model("nasbench201_cifar", genotype=spec)
    assert model.genotype == genotype
    assert _params(model) == 1_531_546


@pytest.mark.parametrize("cell, params", [(BEST, 1_294_356), (ALL_CONV, 1_537_396)])
def test_num_classes_gives_the_benchmark_count_for_cifar100(cell: str, params: int) -> None:
    model = timm.create_model("nasbench201_cifar", genotype=cell, num_classes=100)
    assert _params(model) == params
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 100)


def test_num_classes_0_returns_the_pooled_features() -> None:
    model = timm.create_model("nasbench201_cifar", num_classes=0).eval()
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 64)


def test_bad_arguments_are_one_clear_error(tmp_path) -> None:
    with pytest.raises(GenotypeError,
                       match=r"^'nor_conv_3x3' is neither a known genotype \(NB201_best_cifar10\), nor a genotype"):
        timm.create_model("nasbench201_cifar", genotype="nor_conv_3x3")
    darts = tmp_path / "genotype.json"
    darts.write_text(json.dumps({"normal": [], "normal_concat": [], "reduce": [], "reduce_concat": []}))
    with pytest.raises(GenotypeError, match=r"genotype\.json: A NAS-Bench-201 genotype is an object with exactly"):
        timm.create_model("nasbench201_cifar", genotype=darts)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(GenotypeError, match=r"broken\.json: The genotype is not valid JSON"):
        timm.create_model("nasbench201_cifar", genotype=tmp_path / "broken.json")
    with pytest.raises(GenotypeError, match="Cannot read a nas-bench-201 genotype from a int"):
        timm.create_model("nasbench201_cifar", genotype=3)
    with pytest.raises(ConfigError, match="num_classes of a NAS-Bench-201 network must be a non-negative integer"):
        timm.create_model("nasbench201_cifar", num_classes=-1)
    with pytest.raises(TypeError):
        timm.create_model("nasbench201_cifar", layers=5)  # a DARTS option: timm expects a TypeError


def test_features_are_the_three_stage_outputs() -> None:
    model = timm.create_model("nasbench201_cifar", genotype=EVERY_OP).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        final, taps = model.forward_intermediates(x)
        torch.testing.assert_close(final, model.forward_features(x), rtol=0, atol=0)
        normed = model.forward_intermediates(x, indices=[2], norm=True, intermediates_only=True)[0]
        torch.testing.assert_close(normed, final, rtol=0, atol=0)  # the norm of the last stage is lastact
        features = timm.create_model("nasbench201_cifar", genotype=EVERY_OP, features_only=True).eval()
        loaded = features.model.load_state_dict(model.state_dict(), strict=False)  # pruned: no lastact, no head
        assert loaded.missing_keys == [] and "classifier.weight" in loaded.unexpected_keys
        outputs = features(x)
    assert [tuple(t.shape) for t in taps] == [(2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8)]
    assert features.feature_info.channels() == [16, 32, 64] and features.feature_info.reduction() == [1, 2, 4]
    for tap, output in zip(taps, outputs):
        torch.testing.assert_close(output, tap, rtol=0, atol=0)


def test_grad_checkpointing_keeps_the_logits() -> None:
    model = timm.create_model("nasbench201_cifar", genotype=EVERY_OP).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        model.set_grad_checkpointing()
        torch.testing.assert_close(model(x), expected, rtol=0, atol=0)


@pytest.mark.parametrize("cell", [BEST, EVERY_OP])
def test_timm_model_logits_equal_tinynetwork(xautodl, cell: str) -> None:
    from xautodl.models.cell_infers.tiny_network import TinyNetwork
    from xautodl.models.cell_searchs.genotypes import Structure

    ref = TinyNetwork(16, 5, Structure.str2structure(cell), 10).double()
    ours = timm.create_model("nasbench201_cifar", genotype=cell, dtype=torch.float64)
    reference._fill(ref.parameters(), 0.0)
    reference._copy(ref, ours)
    x = reference._input()
    torch.testing.assert_close(ours(x), ref(x)[1], rtol=1e-9, atol=1e-9)  # train mode: batch statistics
    ours.eval()
    ref.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x)[1], rtol=1e-9, atol=1e-9)
