"""Export a genotype (and trained weights) as a timm local-dir folder.

The folder holds ``config.json`` (``architecture``: the timm model of the genotype's search space's
derived network; ``num_classes``; ``model_args`` with the genotype and the network's shape;
``pretrained_cfg``; and a ``nasbench_pc`` record naming the space, the genotype's text and where it
came from), ``model.safetensors`` when there are trained weights, and a README model card.
``timm.create_model("local-dir:DIR", pretrained=True)`` rebuilds the network and loads the weights,
given that ``nasbench_pc`` is installed and imported (it registers every space's models:
``darts_cifar`` / ``darts_imagenet``, ``nasbench201_cifar``, ...). :func:`write_onnx` adds ``model.onnx``, checked
against onnxruntime (:mod:`nasbench_pc.networks.onnx_export`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safetensors.torch
import timm
import torch
from timm.models import get_pretrained_cfg

from nasbench_pc import genotypes, registry
from nasbench_pc.errors import ConfigError, GenotypeError
from nasbench_pc.networks.cost import derived_network, model_cost, network_spec
from nasbench_pc.networks.onnx_export import (
    BATCH_AXIS,
    INPUT_NAME,
    ONNX_NAME,
    OUTPUT_NAME,
    TOLERANCE,
    OnnxCheck,
    check_onnx,
    export_onnx,
)
from nasbench_pc.records import NetworkSpec
from nasbench_pc.runtime.files import atomic_write_bytes, atomic_write_text
from nasbench_pc.runtime.runkit import CHECKPOINT, CONFIG, GENOTYPE
from nasbench_pc.search.config import SearchConfig

#: What ``nasbench-pc train`` writes; ``export`` recognises checkpoints by it.
CHECKPOINT_FORMAT = "nasbench-pc/train-checkpoint"
TRAIN_RUN_KIND = "train"  # the "kind" in a train run's config.json (search runs hold a checkpoint.pt too)
WEIGHTS_NAME = "model.safetensors"
#: The seed under which the network of an untrained folder is initialised for its ONNX export, so that
#: ``torch.manual_seed(0)`` before ``timm.create_model("local-dir:DIR")`` gives the weights model.onnx holds.
ONNX_INIT_SEED = 0
#: model_args that are not the network's shape.
_NOT_SHAPE = ("genotype", "num_classes", "in_chans")


def network_options(spec: NetworkSpec, options: dict[str, Any] | None = None, *, init_channels: int | None = None,
                    layers: int | None = None) -> dict[str, Any]:
    """The shape keywords of the timm model of ``spec``: its reference ``spec.options``, then ``options``, then
    ``init_channels`` / ``layers`` (None keeps the value) on the keywords the spec names its width and depth."""
    resolved = {**spec.options, **(options or {})}
    for flag, keyword, value in (("init-channels", spec.width, init_channels), ("layers", spec.depth, layers)):
        if value is None:
            continue
        if keyword is None:
            shape = f"its shape options are {', '.join(resolved)}" if resolved else "it has no shape options"
            raise ConfigError(f"The {spec.model} network has no --{flag} setting ({shape}). Drop --{flag}.")
        resolved[keyword] = value
    return resolved


def describe_shape(spec: NetworkSpec, options: dict[str, Any]) -> str:
    """The network's shape in the words its spec gives (DARTS: ``C=36 and 20 cells``), ``keyword=value`` else."""
    return " and ".join(spec.words.get(k, f"{k}={{}}").format(v) for k, v in options.items())


