"""Search run folders as results: what one run says about itself (:class:`RunSummary`), read from its
``config.json``, ``metrics.jsonl`` and ``genotype.json`` (:func:`load_run`), wherever it ran."""

from __future__ import annotations

import glob
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nasbench_pc import genotypes, registry
from nasbench_pc.api import create_supernet
from nasbench_pc.errors import ConfigError
from nasbench_pc.records import CellStats
from nasbench_pc.runtime.profiling import step_cost
from nasbench_pc.runtime.runkit import CONFIG, METRICS, read_history
from nasbench_pc.search.config import SearchConfig


def is_search_run(path: str | Path) -> bool:
    return (Path(path) / CONFIG).is_file() and (Path(path) / METRICS).is_file()


def sampler_column() -> tuple[str, str]:
    """(header, option) of the sampler option comparison tables show, which a channel sampler declares as its
    ``column`` (the partial-channel sampler: ``("K", "k")``); the first registered one, else an empty column."""
    for _, sampler in sorted(registry.available("sampler").items()):
        if getattr(sampler, "column", None):
            return sampler.column
    return "", ""


@dataclass
class RunSummary:
    """What one finished (or stopped) search run says about itself."""

    run_dir: str
    method: str
    space: str
    seed: int
    dataset: str
    sampler: str
    normalizer: str
    sampler_options: dict[str, Any]  # the sampler's options as run (the method's, with the run's over them)
    batch_size: int
    device: str
    world_size: int
    epochs_done: int
    epochs: int
    genotype: Any  # of the space's genotype type
    history: list[dict[str, Any]] = field(repr=False)
    config: SearchConfig = field(repr=False)
    info: dict[str, Any] = field(default_factory=dict, repr=False)  # the dataset's DatasetInfo
    saved_bytes: int | None = None  # bytes saved for backward per step, see attach_saved_bytes
    scores: dict[str, float] = field(default_factory=dict)  # evaluator metrics by key (compare --evaluate)

    @property
    def k(self) -> Any:
        """The value of the sampler option a comparison shows (:func:`sampler_column`; partial channels: K),
        None where the run's sampler has none."""
        return self.sampler_options.get(sampler_column()[1])

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}

    @property
    def arch_acc(self) -> float:
        return float(self.final.get("arch_acc", math.nan))

    @property
    def epoch_seconds(self) -> float:
        times = [r["epoch_seconds"] for r in self.history]
        return statistics.fmean(times) if times else math.nan

    @property
    def step_seconds(self) -> float:
        """Seconds per weight step (with its architecture step), from the epochs' throughput."""
        rates = [r["images_per_second"] for r in self.history if r.get("images_per_second")]
        return self.batch_size / statistics.fmean(rates) if rates else math.nan

    @property
    def search_hours(self) -> float:
        """Device-hours: wall time of all epochs times the number of processes."""
        return sum(r["epoch_seconds"] for r in self.history) * self.world_size / 3600

    @property
    def memory(self) -> tuple[str, float]:
        """(label, MiB): CUDA peak on a GPU; bytes saved for backward on CPU; else max RSS."""
        cuda = [r["peak_cuda_allocated_mib"] for r in self.history if "peak_cuda_allocated_mib" in r]
        if cuda:
            return "CUDA peak", max(cuda)
        if self.saved_bytes is not None:
            return "saved for backward (CPU)", self.saved_bytes / 2**20
        saved = [r["saved_for_backward_mib"] for r in self.history if "saved_for_backward_mib" in r]
        if saved:
            return "saved for backward (CPU)", max(saved)
        rss = [r["peak_cpu_rss_mib"] for r in self.history if "peak_cpu_rss_mib" in r]
        return ("max RSS (CPU)", max(rss)) if rss else ("memory", math.nan)

    @property
    def stats(self) -> CellStats:
        """The space's skip count and collapse verdict for the run's genotype."""
        return genotypes.space_named(self.space).stats(self.genotype)


