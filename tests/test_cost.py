"""Cost of a genotype (params, MACs) and ``nasbench-pc show`` (cell rendering, PNG diagram)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from nasbench_pc.cli import main
from nasbench_pc.console import console
from nasbench_pc.errors import ConfigError
from nasbench_pc.genotypes import KNOWN
from nasbench_pc.networks.cost import genotype_cost, model_cost
from nasbench_pc.plugins.darts_space.network import DartsNetwork
from nasbench_pc.plugins.darts_space.render import cell_lines, save_png

NB201_BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def _text(output: str) -> str:
    return " ".join(output.replace("│", " ").split())


@pytest.mark.parametrize("genotype, network, params, macs", [
    ("DARTS_V2", "cifar", 3_349_342, 528_359_040),
    ("PC_DARTS_cifar", "cifar", 3_634_678, 556_670_592),
    ("DARTS_V2", "imagenet", 4_718_752, 529_911_552),
    ("PC_DARTS_image", "imagenet", 5_342_464, 581_627_328),
    (NB201_BEST, "cifar", 1_288_506, 184_730_240),
])
def test_reference_settings(genotype: str, network: str, params: int, macs: int) -> None:
    cost = genotype_cost(genotype, network)
    assert (cost.params, cost.macs) == (params, macs)
    assert cost.input_size == ((3, 32, 32) if network == "cifar" else (3, 224, 224))


def test_the_default_network_is_the_spaces_first() -> None:
    assert genotype_cost("DARTS_V2") == genotype_cost("DARTS_V2", "cifar")
    assert genotype_cost(NB201_BEST).params == 1_288_506
    # by hand: stem 464, one cell per stage of five 3x3 ReLU-conv-BNs (C=16/32/64: 11,680 + 46,400 + 184,960),
    # residual reductions 14,464 + 57,600, last BN 128, a 64x100 classifier 6,500
    assert genotype_cost(NB201_BEST, cells_per_stage=1, num_classes=100).params == 322_196


def test_an_unknown_network_names_the_spaces_networks() -> None:
    with pytest.raises(ConfigError, match=r"The nas-bench-201 search space has no network 'imagenet'; its networks "
                                          r"are cifar \(nasbench201_cifar\). Pass one of those with --network."):
        genotype_cost(NB201_BEST, "imagenet")


def test_macs_equal_an_independent_count_of_convolutions_and_linear_layers() -> None:
    model = DartsNetwork("PC_DARTS_cifar", init_channels=4, layers=5).eval()
    cost = model_cost(model, (3, 16, 16))
    counted = []

    def hook(module: nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            counted.append(output.numel() * module.in_channels // module.groups * kh * kw)
        else:
            counted.append(module.in_features * module.out_features)

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.zeros(1, 3, 16, 16))
    assert cost.macs == sum(counted) == 906_880


def test_model_cost_excludes_the_auxiliary_head_and_keeps_the_mode() -> None:
    model = DartsNetwork("DARTS_V2", init_channels=4, layers=5, auxiliary=True).train()
    cost = model_cost(model, (3, 32, 32))
    assert model.training
    assert cost.params == sum(p.numel() for n, p in model.named_parameters() if not n.startswith("auxiliary_head"))
    assert cost.params == genotype_cost("DARTS_V2", init_channels=4, layers=5).params


def test_cell_lines_read_node_by_node() -> None:
    assert cell_lines(KNOWN["DARTS_V2"], "normal") == [
        "node 0 = sep_conv_3x3(c_{k-2}) + sep_conv_3x3(c_{k-1})",
        "node 1 = sep_conv_3x3(c_{k-2}) + sep_conv_3x3(c_{k-1})",
        "node 2 = sep_conv_3x3(c_{k-1}) + skip_connect(c_{k-2})",
        "node 3 = skip_connect(c_{k-2}) + dil_conv_3x3(node 0)",
    ]


def test_show_prints_cells_and_both_reference_costs() -> None:
    result = CliRunner().invoke(main, ["show", "DARTS_V2"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "node 3 = skip_connect(c_{k-2}) + dil_conv_3x3(node 0)" in result.output
    assert "3,349,342 (3.35M)" in result.output and "528.4M" in result.output
    assert "4,718,752 (4.72M)" in result.output and "529.9M" in result.output


def test_show_with_a_custom_setting(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["show", "PC_DARTS_cifar", "-C", "4", "--layers", "5", "--image-size", "16"],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "0.9M" in result.output  # 906,880 MACs
    assert "imagenet" not in result.output


def test_show_prints_a_nas_bench_201_cell_and_its_benchmark_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "width", 200)  # rich would fold the tree at 80 columns outside a terminal
    result = CliRunner().invoke(main, ["show", NB201_BEST])
    assert result.exit_code == 0, result.output
    assert "search space: nas-bench-201" in result.output
    assert "node 3 = skip_connect(node 0) + nor_conv_3x3(node 1) + nor_conv_3x3(node 2)" in result.output
    assert "nasbench201_cifar" in result.output
    assert "1,288,506 (1.29M)" in result.output and "184.7M" in result.output
    assert f"text: {NB201_BEST}" in result.output
    assert "imagenet" not in result.output  # the space derives one network


def test_show_layers_sets_the_cells_per_stage_of_a_nas_bench_201_network() -> None:
    result = CliRunner().invoke(main, ["show", NB201_BEST, "--layers", "1", "--num-classes", "100"],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "322,196 (0.32M)" in result.output  # one cell per stage, 100 classes, as genotype_cost gives above


def test_show_png_writes_a_png(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["show", "PC_DARTS_cifar", "--png", str(tmp_path / "cells.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cells.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_png_without_matplotlib_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    with pytest.raises(ConfigError, match=r"pip install nasbench-pc\[plot\]"):
        save_png(KNOWN["DARTS_V2"], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_show_of_an_unknown_genotype_is_a_clean_error() -> None:
    result = CliRunner().invoke(main, ["show", "DARTS_V9"])
    assert result.exit_code == 2
    assert "neither a known genotype" in _text(result.output)
