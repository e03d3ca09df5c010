"""``compare``: methods side by side on identical data, splits, budget and device, over seeds."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import torch
from click.core import ParameterSource
from rich.console import Console
from rich.live import Live
from rich.table import Table

from nasbench_pc import _moved, registry
from nasbench_pc.api import parse_option, resolve_method, sampler_option_names
from nasbench_pc.cli._plugin_options import plugin_overrides, shortcuts
from nasbench_pc.cli.evaluate import evaluate_options, metrics_of, parse_specs, run_evaluations
from nasbench_pc.cli.search import search as search_command
from nasbench_pc.cli.show import cell_tree
from nasbench_pc.console import console, err_console
from nasbench_pc.errors import ConfigError
from nasbench_pc.records import SearchJob
from nasbench_pc.results import compare as cmp
from nasbench_pc.results import plots
from nasbench_pc.results.board import JobBoard
from nasbench_pc.results.evaluation import target_of
from nasbench_pc.results.tracking import tracking
from nasbench_pc.runtime.devices import check_device, default_device
from nasbench_pc.runtime.files import atomic_write_text
from nasbench_pc.runtime.interrupt import Interrupted
from nasbench_pc.runtime.jobs import Ledger, clear_stop, request_stop
from nasbench_pc.runtime.lease import holder_of, is_live
from nasbench_pc.runtime.runkit import CONFIG, GENOTYPE
from nasbench_pc.search.presets import resolve_config
from nasbench_pc.search.runspec import check_reuse

__getattr__ = _moved.old_names(__name__, {name: f"nasbench_pc.cli.bench:{name}" for name in ("bench", "plan_command")})

# every search option but these is passed through unchanged (the search command defines and documents them, from
# the settings' own definitions): a new search setting reaches compare without a line here
# benchmark_file: compare's own (--evaluate's), also handed to the searches when they --track
_NOT_SHARED = ("method", "seed", "device", "out", "resume", "force", "threads", "quiet", "space", "benchmark_file")
_SEARCH_PARAMS = {p.name: p for p in search_command.params}
_SHARED = tuple(name for name in _SEARCH_PARAMS if name not in _NOT_SHARED)

# The README's comparison: a small budget that runs all four methods on 2 CPU cores in minutes. Used
# only when none of these is given; otherwise the preset decides the rest of the budget.
COMPARE_DEFAULTS = {"epochs": 4, "limit": 512, "steps_per_epoch": 6, "batch_size": 32}


def default_methods() -> list[str]:
    """The methods ``compare``, ``bench`` and ``plan`` take when none is named: every registered method that declares
    a ``default_rank``, in that order (ConfigError if none does)."""
    ranked = sorted((method.default_rank, name) for name, method in registry.available("method").items()
                    if method.default_rank is not None)
    if not ranked:
        raise ConfigError("No registered method declares a default_rank, so there are no methods to take when none "
                          "is named. Name the methods on the command line (`nasbench-pc methods` lists them).")
    return [name for _, name in ranked]


def _split_methods_and_seeds(tokens: tuple[str, ...], seeds: str | None) -> tuple[list[str], list[int]]:
    """``compare darts pc-darts --seeds 0 1 2``: click hands us '0' as --seeds and '1', '2' as
    positional tokens; numeric positionals are the rest of the seed list."""
    methods = [t for t in tokens if not t.lstrip("-").isdigit()]
    extra = [t for t in tokens if t.lstrip("-").isdigit()]
    if extra and seeds is None:
        raise ConfigError(f"{' '.join(extra)} look like seeds; write them after --seeds (e.g. --seeds 0 1 2).")
    seed_tokens = ([] if seeds is None else seeds.replace(",", " ").split()) + extra
    try:
        seed_list = [int(s) for s in seed_tokens] or [0]
    except ValueError:
        raise ConfigError(f"--seeds takes integers, got {seeds!r}.") from None
    return methods or default_methods(), list(dict.fromkeys(seed_list))


def _cli_args(options: dict[str, Any]) -> list[str]:
    """Search options back into command-line form, for runs in worker processes."""
    args: list[str] = []
    for name, value in options.items():
        param = _SEARCH_PARAMS[name]
        if isinstance(value, bool) and param.secondary_opts:
            args.append(param.opts[0] if value else param.secondary_opts[0])
        elif isinstance(value, bool):
            if value:
                args.append(param.opts[0])
        elif param.multiple:
            for item in value:
                args += [param.opts[0], str(item)]
        else:
            args += [param.opts[0], str(value)]
    return args


def _config_overrides(options: dict[str, Any]) -> dict[str, Any]:
    """The search options as given on the command line into resolve_config overrides (``--space-option``,
    ``--sampler-option`` and their shortcuts become ``space_options`` / ``sampler_options``)."""
    overrides = {k: v for k, v in options.items() if k != "preset"}
    overrides.update(plugin_overrides(overrides))
    return overrides


def _sampler_takes(method: str, key: str, sampler: str | None = None) -> bool:
    """Whether the sampler factory of ``method`` (or ``sampler``, given with --sampler in its place) has an option
    ``key`` (``k`` for partial channels, none for full)."""
    return key in sampler_option_names(sampler or resolve_method(method).sampler)


def for_method(options: dict[str, Any], method: str) -> dict[str, Any]:
    """``options`` without the sampler options ``method``'s sampler does not take: ``--k 2`` in a comparison
    sets K of the partial-channel methods and leaves the methods that sample every channel as they are."""
    kept = dict(options)
    for kind, shortcut in shortcuts():
        if kind == "sampler" and kept.get(shortcut.dest) is not None \
                and not _sampler_takes(method, shortcut.option, kept.get("sampler")):
            del kept[shortcut.dest]
    if kept.get("sampler_option"):
        kept["sampler_option"] = tuple(text for text in kept["sampler_option"]
                                       if _sampler_takes(method, parse_option(text)[0], kept.get("sampler")))
    if kept.get("method_option"):  # a method's own setting goes to the methods that declare it
        kept["method_option"] = tuple(text for text in kept["method_option"]
                                      if parse_option(text)[0] in _declared_settings(method))
    return kept


def for_space(options: dict[str, Any], space: str, spaces: list[str]) -> dict[str, Any]:
    """``options`` on ``space``, one of several compared spaces: a shape option (``--space-option`` or its flag,
    e.g. ``--layers``) goes to the spaces that have it; one that none of them has is refused."""
    def takes(name: str, key: str) -> bool:
        return key in registry.get("search_space", name).options

    kept = {**options, "space": space}
    texts = options.get("space_option") or ()
    flags = [(shortcut.dest, shortcut.option) for kind, shortcut in shortcuts()
             if kind == "search_space" and options.get(shortcut.dest) is not None]
    for key in [parse_option(text)[0] for text in texts] + [option for _, option in flags]:
        if not any(takes(name, key) for name in spaces):
            raise ConfigError(f"No compared search space has the option {key!r} ({', '.join(spaces)}). Drop it, or "
                              f"`nasbench-pc plugins` lists each space's options.")
    kept["space_option"] = tuple(text for text in texts if takes(space, parse_option(text)[0]))
    for dest, option in flags:
        if not takes(space, option):
            del kept[dest]
    return kept


def _declared_settings(method: str) -> set[str]:
    return {s.name for s in registry.get("method", method).settings}


def _check_method_options(options: dict[str, Any], methods: list[str]) -> None:
    """A --method-option that no compared method declares is a mistake, not something to drop."""
    for key in (parse_option(text)[0] for text in options.get("method_option") or ()):
        if not any(key in _declared_settings(method) for method in methods):
            declared = sorted({name for method in methods for name in _declared_settings(method)})
            raise ConfigError(f"No compared method declares the setting {key!r} ({', '.join(methods)}"
                              f"{' declare ' + ', '.join(declared) if declared else ' declare none'}). Drop "
                              f"--method-option {key}=..., or compare a method that has it (`nasbench-pc methods`).")


def check_sampler_options(options: dict[str, Any], methods: list[str]) -> None:
    """A sampler option that no compared method's sampler takes is a mistake, not something to drop."""
    keys = [parse_option(text)[0] for text in options.get("sampler_option") or ()]
    keys += [s.option for kind, s in shortcuts() if kind == "sampler" and options.get(s.dest) is not None]
    for key in keys:
        if not any(_sampler_takes(method, key, options.get("sampler")) for method in methods):
            takers = [name for name in registry.available("method") if _sampler_takes(name, key)]
            example = f" (e.g. {takers[0]})" if takers else ""
            raise ConfigError(f"No compared method's sampler takes the option {key!r} ({', '.join(methods)}). Drop "
                              f"it, or compare a method whose sampler has it{example}.")


