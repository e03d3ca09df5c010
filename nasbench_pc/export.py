"""Export a genotype (and trained weights) as a timm local-dir folder.

The folder holds ``config.json`` (``architecture``, ``num_classes``, ``model_args`` with the
genotype and widths, ``pretrained_cfg``), ``model.safetensors`` when there are trained weights,
and a README model card. ``timm.create_model("local-dir:DIR", pretrained=True)`` rebuilds the
network and loads the weights, given that ``nasbench_pc`` is installed and imported (it
registers the ``darts_cifar`` / ``darts_imagenet`` architectures).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from nasbench_pc import genotypes
from nasbench_pc.cost import model_cost
from nasbench_pc.derived import DartsNetwork, default_cfgs
from nasbench_pc.errors import ConfigError, GenotypeError
from nasbench_pc.genotypes import Genotype
from nasbench_pc.render import cell_lines

#: What ``nasbench-pc train`` writes; ``export`` recognises checkpoints by it.
CHECKPOINT_FORMAT = "nasbench-pc/train-checkpoint"
CHECKPOINT_NAME = "checkpoint.pt"
TRAIN_RUN_KIND = "train"  # the "kind" in a train run's config.json (search runs hold a checkpoint.pt too)
WEIGHTS_NAME = "model.safetensors"
#: The search behind each published genotype, for the model card.
PUBLISHED = {
    "DARTS_V1": "darts (first order), published genotype",
    "DARTS_V2": "darts (second order), published genotype",
    "PC_DARTS_cifar": "pc-darts on CIFAR-10, published genotype",
    "PC_DARTS_image": "pc-darts on ImageNet, published genotype",
}


@dataclass
class ExportSpec:
    """Everything an export folder records. ``state_dict`` None means an untrained architecture."""

    genotype: Genotype
    stem: str = "cifar"
    init_channels: int = 36
    layers: int = 20
    num_classes: int = 10
    in_chans: int = 3
    image_size: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    state_dict: dict[str, torch.Tensor] | None = None
    source: str = ""
    method: str | None = None  # the search behind the genotype (see :func:`provenance`)
    dataset: str | None = None  # the training dataset
    metrics: dict[str, float] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)

    @property
    def architecture(self) -> str:
        return f"darts_{self.stem}"

    def model_args(self) -> dict[str, Any]:
        return {
            "genotype": genotypes.to_dict(self.genotype),
            "init_channels": self.init_channels,
            "layers": self.layers,
            "num_classes": self.num_classes,
            "in_chans": self.in_chans,
        }

    def pretrained_cfg(self) -> dict[str, Any]:
        cfg = default_cfgs[self.architecture].default.to_dict()
        cfg = {k: v for k, v in cfg.items() if v not in (None, "", []) and k not in ("architecture", "tag")}
        size = self.image_size or cfg["input_size"][-1]
        cfg.update(num_classes=self.num_classes, input_size=(self.in_chans, size, size))
        if self.mean is not None:
            cfg.update(mean=tuple(self.mean), std=tuple(self.std))
        if self.image_size is not None and self.image_size != default_cfgs[self.architecture].default.input_size[-1]:
            cfg.pop("pool_size", None)  # the final map is no longer the reference 8x8 / 7x7
        return cfg


def write_folder(spec: ExportSpec, out: str | Path) -> Path:
    """Write the timm folder for ``spec``; weights only when ``spec.state_dict`` is set."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a directory path for the exported model.")
    with torch.device("meta"):
        net = DartsNetwork(spec.genotype, stem=spec.stem, init_channels=spec.init_channels, layers=spec.layers,
                           num_classes=spec.num_classes, in_chans=spec.in_chans)
    tensors = None
    if spec.state_dict is not None:
        # the auxiliary head is a training device only; timm builds the network without it
        tensors = {k: v.detach().cpu().contiguous() for k, v in spec.state_dict.items()
                   if not k.startswith("auxiliary_head.")}
        try:
            net.load_state_dict(tensors, strict=True, assign=True)
        except RuntimeError as exc:
            raise ConfigError(
                f"The weights of {spec.source} do not fit the architecture recorded with them ({exc}). The "
                f"checkpoint is damaged or was edited; export the run again from an intact checkpoint."
            ) from None
    side = spec.image_size or spec.pretrained_cfg()["input_size"][-1]
    cost = model_cost(net, (spec.in_chans, side, side))
    out.mkdir(parents=True, exist_ok=True)
    model_args = spec.model_args()
    config = {
        "architecture": spec.architecture,
        "num_classes": spec.num_classes,
        "num_features": net.num_features,
        "global_pool": "avg",
        "model_args": model_args,
        "pretrained_cfg": spec.pretrained_cfg(),
        "nasbench_pc": {
            "trained": spec.state_dict is not None,
            "source": spec.source,
            "method": spec.method,
            "dataset": spec.dataset,
            "metrics": spec.metrics,
            "params": cost.params,
            "macs": cost.macs,
            "recipe": spec.recipe,
        },
    }
    weights = out / WEIGHTS_NAME
    if tensors is not None:
        save_file(tensors, str(weights))
    elif weights.exists():
        weights.unlink()  # a stale file would be loaded as if it belonged to this architecture
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "README.md").write_text(model_card(spec, cost.describe(), out))
    return out


def describe_metrics(metrics: dict[str, float]) -> str:
    """``test top-1 96.35%, test top-5 100.00%`` from ``{'test_top1': 0.9635, ...}``."""
    return ", ".join(f"{k.replace('_top', ' top-')} {v:.2%}" for k, v in metrics.items())


