"""What plugins provide: the small protocols behind each hook, and the method record.

A plugin returns objects of these shapes from the hooks in :mod:`nasbench_pc.hookspecs`.
They are protocols, so any object with the right attributes works; no base class needed.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

if TYPE_CHECKING:
    from nasbench_pc.mixed_op import MixedOp


class Supernet(Protocol):
    """What the search loop needs from a space's supernet (an ``nn.Module`` mapping images to logits)."""

    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture parameters the architect optimises (alphas, then betas with edge normalization)."""

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every other parameter: what the weight optimiser trains, in a fixed order."""

    def named_weight_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """:meth:`weight_parameters` with their names."""

    def genotype(self) -> Any:
        """The discrete architecture the current architecture parameters derive (the space's derive rule)."""


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


class SearchSpace(Protocol):
    """A search space plugin: its cells, architecture parameters, derive rule, genotype type, derived
    networks and renderings. The core never looks inside a genotype; it hands it back to its space.

    Attributes:
        name: the name it is registered under (``--space NAME``), also the ``"space"`` field of its JSON.
        primitives: the candidate ops, in the order of the alphas' columns.
        genotype_type: the class of its genotypes (how the core finds a genotype's space).
        options: the supernet's shape options with their defaults (``--space-option key=value``).
        presets: per search preset, the shape options it sets; a preset not listed is refused for the space.
        networks: the derived networks by name (``--network``); the first is the default.
        known: published genotypes by name (may be empty).
        recipes: training recipes of its derived networks (``nasbench-pc train --recipe``): recipe name ->
            network name -> :class:`nasbench_pc.train.TrainHParams` values over its defaults (the PC-DARTS
            CIFAR recipe). Empty: ``train`` refuses the space's genotypes.

    Optional attributes (read with ``getattr``, so an outside space may leave them out):
        provenance: per known genotype, the search behind it in words, for model cards.
        recipe_rule: what ``--recipe auto`` picks for its genotypes, and its recipes, in words (``methods``).
        default: True for the one space that methods naming no space search and that reads genotype JSON
            without a ``"space"`` field (files written before spaces were plugins).
        exports: names that code written for the releases before spaces were plugins imports from
            ``nasbench_pc`` and ``nasbench_pc.genotypes`` (the default space's ``Genotype``, ``KNOWN``, ...).
        zero_op: the candidate op that outputs zeros (DARTS' ``none``), left out of an edge's strength in plots.
        recompute_option: the boolean shape option that recomputes activations in backward instead of saving
            them (DARTS: ``checkpoint_cells``): ``bench`` and ``plan`` also measure with it on, and out-of-memory
            advice suggests it.
        shortcuts: :class:`Shortcut` flags for its shape options (``--layers``); a channel sampler may declare
            ``shortcuts`` for its options too (``--k``).
    """

    name: str
    primitives: tuple[str, ...]
    genotype_type: type
    options: Mapping[str, Any]
    presets: Mapping[str, Mapping[str, Any]]
    networks: Mapping[str, NetworkSpec]
    known: Mapping[str, Any]
    recipes: Mapping[str, Mapping[str, Mapping[str, Any]]]

    def build(self, sampler: ChannelSampler, normalizer: EdgeNormalizer, *, num_classes: int, in_channels: int,
              method: str = "", **options: Any) -> Supernet:
        """The supernet over this space, its edges built by ``sampler`` and weighted by ``normalizer``.
        ``options`` are shape options (keys of :attr:`options`); raise ConfigError for a bad one."""

    def claims(self, text: str) -> bool:
        """Whether ``text`` is written in this space's own genotype text format (or is one of its known names)."""

    def parse(self, text: str) -> Any:
        """A genotype from its own text format or a known name; GenotypeError (saying how to fix it) otherwise."""

    def from_dict(self, data: Mapping[str, Any]) -> Any:
        """A validated genotype from the dict :meth:`to_dict` writes (the ``"space"`` key already removed)."""

    def to_dict(self, genotype: Any) -> dict[str, Any]:
        """The genotype as JSON-ready data, without the ``"space"`` key (the core adds it)."""

    def to_text(self, genotype: Any) -> str:
        """The genotype in the space's own one-line text format, which :meth:`parse` reads back."""

    def cell_lines(self, genotype: Any) -> dict[str, list[str]]:
        """A compact reading per cell type, keyed by its display name (``"normal cell"``): one line per node,
        e.g. ``node 0 = sep_conv_3x3(c_{k-1}) + ...``."""

    def draw(self, genotype: Any, path: str | Path, title: str = "") -> Path:
        """Write a PNG diagram of the cells to ``path`` and return it."""

    def stats(self, genotype: Any) -> CellStats:
        """Skip-connection count and the space's collapse verdict."""

    def edges(self, genotype: Any) -> list[tuple[Hashable, str]]:
        """Every kept edge as (where it is, its op); seeds are compared on these (genotype stability)."""

    def recipe_for(self, name: str | None, method: Method | None) -> tuple[str, str]:
        """``--recipe auto``: (one of :attr:`recipes`, why) for a genotype with the published ``name`` (or None)
        found by a search with ``method`` (None when its search is unknown)."""

    def arch_record(self, supernet: Any) -> dict[str, Any]:
        """The per-epoch architecture record (metrics.jsonl, ``compare --plot``): one ``alphas_<cell>`` entry per
        cell type (softmax(alpha), edges x ops, as nested lists) and one ``edge_weights_<cell>`` (the normalized
        betas per edge, or None without edge normalization)."""


