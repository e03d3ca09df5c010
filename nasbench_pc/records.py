"""The records plugins and the core pass each other: frozen dataclasses with no behaviour beyond reading them.

:class:`Method` (a named search method), :class:`SearchHParams` (its search settings), :class:`NetworkSpec` (a derived
network a space registers), :class:`Shortcut` (a command-line flag a plugin declares), :class:`CellStats` (a
genotype's collapse check) and :class:`Metric` (one number an evaluator returns).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import InitVar, asdict, dataclass, field, fields, replace
from typing import Any

from nasbench_pc.settings import (
    Check,
    Setting,
    all_of,
    at_least,
    finite_at_least_zero,
    fraction,
    not_negative,
    positive_finite,
    setting,
    validate,
)


@dataclass(frozen=True)
class Shortcut:
    """A command-line flag a plugin declares for one of its options: a search space's shape option (``--layers 5``
    for ``--space-option layers=5``) or a channel sampler's (``--k 2`` for ``--sampler-option k=2``), on every
    command that takes ``--space-option`` / ``--sampler-option``.

    ``flags`` are the flag and its aliases (``("--init-channels", "-C")``); ``option`` the option it sets; ``help``
    what the option means; ``type`` its value's type; ``choices`` maps the words the flag takes to the option's
    values (``{"cells": True}``: ``--checkpoint cells`` sets the option to True), empty for a plain value.
    Two plugins may declare the same flag for the same option (each space its ``--init-channels``)."""

    flags: tuple[str, ...]
    option: str
    help: str
    type: type = int
    choices: Mapping[str, Any] = field(default_factory=dict)

    @property
    def long_flag(self) -> str:
        """The first long flag (``--init-channels``)."""
        return next(f for f in self.flags if f.startswith("--"))

    @property
    def dest(self) -> str:
        """The click parameter name: the long flag without its dashes (``init_channels``)."""
        return self.long_flag[2:].replace("-", "_")


def flag_for(kind_flag: str, shortcuts: tuple[Shortcut, ...], option: str, value: Any) -> str:
    """What a user types to set ``option`` to ``value``: a shortcut's flag where one declares it (``--checkpoint
    cells``), else the generic ``kind_flag`` (``--space-option checkpoint_cells=True``)."""
    for shortcut in shortcuts:
        if shortcut.option == option:
            words = [word for word, v in shortcut.choices.items() if v == value]
            if words or not shortcut.choices:
                return f"{shortcut.long_flag} {words[0] if words else value}"
    return f"{kind_flag} {option}={value!r}"


@dataclass(frozen=True)
class CellStats:
    """What a space reports about a genotype so that a comparison can flag DARTS' collapse."""

    skip_connects: int  # parameter-free skip edges in the cells the space watches (DARTS: the normal cell)
    edges: int  # the edges those cells have
    collapsed: bool  # the space's own collapse rule said yes
    rule: str  # the rule in words, for the warning (e.g. ">= 3 of 8 normal-cell edges are skip_connect")


@dataclass(frozen=True)
class NetworkSpec:
    """A stand-alone network a space derives from a genotype: a timm model it registers, called with
    ``genotype=``, ``num_classes=``, ``in_chans=`` and ``options``, measured at ``image_size``.

    ``width`` and ``depth`` name the model's keywords that ``--init-channels`` and ``--layers`` set (None: the
    network has no such setting); a search space's shape option of the same name gives a proxy network its
    supernet's width and depth. ``words`` says how a model card words a keyword's value (``{"layers": "{} cells"}``;
    unlisted keywords read ``keyword=value``). ``retired`` are model arguments that checkpoints of earlier releases
    hold and the model no longer takes (dropped when such a checkpoint is exported)."""

    model: str
    options: Mapping[str, Any] = field(default_factory=dict)
    image_size: int = 32
    width: str | None = None
    depth: str | None = None
    words: Mapping[str, str] = field(default_factory=dict)
    retired: tuple[str, ...] = ()  # model arguments earlier releases' checkpoints hold that the model no longer takes


#: What an evaluator may need besides the genotype (:attr:`Evaluator.needs`).
NEEDS = ("run", "data", "benchmark")


