"""How the evaluator scores of a comparison agree with each other, and what each took (docs/benchmarks.md (b)).

Reads the runs of a ``nasbench-pc compare --save DIR --evaluate ...`` folder and their kept evaluation records
(``DIR/runs/*/evaluations/*.json``), then prints the Kendall tau of every pair of metrics over all runs and the
mean seconds each evaluator took per run.

    python benchmarks/score_agreement.py /tmp/fmnist/out/darts /tmp/fmnist/out/nas-bench-201
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
from pathlib import Path

from nasbench_pc.results.compare import expand_runs
from nasbench_pc.results.evaluation import EVALUATIONS
from nasbench_pc.results.ranking import kendall_tau


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", help="compare --save folders")
    for folder in parser.parse_args().folders:
        scores: list[dict[str, float]] = []
        seconds: dict[str, list[float]] = {}
        for run in expand_runs([str(Path(folder) / "runs")]):
            metrics: dict[str, float] = {}
            for path in sorted((run / EVALUATIONS).glob("*.json")):
                record = json.loads(path.read_text())
                metrics.update(record["metrics"])
                seconds.setdefault(record["evaluator"], []).append(record["seconds"])
            scores.append(metrics)
        keys = sorted(set.intersection(*(set(s) for s in scores)))
        print(f"## {folder}: {len(scores)} runs\n")
        print("| metric | metric | Kendall tau |\n|---|---|---|")
        for a, b in itertools.combinations(keys, 2):
            print(f"| {a} | {b} | {kendall_tau([s[a] for s in scores], [s[b] for s in scores]):+.2f} |")
        print("\n| evaluator | mean seconds per run |\n|---|---|")
        for name, values in sorted(seconds.items()):
            print(f"| {name} | {statistics.fmean(values):.1f} |")
        print()


if __name__ == "__main__":
    main()
