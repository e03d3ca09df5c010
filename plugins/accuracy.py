"""The ``accuracy`` evaluator: mean cross-entropy, top-1 and top-5 accuracy over batches."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from nasbench_pc import hookimpl
from nasbench_pc.runkit import topk_correct


class AccuracyEvaluator:
    def evaluate(self, model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                 device: torch.device | str = "cpu") -> dict[str, float]:
        was_training = model.training
        model.eval()
        loss_sum, top1, top5, count = 0.0, 0, 0, 0
        with torch.no_grad():
            for inputs, targets in batches:
                inputs, targets = inputs.to(device), targets.to(device)
                logits = model(inputs)
                loss_sum += F.cross_entropy(logits, targets, reduction="sum").item()
                hits1, hits5 = topk_correct(logits, targets)
                top1 += hits1
                top5 += hits5
                count += targets.numel()
        model.train(was_training)
        if count == 0:
            return {"loss": float("nan"), "top1": float("nan"), "top5": float("nan"), "count": 0}
        return {"loss": loss_sum / count, "top1": top1 / count, "top5": top5 / count, "count": count}


@hookimpl
def register_evaluators() -> dict[str, AccuracyEvaluator]:
    return {"accuracy": AccuracyEvaluator()}
