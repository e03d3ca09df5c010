"""Pieces of the markdown report benchmarks/gpu.sh writes: the machine, the CUDA test summary, bench tables.

    python benchmarks/gpu_report.py machine --device cuda           # GPU, driver, torch, CUDA and cuDNN versions
    python benchmarks/gpu_report.py tests report.xml                # pass/fail summary of a pytest --junitxml file
    python benchmarks/gpu_report.py bench bench.json [more.json]    # `nasbench-pc bench --json` files as tables
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import torch
from _common import cpu_model  # benchmarks/_common.py, next to this script


def machine(device: str) -> str:
    lines = [f"- torch {torch.__version__}, CUDA {torch.version.cuda or 'none (CPU build)'}, "
             f"cuDNN {torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else 'none'}, "
             f"Python {platform.python_version()}",
             f"- CPU: {cpu_model()}, {torch.get_num_threads()} torch threads"]
    if device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        try:
            smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=30).stdout.strip()
        except OSError:
            smi = "unknown (no nvidia-smi)"
        lines.insert(0, f"- GPU: {props.name}, {props.total_memory / 2**30:.1f} GiB, {props.multi_processor_count} "
                        f"SMs, compute capability {props.major}.{props.minor}; driver {smi}")
    else:
        lines.insert(0, "- GPU: none: a dry run on CPU (`--device cpu`) at tiny sizes; no figure here is a GPU's")
    return "\n".join(lines)


def tests(junit: Path) -> str:
    """Totals first, then every failed or erroring test with the first line of its message."""
    if not junit.is_file():
        return "No test report was written (pytest did not finish: see the log)."
    root = ET.parse(junit).getroot()
    cases = root.iter("testcase")
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    failures = []
    for case in cases:
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        if problem is not None:
            counts["failed"] += 1
            first = (problem.get("message") or "").strip().splitlines()[:1]
            failures.append(f"| {name} | {first[0][:200] if first else ''} |")
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    out = [f"**{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped**"]
    if failures:
        out += ["", "| failed test | message |", "|---|---|", *[f.replace("\n", " ") for f in failures]]
    return "\n".join(out)


def bench(paths: list[Path]) -> str:
    blocks = []
    for path in paths:
        if not path.is_file():
            blocks.append(f"({path.name}: not written, the step failed or ran out of time)")
            continue
        data = json.loads(path.read_text())
        options = ", ".join(f"{k}={v}" for k, v in data["shape"]["options"].items()) or "default shape"
        blocks.append(f"**`nasbench-pc bench` on {data['device']}, {data['shape']['image_size']}x"
                      f"{data['shape']['image_size']}, {options}**\n")
        blocks.append("| method | batch | memory | step ms |\n|---|---|---|---|")
        for p in data["points"]:
            memory = "out of memory" if p["memory_bytes"] is None else f"{p['memory_bytes'] / 2**30:.2f} GiB " \
                                                                      f"({p['memory_kind']})"
            step = "-" if p["step_seconds"] is None else f"{p['step_seconds'] * 1e3:.1f}"
            blocks.append(f"| {p['method']} | {p['batch']} | {memory} | {step} |")
        if data.get("budget"):
            blocks.append(f"\n| method | largest batch in {data['budget']['bytes'] / 1e9:g} GB | how |\n|---|---|---|")
            for fit in data["budget"]["fits"]:
                how = "extrapolated from CPU saved bytes" if fit["extrapolated"] else "tried on the device"
                blocks.append(f"| {fit['method']} | {fit['batch']} | {how} |")
        blocks.append("")
    return "\n".join(blocks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="part", required=True)
    sub.add_parser("machine").add_argument("--device", default="cuda")
    sub.add_parser("tests").add_argument("junit", type=Path)
    sub.add_parser("bench").add_argument("files", type=Path, nargs="+")
    args = parser.parse_args()
    if args.part == "machine":
        print(machine(args.device))
    elif args.part == "tests":
        print(tests(args.junit))
    else:
        print(bench(args.files))


if __name__ == "__main__":
    main()
