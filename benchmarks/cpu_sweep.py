"""The CPU sweep of issue 11: our step time over the reference's at C in {8, 16}, batch {16, 32}, 1 and 2 threads.

Runs benchmarks/supernet_cost.py once per setting, each in a fresh process (the thread count and oneDNN's state
start clean), and prints one table of step-time ratios, ours / reference (pc-darts and pc-only against the
reference PC-DARTS, darts and en-only against the reference DARTS), with the machine's CPU and ISA.

    python benchmarks/cpu_sweep.py --reference-pc ~/src/PC-DARTS --reference-darts ~/src/darts/cnn --markdown
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import print_table  # benchmarks/_common.py, next to this script

COST = Path(__file__).with_name("supernet_cost.py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference-pc", required=True)
    parser.add_argument("--reference-darts", required=True)
    parser.add_argument("--methods", nargs="+", default=["darts", "pc-darts", "pc-only", "en-only"])
    parser.add_argument("--widths", nargs="+", type=int, default=[8, 16])
    parser.add_argument("--batches", nargs="+", type=int, default=[16, 32])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()

    rows, machine = [], ""
    with tempfile.TemporaryDirectory() as tmp:
        for width, batch, threads in itertools.product(args.widths, args.batches, args.threads):
            out = Path(tmp, f"c{width}-b{batch}-t{threads}.json")
            subprocess.run([sys.executable, "-W", "ignore", str(COST), "--batch", str(batch), "--init-channels",
                            str(width), "--threads", str(threads), "--repeats", str(args.repeats), "--methods",
                            *args.methods, "--reference-pc", args.reference_pc, "--reference-darts",
                            args.reference_darts, "--json", str(out)], check=True, stdout=subprocess.DEVNULL,
                           env={**os.environ, "OMP_NUM_THREADS": str(threads)})
            report = json.loads(out.read_text())
            layout = "channels-last" if report["channels_last"] else "default layout"
            machine = f"{report['cpu']}, {report['isa']}, torch {report['torch']}, our stacked edges in {layout}"
            ratios = report["over_reference"]
            rows.append([str(width), str(batch), str(threads), *(f"{ratios[m]:.2f}x" for m in args.methods),
                         f"{max(ratios.values()):.2f}x"])
            print(f"C={width} batch={batch} threads={threads}: {ratios}", file=sys.stderr, flush=True)
    header = ["C", "batch", "threads", *(f"{m} / reference" for m in args.methods), "worst"]
    title = f"Step time, ours over the reference's, 8 cells, 32x32 ({machine})"
    print_table(title, header, rows, args.markdown)


if __name__ == "__main__":
    main()