def search_argv(method: str, seed: int, run_dir: Path, options: dict[str, Any]) -> list[str]:
    """The ``nasbench-pc search`` arguments of one comparison run, the same for every executor and every attempt:
    ``--resume-if-stopped`` starts it, continues it after a stop or a requeue, or ends at once when it is done."""
    return ["search", "--quiet", "--method", method, "--seed", str(seed), "--out", str(run_dir),
            "--resume-if-stopped", *_cli_args(for_method(options, method))]


#: seconds between looks at runs that another process is writing
POLL_SECONDS = 2.0
#: how much of a failed job's error the driver's message keeps
ERROR_TAIL = 400


def executor_options(name: str, texts: tuple[str, ...], devices: str | None) -> tuple[Any, dict[str, str]]:
    """The executor ``name`` and its ``--executor-option`` KEY=VALUE pairs (``--devices`` is local's
    ``devices``); an unknown executor or key is refused before any run."""
    executor = registry.get("executor", name)
    options = dict(parse_option(text) for text in texts)
    options = {k: str(v) for k, v in options.items()}
    if devices:
        if "devices" not in (executor.options or {}):
            raise ConfigError(f"--devices runs one worker process per device on this machine (the local executor); "
                              f"the {name} executor places its jobs itself. Drop --devices, or use --executor local.")
        options["devices"] = devices
    known = executor.options
    if known is not None:
        unknown = sorted(set(options) - set(known))
        if unknown:
            takes = ", ".join(f"{k} ({v})" for k, v in known.items()) or "nothing"
            raise ConfigError(f"The {name} executor takes no option {', '.join(map(repr, unknown))}. Its options: "
                              f"{takes}. `nasbench-pc plugins` lists the executors.")
    return executor, options


