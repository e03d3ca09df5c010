"""Whether a run folder holds *this* search: its settings against the ones asked for, the machine aside."""

from __future__ import annotations

import json
from pathlib import Path

from nasbench_pc.errors import ConfigError
from nasbench_pc.runtime.runkit import CONFIG, GENOTYPE
from nasbench_pc.search.config import SearchConfig, spec_of


def check_reuse(run_dir: Path, config: SearchConfig, *, elsewhere: str = "another --save") -> None:
    """A run folder that already holds a search is reused (finished) or continued (stopped) only when it is
    ``config``'s search: the same settings, the machine aside (``SearchConfig.spec``). Anything else (another
    space, budget, dataset or option) is refused in one paragraph: its results would pass for these settings'."""
    path = run_dir / CONFIG
    if not path.exists():
        return
    try:
        stored = spec_of(json.loads(path.read_text())["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} cannot be read ({type(exc).__name__}), so whether that run is this search "
                          f"cannot be told. Delete {run_dir} to search it again, or choose {elsewhere}.") from None
    wanted = config.spec()
    differ = [k for k in sorted(set(stored) | set(wanted)) if stored.get(k) != wanted.get(k)]
    if differ:
        state = "finished" if (run_dir / GENOTYPE).exists() else "unfinished"
        shown = "; ".join(f"{k} {stored.get(k, '(unset)')!r} there, {wanted.get(k, '(unset)')!r} here"
                          for k in differ[:4]) + (f"; and {len(differ) - 4} more" if len(differ) > 4 else "")
        raise ConfigError(f"{run_dir} holds a {state} search with other settings than asked for ({shown}), so it "
                          f"is neither reused nor continued: its results would pass for these settings'. Choose "
                          f"{elsewhere} for these settings, or delete {run_dir} to search it again with them.")
