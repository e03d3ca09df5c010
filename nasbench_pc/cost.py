"""What a derived network costs: parameters and multiply-accumulates (MACs).

Parameters exclude the auxiliary head, as the published counts do. MACs are those of the
convolutions and linear layers for one image (``torch.utils.flop_counter`` FLOPs / 2);
BatchNorm, activations, pooling and additions are not counted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nasbench_pc.derived import DartsNetwork
from nasbench_pc.genotypes import Genotype

#: Reference evaluation settings per network: (init_channels, layers, num_classes, image size).
SETTINGS: dict[str, tuple[int, int, int, int]] = {
    "cifar": (36, 20, 10, 32),
    "imagenet": (48, 14, 1000, 224),
}


@dataclass(frozen=True)
class Cost:
    params: int
    macs: int
    input_size: tuple[int, int, int]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        c, h, w = self.input_size
        return f"{self.params / 1e6:.2f}M params, {self.macs / 1e6:.0f}M MACs at {c}x{h}x{w}"


def count_params(model: nn.Module) -> int:
    """Parameters of ``model`` without its auxiliary head."""
    return sum(p.numel() for name, p in model.named_parameters() if not name.startswith("auxiliary_head."))


def model_cost(model: nn.Module, input_size: tuple[int, int, int]) -> Cost:
    """Params and MACs of ``model`` for one input of ``input_size`` (C, H, W), measured in eval mode."""
    param = next(model.parameters())
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *input_size, dtype=param.dtype, device=param.device))
    finally:
        model.train(was_training)
    return Cost(params=count_params(model), macs=counter.get_total_flops() // 2, input_size=tuple(input_size))


def genotype_cost(genotype: Genotype | str | dict, *, stem: str = "cifar", init_channels: int | None = None,
                  layers: int | None = None, num_classes: int | None = None, in_chans: int = 3,
                  image_size: int | None = None) -> Cost:
    """Cost of ``genotype`` as a ``stem`` ('cifar' | 'imagenet') network; unset values take the
    reference evaluation setting (CIFAR: C=36, 20 cells, 10 classes, 32x32; ImageNet: C=48,
    14 cells, 1000 classes, 224x224). Built on the meta device, so it allocates no weights."""
    c, n, k, size = SETTINGS.get(stem, SETTINGS["cifar"])
    with torch.device("meta"):
        model = DartsNetwork(genotype, stem=stem, init_channels=init_channels or c, layers=layers or n,
                             num_classes=num_classes or k, in_chans=in_chans)
    side = image_size or size
    return model_cost(model, (in_chans, side, side))