@dataclass(frozen=True)
class Metric:
    """One number an evaluator returns, and how to read it.

    ``key`` is the key in the dict :meth:`Evaluator.evaluate` returns (and the column's name in compare.csv /
    compare.json); ``label`` the column header in tables; ``higher_is_better`` the direction a ranking uses;
    ``percent`` shows a fraction in [0, 1] as a percentage; ``fmt`` formats the (scaled) value.
    """

    key: str
    label: str
    higher_is_better: bool = True
    percent: bool = False
    fmt: str = ".3g"

    def format(self, value: float) -> str:
        return f"{value * (100 if self.percent else 1):{self.fmt}}"


_H = ("hparams",)  # the group presets take from the method (Method.hparams_for)
_STEP = "with 0 nothing would be learned, and inf or nan diverges at once"


@dataclass(frozen=True)
class SearchHParams:
    """A method's search hyperparameters (CIFAR-10 values of the reference by default); the supernet's shape is the
    search space's (its ``options`` and ``presets``). Each field is a setting (:mod:`nasbench_pc.settings`) of the
    ``hparams`` group, which :class:`~nasbench_pc.search.config.SearchConfig` inherits."""

    batch_size: int = setting(64, "Global batch size (split over processes).", check=at_least(1), flags=("-b",),
                              groups=_H)
    lr: float = setting(0.025, "Initial weight learning rate.", check=positive_finite(_STEP), groups=_H)
    lr_min: float = setting(0.001, "Final learning rate of the cosine schedule.", check=finite_at_least_zero(),
                            groups=_H)
    momentum: float = setting(0.9, "SGD momentum of the weights.", groups=_H, check=all_of(
        finite_at_least_zero(), Check(lambda v: v <= 1, "must lie between 0 and 1 (the reference uses 0.9)",
                                      "above 1 the weight updates grow without bound")))
    weight_decay: float = setting(3e-4, "Weight decay of the weights.", check=finite_at_least_zero(), groups=_H)
    epochs: int = setting(50, "Search epochs.", check=at_least(1), groups=_H)
    train_portion: float = setting(0.5, "Fraction of the training set for the weights (the rest is the "
                                   "architecture's).", check=fraction("the training set"), groups=_H)
    arch_lr: float = setting(3e-4, "Architecture Adam learning rate.", check=positive_finite(_STEP), groups=_H)
    arch_weight_decay: float = setting(1e-3, "Architecture weight decay.", check=finite_at_least_zero(), groups=_H)
    grad_clip: float = setting(5.0, "Clip the weight gradient's norm.", check=positive_finite(_STEP), groups=_H)
    warmup_epochs: int = setting(0, "Architecture warm-up: epochs before the first architecture step.",
                                 check=not_negative(), groups=_H)
    seed: int = setting(2, "Random seed.", groups=_H)

    def __post_init__(self) -> None:
        validate(self)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Stage:
    """One stage of a staged search (DrNAS' progressive learning, darts-family-facts.md 3.4), as a method's hooks
    list them in ``stages``: its share of the search's epochs, the partial-channel K from its start (None: as
    before; the first stage's K is the one the supernet is built with), how many ops each edge keeps from its start
    (None: all it has; the others are pruned, their weights exactly 0 and their ops never run), and its architecture
    warm-up as a share of its own epochs (the architecture steps start that far into the stage)."""

    share: float
    k: int | None = None
    keep: int | None = None
    warmup: float = 0.0


