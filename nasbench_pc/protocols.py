"""What plugins provide: the small protocols behind each hook (a search space, a channel sampler, an edge normalizer,
an evaluator, and the supernet a space builds).

They are protocols, so any object with the right attributes works; no base class needed. The records they take and
return are in :mod:`nasbench_pc.records`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from nasbench_pc.records import CellStats, Method, Metric, NetworkSpec


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
            network name -> :class:`nasbench_pc.networks.train.TrainHParams` values over its defaults (the PC-DARTS
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
    """Decides which channels of an edge's input go through its MixedOp.

    Optional: ``ratio_option``, the name of its option that is a channel ratio K (1/K of the channels sampled),
    which a staged method's first stage sets (DrNAS: K=6); its edges then have ``set_k(k)``, which moves them to
    another K mid-search (returning :data:`nasbench_pc.supernet.Widened` for the optimizer)."""

    def build_edge(self, make_mixed_op: Callable[[int], nn.Module], channels: int, stride: int) -> nn.Module:
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


class Evaluator(Protocol):
    """Scores the architecture a search derived (``--evaluate NAME[:key=value,...]``).

    ``needs`` says what besides the genotype it reads from its
    :class:`~nasbench_pc.results.evaluation.EvaluationTarget`: ``"run"`` (a search run folder: its supernet checkpoint
    and
    metrics), ``"data"`` (the search's dataset) or ``"benchmark"`` (a tabular benchmark file, ``--benchmark-file``).
    ``options`` are its option defaults; a value given on the command line must have the default's type (a None
    default takes anything). ``metrics`` are what it returns, with their directions.

    Optional: ``check(target)`` raises :class:`nasbench_pc.errors.ConfigError` when it cannot score what ``target``
    will hold (a benchmark file missing or unreadable, a search of another space); ``search --track`` calls it before
    the search starts, with ``target.genotype`` None and ``target.search`` the search's config.
    """

    description: str
    needs: frozenset[str]
    options: Mapping[str, Any]
    metrics: tuple[Metric, ...]

    def evaluate(self, target: Any, **options: Any) -> dict[str, float]:
        """Score ``target`` (an :class:`~nasbench_pc.results.evaluation.EvaluationTarget`) with ``options`` (every key
        of
        :attr:`options`, resolved); return one float per :attr:`metrics` key. Raise
        :class:`nasbench_pc.errors.ConfigError` for what the user can fix (a missing file, a genotype of another
        space). May write under ``target.work_dir`` (its own folder), e.g. a resumable training run."""


class SearchHooks(Protocol):
    """What a method does inside the search loop beyond its record (:attr:`nasbench_pc.records.Method.hooks` makes
    one per search from the method's settings). Every hook is optional: the loop calls the ones the object has. The
core keeps the family's invariants: a stochastic ``arch_weights`` draws anew per forward; ``perturb_weights`` never
touches the architecture step; ``arch_loss`` never enters the weight step; derive rules read the parameters.

    ``epoch_start(*, epoch, epochs, supernet)`` runs before the first step of each epoch (``epoch`` counts from 0),
    also of an epoch continued after ``--resume``, so it must depend on the epoch and the settings alone (a
    temperature or perturbation schedule). What it returns, a dict of numbers or None, is kept in the epoch's
    metrics.jsonl record under ``"method"``.

    Attributes it may also have: ``edge_mode`` (``"weighted"``, the default, or ``"sampled"``: each edge runs only
    the op its ``arch_weights`` picks, which then returns weights one-hot in value, as GDAS' hard Gumbel sample;
    :class:`nasbench_pc.supernet.Sampled`), ``scalar_grad`` (with ``"sampled"``: the ops not drawn still get a
    gradient, AutoDL's NAS-Bench-201 GDAS edge) and ``step_order`` (``"arch_then_weight"``, the default, or
    ``"weight_then_arch"``), ``aux_op`` with ``aux_coefficient`` (every edge also adds ``aux_coefficient *
    aux_op(x)``, a fresh copy of that candidate op, outside the op weights: DARTS-' auxiliary skip; set the
    coefficient in ``epoch_start``), ``initial_alphas(alphas) -> Tensor`` (the starting value of each alphas
    tensor, asked once when the supernet is built: FairDARTS' zeros) and ``derive(*, supernet) -> genotype`` (the
    method's derive rule in place of the space's, reading the parameters, never a sample: FairDARTS' threshold) and
    ``stages`` (a list of :class:`nasbench_pc.records.Stage`: DrNAS' progressive search, which prunes each edge's
    ops and lowers the partial-channel K between stages).
    ``Method.hooks`` is called with ``space=`` the search space's name when it takes
    that keyword."""

    def epoch_start(self, *, epoch: int, epochs: int, supernet: Supernet) -> Mapping[str, float] | None:
        """Prepare the epoch; return numbers to record, or None."""

    def arch_weights(self, alphas: torch.Tensor) -> torch.Tensor:
        """The weights the edges multiply their ops by, from one (edges, ops) alphas tensor, called on every forward
        (default softmax over the ops). A stochastic relaxation draws anew on each call (DrNAS' Dirichlet, GDAS'
        Gumbel), so the architecture and weight steps see independent samples. Needs a supernet built with
        :class:`nasbench_pc.supernet.Relaxed` (both built-in spaces are)."""

    def arch_loss(self, *, supernet: Supernet) -> torch.Tensor | None:
        """A term added to the architecture step's loss, and to no other (beta-DARTS' beta-decay, DrNAS' KL); it
        reads the supernet's parameters (``supernet.alpha_parameters()``), never a sample."""

    def arch_optimizer(self, *, parameters: list[torch.nn.Parameter], lr: float, weight_decay: float
                       ) -> torch.optim.Optimizer:
        """The optimizer of the architecture parameters (default DARTS' Adam, betas (0.5, 0.999)), made once."""

    def perturb_weights(self, *, supernet: Supernet, probabilities: list[torch.Tensor],
                        loss_at: Callable[[list[torch.Tensor]], torch.Tensor]) -> list[torch.Tensor]:
        """The op weights of the coming weight step, and of it alone (SDARTS): given softmax(alpha) of each alphas
        tensor and ``loss_at(weights)``, the weight step's loss with the ops weighed by ``weights``, return one
        tensor per alphas tensor. The architecture step never sees them."""
