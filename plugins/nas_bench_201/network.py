"""The derived NAS-Bench-201 network: xautodl's ``TinyNetwork`` built from one genotype, as a timm model.

Every cell is the genotype's cell with affine BNs (the reference InferCell, 'none' edges
included as zeros); the parameter count equals the benchmark's for the same cell.

Registered on ``import nasbench_pc``: ``nasbench201_cifar``, which takes ``genotype=`` (the benchmark
string, an :class:`Nb201Genotype`, its dict form or a genotype.json path; default the benchmark's best
CIFAR-10 cell, since timm creates every name bare). It passes timm's own model tests
(``tests/timm_suite/run.py``), TorchScript and fx included: hence no postponed annotations here (fx
copies ``forward``'s annotations into generated code) and cell loops that TorchScript can unroll.
"""

from typing import Any

import torch
from timm.models import generate_default_cfgs, register_model
from timm.models._features import feature_take_indices
from torch import nn
from torch.utils.checkpoint import checkpoint

from nasbench_pc import genotypes
from nasbench_pc.errors import ConfigError
from nasbench_pc.plugins.nas_bench_201._skeleton import BENCHMARK, Nb201Config, TinySkeleton
from nasbench_pc.plugins.nas_bench_201.genotype import BEST_CIFAR10, EDGES, SPACE, Nb201Genotype
from nasbench_pc.plugins.nas_bench_201.ops import OPS
from nasbench_pc.supernet import CIFAR_MEAN, CIFAR_STD, TimmHead, build_model


class Nb201InferCell(nn.Module):
    """One fixed cell: node i = sum over j < i of op(i<-j)(node j); the output is node 3.

    The edges run in one flat loop (each edge knows the node it reads and whether it closes its
    node), which TorchScript unrolls.
    """

    def __init__(self, genotype: Nb201Genotype, channels: int):
        super().__init__()
        self.edges = nn.ModuleList(OPS[op](channels, True, True) for op in genotype.ops)
        self.sources: list[int] = [j for _, j in EDGES]
        self.closes: list[bool] = [j == i - 1 for i, j in EDGES]  # the node's last edge

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        node = x
        for e, edge in enumerate(self.edges):
            y = edge(nodes[self.sources[e]])
            node = y if self.sources[e] == 0 else node + y
            if self.closes[e]:
                nodes.append(node)
        return nodes[-1]


class Nb201Network(TimmHead, TinySkeleton):
    """The benchmark's network for one cell (C=16, N=5 by default) with timm's model interface.

    Features (``features_only=True``) are the last cell of each of the three stages (strides 1, 2, 4);
    the final BN + ReLU (``lastact``) is the model's norm, applied by ``forward_features``.

    Args:
        genotype: the cell every stage repeats.
        config: network shape.
        global_pool: timm pool type of the head ('avg' as in the reference; '' keeps the feature map).
    """

    def __init__(self, genotype: Nb201Genotype, config: Nb201Config = BENCHMARK, global_pool: str = "avg"):
        super().__init__(config, lambda channels: Nb201InferCell(genotype, channels), global_pool)
        self.genotype = genotype
        self.num_classes = config.num_classes
        self.in_chans = config.in_channels
        self.num_features = self.head_hidden_size = 4 * config.init_channels
        self.grad_checkpointing = False
        # Stage s ends at cell (s + 1) * (N + 1) - 2: each later stage starts with its reduction block.
        n = config.cells_per_stage
        self._taps = [(s + 1) * (n + 1) - 2 for s in range(3)]
        self.feature_info = [
            dict(num_chs=config.init_channels * 2**s, reduction=2**s, module=f"cells.{tap}")
            for s, tap in enumerate(self._taps)
        ]

    # --- timm model interface (the classifier side is TimmHead's) ----------------------------------

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The final feature map (after the last BN + ReLU), before pooling."""
        x = self.stem(x)
        for cell in self.cells:
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint(cell, x, use_reentrant=False)
            else:
                x = cell(x)
        return self.lastact(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: int | list[int] | None = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Stage outputs listed in ``feature_info`` (timm's ``forward_intermediates`` contract); ``norm``
        applies ``lastact`` to the last stage's output, the only one it fits."""
        if output_fmt != "NCHW":
            raise ConfigError(f"NAS-Bench-201 networks produce NCHW features only, not {output_fmt!r}.")
        take_indices, max_index = feature_take_indices(len(self._taps), indices)
        wanted = {self._taps[i] for i in take_indices}
        end = len(self.cells) - 1
        last = self._taps[max_index] if stop_early else end
        intermediates = []
        x = self.stem(x)
        for i, cell in enumerate(self.cells[: last + 1]):
            x = checkpoint(cell, x, use_reentrant=False) if self.grad_checkpointing else cell(x)
            if i in wanted:
                intermediates.append(self.lastact(x) if norm and i == self._taps[-1] else x)
        if intermediates_only:
            return intermediates
        return (self.lastact(x) if last == end else x), intermediates

    def prune_intermediate_layers(self, indices: int | list[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        """Drop the cells after the last wanted stage (and the norm and head that no longer fit them);
        returns the absolute indices."""
        take_indices, max_index = feature_take_indices(len(self._taps), indices)
        self.cells = self.cells[: self._taps[max_index] + 1]
        earlier = max_index < len(self._taps) - 1
        if prune_norm or earlier:
            self.lastact = nn.Identity()
        if prune_head or earlier:
            self.num_features = self.head_hidden_size = self.feature_info[max_index]["num_chs"]
            self.reset_classifier(0, "")
        return take_indices


def _network(genotype: Any, num_classes: int = 10, in_chans: int = 3, init_channels: int = 16,
             cells_per_stage: int = 5, global_pool: str = "avg") -> Nb201Network:
    """timm's keyword arguments as an :class:`Nb201Network`; an unknown keyword is a TypeError, as timm expects."""
    config = Nb201Config(init_channels=init_channels, cells_per_stage=cells_per_stage, num_classes=num_classes,
                         in_channels=in_chans)
    return Nb201Network(genotypes.parse(genotype, space=SPACE), config, global_pool)


def _create_nb201(variant: str, pretrained: bool = False, **kwargs: Any) -> Nb201Network:
    """Build ``variant`` through timm's builder (:func:`~nasbench_pc.supernet.timm_head.build_model`)."""
    return build_model(_network, variant, pretrained, feature_cfg=dict(feature_cls="getter", out_indices=(0, 1, 2)),
                       **kwargs)


default_cfgs = generate_default_cfgs({
    "nasbench201_cifar": dict(
        url="", num_classes=10, input_size=(3, 32, 32), pool_size=(8, 8), crop_pct=1.0, interpolation="bilinear",
        mean=CIFAR_MEAN, std=CIFAR_STD, first_conv="stem.0", classifier="classifier", license="mit",
    ),
})


@register_model
def nasbench201_cifar(pretrained: bool = False, **kwargs: Any) -> Nb201Network:
    """Any NAS-Bench-201 cell (``genotype=``, default the benchmark's best CIFAR-10 cell) in the benchmark's
    CIFAR network, C=16, N=5 (1.29M parameters with the default cell)."""
    kwargs.setdefault("genotype", BEST_CIFAR10)
    return _create_nb201("nasbench201_cifar", pretrained, **kwargs)
