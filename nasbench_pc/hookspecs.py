"""Hook specifications: everything a plugin can contribute to nasbench-pc.

A plugin is a module (or object) with functions named like the specs below, decorated
with :data:`hookimpl`, and exposed through the ``nasbench_pc`` entry-point group::

    # pyproject.toml of your package
    [project.entry-points.nasbench_pc]
    my_sampler = "my_package.my_sampler"

    # my_package/my_sampler.py
    from nasbench_pc import hookimpl

    @hookimpl
    def register_samplers():
        return {"random-partial": RandomPartialSampler}

The built-in plugins in ``nasbench_pc/plugins`` are registered the same way. Two kinds of hooks:

- ``register_*`` hooks contribute things by name: each returns a ``{name: thing}`` dict; the registry
  merges them and refuses duplicate names. Each is called once, when its registry is first needed.
- lifecycle hooks (``on_run_start``, ``on_epoch_end``, ``on_run_end``, ``on_evaluation_done``, at the
  bottom) are called at points of a run, for loggers and callbacks; they return nothing. The built-in
  metrics.jsonl writer is one of them.

docs/plugins.md walks through writing and publishing a plugin.

A plugin that raises on import or implements a hook not named here is skipped, and so is the
contribution of a ``register_*`` hook that raises or returns something other than such a dict; the other plugins
still load, every command warns in one line and ``nasbench-pc plugins`` shows the error. To try a
module without packaging it, ``nasbench-pc --plugin my_package.my_sampler ...`` (or the
``NASBENCH_PC_PLUGINS`` environment variable, comma-separated modules) loads it like an entry point.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy

PROJECT = "nasbench_pc"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_search_spaces() -> dict[str, Any]:
    """Search spaces by name (``--space NAME``).

    Each value is a :class:`nasbench_pc.interfaces.SearchSpace` that owns everything about its cells:
    its shape ``options`` and per-preset ``presets``, ``build(sampler, normalizer, *, num_classes,
    in_channels, method, **options)`` returning the supernet (a :class:`nasbench_pc.interfaces.Supernet`
    whose ``genotype()`` is its derive rule), its genotype type (``genotype_type``, ``parse``/``claims``
    for its text format, ``from_dict``/``to_dict`` for JSON, ``to_text``), its derived ``networks``
    (timm models), how a genotype is summarised (``cell_lines``, ``draw``, ``stats``, ``edges``) and its
    per-epoch ``arch_record``. Called when the first space is needed; see docs/spaces.md.
    """


@hookspec
def register_samplers() -> dict[str, Callable[..., Any]]:
    """Channel samplers by name.

    Each value is a factory called with the method's ``sampler_options`` as keyword
    arguments (e.g. ``k=4``) that returns a :class:`nasbench_pc.interfaces.ChannelSampler`.
    The factory raises :class:`nasbench_pc.errors.ConfigError` for options it does not take.
    """


@hookspec
def register_normalizers() -> dict[str, Callable[..., Any]]:
    """Edge normalizers by name.

    Each value is a factory called with ``normalizer_options`` as keyword arguments that
    returns a :class:`nasbench_pc.interfaces.EdgeNormalizer`.
    """


@hookspec
def register_evaluators() -> dict[str, Any]:
    """Evaluators by name (``--evaluate NAME[:key=value,...]`` on ``evaluate`` and ``compare``).

    Each value is a :class:`nasbench_pc.interfaces.Evaluator`: an object with ``description``, ``needs`` (what
    besides the genotype it reads: ``"run"``, ``"data"``, ``"benchmark"``), ``options`` (defaults), ``metrics``
    (:class:`nasbench_pc.interfaces.Metric`, each with its direction) and ``evaluate(target, **options)``
    returning ``{metric key: float}`` for one :class:`nasbench_pc.results.evaluation.EvaluationTarget`. Called when the
    first evaluator is needed; finished evaluations are kept in the target's folder and reused.
    """


@hookspec
def register_methods() -> dict[str, Any]:
    """Search methods by name: :class:`nasbench_pc.interfaces.Method` records tying a search
    space, sampler, normalizer, architecture-gradient order and hyperparameter preset together.
    The core never branches on a method's name; everything method-specific lives here.
    """


@hookspec
def register_datasets() -> dict[str, Callable[..., Any]]:
    """Datasets by name.

    Each value is a loader called with keyword arguments ``split`` ('train' | 'test'), ``root``
    (str | None), ``download`` (bool), ``seed``, ``augment`` (bool), ``cutout`` (int, 0 = off),
    ``color_jitter`` (bool: add ColorJitter(0.4, 0.4, 0.4, 0.2) to ImageNet-style augmentation, as
    the reference ImageNet training does and its search does not), ``in_channels`` (1, 3 or
    None = native), ``image_size`` (int | None = native) and ``bad_images`` ('stop' | 'skip': raise
    a ConfigError naming an image file that cannot be decoded, or leave such files out with one
    warning; loaders of in-memory data ignore it) that returns
    ``(torch.utils.data.Dataset, nasbench_pc.runtime.data.DatasetInfo)``; the dataset yields
    ``(float CHW tensor, int label)``. A missing or malformed dataset raises
    :class:`nasbench_pc.errors.ConfigError` saying how to get the data.
    """


@hookspec
def register_executors() -> dict[str, Any]:
    """Executors by name: where ``compare`` runs its searches (this process, local workers, Slurm, Ray...).

    Each value has a ``description`` (one line), ``options`` (``{name: help}`` of the ``--executor-option``
    keys it takes; ``None`` when it passes any key through, as Slurm's parameters are) and
    ``run(jobs, *, save, options, device, console, board) -> list[JobOutcome]`` that runs every
    :class:`nasbench_pc.records.SearchJob` to its end and says how each ended
    (:class:`nasbench_pc.records.JobOutcome`). A job is one ``nasbench-pc`` process with the job's ``argv``
    (``search_command(job.argv, device, processes)``: torchrun for several processes); its results come back only
    as its run folder, so the driver aggregates the same table whatever ran it. ``board``
    (:class:`nasbench_pc.results.board.JobBoard`) is the live status: call ``board.submitted(job, job_id, log)``
    for each job handed to an engine (kept in the comparison's ledger), ``board.update(job, state, ...)`` as it
    changes, and look up ``board.earlier(job)`` to reattach to a job an earlier driver submitted that still lives
    instead of submitting it again. ``nasbench_pc.runtime.jobs.ended_as(code, run_dir)`` reads a finished
    job's exit status: "held" (75: another process holds its run folder; the driver retries), "cancelled"
    (``compare --cancel`` asked it to stop), "done". Optional: ``cancel(submissions, *, save, console)`` stops
    jobs an earlier driver submitted (``compare --cancel``; runs also stop on their own, through the stop
    request written into their folders), and ``live = False`` for an executor that runs nothing (``print``).
    A missing optional package is a :class:`nasbench_pc.errors.ConfigError` naming the extra to install.
    """


@hookspec
def register_loggers() -> dict[str, Any]:
    """Loggers by name: what ``--log NAME`` (search, compare) switches on for a run.

    Each value has a ``description`` (one line) and ``check()``, which raises
    :class:`nasbench_pc.errors.ConfigError` (naming the extra to install) when the logger cannot run here; it is
    called before the run starts. The logger itself is made of lifecycle hook implementations (below) that act when
    their name is among the run's ``loggers``; a lifecycle hook implementation that names no logger (the built-in
    metrics.jsonl writer) runs for every run.
    """


# ------------------------------------------------------------------------------------------------------------
# Lifecycle hooks: called (not collected) at points of a run, for loggers and callbacks. Every implementation
# is called, in registration order, with the keyword arguments it names (any subset of the spec's). One that
# raises stops the command with a PluginError naming the plugin; by then the finished epochs are on disk and
# the run resumes. ``kind`` is "search" or "train"; ``run_dir`` is None for a search run through the Python API
# without a folder; ``config`` is the run's settings as saved in its config.json (a dict); ``loggers`` the names
# ``--log`` switched on for the run (a tuple, often empty).


@hookspec
def on_run_start(kind: str, run_dir: Path | None, config: dict[str, Any], history: list[dict[str, Any]],
                 loggers: tuple[str, ...]) -> None:
    """Before the first epoch of a run, or of a resumed one; ``history`` holds the epochs finished before (the
    records metrics.jsonl keeps; empty for a new run)."""


@hookspec
def on_epoch_end(kind: str, run_dir: Path | None, config: dict[str, Any], record: dict[str, Any],
                 history: list[dict[str, Any]], loggers: tuple[str, ...]) -> None:
    """After each epoch, once its checkpoint is written: ``record`` is the epoch's metrics line (search: loss,
    accuracy, the architecture weights, the genotype, ...; train: loss, top-1, test accuracy, ...), ``history``
    every record so far, ``record`` last. The built-in metrics.jsonl writer is an implementation of this hook."""


@hookspec
def on_step_end(kind: str, run_dir: Path | None, config: dict[str, Any], step: int, values: dict[str, float],
                loggers: tuple[str, ...]) -> None:
    """After each weight step of a run that ``--log`` names a logger for (never otherwise: it is the hot path).
    ``step`` counts the run's weight steps from 1 (epoch e's steps follow the e-1 epochs before it; a resumed run
    goes on counting); ``values`` holds that step's ``train_loss`` and ``train_acc`` (of its batch), ``lr``,
    ``epoch`` (from 1), and for a search ``arch_loss`` (when the step updated the architecture), one
    ``alpha_entropy_<cell>`` per cell type and ``skip_connects`` of the genotype derived now."""


@hookspec
def on_run_end(kind: str, run_dir: Path | None, config: dict[str, Any], history: list[dict[str, Any]],
               result: dict[str, Any], loggers: tuple[str, ...]) -> None:
    """After the last epoch of a run that finished (not one stopped by Ctrl-C): ``result`` holds the genotype (a
    search's, as JSON) and, for a train run, its exported model folder."""


@hookspec
def on_evaluation_done(evaluator: str, options: dict[str, Any], metrics: dict[str, float], target: Any,
                       seconds: float) -> None:
    """After an evaluator scored a target (not when a kept evaluation is reused): its name, resolved options, the
    metrics it returned, the :class:`nasbench_pc.results.evaluation.EvaluationTarget` and the seconds it took."""
