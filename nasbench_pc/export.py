"""Export a genotype (and trained weights) as a timm local-dir folder.

The folder holds ``config.json`` (``architecture``, ``num_classes``, ``model_args`` with the
genotype and widths, ``pretrained_cfg``), ``model.safetensors`` when there are trained weights,
and a README model card. ``timm.create_model("local-dir:DIR", pretrained=True)`` rebuilds the
network and loads the weights, given that ``nasbench_pc`` is installed and imported (it
registers the ``darts_cifar`` / ``darts_imagenet`` architectures).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from nasbench_pc import genotypes
from nasbench_pc.cost import model_cost
from nasbench_pc.derived import DartsNetwork, default_cfgs
from nasbench_pc.errors import ConfigError, GenotypeError
from nasbench_pc.files import atomic_write_bytes, atomic_write_text
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
    """Write the timm folder for ``spec``; weights only when ``spec.state_dict`` is set.

    Every file goes through a temporary file and a rename, so a symlink already in ``out`` is replaced,
    never followed: nothing is written outside ``out``.
    """
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
        atomic_write_bytes(weights, safetensors.torch.save(tensors))
    else:
        weights.unlink(missing_ok=True)  # a stale file would be loaded as if it belonged to this architecture
    atomic_write_text(out / "config.json", json.dumps(config, indent=2) + "\n")
    atomic_write_text(out / "README.md", model_card(spec, cost.describe(), out))
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

#: What every train checkpoint holds, and the type of each field.
_CHECKPOINT_FIELDS = {"epoch": int, "config": dict, "model_args": dict, "data": dict, "state_dict": dict,
                      "optimizer": dict, "history": list}


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A ``nasbench-pc train`` checkpoint, loaded with ``weights_only=True``: tensors and plain data only, so a
    file holding a pickled object that would run code is refused, never executed."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a truncated, foreign or unsafe file
        raise _unreadable(path, exc) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(
            f"{path} is not a `nasbench-pc train` checkpoint. Export a train run directory, its {CHECKPOINT_NAME}, "
            f"a search run directory, a genotype.json or a known genotype name."
        )
    bad = [name for name, kind in _CHECKPOINT_FIELDS.items() if not isinstance(ckpt.get(name), kind)]
    if bad:
        raise ConfigError(
            f"{path} is a `nasbench-pc train` checkpoint without a usable {', '.join(bad)}: it was edited or written "
            f"by another version of nasbench-pc. Use an intact checkpoint, or start the run again with --force."
        )
    return ckpt


def _unreadable(path: Path, exc: Exception) -> ConfigError:
    """The error for a checkpoint torch cannot load: one that would run code, or a damaged one."""
    text = str(exc)
    code = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if code:
        return ConfigError(
            f"{path} was not loaded: besides tensors and plain data it holds a Python object ({code.group(1)}) that "
            f"would run code when loaded. A `nasbench-pc train` checkpoint never holds one; use the "
            f"{CHECKPOINT_NAME} of a run you made or trust."
        )
    first = text.strip().splitlines()[0][:120] if text.strip() else "no data"
    return ConfigError(
        f"{path} cannot be read as a checkpoint ({type(exc).__name__}: {first}): it is damaged, cut short or not a "
        f"checkpoint at all. A run replaces its {CHECKPOINT_NAME} atomically, so it was changed outside nasbench-pc "
        f"(a copy, a full disk). Use an intact checkpoint, or start the run again with --force; its metrics.jsonl "
        f"keeps the numbers of the finished epochs."
    )


def spec_from_checkpoint(ckpt: dict[str, Any], source: str) -> ExportSpec:
    """The export of a train checkpoint: its network, weights, data statistics and final test accuracy.

    A checkpoint written mid-epoch (by Ctrl-C or SIGTERM) has weights that no test accuracy belongs to, so
    its export carries no metrics."""
    try:
        args, data, config = ckpt["model_args"], ckpt["data"], ckpt["config"]
        step = ckpt.get("step", 0)
        final = ckpt["history"][-1] if ckpt["history"] and not step else {}
        return ExportSpec(
            genotype=genotypes.from_dict(args["genotype"]),
            stem=args["stem"], init_channels=args["init_channels"], layers=args["layers"],
            num_classes=args["num_classes"], in_chans=args["in_chans"],
            image_size=data["image_size"], mean=tuple(data["mean"]), std=tuple(data["std"]),
            state_dict=ckpt["state_dict"], source=source, method=config.get("method"), dataset=data["name"],
            metrics={k: final[k] for k in ("test_top1", "test_top5") if k in final},
            recipe={"recipe": config.get("recipe"), **config["hparams"], "epochs_done": ckpt["epoch"],
                    **({"steps_into_next_epoch": step} if step else {})},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"The checkpoint of {source} lacks or garbles a field a `nasbench-pc train` checkpoint holds "
            f"({type(exc).__name__}: {exc}): it was edited or written by another version of nasbench-pc. Export an "
            f"intact checkpoint."
        ) from None


def existing_path(source: str) -> Path | None:
    """``source`` as a file or folder that exists; None for text that names none (JSON or a Genotype(...) literal,
    some too long for a file name, or ``~user`` of no user)."""
    try:
        path = Path(source).expanduser()
        return path if path.exists() else None
    except (OSError, RuntimeError):
        return None


def _search_run(source: str) -> tuple[str, dict[str, Any], Path] | None:
    """(method name, config.json, run directory) of the search run that ``source`` (its directory or a file in
    it) names; None for anything else, a train run included."""
    path = existing_path(source)
    if path is None:
        return None
    run_dir = path.parent if path.is_file() else path
    try:
        config = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or config.get("kind") == TRAIN_RUN_KIND:
        return None
    method = _name(config.get("method"))
    return None if method is None else (method, config, run_dir)


def _name(value: Any) -> str | None:
    """A method or dataset name as a search run's config.json records it (a record with a name, or the name)."""
    if isinstance(value, dict):
        value = value.get("name")
    return value if isinstance(value, str) else None


def search_method(source: str) -> tuple[str, dict[str, Any]] | None:
    """The method that searched ``source`` (a search run directory or a file in it) and the method options it
    ran with (``k``), read from the run's config.json; None when ``source`` is no search run."""
    found = _search_run(source)
    if found is None:
        return None
    method, config, _ = found
    settings = config.get("config")
    k = settings.get("k") if isinstance(settings, dict) else None
    return method, ({} if k is None else {"k": k})


def provenance(source: str) -> str | None:
    """The search behind a genotype source: the method (and dataset) named in a search run's config.json,
    or the paper for a published genotype; None when unknown."""
    if source in PUBLISHED:
        return PUBLISHED[source]
    found = _search_run(source)
    if found is None:
        return None
    method, config, run_dir = found
    dataset = _name(config.get("dataset"))
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
    path = existing_path(source)
    if path is not None and is_train_run(path):
        if not (path / CHECKPOINT_NAME).is_file():
            raise ConfigError(
                f"The train run {path} has no {CHECKPOINT_NAME} yet (it is written after the first epoch). Let the "
                f"run finish an epoch, or export its genotype alone with `nasbench-pc export {path / 'genotype.json'}`."
            )
        return spec_from_checkpoint(load_checkpoint(path / CHECKPOINT_NAME), str(path))
    if path is not None and path.is_file() and path.suffix in (".pt", ".pth"):
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
