"""A search's checkpoint and config on disk: what ``--resume`` reads back (:func:`restore`, :func:`load_run_config`)
and the versions a run records. The checkpoint itself is the :class:`~nasbench_pc.search.loop.Search`'s
``state_dict``, written atomically (:data:`save_checkpoint`)."""

from __future__ import annotations

import json
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from nasbench_pc.errors import ConfigError, brief
from nasbench_pc.runtime.files import atomic_torch_save
from nasbench_pc.runtime.runkit import CHECKPOINT, CONFIG
from nasbench_pc.search.config import SearchConfig

if TYPE_CHECKING:  # the loop imports this module; a type only
    from nasbench_pc.search.loop import Search

CHECKPOINT_FORMAT = 2
save_checkpoint = atomic_torch_save  # a kill never leaves a half-written checkpoint


def versions() -> dict[str, str]:
    """Python's and the packages' versions, for config.json."""
    out = {"python": platform.python_version()}
    for dist in ("nasbench-pc", "torch", "torchvision", "timm"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


def load_run_config(run_dir: Path) -> SearchConfig:
    path = run_dir / CONFIG
    try:
        saved = json.loads(path.read_text())
        return SearchConfig.from_dict(saved["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{run_dir} is not a search run directory ({path} is missing or unreadable: {exc}). Pass "
                          f"the folder a search wrote with --out (it holds config.json and checkpoint.pt).") from None


def _model_mismatch(model: torch.nn.Module, saved: dict[str, torch.Tensor]) -> str:
    """How a checkpoint's model tensors differ from ``model``'s ('' when they fit)."""
    own = model.state_dict()
    notes = []
    if missing := sorted(own.keys() - saved.keys()):
        notes.append(f"it lacks {len(missing)} tensor(s) of this supernet (e.g. {missing[0]})")
    if extra := sorted(saved.keys() - own.keys()):
        notes.append(f"it holds {len(extra)} tensor(s) this supernet does not have (e.g. {extra[0]})")
    if resized := [name for name in own if name in saved and saved[name].shape != own[name].shape]:
        name = resized[0]
        notes.append(f"{len(resized)} tensor(s) have another shape (e.g. {name}: {tuple(saved[name].shape)} in the "
                     f"checkpoint, {tuple(own[name].shape)} here)")
    return "; ".join(notes)


def restore(search: Search, run_dir: Path | None) -> float:
    """Load ``run_dir``'s checkpoint into ``search``; returns the seconds the search has run so far."""
    path = None if run_dir is None else run_dir / CHECKPOINT
    if path is None or not path.exists():
        raise ConfigError(f"No checkpoint in {run_dir}: the search stopped before writing one (it writes one "
                          f"after every epoch and when interrupted). Start it again without --resume (same --out).")
    try:  # on the CPU: random states must stay there; load_state_dict moves the rest to the device
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        raise ConfigError(f"{path} cannot be read ({brief(exc)}); it is "
                          f"damaged or not a nasbench-pc search checkpoint. metrics.jsonl and genotypes.jsonl in "
                          f"{run_dir} still hold the finished epochs; start the search again with a new --out.") \
            from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ConfigError(f"{path} is not a search checkpoint of this nasbench-pc version (format {found}, expected "
                          f"{CHECKPOINT_FORMAT}). Resume it with the version that wrote it, or start a new search.")
    config = search.config
    try:
        search.restore_structure(state)  # a staged method's supernet as it was (K, pruned ops): the weights fit it
        reason = _model_mismatch(search.model, state["model"])
        if not reason:
            search.load_state_dict(state)
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as exc:
        reason = brief(exc)
    if reason:
        shape = ", ".join(f"{k}={v}" for k, v in config.space_options.items())
        raise ConfigError(f"{path} does not fit the search that {run_dir / CONFIG} describes ({config.method} on "
                          f"{config.space}, {shape}): {reason}. "
                          f"config.json was edited after the checkpoint was written, or the two come from different "
                          f"runs; put back the run's own config.json, or start a new search with another --out.") \
            from None
    return float(state["seconds"])
