"""The DARTS cell search space as a plugin: 8 candidate ops, 4 intermediate nodes, 14 edges per cell,
a normal and a reduction cell, the top-2 derive rule, and the DARTS networks (``darts_cifar``,
``darts_imagenet``) as derived networks."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasbench_pc import hookimpl
from nasbench_pc.api import samples_every_channel
from nasbench_pc.interfaces import CellStats, ChannelSampler, EdgeNormalizer, Method, NetworkSpec, Shortcut
from nasbench_pc.plugins.darts_space import genotype as darts_genotype
from nasbench_pc.plugins.darts_space import (
    network,  # noqa: F401  (registers the timm models)
    render,
)
from nasbench_pc.plugins.darts_space.genotype import KNOWN, PRIMITIVES, Genotype
from nasbench_pc.plugins.darts_space.ops import OPS
from nasbench_pc.plugins.darts_space.supernet import Supernet, SupernetConfig

#: what --checkpoint cells does (the space option checkpoint_cells), for its help
CHECKPOINT_HELP = ("Recompute the activations of the cells before the last stage in backward instead of saving them: "
                   "same gradients, less memory, more time")
#: A normal cell with at least this many skip_connect edges (of 8) is flagged as collapsing.
COLLAPSE_SKIPS = 3

_IMAGENET = dict(epochs=250, weight_decay=3e-5, drop_path=0.0, cutout=0, label_smoothing=0.1, init_channels=48,
                 layers=14)
#: The reference evaluation recipes (train.py / train_imagenet.py of each paper) as TrainHParams values over its
#: defaults, which are PC-DARTS' CIFAR recipe (600 epochs, batch 96, lr 0.025 cosine, drop path 0.3, C=36, 20 cells).
RECIPES: dict[str, dict[str, dict[str, Any]]] = {
    "pc-darts": {
        "cifar": {},
        "imagenet": dict(batch_size=1024, lr=0.5, lr_schedule="linear", lr_warmup_epochs=5, **_IMAGENET),
    },
    "darts": {
        "cifar": dict(drop_path=0.2),
        "imagenet": dict(batch_size=128, lr=0.1, lr_schedule="step", lr_gamma=0.97, **_IMAGENET),
    },
}
#: The search behind each published genotype (reference genotypes.py) and the recipe it is trained with: its paper's,
#: read off the defaults of its repository's train.py / train_imagenet.py. DrNAS ships PC-DARTS' (drop path 0.3;
#: ImageNet batch 1024, lr 0.5 linear, 5 warm-up epochs), though with a CIFAR batch of 64; SDARTS and DARTS- ship
#: DARTS' (batch 96, drop path 0.2). GDAS's code trains with AutoDL's NAS-CIFAR config (300 epochs, weight decay
#: 5e-4, Nesterov), which is neither recipe; it gets DARTS', as the other CIFAR-10 searches of the family.
PUBLISHED_RECIPES: dict[str, tuple[str, str]] = {
    "DARTS_V1": ("darts", "darts"), "DARTS_V2": ("darts", "darts"),
    "PC_DARTS_cifar": ("pc-darts", "pc-darts"), "PC_DARTS_image": ("pc-darts", "pc-darts"),
    "GDAS_V1": ("gdas", "darts"),
    "DrNAS_cifar10": ("drnas", "pc-darts"), "DrNAS_imagenet": ("drnas", "pc-darts"),
    "SDARTS_RS": ("sdarts-rs", "darts"), "SDARTS_ADV": ("sdarts-adv", "darts"),
    **{f"DARTS_MINUS_C10_S0_{i}": ("darts-minus", "darts") for i in range(5)},
    # FairDARTS' evaluation table: batch 96, lr 0.025, drop path 0.2, cosine, as DARTS' train.py
    **{f"FairDARTS_{c}": ("fairdarts", "darts") for c in "abcdefg"},
}
DEFAULT_RECIPE = "pc-darts"  # for a genotype whose search is unknown


#: the DARTS networks' width and depth keywords (``--init-channels``, ``--layers``) and how a model card words them
_SHAPE: dict[str, Any] = {"width": "init_channels", "depth": "layers",
                          "words": {"init_channels": "C={}", "layers": "{} cells"},
                          "retired": ("stem",)}  # the DARTS-only releases' checkpoints name the stem, now the network


@dataclass(frozen=True)
class DartsSearchSpace:
    name: str = "darts"
    primitives: tuple[str, ...] = PRIMITIVES
    genotype_type: type = Genotype
    options: dict[str, Any] = field(default_factory=lambda: {
        "init_channels": 16, "layers": 8, "steps": 4, "multiplier": 4, "stem_multiplier": 3, "stem": "cifar",
        "checkpoint_cells": False, "drop_none": False})
    presets: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        "quick": {"init_channels": 8, "layers": 5}, "paper": {}, "imagenet": {"stem": "imagenet"}})
    networks: dict[str, NetworkSpec] = field(default_factory=lambda: {
        "cifar": NetworkSpec("darts_cifar", {"init_channels": 36, "layers": 20}, 32, **_SHAPE),
        "imagenet": NetworkSpec("darts_imagenet", {"init_channels": 48, "layers": 14}, 224, **_SHAPE)})
    known: dict[str, Genotype] = field(default_factory=lambda: dict(KNOWN))
    recipes: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: RECIPES)
    #: what --recipe auto picks, in words (train --help, methods)
    recipe_rule: str = ("DARTS: DARTS_V1/DARTS_V2, GDAS_V1, SDARTS_RS/SDARTS_ADV, DARTS_MINUS_C10_S0_0..4, "
                        "FairDARTS_a..g -> darts, "
                        "PC_DARTS_cifar/PC_DARTS_image, DrNAS_cifar10/DrNAS_imagenet -> pc-darts; a search run -> "
                        "darts when its method's sampler sends every channel through the mixed ops (full channels: "
                        "darts, darts-1st, en-only), pc-darts when it sends part of them (partial channels: pc-darts, "
                        "pc-only); any other DARTS genotype -> pc-darts. The recipes: darts (DARTS train.py: drop "
                        "path 0.2; train_imagenet.py: batch 128, lr 0.1 x0.97 per epoch), pc-darts (drop path 0.3; "
                        "batch 1024, lr 0.5 linear, 5 warm-up epochs).")
    provenance: dict[str, str] = field(default_factory=lambda: {
        "DARTS_V1": "darts (first order), published genotype",
        "DARTS_V2": "darts (second order), published genotype",
        "PC_DARTS_cifar": "pc-darts on CIFAR-10, published genotype",
        "PC_DARTS_image": "pc-darts on ImageNet, published genotype",
        "GDAS_V1": "gdas on CIFAR-10, published genotype (D-X-Y/GDAS lib/nas/genotypes.py @d6e9078)",
        "DrNAS_cifar10": "drnas on CIFAR-10, published genotype (xiangning-chen/DrNAS DARTS-space/genotypes.py "
                         "@f2caa4d)",
        "DrNAS_imagenet": "drnas on ImageNet, published genotype (xiangning-chen/DrNAS DARTS-space/genotypes.py "
                          "@f2caa4d)",
        "SDARTS_RS": "sdarts-rs on CIFAR-10, published genotype c10_s5_random (xiangning-chen/SmoothDARTS "
                     "sota/cnn/genotypes.py @d3dbfed)",
        "SDARTS_ADV": "sdarts-adv on CIFAR-10, published genotype c10_s5_pgd (xiangning-chen/SmoothDARTS "
                      "sota/cnn/genotypes.py @d3dbfed)",
        **{f"DARTS_MINUS_C10_S0_{i}": f"darts-minus (DARTS-) on CIFAR-10, published genotype cifar10_s0_{i} "
                                      f"(Meituan-AutoML/DARTS- src/eval/genotypes.py @adb81a8)" for i in range(5)},
        **{f"FairDARTS_{c}": "fairdarts on CIFAR-10, published sparse genotype (xiaomi-automl/FairDARTS "
                             "fairdarts/genotypes.py @270cfc9)" for c in "abcdefg"}})
    #: methods naming no space search this one, and genotype JSON without "space" (every file written before
    #: spaces were plugins) is read as a DARTS genotype
    default: bool = True
    #: its command-line shortcuts (search, compare, bench, plan, supernet)
    zero_op: str = "none"  # left out of an edge's strength (compare --plot)
    recompute_option: str = "checkpoint_cells"  # bench/plan also measure with it; out-of-memory advice names it
    shortcuts: tuple[Shortcut, ...] = (
        Shortcut(("--init-channels", "-C"), "init_channels", "Initial channels of the supernet"),
        Shortcut(("--layers",), "layers", "Number of cells (DARTS)"),
        Shortcut(("--stem",), "stem", "DARTS stem", type=str, choices={"cifar": "cifar", "imagenet": "imagenet"}),
        Shortcut(("--checkpoint",), "checkpoint_cells", CHECKPOINT_HELP, choices={"cells": True}))
    #: what code written for the DARTS-only releases imports from nasbench_pc and nasbench_pc.genotypes
    exports: dict[str, Any] = field(default_factory=lambda: {
        "Genotype": Genotype, "PRIMITIVES": PRIMITIVES, "KNOWN": KNOWN, "from_python": darts_genotype.from_python,
        "to_python": darts_genotype.to_python, "validate": darts_genotype.validate})

    def make_op(self, name: str, channels: int, stride: int) -> nn.Module:
        """One candidate op of a search-time mixed edge."""
        op = OPS[name](channels, stride, False)
        if "pool" in name:  # search-time pools get a non-affine BN, as in the reference MixedOp
            op = nn.Sequential(op, nn.BatchNorm2d(channels, affine=False))
        return op

    def build(self, sampler: ChannelSampler, normalizer: EdgeNormalizer, *, num_classes: int, in_channels: int,
              method: str = "", **options: Any) -> Supernet:
        config = SupernetConfig(num_classes=num_classes, in_channels=in_channels, **options)
        return Supernet(self, sampler, normalizer, config, method)

    def claims(self, text: str) -> bool:
        return text.startswith("Genotype(") or text in KNOWN

    def parse(self, text: str) -> Genotype:
        return darts_genotype.parse_text(text)

    def from_dict(self, data: Any) -> Genotype:
        return darts_genotype.from_dict(data)

    def to_dict(self, genotype: Genotype) -> dict[str, Any]:
        return darts_genotype.to_dict(genotype)

    def to_text(self, genotype: Genotype) -> str:
        return darts_genotype.to_python(genotype)

    def cell_lines(self, genotype: Genotype) -> dict[str, list[str]]:
        return {f"{'reduction' if cell == 'reduce' else cell} cell": [*render.cell_lines(genotype, cell),
                                                                        render.cell_output(genotype, cell)]
                for cell in render.CELLS}

    def draw(self, genotype: Genotype, path: str | Path, title: str = "") -> Path:
        return render.save_png(genotype, path, title)

    def stats(self, genotype: Genotype) -> CellStats:
        skips = sum(edge[0] == "skip_connect" for edge in genotype.normal)
        return CellStats(skip_connects=skips, edges=len(genotype.normal), collapsed=skips >= COLLAPSE_SKIPS,
                         rule=f">= {COLLAPSE_SKIPS} of the normal cell's {len(genotype.normal)} edges are "
                              f"skip_connect")

    def edges(self, genotype: Genotype) -> list[tuple[Hashable, str]]:
        """(cell, node, input) and op of every kept edge (node counted from 0, sparse genotypes alike)."""
        return [((cell, node - 2, src), op) for cell in render.CELLS
                for node, inputs in render.node_inputs(genotype, cell).items() for op, src in inputs]

    def recipe_for(self, name: str | None, method: Method | None) -> tuple[str, str]:
        """The recipe of the search behind the genotype: a published genotype's paper; a method that sends every
        channel of an edge through its MixedOp trains as DARTS, one that sends part of them as PC-DARTS."""
        if name in PUBLISHED_RECIPES:
            searched, recipe = PUBLISHED_RECIPES[name]
            why = f"{name} is a published {searched} genotype"
            return recipe, why if searched == recipe else f"{why}, trained with the {recipe} recipe"
        if method is None:
            return DEFAULT_RECIPE, "the genotype's search is unknown (no published name, no search run), so the default"
        if samples_every_channel(method):
            return "darts", (f"searched by {method.name}, whose {method.sampler!r} sampler sends every channel "
                             f"(as DARTS)")
        return "pc-darts", (f"searched by {method.name}, whose {method.sampler!r} sampler sends part of the channels "
                            f"(as PC-DARTS)")

    def arch_record(self, supernet: Supernet) -> dict[str, Any]:
        """softmax(alpha) per edge and op and the normalized edge weights of the normal and reduction cell (with
        ``drop_none`` the rows have 7 entries, the ops but 'none')."""
        with torch.no_grad():
            out: dict[str, Any] = {}
            for cell, reduction in (("normal", False), ("reduce", True)):
                alphas = supernet.alphas_reduce if reduction else supernet.alphas_normal
                edge = supernet.edge_weights(reduction)
                weights = supernet.masked(F.softmax(alphas.float(), -1), alphas)  # a pruned op (DrNAS' stages): 0
                out[f"alphas_{cell}"] = [[round(v, 6) for v in row] for row in weights.tolist()]
                out[f"edge_weights_{cell}"] = None if edge is None else [round(v, 6) for v in edge.float().tolist()]
        return out


@hookimpl
def register_search_spaces() -> dict[str, DartsSearchSpace]:
    return {"darts": DartsSearchSpace()}
