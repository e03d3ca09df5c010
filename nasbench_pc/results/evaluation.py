"""Scoring what a search found: evaluators (``--evaluate NAME[:key=value,...]``) applied to one result.

An :class:`EvaluationTarget` is one search result: its genotype and, for a search run folder, the run itself
(config, metrics, supernet checkpoint), plus the data settings evaluators read (the search's dataset, limit,
image size and seed). :func:`evaluate` runs one registered evaluator on it and keeps the result as JSON in the
target's ``evaluations/`` folder, so a comparison asked again reuses every finished evaluation, as it reuses
finished searches. :func:`kendall_tau` says how well one score ranks the runs like another.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn
from torch.utils.data import Dataset

from nasbench_pc import _moved, genotypes, registry
from nasbench_pc.api import parse_option, resolve_options
from nasbench_pc.errors import ConfigError, PluginError, short_repr
from nasbench_pc.networks.cost import network_spec
from nasbench_pc.networks.export import network_options
from nasbench_pc.protocols import Evaluator, SearchSpace
from nasbench_pc.records import NEEDS, Metric
from nasbench_pc.results.runs import RunSummary, load_run
from nasbench_pc.runtime.data import DatasetInfo, DataSettings, get_dataset
from nasbench_pc.runtime.files import atomic_write_text

__getattr__ = _moved.old_names(__name__, {  # the names this module had before issue 21
    "is_search_run": "nasbench_pc.results.runs:is_search_run",
    "kendall_tau": "nasbench_pc.results.ranking:kendall_tau",
})

#: The folder of a search run (or of ``evaluate --out``) that keeps its evaluations.
EVALUATIONS = "evaluations"
_RECORD_FORMAT = 1


@dataclass(frozen=True, kw_only=True)
class EvaluationTarget(DataSettings):
    """One search result as evaluators see it.

    ``genotype`` is what is scored. ``run_dir`` is the search run it comes from (None for a genotype given by
    name or text); ``search`` its config.json (the ``config`` dict) and ``history`` its metrics.jsonl records.
    The data settings (:class:`~nasbench_pc.runtime.data.DataSettings`) are the search's (or ``evaluate``'s options
    for a bare genotype); ``shape`` is the
    supernet's shape options, the default width and depth of the derived networks evaluators build.
    ``evaluations_dir`` keeps the evaluation records; ``work_dir`` is the current evaluator's own folder (set by
    :func:`evaluate`; an evaluator may write a resumable run there).
    """

    genotype: Any
    evaluations_dir: Path
    run_dir: Path | None = None
    method: str | None = None
    search: dict[str, Any] = field(default_factory=dict, repr=False)
    history: list[dict[str, Any]] = field(default_factory=list, repr=False)
    seed: int = 0
    shape: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    benchmark_file: str | None = None
    work_dir: Path | None = None

    @property
    def space(self) -> SearchSpace:
        return genotypes.space_of(self.genotype)

    def load_data(self, split: str, *, augment: bool = False, limit: int | None = None,
                  seed: int | None = None) -> tuple[Dataset, DatasetInfo]:
        """The search dataset's ``split`` ('train' | 'test') with the target's data settings; ``limit`` (default
        the target's) keeps a seeded subset."""
        return get_dataset(self.dataset, split=split, root=self.data_root, limit=limit or self.limit,
                           seed=self.seed if seed is None else seed, augment=augment, in_channels=self.in_channels,
                           image_size=self.image_size, bad_images=self.bad_images)

    def batch(self, size: int, *, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor, DatasetInfo]:
        """``size`` examples of the training split, without augmentation, drawn by ``seed`` (default the
        target's): the minibatch zero-cost proxies score with. Returned on :attr:`device`."""
        data, info = self.load_data("train")
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(self.seed if seed is None else seed))
        pairs = [data[i] for i in order[:size].tolist()]
        inputs = torch.stack([x for x, _ in pairs]).to(self.device)
        targets = torch.tensor([y for _, y in pairs], dtype=torch.long, device=self.device)
        return inputs, targets, info

    def network_shape(self, init_channels: int | None = None, layers: int | None = None,
                      network: str | None = None) -> tuple[int | None, int | None]:
        """(width, depth) of a proxy network (``network`` of the space, default its first): the given ones, else the
        supernet's, read from :attr:`shape` under the keywords the network's spec names its ``width`` and
        ``depth`` (NAS-Bench-201's depth is ``cells_per_stage``); None where neither says."""
        _, spec = network_spec(self.genotype, network)
        found = [self.shape.get(keyword) if keyword else None for keyword in (spec.width, spec.depth)]
        return (init_channels if init_channels is not None else found[0],
                layers if layers is not None else found[1])

    def network(self, num_classes: int, in_channels: int, *, init_channels: int | None = None,
                layers: int | None = None, network: str | None = None, seed: int | None = None) -> nn.Module:
        """The derived network of the genotype (its space's ``network``, default the first) at the proxy shape
        (:meth:`network_shape`), with ``num_classes`` outputs for ``in_channels``-channel images (a dataset's
        :class:`~nasbench_pc.runtime.data.DatasetInfo` has both), initialised from ``seed`` (default the target's) and
        placed on :attr:`device`, in train mode."""
        _, spec = network_spec(self.genotype, network)
        channels, depth = self.network_shape(init_channels, layers, network)
        options = network_options(spec, init_channels=channels, layers=depth)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed if seed is None else seed)
            model = timm.create_model(spec.model, genotype=self.genotype, **options, num_classes=num_classes,
                                      in_chans=in_channels)
        return model.to(self.device).train()