@dataclass(frozen=True)
class Method:
    """A named search method: a search space + sampler + normalizer + arch-gradient order + preset.

    ``hparams`` are the method's search settings on its own space; ``space_hparams`` may give other
    settings per search space (e.g. the NAS-Bench-201 paper's for DARTS on that space).
    """

    name: str
    description: str
    # None: the registered default (nasbench_pc.registry.default: the space, sampler and normalizer that say
    # ``default = True``); nasbench_pc.api.resolve_method fills them in
    space: str | None = None
    sampler: str | None = None
    sampler_options: dict[str, Any] = field(default_factory=dict)
    normalizer: str | None = None
    normalizer_options: dict[str, Any] = field(default_factory=dict)
    order: int = 1  # 1: first-order architecture gradient; 2: DARTS unrolled (second order)
    hparams: SearchHParams = field(default_factory=SearchHParams)
    space_hparams: dict[str, SearchHParams] = field(default_factory=dict)
    #: per search space, the shape options the method's reference sets there (over the space's preset, under the
    #: user's): SDARTS' DARTS space without 'none' is ``{"darts": {"drop_none": True}}``
    space_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the search spaces it runs on (None: any); another is refused with a clear error before anything runs
    spaces: tuple[str, ...] | None = None
    #: its place among the methods ``compare``, ``bench`` and ``plan`` take when none is named (None: not among them)
    default_rank: int | None = None
    #: True for the one method ``search`` runs when none is named
    default: bool = False
    #: the method's own settings (``--method-option NAME=VALUE``), each declared with
    #: :func:`nasbench_pc.settings.declare` (name, default, help, range check)
    settings: tuple[Setting, ...] = ()
    #: their values in a run: every declared setting, defaults filled in (``SearchConfig.method_record()``)
    options: Mapping[str, Any] = field(default_factory=dict)
    #: what the method does inside the search loop beyond this record, or None: called once per search with
    #: :attr:`options` as keyword arguments, it returns an object with the optional hooks of
    #: :class:`nasbench_pc.protocols.SearchHooks`
    hooks: Callable[..., Any] | None = None
    #: deprecated keyword: the name ``space`` had before a method's search space and a search's shared one name
    search_space: InitVar[str | None] = None

    def __post_init__(self, search_space: str | None) -> None:
        if search_space is not None:
            warnings.warn("Method(search_space=...) is now Method(space=...).", DeprecationWarning, stacklevel=3)
            object.__setattr__(self, "space", search_space)

    def hparams_for(self, space: str) -> SearchHParams:
        """The search settings on ``space``: its own entry in ``space_hparams``, else ``hparams``."""
        return self.space_hparams.get(space, self.hparams)

    def with_overrides(self, **changes: Any) -> Method:
        if "search_space" in changes:  # the field's name before it was ``space``
            changes["space"] = changes.pop("search_space")
        return replace(self, search_space=None, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The record as config.json keeps it: its data, without the declarations and hooks (code, not data)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("settings", "hooks")}
        data.update(hparams=asdict(self.hparams), space_hparams={k: asdict(v) for k, v in self.space_hparams.items()},
                    options=dict(self.options))
        return data


# read access under the old name (deprecated), after the dataclass took ``search_space`` as its init keyword
Method.search_space = property(lambda self: self.space, doc="Deprecated name of :attr:`Method.space`.")


@dataclass(frozen=True)
class SearchJob:
    """One search of a comparison, as an executor runs it: ``nasbench-pc`` with ``argv``, a ``search ... --out
    RUN --resume-if-stopped`` line whose same arguments start the run, continue it after a stop, a crash or a
    requeue, and end at once when it is finished. Results come back only as the run folder ``run_dir``.
    ``config`` is the resolved search (a :class:`nasbench_pc.search.SearchConfig`) for executors that run it in
    their own process."""

    name: str
    method: str
    seed: int
    run_dir: Any  # pathlib.Path
    argv: tuple[str, ...]
    config: Any = None


def search_command(argv: Sequence[str], device: str | None = None, processes: int = 1) -> list[str]:
    """The process a :class:`SearchJob` is: ``nasbench-pc ARGV`` with this interpreter (``--device`` when given),
    as every executor starts it; with several ``processes`` (a job of several GPUs), torchrun on this node
    starting that many (``nasbench_pc.runtime.torchrun``: torchrun that leaves Slurm's USR2 to its workers)."""
    tail = ["-m", "nasbench_pc", *argv, *(["--device", device] if device else [])]
    if processes > 1:
        return [sys.executable, "-m", "nasbench_pc.runtime.torchrun", "--standalone", "--nproc_per_node",
                str(processes), *tail]
    return [sys.executable, *tail]


@dataclass(frozen=True)
class JobOutcome:
    """How one :class:`SearchJob` ended under an executor. ``state``: "done" (its run folder holds the finished
    search), "failed" (``error`` says why, ``log`` where its output is), "held" (another process writes that run
    folder: the driver looks again later), "cancelled" (it stopped on ``compare --cancel``'s request, its
    checkpoint kept) or "printed" (the ``print`` executor ran nothing)."""

    name: str
    state: str
    job_id: str | None = None
    log: str | None = None
    error: str = ""