@dataclass
class ExportSpec:
    """Everything an export folder records. ``state_dict`` None means an untrained architecture.

    The network is ``network`` of the genotype's space (None: the space's first), with the space's reference
    shape, then ``options`` (the timm model's shape keywords), then ``init_channels`` / ``layers`` (on the
    keywords its :class:`~nasbench_pc.interfaces.NetworkSpec` names ``width`` and ``depth``). ``num_classes`` None
    takes the model's default (its pretrained cfg).
    """

    genotype: Any
    network: str | None = None
    init_channels: int | None = None
    layers: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    num_classes: int | None = None
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
    def network_name(self) -> str:
        return network_spec(self.genotype, self.network)[0]

    def network_spec(self) -> NetworkSpec:
        return network_spec(self.genotype, self.network)[1]

    @property
    def architecture(self) -> str:
        """The timm model name."""
        return self.network_spec().model

    def shape(self) -> dict[str, Any]:
        return network_options(self.network_spec(), self.options, init_channels=self.init_channels,
                               layers=self.layers)

    def _default_cfg(self) -> dict[str, Any]:
        cfg = get_pretrained_cfg(self.architecture)
        return {} if cfg is None else cfg.to_dict()

    def classes(self) -> int:
        """``num_classes``, else the model's default."""
        return self.num_classes or self._default_cfg().get("num_classes", 1000)

    def model_args(self) -> dict[str, Any]:
        """What ``timm.create_model(architecture, **model_args)`` builds the network from."""
        return {"genotype": genotypes.to_dict(self.genotype), **self.shape(), "num_classes": self.classes(),
                "in_chans": self.in_chans}

    def pretrained_cfg(self) -> dict[str, Any]:
        cfg = {k: v for k, v in self._default_cfg().items()
               if v not in (None, "", []) and k not in ("architecture", "tag")}
        reference = self.network_spec().image_size
        size = self.image_size or reference
        cfg.update(num_classes=self.classes(), input_size=(self.in_chans, size, size))
        if self.mean is not None:
            cfg.update(mean=tuple(self.mean), std=tuple(self.std))
        if size != reference:
            cfg.pop("pool_size", None)  # the final map is no longer the reference one
        return cfg


