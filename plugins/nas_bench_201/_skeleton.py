"""The benchmark's macro skeleton (TinyNetwork), shared by the search supernet and the derived network."""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from timm.layers import create_classifier
from torch import nn

from nasbench_pc.errors import ConfigError
from nasbench_pc.plugins.nas_bench_201.ops import ResNetBasicblock


@dataclass(frozen=True)
class Nb201Config:
    """Shape of a NAS-Bench-201 network; the defaults are the benchmark's (C=16, N=5, CIFAR-10).

    Args:
        init_channels: channels C of the first stage; the second and third stages have 2C and 4C.
        cells_per_stage: cells N in each of the three stages.
        num_classes: outputs of the classifier; 0 for none (the network returns the pooled features).
        in_channels: channels of the input images.
    """

    init_channels: int = 16
    cells_per_stage: int = 5
    num_classes: int = 10
    in_channels: int = 3

    def __post_init__(self) -> None:
        for name in ("init_channels", "cells_per_stage", "num_classes", "in_channels"):
            value = getattr(self, name)
            least = 0 if name == "num_classes" else 1  # 0 classes: no classifier, as in timm
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                kind = "non-negative" if least == 0 else "positive"
                raise ConfigError(f"{name} of a NAS-Bench-201 network must be a {kind} integer, got {value!r}.")


#: The benchmark's own shape: C=16, N=5, 10 classes.
BENCHMARK = Nb201Config()


class TinySkeleton(nn.Module):
    """Stem, three stages of cells joined by residual reduction blocks, BN + ReLU, pool, classifier.

    Modules are built in the reference's order, so a seeded construction draws the same weights.
    ``make_cell(channels)`` builds one cell; subclasses say how cells are run. ``global_pool`` is a
    timm pool type ('avg' is the reference's global average pooling; '' keeps the feature map).
    """

    def __init__(self, config: Nb201Config, make_cell: Callable[[int], nn.Module], global_pool: str = "avg"):
        super().__init__()
        self.config = config
        c, n = config.init_channels, config.cells_per_stage
        self.stem = nn.Sequential(nn.Conv2d(config.in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.cells = nn.ModuleList()
        for stage, channels in enumerate((c, 2 * c, 4 * c)):
            if stage:
                self.cells.append(ResNetBasicblock(channels // 2, channels))
            self.cells.extend(make_cell(channels) for _ in range(n))
        self.lastact = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU(inplace=True))
        # timm's head: the same Linear (same draws) as the reference, and a pool that reset_classifier can swap.
        self.global_pool, self.classifier = create_classifier(4 * c, config.num_classes, pool_type=global_pool)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Logits from the final feature map (or the pooled features when ``pre_logits``)."""
        x = self.global_pool(x)
        return x if pre_logits else self.classifier(x)
