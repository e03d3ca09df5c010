"""What a derived network costs: parameters and multiply-accumulates (MACs).

Parameters exclude the auxiliary head, as the published counts do. MACs are those of the
convolutions and linear layers for one image (``torch.utils.flop_counter`` FLOPs / 2);
BatchNorm, activations, pooling and additions are not counted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import timm
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nasbench_pc import genotypes
from nasbench_pc.errors import ConfigError
from nasbench_pc.records import NetworkSpec


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


def network_spec(genotype: Any, network: str | None = None) -> tuple[str, NetworkSpec]:
    """(name, spec) of the derived network ``network`` of ``genotype``'s search space; None: the space's first.
    A name the space lacks is a ConfigError listing the space's networks."""
    space = genotypes.space_of(genotype)
    name = network or next(iter(space.networks))
    if name not in space.networks:
        listed = ", ".join(f"{n} ({s.model})" for n, s in space.networks.items())
        raise ConfigError(f"The {space.name} search space has no network {name!r}; its networks are {listed}. "
                          f"Pass one of those with --network.")
    return name, space.networks[name]


def derived_network(genotype: Any, network: str | None = None, **overrides: Any) -> tuple[nn.Module, NetworkSpec]:
    """``genotype`` as one of its search space's derived networks, built on the meta device (no weights are
    allocated), with that network's spec.

    Args:
        genotype: a genotype of any space, or anything :func:`nasbench_pc.genotypes.parse` reads.
        network: a name in the space's ``networks`` (DARTS: 'cifar' | 'imagenet'); default the space's first.
        overrides: the timm model's arguments over the network's reference ones (DARTS: ``init_channels``,
            ``layers``; NAS-Bench-201: ``init_channels``, ``cells_per_stage``; any: ``num_classes``, ``in_chans``).
    """
    parsed = genotypes.parse(genotype)
    _, spec = network_spec(parsed, network)
    with torch.device("meta"):
        model = timm.create_model(spec.model, genotype=parsed, **{**spec.options, **overrides})
    return model, spec


def genotype_cost(genotype: Any, network: str | None = None, *, image_size: int | None = None,
                  **overrides: Any) -> Cost:
    """Cost of ``genotype`` as its space's derived ``network`` (see :func:`derived_network` for ``network`` and
    ``overrides``); unset values take the reference evaluation setting (DARTS CIFAR: C=36, 20 cells, 10 classes,
    32x32; ImageNet: C=48, 14 cells, 1000 classes, 224x224; NAS-Bench-201: C=16, N=5, 10 classes, 32x32).
    ``image_size`` is the input side for the MACs (default the network's)."""
    model, spec = derived_network(genotype, network, **overrides)
    side = image_size or spec.image_size
    return model_cost(model, (overrides.get("in_chans", 3), side, side))
