"""The skip count of each run's derived cell over the search (docs/benchmarks.md, the family on real data).

Reads every run of ``nasbench-pc compare --save DIR`` folders (``DIR/runs/*/metrics.jsonl``, one line per epoch with
the derived cell's ``skip_connects`` and the space's ``collapsed`` verdict) and prints, per method, the skip count
of each seed at a few epochs and the first epoch at which each seed's cell met the collapse verdict.

    python benchmarks/skip_trajectory.py /tmp/family/nas-bench-201
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nasbench_pc.results.compare import expand_runs


def trajectory(run: Path) -> tuple[str, int, list[int], int | None]:
    """(method, seed, skip count per epoch, first collapsed epoch or None) of one run folder."""
    config = json.loads((run / "config.json").read_text())
    skips, first = [], None
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        skips.append(int(record["skip_connects"]))
        if record.get("collapsed") and first is None:
            first = int(record["epoch"])
    return config["config"]["method"], int(config["config"]["seed"]), skips, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", help="compare --save folders")
    parser.add_argument("--every", type=int, default=5, help="print every N-th epoch (and the last) [5]")
    args = parser.parse_args()
    for folder in args.folders:
        runs = sorted((trajectory(run) for run in expand_runs([str(Path(folder) / "runs")])),
                      key=lambda r: (r[0], r[1]))
        runs = [r for r in runs if r[2]]  # a run still in its first epoch has nothing to show
        if not runs:
            print(f"## {folder}: no run has finished an epoch yet\n")
            continue
        epochs = max(len(r[2]) for r in runs)
        shown = sorted({e for e in range(args.every, epochs + 1, args.every)} | {1, epochs})
        print(f"## {folder}: skip count of the derived cell per seed (seeds separated by /)\n")
        print("| method | " + " | ".join(f"epoch {e}" for e in shown) + " | first collapsed epoch |")
        print("|---" * (len(shown) + 2) + "|")
        for method in dict.fromkeys(r[0] for r in runs):
            mine = [r for r in runs if r[0] == method]
            cells = ["/".join(str(r[2][e - 1]) if e <= len(r[2]) else "-" for r in mine) for e in shown]
            first = "/".join(str(r[3]) if r[3] is not None else "never" for r in mine)
            print(f"| {method} | " + " | ".join(cells) + f" | {first} |")
        print()


if __name__ == "__main__":
    main()
