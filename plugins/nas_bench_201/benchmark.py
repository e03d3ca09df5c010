"""The ``nas-bench-201`` evaluator: the accuracy NAS-Bench-201 recorded for a genotype's cell, looked up in the
user's own benchmark file (``--benchmark-file``) through the benchmark's official API package ``nas-bench-201``
(import name ``nas_201_api``; ``pip install 'nasbench-pc[benchmark]'``).

Nothing of the benchmark is shipped or downloaded here: the tables are the authors' multi-GB release files
(:data:`RELEASES`), which the user fetches from the NAS-Bench-201 release. A file is read once per process
(:func:`load_api`), since reading a real one takes minutes and several GB of memory.

The numbers are the API's ``get_more_info`` at the last training epoch, averaged over the file's trials of the
architecture (``is_random=False``), so a record does not depend on a random draw. In the benchmark, ``cifar10``
trains on CIFAR-10's train + valid splits and so has a test accuracy but no validation accuracy (NaN here);
``cifar10-valid`` trains on train only and has both (the paper's CIFAR-10 validation column reads it).
"""

from __future__ import annotations

import contextlib
import functools
import math
from pathlib import Path
from typing import Any

from nasbench_pc import hookimpl
from nasbench_pc.errors import ConfigError, short_repr, unknown_name
from nasbench_pc.interfaces import Metric
from nasbench_pc.plugins.nas_bench_201.genotype import SPACE, Nb201Genotype
from nasbench_pc.results.evaluation import EvaluationTarget

#: The API's datasets: where each network was trained (``get_more_info``'s ``dataset``).
DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
#: The API's training schedules (``hp``): 12 or 200 epochs, the learning rate decayed from 0.1 to 0 within them.
HPS = (12, 200)
#: The release files the API reads (nas_201_api's ALL_BENCHMARK_FILES); v1_0 has 12-epoch results only for
#: cifar10-valid.
RELEASES = ("NAS-Bench-201-v1_0-e61699.pth", "NAS-Bench-201-v1_1-096897.pth")

_GET = (f"the NAS-Bench-201 release file ({' or '.join(RELEASES)}) that you download yourself from the benchmark's "
        "authors (D-X-Y/NAS-Bench-201 on GitHub); nasbench-pc never downloads it")
_INSTALL = "pip install 'nasbench-pc[benchmark]' (or pip install nas-bench-201)"


def _numpy_safe_globals() -> list[Any]:
    """What torch's weights-only loader must allow to read the release files: they hold numpy values (the
    reference's parameter counts are numpy floats), pickled by numpy 1.x under numpy.core (numpy 2 says
    numpy._core), and since torch 2.6 torch.load refuses every numpy class unless allowed."""
    import numpy as np

    # numpy's scalar and array constructors, whatever module this numpy keeps them in
    scalar, array = np.float64(0).__reduce__()[0], np.zeros(1).__reduce__()[0]
    dtypes = {type(np.dtype(code)) for code in "?bBhHiIlLqQefd"}
    named = [(f, f"numpy.{core}.multiarray.{f.__name__}") for f in (scalar, array) for core in ("core", "_core")]
    return [*named, np.ndarray, np.dtype, *dtypes]


@functools.cache
def load_api(path: str) -> Any:
    """The benchmark's ``NASBench201API`` over the file at ``path`` (resolved), read once per process and path.

    Raises ConfigError when the API package is missing or the file cannot be read as a benchmark file.
    """
    try:
        from nas_201_api import NASBench201API
    except ImportError:
        raise ConfigError(f"The nas-bench-201 evaluator reads the benchmark through the official NAS-Bench-201 API "
                          f"package, which is not installed. Install it with {_INSTALL}.") from None
    import torch

    allow = getattr(torch.serialization, "safe_globals", None)  # torch < 2.5 loads everything anyway
    try:
        with allow(_numpy_safe_globals()) if allow else contextlib.nullcontext():
            return NASBench201API(path, verbose=False)
    except Exception as error:  # torch.load and the API's asserts raise many kinds for a file that is no benchmark
        refused = any(what in str(error) for what in ("Unsupported global", "Can only build"))  # a class, not junk
        trust = (" If it is the official release and you trust it, setting TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 lets "
                 "torch unpickle it fully." if refused else "")
        raise ConfigError(f"Could not read the NAS-Bench-201 benchmark file {path}: {_cause(error)}. --benchmark-file "
                          f"takes {_GET}.{trust}") from None