def _execute(jobs: list[SearchJob], executor: Any, name: str, options: dict[str, str], save: Path,
             device: str | None, out: Console, several_spaces: bool = False) -> bool:
    """Run ``jobs`` with the executor until each is finished (False: the executor only printed them), under a
    live status table. A run another process holds (another driver on the same --save, a job of an earlier call
    still running) is looked at again every POLL_SECONDS until it is finished there, or its writer is gone and a
    job here takes it over: so two drivers on one --save search each run once and both end with every run."""
    for job in jobs:  # this call wants these runs: an earlier `compare --cancel` request is withdrawn
        clear_stop(job.run_dir)
    board = JobBoard(jobs, executor=name, save=save, several_spaces=several_spaces)
    live = getattr(executor, "live", True)
    shown = Live(board, console=out, refresh_per_second=1, redirect_stdout=False, redirect_stderr=False) \
        if live else contextlib.nullcontext()
    pending, failed, cancelled, waited_for = list(jobs), [], [], []
    try:
        with _end_line(out, live), shown:
            while pending:
                outcomes = {o.name: o for o in executor.run(pending, save=save, options=options, device=device,
                                                             console=out, board=board)}
                if all(outcomes[job.name].state == "printed" for job in pending):
                    return False
                failed += [outcomes[job.name] for job in pending if outcomes[job.name].state == "failed"]
                cancelled += [job for job in pending if outcomes[job.name].state == "cancelled"]
                pending = [job for job in pending if outcomes[job.name].state == "held"
                           and not (job.run_dir / GENOTYPE).exists()]
                for job in pending:
                    board.update(job, "held")
                if pending and [job.name for job in pending] != waited_for:  # said once per set of held runs
                    who = "; ".join(f"{job.name} ("
                                    f"{holder.describe() if (holder := holder_of(job.run_dir)) else 'finishing'})"
                                    for job in pending)
                    out.print(f"waiting for {len(pending)} run(s) another process is writing: {who}",
                              highlight=False)
                waited_for = [job.name for job in pending]
                if pending:
                    time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        raise Interrupted(f"The driver stopped (Ctrl-C). Finished runs are kept, stopped ones keep their "
                          f"checkpoints, and jobs a cluster runs go on without it. Run the same command again: it "
                          f"reattaches to the jobs that still live (it does not submit them again) and runs the rest; "
                          f"`nasbench-pc compare --cancel {save}` stops them.", signal.SIGINT) from None
    if cancelled:
        raise Interrupted(f"{len(cancelled)} of {len(jobs)} searches stopped on `compare --cancel` (their checkpoints "
                          f"are kept; finished runs too). Run the same command again to go on from there.",
                          signal.SIGTERM)
    if failed:
        raise ConfigError(f"{len(failed)} of {len(jobs)} searches failed under the {name} executor (finished runs are "
                          f"kept; run the same command again to redo only the missing ones): " + " | ".join(
                              f"{o.name}{' (job ' + o.job_id + ')' if o.job_id else ''}"
                              f"{', log ' + o.log if o.log else ''}: {o.error[-ERROR_TAIL:]}" for o in failed))
    return True


