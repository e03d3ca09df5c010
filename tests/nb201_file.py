"""A NAS-Bench-201 benchmark file the tests build, in the release's format, read by the official API package.

Its numbers are made up and say nothing about any architecture: the real release is a multi-GB download these
machines cannot reach, and no benchmark data is shipped or fabricated as such. Each of the 15,625 cells gets a
CIFAR-10 (hp=200) test accuracy that is a function of its index alone, ``ACCURACY(index)``, so a test can say
which number a lookup must return; the file is built through the API package's own result classes
(``ResultsCount``, ``ArchResults``), so the API reads it exactly as it reads a release.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import torch

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def cells() -> list[str]:
    """Every NAS-Bench-201 cell as the benchmark writes it, in a fixed order (this file's index order)."""
    out = []
    for o in itertools.product(OPS, repeat=6):
        out.append(f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|")
    return out


def accuracy(index: int) -> float:
    """The made-up test accuracy (percent) of the cell at ``index``."""
    return 10.0 + (index * 37 % 8000) / 100.0


def build(path: Path) -> Path:
    """Write the file to ``path`` (a few seconds); return it."""
    from nas_201_api.api_utils import ArchResults, ResultsCount

    archs = cells()
    infos = {}
    for index, arch in enumerate(archs):
        result = ResultsCount("cifar10", None, {0: 50.0}, {0: 1.0}, 0.1, 10.0, {"arch_str": arch}, 777, 1, 0.0)
        result.update_eval({"ori-test@0": accuracy(index)}, {"ori-test@0": 1.0}, {"ori-test@0": 1.0})
        record = ArchResults(index, arch)
        record.update("cifar10", 777, result)
        state = record.state_dict()
        infos[index] = {"less": state, "full": state}
    torch.save({"meta_archs": archs, "arch2infos": infos, "evaluated_indexes": list(range(len(archs)))}, path)
    return path