def _cause(error: Exception) -> str:
    """The part of a loading error that says what went wrong, on one line."""
    text = str(error)
    marker = "WeightsUnpickler error:"
    if marker in text:  # torch's weights-only refusal: keep what it refused, not its advice around it
        text = text.split(marker, 1)[1].split("Check the documentation", 1)[0].split(". Please use", 1)[0]
        text = f"torch's weights-only loader refused it: {text}"
    else:
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return " ".join(text.split())[:300]


def _benchmark_path(benchmark_file: str | None) -> str:
    """The given benchmark file as an absolute path (the cache key of :func:`load_api`); ConfigError without one."""
    if not benchmark_file:
        raise ConfigError(f"The nas-bench-201 evaluator looks architectures up in a NAS-Bench-201 benchmark file, "
                          f"and none was given. Pass --benchmark-file PATH: {_GET}.")
    path = Path(benchmark_file).expanduser().resolve()
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ConfigError(f"The NAS-Bench-201 benchmark file {path} {what}. Check --benchmark-file: it takes {_GET}.")
    return str(path)


def _fraction(percent: Any) -> float:
    """An accuracy of the API (a percentage) as a fraction; NaN where the file has none."""
    return math.nan if percent is None else float(percent) / 100


class Nb201Lookup:
    description = ("the test and validation accuracy NAS-Bench-201 recorded for the genotype's cell (trials "
                   "averaged, last epoch), read from your benchmark file (--benchmark-file); NaN valid accuracy "
                   "for dataset=cifar10, which trains on train + valid")
    needs = frozenset({"benchmark"})
    options: dict[str, Any] = {"dataset": "cifar10", "hp": 200}
    metrics = (Metric("nb201_test_acc", "NB201 test acc %", percent=True, fmt=".2f"),
               Metric("nb201_valid_acc", "NB201 valid acc %", percent=True, fmt=".2f"))

    def check(self, target: EvaluationTarget) -> None:
        """Before a search that tracks this lookup (``--track nas-bench-201``): a search of the NAS-Bench-201 space,
        and a benchmark file that exists and reads (read here once; :func:`load_api` keeps it for the epochs)."""
        space = target.search.get("space")
        if space != SPACE:
            raise ConfigError(f"--track nas-bench-201 looks the derived cell up in NAS-Bench-201, and this search "
                              f"runs on the {space} search space. Search with --space {SPACE}, or track an evaluator "
                              f"that scores any cell (synflow, proxy-train).")
        load_api(_benchmark_path(target.benchmark_file))

    def evaluate(self, target: EvaluationTarget, *, dataset: str, hp: int) -> dict[str, float]:
        """Look ``target``'s cell up: ``dataset`` is one of :data:`DATASETS`, ``hp`` the schedule (12 or 200
        epochs)."""
        if dataset not in DATASETS:
            raise unknown_name("NAS-Bench-201 dataset", dataset, DATASETS,
                               "Set it with --evaluate nas-bench-201:dataset=NAME.")
        if hp not in HPS:
            raise ConfigError(f"The nas-bench-201 evaluator's option hp is the training schedule in epochs, 12 or "
                              f"200; got {short_repr(hp)}. Set it with --evaluate nas-bench-201:hp=200.")
        if not isinstance(target.genotype, Nb201Genotype):
            raise ConfigError(f"The nas-bench-201 evaluator looks up NAS-Bench-201 cells only, and this genotype is "
                              f"of the {target.space.name} search space. Evaluate a genotype of the {SPACE} space "
                              f"(a search with --space {SPACE}), or use an evaluator that trains or scores the "
                              f"network itself (proxy-train).")
        path = _benchmark_path(target.benchmark_file)
        api = load_api(path)
        arch = target.genotype.to_str()
        index = api.query_index_by_arch(arch)
        if index < 0:
            raise ConfigError(f"The architecture {arch} is not in the benchmark file {path}. Every NAS-Bench-201 "
                              f"cell is in the official releases ({', '.join(RELEASES)}); check that the file is "
                              f"one of them.")
        try:
            info = api.get_more_info(index, dataset, hp=str(hp), is_random=False)
        except (KeyError, ValueError) as error:
            raise ConfigError(f"The benchmark file {path} holds no {dataset} results at hp={hp} for {arch} "
                              f"({_cause(error)}). Choose another dataset or hp (the v1_0 file has 12-epoch results "
                              f"only for cifar10-valid), or use the {RELEASES[-1]} file.") from None
        return {"nb201_test_acc": _fraction(info.get("test-accuracy")),
                "nb201_valid_acc": _fraction(info.get("valid-accuracy"))}


@hookimpl
def register_evaluators() -> dict[str, Nb201Lookup]:
    return {"nas-bench-201": Nb201Lookup()}
