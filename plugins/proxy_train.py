"""The ``proxy-train`` evaluator: the paper's protocol in miniature. The derived network of the genotype (any
space) is trained from scratch for a small budget on the search dataset's training split and scored on its
test split.

By default the network has the supernet's width and depth (the search's shape options) and trains with the
space's recipe (``nasbench-pc train --recipe auto``) for ``epochs`` epochs at ``batch_size``, without the
auxiliary head, drop path and cutout, which only pay off over hundreds of epochs. Any
:class:`~nasbench_pc.networks.train.TrainHParams` field named in the options overrides the recipe. The training run is a
normal resumable ``nasbench-pc train`` folder in the evaluation's own folder (``<run>/evaluations/proxy-train*/``):
an interrupted evaluation continues where it stopped, a finished one is read back.
"""

from __future__ import annotations

from typing import Any

from nasbench_pc import hookimpl
from nasbench_pc.interfaces import Metric
from nasbench_pc.networks.recipes import make_config
from nasbench_pc.networks.train import MODEL_DIR, resume, train
from nasbench_pc.results.evaluation import EvaluationTarget
from nasbench_pc.runtime.runkit import CHECKPOINT, GENOTYPE, read_history


class ProxyTrain:
    description = ("the derived network trained from scratch for a few epochs on the search data's training split, "
                   "top-1 on its test split")
    needs = frozenset({"data"})
    options: dict[str, Any] = {"epochs": 2, "batch_size": 64, "init_channels": None, "layers": None, "lr": None,
                               "auxiliary_weight": 0.0, "drop_path": 0.0, "cutout": 0, "limit": None, "seed": None,
                               "recipe": "auto"}
    metrics = (Metric("proxy_acc", "proxy acc %", percent=True, fmt=".1f"),
               Metric("proxy_loss", "proxy loss", higher_is_better=False, fmt=".3f"))

    def evaluate(self, target: EvaluationTarget, *, epochs: int, batch_size: int, init_channels: int | None,
                 layers: int | None, lr: float | None, auxiliary_weight: float, drop_path: float, cutout: int,
                 limit: int | None, seed: int | None, recipe: str) -> dict[str, float]:
        out = target.work_dir
        if (out / MODEL_DIR).is_dir():  # trained already (its record was lost): read the result back
            history = read_history(out)
        elif (out / CHECKPOINT).is_file():
            history = resume(out, device=target.device).history
        else:
            named = target.run_dir is not None and (target.run_dir / GENOTYPE).is_file()
            channels, depth = target.network_shape(init_channels, layers)
            config = make_config(str(target.run_dir) if named else target.genotype, dataset=target.dataset,
                                 recipe=recipe, data_root=target.data_root, limit=limit or target.limit,
                                 image_size=target.image_size, in_channels=target.in_channels,
                                 bad_images=target.bad_images, epochs=epochs, batch_size=batch_size,
                                 init_channels=channels, layers=depth, lr=lr, auxiliary_weight=auxiliary_weight,
                                 drop_path=drop_path, cutout=cutout,
                                 seed=target.seed if seed is None else seed)
            history = train(config, out, device=target.device, force=True).history
        final = history[-1]
        return {"proxy_acc": final["test_top1"], "proxy_loss": final["test_loss"]}


@hookimpl
def register_evaluators() -> dict[str, ProxyTrain]:
    return {"proxy-train": ProxyTrain()}
