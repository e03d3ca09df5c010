"""The classifier side of timm's model interface, shared by every network we register with timm.

A network using :class:`TimmHead` holds ``global_pool`` and ``classifier`` (built with
``timm.layers.create_classifier``), ``num_classes``, ``num_features``, ``grad_checkpointing`` and
``cells`` (the blocks ``group_matcher`` names).
"""

from typing import Any

import torch
from timm.layers import create_classifier
from torch import nn


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