def load_run(path: str | Path) -> RunSummary:
    """Read a run directory; a clear error says what is missing."""
    run = Path(path)
    if not is_search_run(run):
        raise ConfigError(f"{run} is not a search run directory (it needs config.json and metrics.jsonl, written by "
                          f"`nasbench-pc search --out DIR`). Point --from at such folders.")
    try:
        meta = json.loads((run / CONFIG).read_text())
        history = read_history(run)
        config, method = SearchConfig.from_dict(meta["config"]), meta["method"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{run}: config.json or metrics.jsonl is damaged ({exc}). Re-run that search, or leave the "
                          f"folder out of --from.") from None
    except ConfigError as exc:
        raise ConfigError(f"{run}: {exc}") from None
    if (run / "genotype.json").is_file():
        genotype = genotypes.load(run / "genotype.json", space=config.space)
    elif history:
        genotype = genotypes.from_dict(history[-1]["genotype"], space=config.space)
    else:
        raise ConfigError(f"{run} has no finished epoch yet, so there is no genotype to compare. Let the search "
                          f"finish an epoch (or --resume it) first.")
    return RunSummary(
        run_dir=str(run), method=config.method, space=config.space, seed=config.seed, dataset=config.dataset,
        sampler=method["sampler"], normalizer=method["normalizer"],
        sampler_options={**method.get("sampler_options", {}), **config.sampler_options},
        batch_size=config.batch_size, device=config.device, world_size=int(meta.get("world_size", 1)),
        epochs_done=len(history), epochs=config.epochs, genotype=genotype, history=history, config=config,
        info=meta.get("dataset", {}))


_LINES: dict[tuple, tuple[float, float]] = {}


def saved_bytes_line(run: RunSummary) -> tuple[float, float]:
    """(fixed, per-example) bytes saved for backward by the run's supernet in one step. Saved bytes
    are affine in the batch, so two tiny batches (2 and 4) give the line exactly, without the memory
    of the real batch; lines are cached per supernet shape."""
    c, info = run.config, run.info
    size = c.image_size or info.get("image_size", 32)
    channels, classes = info.get("in_channels", 3), info.get("num_classes", 10)
    key = (run.method, c.space, run.sampler, run.normalizer, repr(sorted(c.space_options.items())),
           repr(sorted(run.sampler_options.items())), size, channels, classes)
    if key not in _LINES:
        with torch.random.fork_rng():  # building a net must not move the caller's RNG
            net = create_supernet(c.method_record(), space=c.space, num_classes=classes, in_channels=channels,
                                  **c.space_options)
        small, large = (step_cost(net, torch.zeros(b, channels, size, size),
                                  torch.zeros(b, dtype=torch.long)).saved_bytes for b in (2, 4))
        per_example = (large - small) / 2
        _LINES[key] = (small - 2 * per_example, per_example)
    return _LINES[key]


def attach_saved_bytes(runs: list[RunSummary]) -> None:
    """Give runs made without CUDA the bytes their supernet saves for backward at their per-process batch."""
    for run in runs:
        if not any("peak_cuda_allocated_mib" in r for r in run.history):
            fixed, per_example = saved_bytes_line(run)
            run.saved_bytes = int(fixed + per_example * max(1, run.batch_size // run.world_size))


def expand_runs(patterns: list[str]) -> list[Path]:
    """Run directories named by paths or globs (a folder of runs counts as all runs inside it)."""
    found: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(str(Path(pattern).expanduser()))) or []
        for match in map(Path, matches):
            if (match / CONFIG).is_file():
                found.append(match)
            elif match.is_dir():
                found.extend(sorted(p.parent for p in match.glob(f"*/{CONFIG}")))
    if not found:
        raise ConfigError(f"No search runs match {' '.join(patterns)}. Give run directories (holding config.json) or "
                          f"globs such as 'out/runs/*'; quote globs so the shell leaves them to nasbench-pc.")
    return list(dict.fromkeys(found))
