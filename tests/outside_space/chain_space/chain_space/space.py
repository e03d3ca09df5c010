"""The chain space as a nasbench-pc plugin (``--space chain``), registered through the ``nasbench_pc``
entry-point group by this package's ``pyproject.toml``."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from chain_space import network, render
from chain_space._skeleton import ChainConfig
from chain_space.genotype import PREFIX, SPACE, ChainGenotype
from chain_space.ops import PRIMITIVES
from chain_space.supernet import ChainSupernet
from nasbench_pc import hookimpl
from nasbench_pc.interfaces import CellStats, ChannelSampler, EdgeNormalizer, Method, NetworkSpec


@dataclass(frozen=True)
class ChainSearchSpace:
    """See :class:`nasbench_pc.interfaces.SearchSpace` for what each attribute and method is for."""

    name: str = SPACE
    primitives: tuple[str, ...] = PRIMITIVES
    genotype_type: type = ChainGenotype
    options: dict[str, Any] = field(default_factory=lambda: {"init_channels": 16, "layers": 2, "steps": 3})
    presets: dict[str, dict[str, Any]] = field(default_factory=lambda: {"quick": {"init_channels": 8}, "paper": {}})
    networks: dict[str, NetworkSpec] = field(default_factory=lambda: {
        "cifar": NetworkSpec(network.chain_tiny.__name__, {"init_channels": 16, "layers": 4}, 32,
                             width="init_channels", depth="layers")})
    known: dict[str, ChainGenotype] = field(default_factory=dict)
    # one short recipe for its network: TrainHParams values (no auxiliary head or drop path in this network)
    recipes: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {
        "chain": {"cifar": {"epochs": 30, "batch_size": 64, "auxiliary_weight": 0.0, "drop_path": 0.0,
                            "init_channels": 16, "layers": 4}}})

    def build(self, sampler: ChannelSampler, normalizer: EdgeNormalizer, *, num_classes: int, in_channels: int,
              method: str = "", **options: Any) -> ChainSupernet:
        steps = options.pop("steps")
        config = ChainConfig(num_classes=num_classes, in_channels=in_channels, **options)
        return ChainSupernet(sampler, normalizer, config, steps)

    def claims(self, text: str) -> bool:
        return text.startswith(PREFIX)

    def parse(self, text: str) -> ChainGenotype:
        return ChainGenotype.from_text(text)

    def from_dict(self, data: Any) -> ChainGenotype:
        return ChainGenotype.from_dict(data)

    def to_dict(self, genotype: ChainGenotype) -> dict[str, Any]:
        return genotype.to_dict()

    def to_text(self, genotype: ChainGenotype) -> str:
        return genotype.to_text()

    def cell_lines(self, genotype: ChainGenotype) -> dict[str, list[str]]:
        return {"chain cell": render.cell_lines(genotype)}

    def draw(self, genotype: ChainGenotype, path: str | Path, title: str = "") -> Path:
        return render.save_png(genotype, path, title)

    def stats(self, genotype: ChainGenotype) -> CellStats:
        """A chain that is mostly skip_connect is mostly the identity: flagged as collapsed."""
        skips, edges = genotype.ops.count("skip_connect"), len(genotype.ops)
        most = edges // 2 + 1
        return CellStats(skip_connects=skips, edges=edges, collapsed=skips >= most,
                         rule=f">= {most} of the chain's {edges} edges are skip_connect")

    def edges(self, genotype: ChainGenotype) -> list[tuple[Hashable, str]]:
        """(node the edge enters, op) of every edge."""
        return list(enumerate(genotype.ops, start=1))

    def recipe_for(self, name: str | None, method: Method | None) -> tuple[str, str]:
        return "chain", "the chain space's only recipe"

    def arch_record(self, supernet: ChainSupernet) -> dict[str, Any]:
        with torch.no_grad():
            alphas = F.softmax(supernet.alphas.float(), dim=-1).tolist()
            edge = supernet.edge_weights()
        return {"alphas_chain": [[round(v, 6) for v in row] for row in alphas],
                "edge_weights_chain": None if edge is None else [round(v, 6) for v in edge.float().tolist()]}


@hookimpl
def register_search_spaces() -> dict[str, ChainSearchSpace]:
    return {SPACE: ChainSearchSpace()}