def target_from_run(run_dir: str | Path, *, device: str = "cpu", benchmark_file: str | None = None
                    ) -> EvaluationTarget:
    """The result of the search run in ``run_dir``: its genotype (genotype.json, else the last finished epoch's),
    data settings, supernet shape and seed; evaluations are kept in ``run_dir/evaluations``."""
    return target_of(load_run(run_dir), device=device, benchmark_file=benchmark_file)


def target_of(run: RunSummary, *, device: str = "cpu", benchmark_file: str | None = None) -> EvaluationTarget:
    """:func:`target_from_run` for a run already read with :func:`nasbench_pc.results.compare.load_run`."""
    c = run.config
    run_dir = Path(run.run_dir)
    return EvaluationTarget(
        genotype=run.genotype, evaluations_dir=run_dir / EVALUATIONS, run_dir=run_dir, method=run.method,
        search=c.to_dict(), history=run.history, **DataSettings.of(c), seed=c.seed, shape=dict(c.space_options),
        device=device, benchmark_file=benchmark_file)


def target_from_genotype(source: Any, out: str | Path, *, dataset: str = "synthetic", data_root: str | None = None,
                         limit: int | None = None, in_channels: int | None = None, image_size: int | None = None,
                         seed: int = 0, preset: str = "quick", device: str = "cpu",
                         benchmark_file: str | None = None) -> EvaluationTarget:
    """A genotype with no search run (a published name, a genotype text or JSON file): scored on ``dataset``,
    its proxy networks at the space's ``preset`` supernet shape; evaluations are kept in ``out/evaluations``."""
    genotype = genotypes.parse(source)
    space = genotypes.space_of(genotype)
    if preset not in space.presets:
        raise ConfigError(f"The {space.name} search space has no preset {preset!r}; its presets are "
                          f"{', '.join(space.presets)}.")
    return EvaluationTarget(
        genotype=genotype, evaluations_dir=Path(out) / EVALUATIONS, dataset=dataset, data_root=data_root, limit=limit,
        in_channels=in_channels, image_size=image_size, seed=seed, shape={**space.options, **space.presets[preset]},
        device=device, benchmark_file=benchmark_file)


# ------------------------------------------------------------------------------------------------------------
# evaluator names and options


def parse_spec(text: str) -> tuple[str, dict[str, Any]]:
    """``NAME[:key=value,...]`` (``proxy-train:epochs=4,init_channels=16``) into the name and its options."""
    name, _, rest = text.partition(":")
    if not name.strip():
        raise ConfigError(f"--evaluate {short_repr(text)} names no evaluator; write NAME or NAME:key=value,... "
                          f"(e.g. proxy-train:epochs=4). `nasbench-pc methods` lists the evaluators.")
    options = dict(parse_option(part) for part in rest.split(",") if part.strip())
    return name.strip(), options


def resolve(name: str, given: Mapping[str, Any]) -> tuple[Evaluator, dict[str, Any]]:
    """The evaluator ``name`` and its options: its defaults with ``given`` applied, each checked against the
    default's type."""
    evaluator = registry.get("evaluator", name)
    return evaluator, resolve_options(evaluator.options, given, owner=f"the evaluator {name!r}",
                                      where=f"The {name} evaluator's option",
                                      how=f"Write them as --evaluate {name}:key=value,...")


