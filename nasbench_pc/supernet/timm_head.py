"""What every network we register with timm shares: the classifier side of timm's model interface
(:class:`TimmHead`) and the builder that honours timm's ``device=`` / ``dtype=`` (:func:`build_model`).

A network using :class:`TimmHead` holds ``global_pool`` and ``classifier`` (built with
``timm.layers.create_classifier``), ``num_classes``, ``num_features``, ``grad_checkpointing`` and
``cells`` (the blocks ``group_matcher`` names).
"""

from contextlib import nullcontext
from typing import Any

import torch
from timm.layers import create_classifier
from timm.models import build_model_with_cfg
from torch import nn

#: CIFAR-10 channel statistics, the default_cfg mean / std of the CIFAR networks.
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def build_model(model_cls: Any, variant: str, pretrained: bool, **kwargs: Any) -> nn.Module:
    """timm's ``build_model_with_cfg``; ``device`` / ``dtype`` (timm factory arguments) place the parameters
    as they are created, so ``device="meta"`` allocates nothing."""
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    with torch.device(device) if device is not None else nullcontext():
        model = build_model_with_cfg(model_cls, variant, pretrained, **kwargs)
    return model if dtype is None else model.to(dtype)


class TimmHead:
    """group_matcher / set_grad_checkpointing / get_classifier / reset_classifier, as timm's models have them."""

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(stem=r"^stem", blocks=r"^cells\.(\d+)")

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        if global_pool is None:
            global_pool = self.global_pool.pool_type
        like = next(self.parameters())  # the new head follows the network's device, dtype and mode
        self.global_pool, self.classifier = create_classifier(self.num_features, num_classes, pool_type=global_pool,
                                                              device=like.device, dtype=like.dtype)
        self.global_pool.train(self.training)
        self.classifier.train(self.training)
