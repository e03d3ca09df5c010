"""The network around the cells, shared by the search supernet and the derived network."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from timm.layers import create_classifier
from torch import nn

from nasbench_pc.errors import ConfigError


@dataclass(frozen=True)
class ChainConfig:
    """Shape of a chain network.

    Args:
        init_channels: channels of the stem and of every cell.
        layers: cells after the stem.
        num_classes: outputs of the classifier; 0 for none (the network returns the pooled features).
        in_channels: channels of the input images.
    """

    init_channels: int = 16
    layers: int = 2
    num_classes: int = 10
    in_channels: int = 3

    def __post_init__(self) -> None:
        for name in ("init_channels", "layers", "num_classes", "in_channels"):
            value = getattr(self, name)
            least = 0 if name == "num_classes" else 1  # 0 classes: no classifier, as in timm
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                kind = "non-negative" if least == 0 else "positive"
                raise ConfigError(f"{name} of a chain network must be a {kind} integer, got {value!r}. "
                                  f"Pass it as --space-option {name}=N.")


#: The default shape: 16 channels, 2 cells, 10 classes, RGB input.
DEFAULT_CONFIG = ChainConfig()


class ChainSkeleton(nn.Module):
    """3x3 conv + BN stem, ``layers`` cells from ``make_cell(channels)``, global pool, linear classifier."""

    def __init__(self, config: ChainConfig, make_cell: Callable[[int], nn.Module], global_pool: str = "avg"):
        super().__init__()
        c = config.init_channels
        self.config = config
        self.stem = nn.Sequential(nn.Conv2d(config.in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.cells = nn.ModuleList(make_cell(c) for _ in range(config.layers))
        self.global_pool, self.classifier = create_classifier(c, config.num_classes, pool_type=global_pool)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Logits from the last cell's feature map (or the pooled features when ``pre_logits``)."""
        x = self.global_pool(x)
        return x if pre_logits else self.classifier(x)