def changed_options(evaluator: Evaluator, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options that differ from ``evaluator``'s defaults: what tells one setting of it from another."""
    return {k: v for k, v in options.items() if evaluator.options.get(k) != v}


def slug(name: str, evaluator: Evaluator, options: Mapping[str, Any]) -> str:
    """The file name of an evaluation: the evaluator's name, plus a short hash of the options that differ from
    its defaults (so each setting is kept apart and found again)."""
    changed = changed_options(evaluator, options)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    if not changed:
        return safe
    digest = hashlib.sha256(json.dumps(changed, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{safe}-{digest}"


def check_needs(name: str, evaluator: Evaluator, target: EvaluationTarget) -> None:
    """A clear error when ``target`` lacks what ``evaluator`` needs."""
    unknown = sorted(set(evaluator.needs) - set(NEEDS))
    if unknown:
        raise ConfigError(f"The evaluator {name!r} declares needs {unknown} that nasbench-pc does not provide (it "
                          f"provides {', '.join(NEEDS)}). Fix the plugin's `needs`.")
    if "run" in evaluator.needs and target.run_dir is None:
        raise ConfigError(f"The evaluator {name!r} needs a search run folder (its supernet and metrics), and "
                          f"{genotypes.to_text(target.genotype)[:60]!r} is a bare genotype. Give the folder a search "
                          f"wrote (--out), or use an evaluator that scores a genotype alone (proxy-train, synflow).")


# ------------------------------------------------------------------------------------------------------------
# running and keeping evaluations


@dataclass(frozen=True)
class Evaluation:
    """One evaluator's result on one target; ``reused`` when it was read back from an earlier run."""

    evaluator: str
    options: dict[str, Any]
    metrics: dict[str, float]
    seconds: float
    path: Path
    reused: bool = False


def _record(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # a missing or damaged record is evaluated again


def evaluate(target: EvaluationTarget, name: str, given: Mapping[str, Any] | None = None, *,
             reuse: bool = True) -> Evaluation:
    """Score ``target`` with the evaluator ``name`` and ``given`` options; keep the result as
    ``target.evaluations_dir/<slug>.json`` and reuse such a record made with the same options and genotype."""
    evaluator, options = resolve(name, given or {})
    check_needs(name, evaluator, target)
    key = slug(name, evaluator, options)
    path = target.evaluations_dir / f"{key}.json"
    genotype = genotypes.to_dict(target.genotype)
    # a lookup's result depends on the benchmark file too (NAS-Bench-201 v1_0 and v1_1 differ)
    source = str(Path(target.benchmark_file).expanduser().resolve()) if "benchmark" in evaluator.needs and \
        target.benchmark_file else None
    saved = _record(path) if reuse else None
    if saved is not None and saved.get("genotype") != genotype and target.run_dir is None:
        raise ConfigError(f"{target.evaluations_dir} keeps evaluations of another genotype "
                          f"({saved.get('genotype_text', '?')[:60]}). Give this genotype its own --out folder.")
    if saved is not None and saved.get("options") == _jsonable(options) and saved.get("genotype") == genotype \
            and saved.get("benchmark_file") == source:
        return Evaluation(name, options, saved["metrics"], saved["seconds"], path, reused=True)
    started = time.perf_counter()
    metrics = evaluator.evaluate(replace(target, work_dir=target.evaluations_dir / key), **options)
    seconds = time.perf_counter() - started
    metrics = checked_metrics(name, evaluator, metrics)
    target.evaluations_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({
        "format": _RECORD_FORMAT, "evaluator": name, "options": _jsonable(options), "metrics": metrics,
        "seconds": seconds, "genotype": genotype, "genotype_text": genotypes.to_text(target.genotype),
        "benchmark_file": source,
        "directions": {m.key: "higher" if m.higher_is_better else "lower" for m in evaluator.metrics},
    }, indent=2) + "\n")
    registry.notify("on_evaluation_done", evaluator=name, options=options, metrics=metrics, target=target,
                    seconds=seconds, after=f"The evaluation is kept in {path}.")
    return Evaluation(name, options, metrics, seconds, path)


def _jsonable(options: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(options), default=str))


def checked_metrics(name: str, evaluator: Evaluator, metrics: Any) -> dict[str, float]:
    """The evaluator's result as {key: float} holding every declared metric; a plugin error otherwise."""
    keys = [m.key for m in evaluator.metrics]
    if not isinstance(metrics, dict) or any(k not in metrics for k in keys):
        raise PluginError(f"The evaluator {name!r} returned {short_repr(metrics)}, which lacks its declared "
                          f"metric(s) {', '.join(keys)}. Its evaluate() must return one float per Metric key.")
    try:
        return {k: float(metrics[k]) for k in keys}
    except (TypeError, ValueError):
        raise PluginError(f"The evaluator {name!r} returned a value that is not a number: "
                          f"{short_repr(metrics)}.") from None


def metrics_of(names: Sequence[str]) -> list[tuple[str, Metric]]:
    """(evaluator, metric) for every metric of the evaluators ``names``, in order."""
    return [(name, metric) for name in names for metric in registry.get("evaluator", name).metrics]