@contextlib.contextmanager
def _end_line(out: Console, live: bool) -> Iterator[None]:
    """The live table, printed once at its end to a file or a pipe, ends its line (whatever ends the block)."""
    try:
        yield
    finally:
        if live and not out.is_terminal:
            out.line()


def run_folders(save: Path) -> list[Path]:
    """Every run folder of a comparison folder: SAVE/runs/* (one space) and SAVE/SPACE/runs/* (several)."""
    return sorted(p.parent for pattern in (f"runs/*/{CONFIG}", f"*/runs/*/{CONFIG}") for p in save.glob(pattern))


def cancel(save: Path, wait: float, out: Console) -> None:
    """``compare --cancel SAVE``: a stop request in every unfinished run (a running search checkpoints within a
    step and stops; a job that starts later stops at once), the executors' own cancel for what they still hold
    (Slurm: scancel of queued and running jobs), then wait up to ``wait`` seconds for the runs' writers to end."""
    if not save.is_dir():
        raise ConfigError(f"--cancel takes a comparison folder (the --save of a `compare`); {save} is not a folder.")
    ledger = Ledger(save)
    latest: dict[str, Any] = {}  # the newest submission of each unfinished run (a queued job has no folder yet)
    for entry in ledger.entries():
        if not (Path(entry.run) / GENOTYPE).exists():
            latest[entry.run] = entry
    unfinished = sorted({*(run for run in run_folders(save) if not (run / GENOTYPE).exists()),
                         *(Path(run) for run in latest)})
    for run in unfinished:
        run.mkdir(parents=True, exist_ok=True)
        request_stop(run, f"nasbench-pc compare --cancel {save}")
    by_executor: dict[str, list[Any]] = {}
    for entry in latest.values():
        by_executor.setdefault(entry.executor, []).append(entry)
    stopped_jobs = []
    for name, entries in by_executor.items():
        chosen = registry.available("executor").get(name)
        if chosen is not None and hasattr(chosen, "cancel"):
            stopped_jobs += chosen.cancel(entries, save=save, console=out)
    out.print(f"Asked {len(unfinished)} unfinished runs in {save} to stop"
              f"{' and cancelled jobs ' + ', '.join(stopped_jobs) if stopped_jobs else ''}; waiting for their "
              f"writers to write a checkpoint and end (up to {wait:.0f} s).", highlight=False)
    deadline = time.time() + wait
    while True:
        writing = [run for run in unfinished if (h := holder_of(run)) is not None and is_live(h)]
        if not writing or time.time() >= deadline:
            break
        time.sleep(1.0)
    if writing:
        raise ConfigError(f"{len(writing)} runs are still being written after {wait:.0f} s "
                          f"({', '.join(run.name for run in writing)}); their stop requests stay, so they stop at "
                          f"their next step. Run `nasbench-pc compare --cancel {save}` again later to check.")
    out.print(f"Stopped: no run in {save} is being written ({len(unfinished)} unfinished keep their checkpoints). "
              f"The same `compare` command goes on from there.", highlight=False)


