"""The search-space contract in the core: genotype I/O by space, supernets, presets and search records."""

from __future__ import annotations

import json

import pytest
import torch

import nasbench_pc as nbp
from nasbench_pc import genotypes
from nasbench_pc.api import parse_option
from nasbench_pc.errors import ConfigError, GenotypeError
from nasbench_pc.plugins.nas_bench_201 import Nb201Genotype
from nasbench_pc.search import SearchConfig, run_search
from nasbench_pc.search.presets import resolve_config

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"


def test_both_spaces_are_registered_plugins() -> None:
    spaces = nbp.available("search_space")
    assert list(spaces) == ["darts", "nas-bench-201"]
    assert spaces["nas-bench-201"].primitives == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                                                  "avg_pool_3x3")


def test_genotype_json_names_its_space_and_old_files_read_as_darts(tmp_path) -> None:
    darts = nbp.KNOWN["PC_DARTS_cifar"]
    assert genotypes.to_dict(darts)["space"] == "darts"
    old = {k: v for k, v in genotypes.to_dict(darts).items() if k != "space"}  # written before spaces were plugins
    (tmp_path / "genotype.json").write_text(json.dumps(old))
    assert genotypes.load(tmp_path / "genotype.json") == darts
    assert genotypes.parse(str(tmp_path)) == darts

    nb = genotypes.parse(BEST)
    assert isinstance(nb, Nb201Genotype)
    assert genotypes.to_dict(nb) == {"space": "nas-bench-201", "nodes": [
        [["nor_conv_3x3", 0]], [["nor_conv_3x3", 0], ["nor_conv_3x3", 1]],
        [["skip_connect", 0], ["nor_conv_3x3", 1], ["nor_conv_3x3", 2]]]}
    assert genotypes.from_json(genotypes.to_json(nb)) == nb
    assert genotypes.to_text(nb) == BEST
    assert genotypes.to_text(darts).startswith("Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0)")
    assert genotypes.parse("NB201_best_cifar10") == nb


def test_genotype_of_another_or_unknown_space_is_a_clear_error() -> None:
    with pytest.raises(GenotypeError, match="belongs to the search space 'nas-bench-201', not 'darts'"):
        genotypes.parse(genotypes.to_json(genotypes.parse(BEST)), space="darts")
    with pytest.raises(GenotypeError, match="names the search space 'chain', which is not installed"):
        genotypes.from_dict({"space": "chain", "ops": []})


def test_space_stats_count_skips_and_flag_collapse() -> None:
    nb201 = nbp.available("search_space")["nas-bench-201"]
    assert nb201.stats(genotypes.parse(BEST)).skip_connects == 1
    collapsed = nb201.stats(genotypes.parse(ALL_SKIP))
    assert (collapsed.skip_connects, collapsed.edges, collapsed.collapsed) == (6, 6, True)
    darts = nbp.available("search_space")["darts"]
    v1 = darts.stats(nbp.KNOWN["DARTS_V1"])  # 3 skip_connects in its normal cell
    assert (v1.skip_connects, v1.edges, v1.collapsed) == (3, 8, True)
    assert darts.stats(nbp.KNOWN["PC_DARTS_cifar"]).collapsed is False


@pytest.mark.parametrize("method", ["darts", "darts-1st", "pc-darts", "pc-only", "en-only"])
def test_every_method_builds_on_nas_bench_201(method) -> None:
    torch.manual_seed(0)
    net = nbp.create_supernet(method, space="nas-bench-201", init_channels=8, cells_per_stage=1)
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    assert isinstance(net.genotype(), Nb201Genotype)
    assert [tuple(p.shape) for p in net.arch_parameters()] == (
        [(6, 5), (6,)] if method in ("pc-darts", "en-only") else [(6, 5)])


def test_space_options_are_checked_against_the_space() -> None:
    with pytest.raises(ConfigError, match=r"Unknown option\(s\) 'layers' for the search space 'nas-bench-201'"):
        nbp.create_supernet("darts", space="nas-bench-201", layers=3)
    with pytest.raises(ConfigError, match="The darts option layers takes a int .default 8., got 'x'"):
        nbp.create_supernet("darts", layers="x")
    assert parse_option("k=2") == ("k", 2)
    assert parse_option("stem=imagenet") == ("stem", "imagenet")
    assert parse_option("track-running-stats=false") == ("track_running_stats", False)
    with pytest.raises(ConfigError, match="not an option setting; write it as key=value"):
        parse_option("k")


def test_presets_come_from_the_space_and_the_method() -> None:
    nb = resolve_config("darts", "paper", space="nas-bench-201")
    assert (nb.space, nb.weight_decay, nb.batch_size, nb.lr) == ("nas-bench-201", 5e-4, 64, 0.025)
    assert nb.space_options == {"init_channels": 16, "cells_per_stage": 5, "track_running_stats": True,
                                "checkpoint_cells": False}
    quick = resolve_config("pc-darts", space="nas-bench-201", k=2, cells_per_stage=2)
    assert quick.space_options["cells_per_stage"] == 2 and quick.sampler_options == {"k": 2}
    with pytest.raises(ConfigError, match="The 'imagenet' preset has no settings for the nas-bench-201 search space"):
        resolve_config("pc-darts", "imagenet", space="nas-bench-201")


def test_config_json_of_the_darts_only_versions_still_reads() -> None:
    old = {**{k: v for k, v in resolve_config("pc-darts").to_dict().items()
              if k not in ("space", "space_options", "sampler_options")},
           "init_channels": 8, "layers": 5, "stem": "cifar", "k": 2}
    config = SearchConfig.from_dict(old)
    assert (config.space, config.space_options, config.sampler_options) == (
        "darts", {"init_channels": 8, "layers": 5, "stem": "cifar"}, {"k": 2})


def test_search_on_nas_bench_201_records_what_the_space_says(tmp_path) -> None:
    config = resolve_config("pc-darts", space="nas-bench-201", init_channels=4, cells_per_stage=1, image_size=8,
                            batch_size=16, limit=64, epochs=2, warmup_epochs=0)
    result = run_search(config, tmp_path / "run")
    assert isinstance(result.genotype, Nb201Genotype)
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert set(record["arch_weights"]) == {"alphas_cell", "edge_weights_cell"}
    assert len(record["arch_weights"]["alphas_cell"]) == 6 and len(record["arch_weights"]["edge_weights_cell"]) == 6
    assert record["alpha_entropy_cell"] == pytest.approx(1.609, abs=2e-2)  # ~log(5): alphas start near 0
    assert record["skip_connects"] == result.genotype.ops.count("skip_connect")
    assert genotypes.load(tmp_path / "run" / "genotype.json") == result.genotype
