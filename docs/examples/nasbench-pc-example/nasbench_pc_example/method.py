# nasbench_pc_example/method.py
"""The ``pc-random`` method: PC-DARTS with the ``random-partial`` sampler.

Partial channels (K=4, a fresh random subset every step) and edge normalization, first order, with PC-DARTS' CIFAR-10
search settings (batch 256, learning rate 0.1 annealed to 0, architecture learning rate 6e-4, 15 warm-up epochs, as
the reference train_search.py), so that it differs from ``pc-darts`` only in which channels an edge samples.
"""

from __future__ import annotations

from nasbench_pc import hookimpl
from nasbench_pc.interfaces import Method, SearchHParams

PC_DARTS_HPARAMS = SearchHParams(batch_size=256, lr=0.1, lr_min=0.0, arch_lr=6e-4, warmup_epochs=15)


@hookimpl
def register_methods() -> dict[str, Method]:
    return {
        "pc-random": Method(
            name="pc-random",
            description="PC-DARTS with a fresh random 1/K of the channels each step (K=4) + edge normalization",
            sampler="random-partial",
            sampler_options={"k": 4},
            normalizer="edge",
            order=1,
            hparams=PC_DARTS_HPARAMS,
        ),
    }
