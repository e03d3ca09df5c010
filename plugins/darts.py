"""Vanilla DARTS (Liu et al., 2019): every channel, no edge normalization.

Hyperparameters are the DARTS CIFAR-10 search settings of the reference train_search.py, and on
NAS-Bench-201 the benchmark's DARTS settings (../shared facts: weight decay 5e-4, the rest as DARTS').
"""

from __future__ import annotations

from nasbench_pc import hookimpl
from nasbench_pc.interfaces import Method, SearchHParams

DARTS_HPARAMS = SearchHParams(batch_size=64, lr=0.025, lr_min=0.001, arch_lr=3e-4, warmup_epochs=0)
#: The benchmark's DARTS search settings on NAS-Bench-201 (its weight decay is 5e-4).
NB201_HPARAMS = SearchHParams(batch_size=64, lr=0.025, lr_min=0.001, weight_decay=5e-4, arch_lr=3e-4,
                              warmup_epochs=0)

#: The NAS-Bench-201 search settings of the SmoothDARTS code base (``nasbench201/train_search.py``), which SDARTS,
#: beta-DARTS and DrNAS' one-stage script share: 100 epochs, batch 64, SGD 0.025 cosine to 0.001, weight decay
#: 3e-4 (not the benchmark's 5e-4), Adam 3e-4 with weight decay 1e-3, seed 2 (darts-family-facts.md 3.5, 4.3, 6.4).
FAMILY_NB201_HPARAMS = SearchHParams(batch_size=64, lr=0.025, lr_min=0.001, weight_decay=3e-4, epochs=100,
                                     arch_lr=3e-4, arch_weight_decay=1e-3, warmup_epochs=0, seed=2)


@hookimpl
def register_methods() -> dict[str, Method]:
    return {
        "darts": Method(
            name="darts",
            default_rank=0,
            description="DARTS, second order (unrolled architecture gradient)",
            sampler="full",
            normalizer="none",
            order=2,
            hparams=DARTS_HPARAMS,
            space_hparams={"nas-bench-201": NB201_HPARAMS},
        ),
        "darts-1st": Method(
            name="darts-1st",
            description="DARTS, first order",
            sampler="full",
            normalizer="none",
            order=1,
            hparams=DARTS_HPARAMS,
            space_hparams={"nas-bench-201": NB201_HPARAMS},
        ),
    }