def model_card(spec: ExportSpec, cost: str, out: Path) -> str:
    trained = spec.state_dict is not None
    metrics = describe_metrics(spec.metrics)
    load = "pretrained=True" if trained else "pretrained=False"
    lines = [
        f"# {spec.architecture}: {spec.source or 'genotype'}",
        "",
        "A DARTS-space network derived from a searched genotype, exported by `nasbench-pc export`"
        f" ({'trained weights included' if trained else 'untrained: architecture only, no weights'}).",
        "",
        "| field | value |",
        "|---|---|",
        f"| architecture | `{spec.architecture}` ({spec.stem} network, C={spec.init_channels}, {spec.layers} cells) |",
        f"| search | {spec.method or 'unknown'} |",
        f"| trained on | {spec.dataset or 'nothing (untrained)'} |",
        f"| accuracy | {metrics or 'n/a'} |",
        f"| cost | {cost} (auxiliary head excluded) |",
        f"| classes | {spec.num_classes} |",
        "",
        "## Genotype",
        "",
        "```",
        genotypes.to_python(spec.genotype),
        "```",
        "",
    ]
    for cell in ("normal", "reduce"):
        lines += [f"{cell} cell:", ""] + [f"- {line}" for line in cell_lines(spec.genotype, cell)] + [""]
    lines += [
        "## How to load",
        "",
        "```python",
        "import nasbench_pc  # registers the darts_* architectures with timm",
        "import timm",
        "",
        f"model = timm.create_model('local-dir:{out}', {load})",
        "config = timm.data.resolve_model_data_config(model)",
        "transform = timm.data.create_transform(**config)",
        "```",
        "",
    ]
    if spec.recipe:
        lines += ["## Training recipe", "", "```json", json.dumps(spec.recipe, indent=2), "```", ""]
    return "\n".join(lines)


# --- reading sources --------------------------------------------------------------------------------------------


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A ``nasbench-pc train`` checkpoint (weights_only load)."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise ConfigError(
            f"Cannot read {path} as a nasbench-pc train checkpoint ({type(exc).__name__}: {exc}). Pass the "
            f"{CHECKPOINT_NAME} of a `nasbench-pc train` run (or its run directory)."
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(
            f"{path} is not a `nasbench-pc train` checkpoint. Export a train run directory, its {CHECKPOINT_NAME}, "
            f"a search run directory, a genotype.json or a known genotype name."
        )
    return ckpt


def spec_from_checkpoint(ckpt: dict[str, Any], source: str) -> ExportSpec:
    """The export of a train checkpoint: its network, weights, data statistics and final test accuracy."""
    args, data, config = ckpt["model_args"], ckpt["data"], ckpt["config"]
    final = ckpt["history"][-1] if ckpt["history"] else {}
    return ExportSpec(
        genotype=genotypes.from_dict(args["genotype"]),
        stem=args["stem"], init_channels=args["init_channels"], layers=args["layers"],
        num_classes=args["num_classes"], in_chans=args["in_chans"],
        image_size=data["image_size"], mean=tuple(data["mean"]), std=tuple(data["std"]),
        state_dict=ckpt["state_dict"], source=source, method=config.get("method"), dataset=data["name"],
        metrics={k: final[k] for k in ("test_top1", "test_top5") if k in final},
        recipe={**config["hparams"], "epochs_done": ckpt["epoch"]},
    )


def provenance(source: str) -> str | None:
    """The search behind a genotype source: the method (and dataset) named in a search run's config.json,
    or the paper for a published genotype; None when unknown."""
    if source in PUBLISHED:
        return PUBLISHED[source]
    path = Path(source).expanduser()
    run_dir = path.parent if path.is_file() else path
    try:
        config = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None

    def name(value: Any) -> str | None:
        if isinstance(value, dict):
            value = value.get("name")
        return value if isinstance(value, str) else None

    method, dataset = name(config.get("method")), name(config.get("dataset"))
    if method is None:
        return None
    return f"{method} on {dataset} ({run_dir})" if dataset else f"{method} ({run_dir})"


def is_train_run(path: Path) -> bool:
    """Whether ``path`` is a ``nasbench-pc train`` run directory (its config.json says kind 'train')."""
    try:
        return json.loads((path / "config.json").read_text()).get("kind") == TRAIN_RUN_KIND
    except (OSError, ValueError, AttributeError):
        return False


def resolve_source(source: str) -> ExportSpec:
    """An ExportSpec from a train run directory or checkpoint, a search run directory, a genotype.json
    or a known genotype name. Architecture-only sources give the reference CIFAR setting."""
    path = Path(source).expanduser()
    if is_train_run(path):
        if not (path / CHECKPOINT_NAME).is_file():
            raise ConfigError(
                f"The train run {path} has no {CHECKPOINT_NAME} yet (it is written after the first epoch). Let the "
                f"run finish an epoch, or export its genotype alone with `nasbench-pc export {path / 'genotype.json'}`."
            )
        return spec_from_checkpoint(load_checkpoint(path / CHECKPOINT_NAME), str(path))
    if path.is_file() and path.suffix in (".pt", ".pth"):
        return spec_from_checkpoint(load_checkpoint(path), str(path))
    try:
        genotype = genotypes.parse(source)
    except GenotypeError as exc:
        raise ConfigError(
            f"Cannot export {source!r}: {exc} An export source is a train run directory (or its "
            f"{CHECKPOINT_NAME}), a search run directory holding genotype.json, a genotype.json, or one of "
            f"{', '.join(genotypes.KNOWN)}."
        ) from None
    return ExportSpec(genotype=genotype, source=source, method=provenance(source))