def _print_rows(rows: list[cmp.MethodRow], ranks: list[cmp.Rank], fmt: str, heading: bool = False) -> None:
    """One comparison table (``heading``: a title naming its space, when several spaces are compared)."""
    if fmt == "markdown":
        click.echo((f"## {rows[0].space}\n\n" if heading and rows else "") + cmp.to_markdown(rows, ranks), nl=False)
    elif fmt == "csv":
        click.echo(cmp.to_csv(rows), nl=False)
    elif fmt == "json":
        click.echo(cmp.to_json(rows), nl=False)
    else:
        # one column per method: a few methods side by side read better than twenty columns
        space = f" on {rows[0].space}" if rows else ""
        spread = "mean ± std over seeds" if any(len(r.seeds) > 1 for r in rows) else "one seed"
        table = Table(title=f"{' vs '.join(r.method for r in rows)}{space} ({spread})")
        table.add_column("", style="bold")
        cells = cmp.table_rows(rows)
        for row in cells:
            table.add_column(row[0], overflow="fold")
        for i, name in enumerate(cmp.columns(rows)[1:], start=1):
            if name != "best genotype":
                table.add_row(name, *[row[i] for row in cells])
        console.print(table)
        if ranks:
            runs = max(r.runs for r in ranks)
            ranked = Table(title=f"Does the supernet's accuracy rank the {runs} runs as each score does? (Kendall "
                                 f"tau: 1 same order, -1 reversed, 0 unrelated)")
            for col in cmp.RANKING_COLUMNS:
                ranked.add_column(col, overflow="fold")
            for row in cmp.ranking_rows(ranks):
                ranked.add_row(*row)
            console.print(ranked)
        for r in rows:  # the space's compact reading, as `show` prints it; --save keeps the text format
            space = cmp.genotypes.space_of(r.best_genotype)
            console.print(cell_tree(space, r.best_genotype, f"{r.method} best genotype (seed {r.best_seed})"))
        for r in rows:
            if r.collapsed_seeds:
                console.print(f"[yellow]warning:[/] {r.method} drifted to skip_connect dominance ({r.collapse_rule}) "
                              f"with seed(s) {r.collapsed_seeds}; DARTS' known collapse. Edge normalization and "
                              f"partial channels are meant to resist it.", highlight=False)


