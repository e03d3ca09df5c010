"""The NAS-Bench-201 cell space as a plugin (``--space nas-bench-201``): one cell type, 4 nodes, 6 edges,
5 ops, the benchmark's skeleton (C=16, N=5), the reference derive rule (argmax over all ops on every
edge), and ``nasbench201_cifar`` as the derived network."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from nasbench_pc import hookimpl
from nasbench_pc.errors import ConfigError
from nasbench_pc.interfaces import CellStats, ChannelSampler, EdgeNormalizer, Method, NetworkSpec, Shortcut
from nasbench_pc.plugins.nas_bench_201 import (
    network,  # noqa: F401  (registers the timm model)
    render,
)
from nasbench_pc.plugins.nas_bench_201._skeleton import Nb201Config
from nasbench_pc.plugins.nas_bench_201.genotype import BEST_CIFAR10, EDGES, SPACE, Nb201Genotype
from nasbench_pc.plugins.nas_bench_201.ops import PRIMITIVES
from nasbench_pc.plugins.nas_bench_201.supernet import Nb201Supernet

#: A cell with at least this many skip_connect edges (of 6) is flagged as collapsing: DARTS on the benchmark
#: ends at the all-skip cell (NAS-Bench-201 paper, Table 5).
COLLAPSE_SKIPS = 3

#: The facts we hold on the benchmark record no training recipe for its cells, so this is the DARTS CIFAR recipe
#: (TrainHParams' defaults but drop path) without the auxiliary head and drop path, which the benchmark's network
#: does not have, on the benchmark's network, C=16, N=5.
RECIPES: dict[str, dict[str, dict[str, Any]]] = {
    SPACE: {"cifar": dict(auxiliary_weight=0.0, drop_path=0.0, init_channels=16, layers=5)},
}
_RECIPE_NOTE = ("no NAS-Bench-201 training recipe is on record here, so the DARTS CIFAR recipe without auxiliary head "
                "and drop path, on the benchmark's C=16, N=5 network")


@dataclass(frozen=True)
class NasBench201Space:
    name: str = SPACE
    primitives: tuple[str, ...] = PRIMITIVES
    genotype_type: type = Nb201Genotype
    options: dict[str, Any] = field(default_factory=lambda: {
        "init_channels": 16, "cells_per_stage": 5, "track_running_stats": True, "checkpoint_cells": False})
    presets: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        "quick": {"init_channels": 8, "cells_per_stage": 1}, "paper": {}})
    networks: dict[str, NetworkSpec] = field(default_factory=lambda: {
        "cifar": NetworkSpec("nasbench201_cifar", {"init_channels": 16, "cells_per_stage": 5}, 32,
                             width="init_channels", depth="cells_per_stage",
                             words={"init_channels": "C={}", "cells_per_stage": "{} cells per stage"})})
    known: dict[str, Nb201Genotype] = field(default_factory=lambda: {"NB201_best_cifar10": BEST_CIFAR10})
    recipes: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: RECIPES)
    zero_op: str = "none"  # left out of an edge's strength (compare --plot)
    recompute_option: str = "checkpoint_cells"  # bench/plan also measure with it; out-of-memory advice names it
    shortcuts: tuple[Shortcut, ...] = (
        Shortcut(("--init-channels", "-C"), "init_channels", "Initial channels of the supernet"),
        Shortcut(("--checkpoint",), "checkpoint_cells", "Recompute the activations of the cells before the last "
                 "stage in backward instead of saving them: same gradients, less memory, more time",
                 choices={"cells": True}))
    recipe_rule: str = f"NAS-Bench-201: nas-bench-201 ({_RECIPE_NOTE})."
    provenance: dict[str, str] = field(default_factory=lambda: {
        "NB201_best_cifar10": "the best CIFAR-10 cell of the NAS-Bench-201 benchmark (no search)"})

    def build(self, sampler: ChannelSampler, normalizer: EdgeNormalizer, *, num_classes: int, in_channels: int,
              method: str = "", **options: Any) -> Nb201Supernet:
        # the non-shape options go to the supernet; the rest is the skeleton's shape
        flags = {name: options.pop(name, self.options[name]) for name in ("track_running_stats", "checkpoint_cells")}
        for name, value in flags.items():
            if not isinstance(value, bool):
                raise ConfigError(f"{name} of the nas-bench-201 space is true or false, got {value!r}.")
        config = Nb201Config(num_classes=num_classes, in_channels=in_channels, **options)
        return Nb201Supernet(sampler, normalizer, config, **flags)

    def claims(self, text: str) -> bool:
        return text.startswith("|") or text in self.known

    def parse(self, text: str) -> Nb201Genotype:
        text = text.strip()
        return self.known[text] if text in self.known else Nb201Genotype.from_str(text)

    def from_dict(self, data: Any) -> Nb201Genotype:
        return Nb201Genotype.from_dict({"space": SPACE, **data} if isinstance(data, dict) else data)

    def to_dict(self, genotype: Nb201Genotype) -> dict[str, Any]:
        return {k: v for k, v in genotype.to_dict().items() if k != "space"}

    def to_text(self, genotype: Nb201Genotype) -> str:
        return genotype.to_str()

    def cell_lines(self, genotype: Nb201Genotype) -> dict[str, list[str]]:
        return {"cell": render.cell_lines(genotype)}

    def draw(self, genotype: Nb201Genotype, path: str | Path, title: str = "") -> Path:
        return render.save_png(genotype, path, title)

    def stats(self, genotype: Nb201Genotype) -> CellStats:
        skips = genotype.ops.count("skip_connect")
        return CellStats(skip_connects=skips, edges=len(EDGES), collapsed=skips >= COLLAPSE_SKIPS,
                         rule=f">= {COLLAPSE_SKIPS} of the cell's {len(EDGES)} edges are skip_connect")

    def edges(self, genotype: Nb201Genotype) -> list[tuple[Hashable, str]]:
        """(node, input) and op of every edge."""
        return [((node, j), op) for node, edges in enumerate(genotype.nodes, start=1) for op, j in edges]

    def recipe_for(self, name: str | None, method: Method | None) -> tuple[str, str]:
        return SPACE, f"the {SPACE} recipe is the one for {SPACE} genotypes: {_RECIPE_NOTE}"

    def arch_record(self, supernet: Nb201Supernet) -> dict[str, Any]:
        with torch.no_grad():
            alphas = supernet.masked(F.softmax(supernet.alphas.float(), -1), supernet.alphas).tolist()  # pruned: 0
            edge = supernet.edge_weights()
        return {"alphas_cell": [[round(v, 6) for v in row] for row in alphas],
                "edge_weights_cell": None if edge is None else [round(v, 6) for v in edge.float().tolist()]}


@hookimpl
def register_search_spaces() -> dict[str, NasBench201Space]:
    return {SPACE: NasBench201Space()}
