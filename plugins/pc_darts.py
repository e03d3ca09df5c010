"""PC-DARTS (Xu et al., 2020) and its two ablations.

``pc-darts``: partial channels (K=4) + edge normalization, first order, with the PC-DARTS
CIFAR-10 search settings (batch 256, lr 0.1 to 0, arch lr 6e-4, 15 warm-up epochs).
``pc-only`` drops edge normalization; ``en-only`` keeps it but samples every channel, so
it needs DARTS' memory and runs with DARTS' batch and learning rate (first order).
"""

from __future__ import annotations

from nasbench_pc import hookimpl
from nasbench_pc.interfaces import Method, SearchHParams

PC_DARTS_HPARAMS = SearchHParams(batch_size=256, lr=0.1, lr_min=0.0, arch_lr=6e-4, warmup_epochs=15)
EN_ONLY_HPARAMS = SearchHParams(batch_size=64, lr=0.025, lr_min=0.001, arch_lr=6e-4, warmup_epochs=15)


@hookimpl
def register_methods() -> dict[str, Method]:
    return {
        "pc-darts": Method(
            name="pc-darts",
            default=True,
            default_rank=1,
            description="PC-DARTS: partial channels (K=4) + edge normalization, first order",
            sampler="partial",
            sampler_options={"k": 4},
            normalizer="edge",
            order=1,
            hparams=PC_DARTS_HPARAMS,
        ),
        "pc-only": Method(
            name="pc-only",
            default_rank=2,
            description="Ablation: partial channels (K=4) without edge normalization",
            sampler="partial",
            sampler_options={"k": 4},
            normalizer="none",
            order=1,
            hparams=PC_DARTS_HPARAMS,
        ),
        "en-only": Method(
            name="en-only",
            default_rank=3,
            description="Ablation: edge normalization on all channels (DARTS batch and lr)",
            sampler="full",
            normalizer="edge",
            order=1,
            hparams=EN_ONLY_HPARAMS,
        ),
    }