def _search_runs(ctx: click.Context, methods: tuple[str, ...], seeds: str | None, baseline: str | None,
                 spaces: tuple[str, ...], save: str | None, fmt: str, device: str | None,
                 executor: tuple[Any, str, dict[str, str]], options: dict[str, Any]
                 ) -> list[tuple[Path, list[cmp.RunSummary]]] | None:
    """Run every (space, method, seed) not finished yet in the comparison's folder, all through one executor call,
    then read them back: one (folder, runs) per space (SAVE itself for one space, SAVE/SPACE for several). None:
    the executor only printed the searches."""
    method_list, seed_list = _split_methods_and_seeds(methods, seeds)
    given = {k: v for k, v in options.items()
             if ctx.get_parameter_source(k) not in (ParameterSource.DEFAULT, None)}
    if given.get("preset", "quick") == "quick" and not set(COMPARE_DEFAULTS) & set(given):
        given = {**COMPARE_DEFAULTS, **given}  # no budget given: the README's small one
    # fail fast, before any run, on a bad method or option, or methods of different spaces
    check_sampler_options(given, method_list)
    _check_method_options(given, method_list)
    cmp.check_baseline(baseline, cmp.table_order(method_list))
    root = Path(save) if save else Path("runs") / f"compare-{dt.datetime.now():%Y%m%d-%H%M%S}"
    space_list = list(dict.fromkeys(spaces)) or [None]
    folders, jobs = [], []
    for space in space_list:
        wanted = for_space(given, space, space_list) if len(space_list) > 1 else {**given, "space": space} \
            if space else given
        configs = {method: resolve_config(method, given.get("preset", "quick"),
                                          **_config_overrides(for_method(wanted, method))) for method in method_list}
        cmp.check_one_space({method: config.space for method, config in configs.items()})
        tracking(next(iter(configs.values())))  # what --track names, and its benchmark file: before any search
        folder = root / space if len(space_list) > 1 else root
        folders.append(folder)
        for method in method_list:
            for seed in seed_list:
                run_dir = folder / "runs" / f"{method}-seed{seed}"
                config = replace(configs[method], seed=seed)
                check_reuse(run_dir, config)
                if not (run_dir / GENOTYPE).exists():  # finished runs are kept, never redone
                    name = f"{space}/{run_dir.name}" if len(space_list) > 1 else run_dir.name
                    jobs.append(SearchJob(name=name, method=method, seed=seed, run_dir=run_dir, config=config,
                                          argv=tuple(search_argv(method, seed, run_dir, wanted))))
    progress_to = console if fmt == "table" else err_console  # keep stdout clean for --format json/csv/...
    chosen, name, executor_opts = executor
    if jobs and not _execute(jobs, chosen, name, executor_opts, root, device, progress_to, len(space_list) > 1):
        err_console.print(f"{len(jobs)} searches printed, none run. Run them (each line is one job: the same line "
                          f"starts, continues or skips its run), then aggregate with `nasbench-pc compare --from "
                          f"'{root / 'runs' / '*' if len(space_list) == 1 else root / '*' / 'runs' / '*'}'`.",
                          highlight=False)
        return None
    return [(folder, [cmp.load_run(folder / "runs" / f"{m}-seed{s}") for m in method_list for s in seed_list])
            for folder in folders]


def _score(runs: list[cmp.RunSummary], specs: list[tuple[str, dict[str, Any]]], device: str | None,
           benchmark_file: str | None, fmt: str) -> None:
    """--evaluate: score each run's derived architecture (kept in RUN/evaluations and reused)."""
    cmp.check_one_space({r.run_dir: r.space for r in runs})
    dev = check_device(device or default_device())
    targets = [(f"{r.method} seed {r.seed}", target_of(r, device=dev, benchmark_file=benchmark_file)) for r in runs]
    for run, done in zip(runs, run_evaluations(targets, specs, console if fmt == "table" else err_console)):
        run.scores = {key: value for result in done for key, value in result.metrics.items()}


