"""The derived chain network, registered with timm as ``chain_tiny``.

``timm.create_model("chain_tiny", genotype=..., num_classes=..., in_chans=...)`` builds the chain
cell of ``genotype`` (a :class:`ChainGenotype`, its text or its dict form) ``layers`` times with
affine BNs, between the same stem and classifier as the supernet.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from timm.layers import create_classifier
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from chain_space._skeleton import DEFAULT_CONFIG, ChainConfig, ChainSkeleton
from chain_space.genotype import DEFAULT, ChainGenotype, as_genotype
from chain_space.ops import OPS


class ChainNetwork(ChainSkeleton):
    """One genotype's chain cell, repeated, with timm's model interface.

    Args:
        genotype: the cell every layer repeats.
        config: network shape.
        global_pool: timm pool type of the head ('avg'; '' keeps the feature map).
    """

    def __init__(self, genotype: ChainGenotype, config: ChainConfig = DEFAULT_CONFIG, global_pool: str = "avg"):
        super().__init__(config, lambda c: nn.Sequential(*(OPS[op](c, True) for op in genotype.ops)), global_pool)
        self.genotype = genotype
        self.num_classes = config.num_classes
        self.in_chans = config.in_channels
        self.num_features = self.head_hidden_size = config.init_channels

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last cell's feature map, before pooling."""
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A new head with ``num_classes`` outputs (0: none), on the network's device and dtype."""
        like = next(self.parameters())
        pool = self.global_pool.pool_type if global_pool is None else global_pool
        self.num_classes = num_classes
        self.global_pool, self.classifier = create_classifier(self.num_features, num_classes, pool_type=pool,
                                                              device=like.device, dtype=like.dtype)


def _network(genotype: Any = DEFAULT, num_classes: int = 10, in_chans: int = 3, init_channels: int = 16,
             layers: int = 4, global_pool: str = "avg", device: Any = None, dtype: Any = None) -> ChainNetwork:
    """timm's keyword arguments as a :class:`ChainNetwork`; ``device`` / ``dtype`` place the parameters as they
    are created (``device="meta"`` allocates nothing)."""
    config = ChainConfig(init_channels=init_channels, layers=layers, num_classes=num_classes, in_channels=in_chans)
    with torch.device(device) if device is not None else nullcontext():
        model = ChainNetwork(as_genotype(genotype), config, global_pool)
    return model if dtype is None else model.to(dtype)


default_cfgs = generate_default_cfgs({
    "chain_tiny": dict(url="", num_classes=10, input_size=(3, 32, 32), pool_size=(32, 32), crop_pct=1.0,
                       interpolation="bilinear", mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616),
                       first_conv="stem.0", classifier="classifier", license="mit"),
})


@register_model
def chain_tiny(pretrained: bool = False, **kwargs: Any) -> ChainNetwork:
    """A chain genotype (``genotype=``, default conv_3x3>skip_connect>conv_3x3) in 4 cells of 16 channels."""
    return build_model_with_cfg(_network, "chain_tiny", pretrained, **kwargs)
