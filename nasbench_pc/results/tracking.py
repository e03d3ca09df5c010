"""``search --track NAME[:key=value,...]``: evaluators scored on the cell the search derives after every epoch.

A search tracks any registered evaluator that scores a genotype alone (a benchmark lookup, a zero-cost proxy, a
short proxy training): after each epoch, the genotype derived then is scored, and the metrics go into the epoch's
metrics.jsonl line under ``"tracked"`` (so also into TensorBoard and ``compare --plot``), next to the skip count and
the supernet's own accuracy. On NAS-Bench-201 with the user's benchmark file this is the ground truth of the
current cell: DARTS' collapse shows as it happens.

Tracking does not change the search: the scores run under a forked random state (``torch.random.fork_rng``) on
the genotype alone (the supernet is not touched), so a tracked search equals the untracked one bit for bit. What is
tracked, and the benchmark file, are the host's choice (``HOST_SETTINGS``): they do not make another search of a run
folder.
Everything is checked before the search starts: the evaluator names and options, that each scores a genotype
without a search run folder, no metric tracked twice, and the evaluator's own ``check(target)`` where it has one
(the NAS-Bench-201 lookup reads the benchmark file there, so a missing or unreadable file is refused before any
work).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nasbench_pc.errors import ConfigError
from nasbench_pc.results.evaluation import EvaluationTarget, checked_metrics, parse_spec, resolve
from nasbench_pc.runtime.data import DataSettings
from nasbench_pc.search.config import SearchConfig

#: where in the run folder tracked evaluators may write (a proxy training's run), one folder per evaluator
FOLDER = Path("evaluations") / "tracked"


@dataclass(frozen=True)
class Tracker:
    """One tracked evaluator with its resolved options."""

    name: str
    evaluator: Any
    options: dict[str, Any] = field(default_factory=dict)


def _target(config: SearchConfig, genotype: Any, folder: Path) -> EvaluationTarget:
    """The search's settings as an evaluation target for ``genotype`` (no run folder: the run is not finished)."""
    return EvaluationTarget(genotype=genotype, evaluations_dir=folder, method=config.method, search=config.to_dict(),
                            **DataSettings.of(config), seed=config.seed, shape=dict(config.space_options),
                            device=config.device, benchmark_file=config.benchmark_file, work_dir=folder)


def split_specs(text: str) -> list[str]:
    """``nas-bench-201:hp=12,dataset=cifar100,synflow`` into one ``NAME[:key=value,...]`` per evaluator: a part with
    ``=`` and no ``:`` is an option of the evaluator before it."""
    specs: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "=" in part and ":" not in part and specs:
            specs[-1] += ("," if ":" in specs[-1] else ":") + part
        else:
            specs.append(part)
    return specs


def trackers(config: SearchConfig) -> list[Tracker]:
    """The evaluators ``config.track`` names, checked (see the module docstring); [] when it names none."""
    if not config.track:
        return []
    chosen, seen = [], {}
    for text in split_specs(config.track):
        name, given = parse_spec(text)
        evaluator, options = resolve(name, given)
        if "run" in evaluator.needs:
            raise ConfigError(f"--track scores the cell a search derives after each epoch, before the run is finished, "
                              f"and the evaluator {name!r} reads a finished search run (its supernet or metrics). "
                              f"Score the finished run with `nasbench-pc evaluate RUN --evaluate {name}` instead, or "
                              f"track an evaluator that scores a genotype alone.")
        for metric in evaluator.metrics:
            if metric.key in seen:
                raise ConfigError(f"--track names two evaluators that both give {metric.key!r} ({seen[metric.key]} "
                                  f"and {text}): track each metric once.")
            seen[metric.key] = text
        check = getattr(evaluator, "check", None)
        if check is not None:
            check(_target(config, None, Path(tempfile.gettempdir())))
        chosen.append(Tracker(name, evaluator, options))
    return chosen


class Tracking:
    """What ``run_search(track=...)`` calls after each epoch: ``tracking(model, run_dir)`` scores the cell ``model``
    derives now with every tracked evaluator (their work under ``run_dir/evaluations/tracked/``, or a temporary
    folder without a run folder), without touching the search's random state."""

    def __init__(self, config: SearchConfig, chosen: list[Tracker]):
        self.config, self.chosen = config, chosen

    def __call__(self, model: torch.nn.Module, run_dir: Path | None) -> dict[str, float]:
        genotype = model.genotype()
        config = self.config
        devices = [torch.device(config.device).index or 0] if config.device.startswith("cuda") else []
        out: dict[str, float] = {}
        with tempfile.TemporaryDirectory() as scratch, torch.random.fork_rng(devices=devices):
            base = run_dir / FOLDER if run_dir is not None else Path(scratch)
            for tracker in self.chosen:
                target = _target(config, genotype, base / tracker.name)
                out.update(checked_metrics(tracker.name, tracker.evaluator,
                                           tracker.evaluator.evaluate(target, **tracker.options)))
        return out


def tracking(config: SearchConfig) -> Tracking | None:
    """The :class:`Tracking` of ``config.track`` for ``run_search(track=...)``, everything checked now (before the
    search touches its folder); None when it tracks nothing."""
    chosen = trackers(config)
    return Tracking(config, chosen) if chosen else None