def write_folder(spec: ExportSpec, out: str | Path) -> Path:
    """Write the timm folder for ``spec``; weights only when ``spec.state_dict`` is set.

    Every file goes through a temporary file and a rename, so a symlink already in ``out`` is replaced,
    never followed: nothing is written outside ``out``.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a directory path for the exported model.")
    model_args = spec.model_args()
    try:
        net, network = derived_network(spec.genotype, spec.network_name,
                                       **{k: v for k, v in model_args.items() if k != "genotype"})
    except TypeError as exc:  # a shape keyword the model does not take: the checkpoint was edited
        raise ConfigError(
            f"The network recorded with {spec.source or 'the genotype'} cannot be built ({exc}): its settings were "
            f"edited or written by another version of nasbench-pc. Export an intact checkpoint."
        ) from None
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
    side = spec.image_size or network.image_size
    cost = model_cost(net, (spec.in_chans, side, side))
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "architecture": network.model,
        "num_classes": model_args["num_classes"],
        "num_features": net.num_features,
        "global_pool": "avg",
        "model_args": model_args,
        "pretrained_cfg": spec.pretrained_cfg(),
        "nasbench_pc": {
            "space": genotypes.space_of(spec.genotype).name,
            "network": spec.network_name,
            "genotype_text": genotypes.to_text(spec.genotype),
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
    (out / ONNX_NAME).unlink(missing_ok=True)  # likewise; write_onnx writes this architecture's
    atomic_write_text(out / CONFIG, json.dumps(config, indent=2) + "\n")
    atomic_write_text(out / "README.md", model_card(spec, cost.describe(), out))
    return out


def describe_metrics(metrics: dict[str, float]) -> str:
    """``test top-1 96.35%, test top-5 100.00%`` from ``{'test_top1': 0.9635, ...}``."""
    return ", ".join(f"{k.replace('_top', ' top-')} {v:.2%}" for k, v in metrics.items())


def model_card(spec: ExportSpec, cost: str, out: Path) -> str:
    """The README of an export folder: the network, its provenance and accuracy, the genotype, how to load it."""
    trained = spec.state_dict is not None
    metrics = describe_metrics(spec.metrics)
    load = "pretrained=True" if trained else "pretrained=False"
    space = genotypes.space_of(spec.genotype)
    args = {k: v for k, v in spec.model_args().items() if k != "genotype"}
    lines = [
        f"# {spec.architecture}: {spec.source or 'genotype'}",
        "",
        f"A {space.name}-space network derived from a genotype, exported by `nasbench-pc export`"
        f" ({'trained weights included' if trained else 'untrained: architecture only, no weights'}).",
        "",
        "| field | value |",
        "|---|---|",
        f"| search space | {space.name} |",
        f"| architecture | `{spec.architecture}` ({spec.network_name} network, "
        f"{describe_shape(spec.network_spec(), spec.shape())}) |",
        f"| timm model args | `{json.dumps(args)}` and `genotype` |",
        f"| search | {spec.method or 'unknown'} |",
        f"| trained on | {spec.dataset or 'nothing (untrained)'} |",
        f"| accuracy | {metrics or 'n/a'} |",
        f"| cost | {cost} (auxiliary head excluded) |",
        f"| classes | {args['num_classes']} |",
        "",
        "## Genotype",
        "",
        "```",
        genotypes.to_text(spec.genotype),
        "```",
        "",
    ]
    for cell, cell_lines in space.cell_lines(spec.genotype).items():
        lines += [f"{cell}:", ""] + [f"- {line}" for line in cell_lines] + [""]
    lines += [
        "As JSON (`nasbench_pc.genotypes.from_dict` reads it):",
        "",
        "```json",
        genotypes.to_json(spec.genotype, indent=None),
        "```",
        "",
        "## How to load",
        "",
        "```python",
        "import nasbench_pc  # registers every search space's networks with timm",
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


def write_onnx(spec: ExportSpec, out: str | Path) -> OnnxCheck:
    """Add ``model.onnx`` to the folder :func:`write_folder` wrote for ``spec``, check it against onnxruntime and
    record the check in the folder's config.json (``nasbench_pc.onnx``) and model card.

    The network exported is the one the folder loads as, ``timm.create_model("local-dir:OUT")`` in eval mode (an
    untrained folder's under ``torch.manual_seed(ONNX_INIT_SEED)``; the caller's random state is left as it was).
    A network the exporter cannot export, or whose ONNX logits differ from PyTorch's, is a ConfigError; the timm
    folder stays as written.
    """
    out = Path(out)
    config = json.loads((out / CONFIG).read_text())
    input_size = tuple(config["pretrained_cfg"]["input_size"])
    name = f"{spec.network_name} network ({spec.architecture})"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ONNX_INIT_SEED)
        model = timm.create_model(f"local-dir:{out}", pretrained=spec.state_dict is not None)
    export_onnx(model, out / ONNX_NAME, input_size, name)
    check = check_onnx(model, out / ONNX_NAME, input_size, name)
    config["nasbench_pc"]["onnx"] = check.as_dict()
    atomic_write_text(out / CONFIG, json.dumps(config, indent=2) + "\n")
    card = (out / "README.md").read_text()
    atomic_write_text(out / "README.md", card + onnx_card(spec, check, input_size, config["num_classes"], out))
    return check


def onnx_card(spec: ExportSpec, check: OnnxCheck, input_size: tuple[int, ...], num_classes: int, out: Path) -> str:
    """The model card's ONNX section: what model.onnx holds, the check it passed, how to run it."""
    shape = " x ".join(str(d) for d in input_size)
    weights = ("the trained weights" if spec.state_dict is not None else
               f"untrained: the initial weights `timm.create_model` gives after `torch.manual_seed({ONNX_INIT_SEED})`")
    lines = [
        "",
        "## ONNX",
        "",
        f"`{ONNX_NAME}` holds the network in eval mode ({weights}): input `{INPUT_NAME}` ({BATCH_AXIS} x {shape}, "
        f"normalised with `pretrained_cfg`'s mean and std), output `{OUTPUT_NAME}` ({BATCH_AXIS} x {num_classes}); "
        f"the {BATCH_AXIS} axis is dynamic, the image size fixed. Written by torch's TorchScript-based exporter at "
        f"ONNX opset {check.opset}.",
        "",
        f"Checked on export: one random input through PyTorch and onnxruntime, {check.describe()}; an export "
        f"differing by {TOLERANCE:g} or more is refused.",
        "",
        "```python",
        "import onnxruntime",
        "",
        f"session = onnxruntime.InferenceSession('{out / ONNX_NAME}', providers=['CPUExecutionProvider'])",
        f"logits = session.run(['{OUTPUT_NAME}'], {{'{INPUT_NAME}': images}})[0]  # images: float32, NCHW",
        "```",
        "",
    ]
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
            f"{path} is not a `nasbench-pc train` checkpoint. Export a train run directory, its {CHECKPOINT}, "
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
            f"{CHECKPOINT} of a run you made or trust."
        )
    first = text.strip().splitlines()[0][:120] if text.strip() else "no data"
    return ConfigError(
        f"{path} cannot be read as a checkpoint ({type(exc).__name__}: {first}): it is damaged, cut short or not a "
        f"checkpoint at all. A run replaces its {CHECKPOINT} atomically, so it was changed outside nasbench-pc "
        f"(a copy, a full disk). Use an intact checkpoint, or start the run again with --force; its metrics.jsonl "
        f"keeps the numbers of the finished epochs."
    )


