"""The derived (evaluation) networks: reference parameter counts, outputs, drop path, auxiliary head."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch

import nasbench_pc  # noqa: F401  (registers the timm models)
from nasbench_pc.errors import ConfigError, GenotypeError
from nasbench_pc.networks.cost import count_params, genotype_cost
from nasbench_pc.plugins.darts_space.network import Cell, DartsNetwork, drop_path, reduction_cells
from nasbench_pc.plugins.darts_space.ops import FactorizedReduce, Identity

GOLDEN = json.loads((Path(__file__).parent / "data" / "derived_golden.json").read_text())
# params and MACs of the reference model.py for the DARTS-family genotypes (how they were made: its "source")
FAMILY = json.loads((Path(__file__).parent / "data" / "published_genotypes_golden.json").read_text())


# Counts of the reference model.py (quark0/darts cnn/model.py) for the same genotype and setting,
# auxiliary head excluded. DARTS_V2 on CIFAR is the 3,349,342 the DARTS paper reports.
@pytest.mark.parametrize("name, params", [
    ("pc_darts_cifar", 3_634_678),
    ("darts_v1_cifar", 3_169_414),
    ("darts_v2_cifar", 3_349_342),
    ("pc_darts_imagenet", 5_342_464),
    ("darts_v2_imagenet", 4_718_752),
    ("fairdarts_a_cifar", 2_360_782),  # FairDARTS' own model.py (DCOCell): tests/data/published_genotypes_golden.json
])
def test_published_models_have_the_reference_parameter_count(name: str, params: int) -> None:
    with torch.device("meta"):
        model = timm.create_model(name)
    assert count_params(model) == params


@pytest.mark.parametrize(("network", "name"), [(network, name) for network in ("cifar", "imagenet")
                                                 for name in FAMILY[network]])
def test_darts_family_genotypes_cost_what_the_reference_model_py_costs(network: str, name: str) -> None:
    shape = {"cifar": {}, "imagenet": dict(init_channels=48, layers=14, num_classes=1000)}[network]
    with torch.device("meta"):
        ours = DartsNetwork(name, stem=network, **shape)
        model = timm.create_model(f"darts_{network}", genotype=name)
    golden = FAMILY[network][name]
    assert count_params(ours) == count_params(model) == golden["params"]
    cost = genotype_cost(name, network)  # a forward on the meta device: shapes are checked, nothing is computed
    assert (cost.params, cost.macs) == (golden["params"], golden["macs"])


def test_auxiliary_head_is_off_by_default_and_not_counted() -> None:
    with torch.device("meta"):
        plain = timm.create_model("pc_darts_cifar")
        aux = timm.create_model("pc_darts_cifar", auxiliary=True)
    assert plain.auxiliary_head is None
    assert aux.auxiliary_head.features[2].in_channels == 576  # cell 13 of 20: 4 nodes x 144 channels
    assert count_params(aux) == count_params(plain) == 3_634_678
    # conv1x1 576*128 + BN 2*128 + conv2x2 128*768*4 + BN 2*768 + linear 768*10+10
    assert sum(p.numel() for p in aux.parameters()) - count_params(aux) == 476_426


@pytest.mark.parametrize("stem", ["cifar", "imagenet"])
def test_outputs_equal_the_reference_network(stem: str) -> None:
    """Golden logits of the reference model.py built with the same seed (same init order, same keys)."""
    g = GOLDEN[stem]
    torch.manual_seed(g["weights_seed"])
    model = DartsNetwork(g["genotype"], stem=stem, init_channels=g["init_channels"], layers=g["layers"],
                         num_classes=g["num_classes"], auxiliary=True)
    torch.manual_seed(g["input_seed"])
    x = torch.randn(*g["input_size"])
    model.eval()
    # Float tolerance only: kernels sum in a thread-count dependent order (bit-equal with equal threads),
    # and on ImageNet the reference pools with AvgPool2d(7), our adaptive average rounds differently.
    tol = dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(model(x), torch.tensor(g["eval_logits"]), **tol)
    model.train()
    model.drop_path_prob = g["drop_path_prob"]
    torch.manual_seed(g["train_seed"])
    logits, aux = model.forward_with_aux(x)
    torch.testing.assert_close(logits, torch.tensor(g["train_logits"]), **tol)
    torch.testing.assert_close(aux, torch.tensor(g["train_aux_logits"]), **tol)


def test_reduction_cells_sit_at_one_and_two_thirds() -> None:
    model = DartsNetwork("DARTS_V2", init_channels=4, layers=8)
    assert reduction_cells(20) == (6, 13)
    assert [i for i, cell in enumerate(model.cells) if cell.reduction] == [2, 5]
    # the cell after a reduction preprocesses its s0 with a FactorizedReduce
    assert [isinstance(cell.preprocess0, FactorizedReduce) for cell in model.cells] == \
        [False, False, False, True, False, False, True, False]


def test_imagenet_network_treats_the_stem_as_reduced() -> None:
    model = DartsNetwork("PC_DARTS_image", stem="imagenet", init_channels=8, layers=5, num_classes=3)
    assert isinstance(model.cells[0].preprocess0, FactorizedReduce)
    assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 3)


def test_drop_path_zeroes_whole_samples_and_rescales_the_rest() -> None:
    torch.manual_seed(0)
    y = drop_path(torch.ones(64, 2, 3, 3), 0.25).flatten(1)
    dropped = (y == 0).all(dim=1)
    kept = (y == torch.tensor(1.0) / 0.75).all(dim=1)
    assert (dropped ^ kept).all()
    assert dropped.sum().item() == 14  # seed 0; about a quarter of 64


def test_drop_path_skips_identity_edges() -> None:
    skips = [("skip_connect", 0), ("skip_connect", 1)] * 4
    cell = Cell(skips, [2, 3, 4, 5], 8, 8, 8, reduction=False, reduction_prev=False)
    assert all(isinstance(op, Identity) for op in cell._ops)
    x0, x1 = torch.randn(4, 8, 6, 6), torch.randn(4, 8, 6, 6)
    cell.train()
    assert torch.equal(cell(x0, x1, 0.0), cell(x0, x1, 0.9))
    convs = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1)] * 4
    cell = Cell(convs, [2, 3, 4, 5], 8, 8, 8, reduction=False, reduction_prev=False).train()
    assert not torch.equal(cell(x0, x1, 0.0), cell(x0, x1, 0.9))
    cell.eval()  # never in eval mode
    assert torch.equal(cell(x0, x1, 0.0), cell(x0, x1, 0.9))


def test_forward_returns_one_tensor_and_forward_with_aux_two() -> None:
    model = DartsNetwork("PC_DARTS_cifar", init_channels=4, layers=5, num_classes=7, auxiliary=True).eval()
    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    logits, aux = model.forward_with_aux(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 7)
    assert torch.equal(out, logits) and aux.shape == (2, 7)
    assert DartsNetwork("PC_DARTS_cifar", init_channels=4, layers=5).forward_with_aux(x)[1] is None


def test_bad_settings_are_user_errors() -> None:
    with pytest.raises(ConfigError, match="Unknown stem 'mobile'"):
        DartsNetwork("DARTS_V2", stem="mobile")
    with pytest.raises(ConfigError, match="layers must be a positive integer"):
        DartsNetwork("DARTS_V2", layers=0)
    with pytest.raises(GenotypeError, match="neither a known genotype"):
        DartsNetwork("NOT_A_GENOTYPE")
