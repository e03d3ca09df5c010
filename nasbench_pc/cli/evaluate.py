"""``evaluate``: score one search result (a run folder or a genotype) with evaluators; the ``--evaluate`` and
``--benchmark-file`` options ``compare`` shares, and the loop both use."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nasbench_pc import registry
from nasbench_pc.cli._settings import settings_options
from nasbench_pc.console import console, err_console
from nasbench_pc.errors import ConfigError
from nasbench_pc.records import Metric
from nasbench_pc.results import evaluation
from nasbench_pc.results.evaluation import Evaluation, EvaluationTarget
from nasbench_pc.results.runs import is_search_run
from nasbench_pc.runtime.data import DataSettings
from nasbench_pc.runtime.devices import check_device, default_device
from nasbench_pc.settings import declared


def evaluate_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--evaluate NAME[:key=value,...]`` (repeatable) and ``--benchmark-file``."""
    f = click.option("--benchmark-file", type=click.Path(dir_okay=False),
                     help="A tabular benchmark file for lookup evaluators (nas-bench-201: the official "
                          "NAS-Bench-201-v1_*.pth, which you download yourself).")(f)
    return click.option("--evaluate", "evaluators", multiple=True, metavar="NAME[:key=value,...]",
                        help="Score each derived architecture with this evaluator (repeatable), e.g. --evaluate "
                             "proxy-train:epochs=4 --evaluate synflow. `nasbench-pc methods` lists them with "
                             "their options.")(f)


def parse_specs(specs: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """Every ``--evaluate`` value as (name, options), checked against its evaluator before anything runs."""
    parsed = [evaluation.parse_spec(spec) for spec in specs]
    for name, options in parsed:
        evaluation.resolve(name, options)
    return parsed


def metrics_of(specs: list[tuple[str, dict[str, Any]]]) -> tuple[Metric, ...]:
    """The metrics of the evaluators in ``specs``, in order; one key given twice (one evaluator with two settings)
    is refused, since a table column holds one setting."""
    metrics = [metric for name, _ in specs for _, metric in evaluation.metrics_of([name])]
    keys = [m.key for m in metrics]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ConfigError(f"The metric(s) {', '.join(twice)} would be measured twice (one evaluator given twice, "
                          f"or two evaluators with one metric name). Give each evaluator once; compare another "
                          f"setting in another command.")
    return tuple(metrics)


def run_evaluations(targets: list[tuple[str, EvaluationTarget]], specs: list[tuple[str, dict[str, Any]]],
                    out: Console, *, reuse: bool = True) -> list[list[Evaluation]]:
    """Every evaluator of ``specs`` on every (label, target), with a progress bar; evaluations kept from an earlier
    run are reused. Returns, per target, its evaluations in ``specs`` order."""
    results: list[list[Evaluation]] = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=out) as progress:
        task = progress.add_task("evaluations", total=len(targets) * len(specs))
        for label, target in targets:
            done = []
            for name, options in specs:
                progress.update(task, description=f"{name} on {label}")
                done.append(evaluation.evaluate(target, name, options, reuse=reuse))
                progress.advance(task)
            results.append(done)
    return results


#: the data settings ``evaluate`` takes for a bare genotype (a search run brings its own)
_GENOTYPE_DATA = ("dataset", "data_root", "limit", "image_size", "in_channels")


def _lower(cls: type, name: str) -> str:
    text = next(item.setting.help for item in declared(cls) if item.name == name)
    return text[:1].lower() + text[1:]


@click.command()
@click.argument("source")
@evaluate_options
@click.option("--out", type=click.Path(file_okay=False), help="For a genotype: the folder that keeps its evaluations "
              "(and proxy-train's training run) [runs/evaluate-TIME]. A search run keeps them in RUN/evaluations.")
@settings_options(DataSettings, only=_GENOTYPE_DATA, defaults={"dataset": "synthetic"},
                  helps={"dataset": "For a genotype: the data evaluators read (a search run uses its own).",
                         **{name: f"For a genotype: {_lower(DataSettings, name)}" for name in _GENOTYPE_DATA[1:]}})
@click.option("--seed", type=int, default=0, show_default=True, help="For a genotype: the seed of data subsets, "
              "minibatches and initialisation (a search run uses its own).")
@click.option("--preset", default="quick", show_default=True, help="For a genotype: the space's supernet preset "
              "whose width and depth the proxy networks take (a search run uses its supernet's).")
@click.option("--device", help="cpu, cuda or cuda:N [cuda when available].")
@click.option("--redo", is_flag=True, help="Evaluate again instead of reusing kept evaluations.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the results as JSON.")
def evaluate(source: str, evaluators: tuple[str, ...], benchmark_file: str | None, out: str | None, dataset: str,
             data_root: str | None, limit: int | None, image_size: int | None, in_channels: int | None, seed: int,
             preset: str, device: str | None, redo: bool, json_path: str | None) -> None:
    """Score SOURCE, a search run folder or a genotype (a published name, genotype text or genotype.json),
    with evaluators.

    \b
    nasbench-pc evaluate runs/pc-darts --evaluate proxy-train --evaluate synflow
    nasbench-pc evaluate PC_DARTS_cifar --evaluate proxy-train:epochs=4,init_channels=16 --dataset fashion-mnist \\
        --data-root /usr/share/datasets/fashion-mnist --limit 2000
    nasbench-pc evaluate runs/nb201-darts --evaluate nas-bench-201 --benchmark-file NAS-Bench-201-v1_1-096897.pth

    A search run is scored on its own dataset, seed and supernet shape, and keeps the results in RUN/evaluations,
    where `compare --evaluate` finds and reuses them.
    """
    if not evaluators:
        names = ", ".join(sorted(registry.available("evaluator")))
        raise ConfigError(f"Name at least one evaluator with --evaluate NAME (available: {names}).")
    specs = parse_specs(evaluators)
    dev = check_device(device or default_device())
    if is_search_run(source):
        target = evaluation.target_from_run(source, device=dev, benchmark_file=benchmark_file)
    else:
        folder = Path(out) if out else Path("runs") / f"evaluate-{dt.datetime.now():%Y%m%d-%H%M%S}"
        target = evaluation.target_from_genotype(
            source, folder, dataset=dataset, data_root=data_root, limit=limit, image_size=image_size,
            in_channels=in_channels, seed=seed, preset=preset, device=dev,
            benchmark_file=benchmark_file)
    (done,) = run_evaluations([(source, target)], specs, err_console, reuse=not redo)
    name = source if len(source) <= 60 else source[:57] + "..."
    table = Table(title=f"{name} ({target.dataset}, seed {target.seed})")
    for col in ("evaluator", "metric", "value", "better", "seconds", ""):
        table.add_column(col, overflow="fold")
    for result in done:
        evaluator = registry.get("evaluator", result.evaluator)
        changed = evaluation.changed_options(evaluator, result.options)
        setting = result.evaluator + (":" + ",".join(f"{k}={v}" for k, v in changed.items()) if changed else "")
        for metric in evaluator.metrics:
            table.add_row(setting, metric.label, metric.format(result.metrics[metric.key]),
                          "higher" if metric.higher_is_better else "lower", f"{result.seconds:.1f}",
                          "kept" if result.reused else "")
    console.print(table)
    console.print(f"Kept in {target.evaluations_dir}", highlight=False)
    if json_path:
        Path(json_path).write_text(json.dumps([{"evaluator": r.evaluator, "options": r.options, "metrics": r.metrics,
                                                "seconds": r.seconds, "reused": r.reused, "record": str(r.path)}
                                               for r in done], indent=2, default=str) + "\n")


COMMANDS = (evaluate,)