class ChannelSampler(Protocol):
    """Decides which channels of an edge's input go through its MixedOp."""

    def build_edge(self, make_mixed_op: Callable[[int], MixedOp], channels: int, stride: int) -> nn.Module:
        """Return a module ``edge(x, weights) -> Tensor`` for an edge with ``channels`` in and out.

        ``make_mixed_op(c)`` builds the MixedOp of all candidate ops on ``c`` channels.
        Raise :class:`nasbench_pc.errors.ConfigError` if ``channels`` cannot be sampled.
        """


class EdgeNormalizer(Protocol):
    """Weights the edges that enter each intermediate node (PC-DARTS edge normalization)."""

    def init_betas(self, num_edges: int) -> torch.Tensor | None:
        """Initial edge parameters of one cell type, or None when the normalizer has none."""

    def edge_weights(self, betas: torch.Tensor, nodes: list[slice]) -> torch.Tensor:
        """Per-edge multipliers from the betas; ``nodes`` holds each node's slice of edges."""


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


class Evaluator(Protocol):
    """Scores the architecture a search derived (``--evaluate NAME[:key=value,...]``).

    ``needs`` says what besides the genotype it reads from its
    :class:`~nasbench_pc.evaluation.EvaluationTarget`: ``"run"`` (a search run folder: its supernet checkpoint and
    metrics), ``"data"`` (the search's dataset) or ``"benchmark"`` (a tabular benchmark file, ``--benchmark-file``).
    ``options`` are its option defaults; a value given on the command line must have the default's type (a None
    default takes anything). ``metrics`` are what it returns, with their directions.
    """

    description: str
    needs: frozenset[str]
    options: Mapping[str, Any]
    metrics: tuple[Metric, ...]

    def evaluate(self, target: Any, **options: Any) -> dict[str, float]:
        """Score ``target`` (an :class:`~nasbench_pc.evaluation.EvaluationTarget`) with ``options`` (every key of
        :attr:`options`, resolved); return one float per :attr:`metrics` key. Raise
        :class:`nasbench_pc.errors.ConfigError` for what the user can fix (a missing file, a genotype of another
        space). May write under ``target.work_dir`` (its own folder), e.g. a resumable training run."""


@dataclass(frozen=True)
class SearchHParams:
    """Search hyperparameters (CIFAR-10 values of the reference by default); the supernet's shape is the
    search space's (its ``options`` and ``presets``)."""

    batch_size: int = 64
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    epochs: int = 50
    train_portion: float = 0.5
    arch_lr: float = 3e-4
    arch_weight_decay: float = 1e-3
    grad_clip: float = 5.0
    warmup_epochs: int = 0  # epochs before the first architecture step
    seed: int = 2

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    search_space: str | None = None
    sampler: str | None = None
    sampler_options: dict[str, Any] = field(default_factory=dict)
    normalizer: str | None = None
    normalizer_options: dict[str, Any] = field(default_factory=dict)
    order: int = 1  # 1: first-order architecture gradient; 2: DARTS unrolled (second order)
    hparams: SearchHParams = field(default_factory=SearchHParams)
    space_hparams: dict[str, SearchHParams] = field(default_factory=dict)
    #: its place among the methods ``compare``, ``bench`` and ``plan`` take when none is named (None: not among them)
    default_rank: int | None = None
    #: True for the one method ``search`` runs when none is named
    default: bool = False

    def hparams_for(self, space: str) -> SearchHParams:
        """The search settings on ``space``: its own entry in ``space_hparams``, else ``hparams``."""
        return self.space_hparams.get(space, self.hparams)

    def with_overrides(self, **changes: Any) -> Method:
        return replace(self, **changes)