def _save(out: Path, rows: list[cmp.MethodRow], ranks: list[cmp.Rank], fmt: str) -> None:
    """compare.md / .csv / .json (and ranking.csv / .json when runs were scored) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "compare.md", cmp.to_markdown(rows, ranks))  # a reader never sees half a table,
    atomic_write_text(out / "compare.csv", cmp.to_csv(rows))  # and two drivers' writes each land whole
    atomic_write_text(out / "compare.json", cmp.to_json(rows))
    saved = ["compare.md", "compare.csv", "compare.json"]
    if ranks:
        atomic_write_text(out / "ranking.csv", cmp.ranking_csv(ranks))
        ranking = json.dumps(cmp.no_nan([r.as_dict() for r in ranks]), indent=2) + "\n"
        atomic_write_text(out / "ranking.json", ranking)
        saved += ["ranking.csv", "ranking.json"]
    if fmt == "table":
        console.print(f"Saved {out}/{', '.join(saved)}")


@click.command()
@click.argument("methods", nargs=-1)
@click.option("--seeds", help="Seeds to run each method with: --seeds 0 1 2 (or 0,1,2) [0].")
@click.option("--baseline", metavar="METHOD", help="The compared method the 'memory vs' and 'step vs' ratios divide "
              "by [the first method named; with none named, or with --from, the table's first].")
@click.option("--from", "from_runs", multiple=True, help="Aggregate these run directories (globs allowed, "
              "repeatable) instead of running searches.")
@click.option("--save", type=click.Path(file_okay=False), help="Folder for runs/ and compare.md/.csv/.json.")
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "csv", "json"]), default="table",
              show_default=True, help="What to print.")
@click.option("--plot", type=click.Path(file_okay=False), help="Write PNG plots to this folder (needs matplotlib).")
@click.option("--device", help="cpu, cuda or cuda:N for every run [cuda when available].")
@click.option("--devices", help="Run in parallel on this machine, one worker process per device: cuda:0,cuda:1,... "
              "(the local executor's devices option).")
@click.option("--executor", "executor_name", metavar="NAME",
              help="Where the searches run [the registered default: local]: local (this machine), slurm (job "
                   "arrays through submitit; pip install 'nasbench-pc[slurm]'), submitit-local, ray (pip install "
                   "'nasbench-pc[ray]'), print (print one `nasbench-pc search` line per run and run nothing), or an "
                   "executor plugin.")
@click.option("--executor-option", "executor_option", multiple=True, metavar="KEY=VALUE",
              help="An option of the executor (repeatable): slurm passes any submitit/Slurm parameter through, e.g. "
                   "partition=gpu, gpus_per_node=1, cpus_per_task=8, mem_gb=32, timeout_min=600, signal_delay_s=120, "
                   "array_parallelism=8.")
@click.option("--space", "spaces", multiple=True, metavar="NAME", help="Search space (repeatable: --space darts "
              "--space nas-bench-201 runs every method on each, all submitted together, one table per space in "
              "SAVE/SPACE/) [each method's own].")
@click.option("--cancel", "cancel_save", metavar="SAVE", type=click.Path(file_okay=False),
              help="Stop the searches of the comparison in SAVE, whatever runs them (each writes its checkpoint "
                   "first; Slurm jobs are scancel'ed), and wait for them; the same compare command goes on later.")
@click.option("--wait", type=float, default=300.0, show_default=True, help="With --cancel: seconds to wait for the "
              "runs to stop.")
@click.option("--threads", type=int, help="CPU threads for PyTorch.")
@evaluate_options
@click.pass_context
def compare(ctx: click.Context, methods: tuple[str, ...], seeds: str | None, baseline: str | None,
            from_runs: tuple[str, ...], save: str | None, fmt: str, plot: str | None, device: str | None,
            devices: str | None, executor_name: str, executor_option: tuple[str, ...], spaces: tuple[str, ...],
            cancel_save: str | None, wait: float, threads: int | None, evaluators: tuple[str, ...],
            benchmark_file: str | None, **options: Any) -> None:
    """Run METHODS x seeds on identical data, splits, budget and device, and compare them.

    \b
    nasbench-pc compare                       # darts, pc-darts, pc-only, en-only on synthetic data
    nasbench-pc compare darts pc-darts --seeds 0 1 --dataset fashion-mnist \\
        --data-root /usr/share/datasets/fashion-mnist --limit 2000 --epochs 2 --save out/ --plot out/plots
    nasbench-pc compare darts-1st pc-darts --space nas-bench-201 --epochs 2
    nasbench-pc compare darts-1st pc-darts --space darts --space nas-bench-201 --save out/  # a table per space
    nasbench-pc compare --from 'out/runs/*'   # aggregate earlier runs, from any machine
    nasbench-pc compare darts pc-darts --seeds 0 1 2 --evaluate proxy-train --evaluate synflow
    nasbench-pc compare darts-1st pc-darts --seeds 0 1 2 --executor slurm --executor-option partition=gpu \\
        --executor-option gpus_per_node=1 --executor-option timeout_min=600 --save /shared/cmp
    nasbench-pc compare --cancel /shared/cmp  # stop them (checkpoints kept); the same command goes on later

    With no METHODS: every method that declares a default_rank, in its order (the built-ins: darts, pc-darts,
    pc-only, en-only). While searches run, a live table shows each one (queued, running with its host and job,
    requeued, done, failed with its log; epoch and architecture accuracy); stopping the driver and running the
    same command again reattaches to cluster jobs that still live instead of submitting them again. Memory and
    step time are also given as ratios to --baseline (default: the first method named, else the table's first).
    The methods run on one search space (--space, default each method's own); runs of different spaces are never
    put in one table (several --space: one table each, in SAVE/SPACE/). --evaluate scores each run's derived
    architecture (kept in RUN/evaluations and reused), adds a column per metric and ranks the runs' supernet
    accuracy against each score.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    if cancel_save:
        cancel(Path(cancel_save), wait, err_console if fmt != "table" else console)
        return
    if fmt == "csv" and len(set(spaces)) > 1:
        raise ConfigError("--format csv prints one table, and several --space give one table per space (their columns "
                          "differ). Use --format json (an object per space), or --save (SAVE/SPACE/compare.csv each).")
    specs = parse_specs(evaluators)  # a bad evaluator name or option fails before any search
    registry.loggers(options.get("log"))  # and an unknown --log, or one whose extra is missing
    if options.get("track") and benchmark_file:
        options["benchmark_file"] = benchmark_file  # the tracked lookups read compare's --benchmark-file
    metrics = metrics_of(specs)
    executor_name = executor_name or registry.default("executor")
    executor = executor_options(executor_name, executor_option, devices)  # and a bad executor or option
    if from_runs:
        if methods or seeds or spaces:
            raise ConfigError("--from aggregates finished runs; drop the method names, --seeds and --space (they come "
                              "from each run's config.json).")
        found = [cmp.load_run(p) for p in cmp.expand_runs(list(from_runs))]
        by_space: dict[str, list[cmp.RunSummary]] = {}
        for run in found:  # runs of several spaces: one table per space, as a comparison of several spaces gives
            by_space.setdefault(run.space, []).append(run)
        groups = [(Path(save) / space if save and len(by_space) > 1 else Path(save or "."), runs)
                  for space, runs in by_space.items()]
        for _, runs in groups:
            cmp.check_baseline(baseline, cmp.table_order([r.method for r in runs]))
    else:
        if baseline is None and methods:
            baseline = resolve_method(methods[0]).name  # what the user put first is what they compare against
        searched = _search_runs(ctx, methods, seeds, baseline, spaces, save, fmt, device,
                                (executor[0], executor_name, executor[1]), options)
        if searched is None:  # --executor print: nothing ran, nothing to aggregate yet
            return
        groups = searched
    tables = []
    for folder, runs in groups:
        if specs:
            _score(runs, specs, device, benchmark_file, fmt)
        cmp.attach_saved_bytes(runs)
        rows = cmp.aggregate(runs, baseline=baseline, metrics=metrics)
        ranks = cmp.ranking(runs, metrics)
        tables.append((rows, ranks))
        if fmt in ("table", "markdown") or len(groups) == 1:
            _print_rows(rows, ranks, fmt, heading=len(groups) > 1)
        if save:
            _save(folder, rows, ranks, fmt)
        if plot:
            plot_dir = Path(plot) / runs[0].space if len(groups) > 1 else Path(plot)
            written = plots.comparison_plots(runs, rows, plot_dir, metrics)
            if fmt == "table":
                console.print(f"Plots: {', '.join(str(p) for p in written)}")
    if len(groups) > 1 and fmt == "csv":
        raise ConfigError(f"--format csv prints one table, and these runs come from {len(groups)} search spaces. Use "
                          f"--format json (an object per space), or --from with the runs of one space.")
    if len(groups) > 1 and fmt == "json":  # one object: each space's table under its name
        click.echo(json.dumps({rows[0].space: json.loads(cmp.to_json(rows)) for rows, _ in tables}, indent=2))


for _name in _SHARED:
    compare.params.append(_SEARCH_PARAMS[_name])


COMMANDS = (compare,)