def spec_from_checkpoint(ckpt: dict[str, Any], source: str) -> ExportSpec:
    """The export of a train checkpoint: its network, weights, data statistics and final test accuracy.

    A checkpoint written mid-epoch (by Ctrl-C or SIGTERM) has weights that no test accuracy belongs to, so
    its export carries no metrics. The checkpoints of the DARTS-only versions also hold a ``stem`` model
    argument, which their config's ``network`` repeats."""
    try:
        args, data, config = ckpt["model_args"], ckpt["data"], ckpt["config"]
        step = ckpt.get("step", 0)
        final = ckpt["history"][-1] if ckpt["history"] and not step else {}
        genotype = genotypes.from_dict(args["genotype"])
        retired = network_spec(genotype, config["network"])[1].retired
        return ExportSpec(
            genotype=genotype, network=config["network"],
            options={k: v for k, v in args.items() if k not in (*_NOT_SHAPE, *retired)},
            num_classes=args["num_classes"], in_chans=args["in_chans"],
            image_size=data["image_size"], mean=tuple(data["mean"]), std=tuple(data["std"]),
            state_dict=ckpt["state_dict"], source=source, method=config.get("method"), dataset=data["name"],
            metrics={k: final[k] for k in ("test_top1", "test_top5") if k in final},
            recipe={"recipe": config.get("recipe"), "recipe_reason": config.get("recipe_reason"), **config["hparams"],
                    "epochs_done": ckpt["epoch"], **({"steps_into_next_epoch": step} if step else {})},
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
        config = json.loads((run_dir / CONFIG).read_text())
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
    """The method that searched ``source`` (a search run directory or a file in it) and the sampler options it
    ran with over the method's own (e.g. ``{"k": 2}``), read from the run's config.json; None when ``source`` is
    no search run."""
    found = _search_run(source)
    if found is None:
        return None
    method, config, _ = found
    try:
        sampler_options = SearchConfig.from_dict(config["config"]).sampler_options
    except (KeyError, TypeError, ValueError):  # settings of another version: the method's own options
        sampler_options = {}
    return method, sampler_options


def provenance(source: str) -> str | None:
    """The search behind a genotype source: the method (and dataset) named in a search run's config.json,
    or the paper for a published genotype; None when unknown."""
    for space in registry.available("search_space").values():
        if source in getattr(space, "provenance", {}):
            return space.provenance[source]
    found = _search_run(source)
    if found is None:
        return None
    method, config, run_dir = found
    dataset = _name(config.get("dataset"))
    return f"{method} on {dataset} ({run_dir})" if dataset else f"{method} ({run_dir})"


def is_train_run(path: Path) -> bool:
    """Whether ``path`` is a ``nasbench-pc train`` run directory (its config.json says kind 'train')."""
    try:
        return json.loads((path / CONFIG).read_text()).get("kind") == TRAIN_RUN_KIND
    except (OSError, ValueError, AttributeError):
        return False


def resolve_source(source: str) -> ExportSpec:
    """An ExportSpec from a train run directory or checkpoint, a search run directory, a genotype.json, a
    space's genotype text or a known genotype name. Architecture-only sources give the reference setting of
    their space's first network."""
    path = existing_path(source)
    if path is not None and is_train_run(path):
        if not (path / CHECKPOINT).is_file():
            raise ConfigError(
                f"The train run {path} has no {CHECKPOINT} yet (it is written after the first epoch). Let the "
                f"run finish an epoch, or export its genotype alone with `nasbench-pc export {path / GENOTYPE}`."
            )
        return spec_from_checkpoint(load_checkpoint(path / CHECKPOINT), str(path))
    if path is not None and path.is_file() and path.suffix in (".pt", ".pth"):
        return spec_from_checkpoint(load_checkpoint(path), str(path))
    try:
        genotype = genotypes.parse(source)
    except GenotypeError as exc:
        raise ConfigError(
            f"Cannot export {source!r}: {exc} An export source is a train run directory (or its "
            f"{CHECKPOINT}), a search run directory holding {GENOTYPE}, a {GENOTYPE}, a space's genotype text, or "
            f"one of {', '.join(genotypes.known())}."
        ) from None
    return ExportSpec(genotype=genotype, source=source, method=provenance(source))
