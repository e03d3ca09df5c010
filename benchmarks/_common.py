"""What the benchmark scripts share: the reference code a user points them at, the machine's name, and how they
print a table."""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table


def reference_network(folder: str, tag: str) -> type:
    """The Network class of a reference model_search.py in a user's checkout (the folder holding it, operations.py
    and genotypes.py), imported under its own name so that the PC-DARTS and DARTS ones can sit side by side."""
    path = Path(folder).expanduser()
    if not (path / "model_search.py").is_file():
        sys.exit(f"{path} has no model_search.py; pass the folder of a reference checkout.")
    sys.path.insert(0, str(path))
    for shared in ("operations", "genotypes", "model_search"):
        sys.modules.pop(shared, None)
    spec = importlib.util.spec_from_file_location(f"reference_{tag}", path / "model_search.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.path.pop(0)
    return module.Network


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool) -> None:
    """Rich on a terminal, or Markdown for docs/benchmarks.md."""
    if markdown:
        print(f"**{title}**\n\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
        print()
        return
    table = Table(title=title)
    for col in header:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what platform knows."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def isa() -> str:
    """The vector ISA oneDNN may use here: the widest the CPU has, capped by ONEDNN_MAX_CPU_ISA."""
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        flags = []
    widest = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "below AVX2"
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA")
    return f"{widest} (oneDNN capped at {cap})" if cap else widest
