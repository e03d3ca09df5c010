"""The nas-bench-201 lookup evaluator: architecture strings, every error path, and the query plumbing.

No benchmark numbers are shipped or fabricated: the release files are multi-GB downloads these machines cannot
reach. The plumbing tests put a stand-in API object in place of the loader and check only what we send it and how
we convert what it returns; its numbers are arbitrary. Tests that read a file through the official API package
(``nas-bench-201``, import name ``nas_201_api``) are skipped without it; CI installs it.
"""

import math
import re
import sys
import types
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from nasbench_pc.errors import ConfigError
from nasbench_pc.evaluation import evaluate, target_from_genotype
from nasbench_pc.plugins.nas_bench_201 import Nb201Genotype
from nasbench_pc.plugins.nas_bench_201 import benchmark as nb201_benchmark

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
# The example cell of the API's own docstrings (str2lists / str2matrix): mostly 'none' edges.
SPARSE = "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|"
NO_API = "the official API package nas-bench-201 (nas_201_api) is not installed; CI installs it"


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test starts with no benchmark loaded and leaves none behind."""
    nb201_benchmark.load_api.cache_clear()
    yield
    nb201_benchmark.load_api.cache_clear()


@pytest.fixture
def bench_file(tmp_path: Path) -> Path:
    """An existing file for the checks that run before the file is read (its content is never looked at)."""
    path = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
    path.write_bytes(b"")
    return path


def _target(tmp_path: Path, genotype: str = BEST, benchmark_file: str | Path | None = None):
    return target_from_genotype(genotype, tmp_path / "out",
                                benchmark_file=None if benchmark_file is None else str(benchmark_file))


# ------------------------------------------------------------------------------------------------------------
# genotype -> architecture string


@pytest.mark.parametrize(("ops", "text"), [
    (["nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3", "nor_conv_3x3"], BEST),
    (["nor_conv_1x1", "none", "none", "none", "none", "skip_connect"], SPARSE),
])
def test_genotype_writes_the_benchmark_string(ops, text):
    assert Nb201Genotype.from_ops(ops).to_str() == text


def test_official_parser_reads_our_strings_back():
    api = pytest.importorskip("nas_201_api", reason=NO_API)
    best = Nb201Genotype.from_ops(["nor_conv_3x3"] * 3 + ["skip_connect"] + ["nor_conv_3x3"] * 2)
    sparse = Nb201Genotype.from_ops(["nor_conv_1x1", "none", "none", "none", "none", "skip_connect"])
    assert api.NASBench201API.str2lists(best.to_str()) == [
        (("nor_conv_3x3", 0),),
        (("nor_conv_3x3", 0), ("nor_conv_3x3", 1)),
        (("skip_connect", 0), ("nor_conv_3x3", 1), ("nor_conv_3x3", 2)),
    ]
    assert api.NASBench201API.str2lists(sparse.to_str()) == list(sparse.nodes)
    # The matrix the API's docstring gives for this cell (op indices: none 0, skip 1, conv1x1 2).
    assert api.NASBench201API.str2matrix(sparse.to_str()).tolist() == [
        [0, 0, 0, 0], [2, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]]


# ------------------------------------------------------------------------------------------------------------
# errors


def test_darts_genotype_is_refused(tmp_path, bench_file):
    with pytest.raises(ConfigError, match=r"NAS-Bench-201 cells only, and this genotype is of the darts search"):
        evaluate(_target(tmp_path, "PC_DARTS_cifar", bench_file), "nas-bench-201")


def test_missing_package_says_how_to_install(tmp_path, bench_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "nas_201_api", None)  # import nas_201_api now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'nasbench-pc\[benchmark\]' \(or pip install nas-bench-201\)"):
        evaluate(_target(tmp_path, benchmark_file=bench_file), "nas-bench-201")


def test_no_benchmark_file_names_the_option_and_the_release(tmp_path):
    with pytest.raises(ConfigError) as error:
        evaluate(_target(tmp_path), "nas-bench-201")
    assert "Pass --benchmark-file PATH" in str(error.value)
    assert "NAS-Bench-201-v1_1-096897.pth" in str(error.value)
    assert "never downloads it" in str(error.value)


def test_missing_file_names_the_path_and_the_flag(tmp_path):
    missing = tmp_path / "NAS-Bench-201-v1_0-e61699.pth"
    with pytest.raises(ConfigError) as error:
        evaluate(_target(tmp_path, benchmark_file=missing), "nas-bench-201")
    assert f"{missing} does not exist" in str(error.value)
    assert "--benchmark-file" in str(error.value)


def test_folder_is_not_a_benchmark_file(tmp_path):
    with pytest.raises(ConfigError, match="is a folder, not a file"):
        evaluate(_target(tmp_path, benchmark_file=tmp_path), "nas-bench-201")


def test_text_file_names_the_path_and_the_cause(tmp_path):
    pytest.importorskip("nas_201_api", reason=NO_API)
    text = tmp_path / "bench.pth"
    text.write_text("not a benchmark\n")
    with pytest.raises(ConfigError) as error:
        evaluate(_target(tmp_path, benchmark_file=text), "nas-bench-201")
    message = str(error.value)
    assert message.startswith(f"Could not read the NAS-Bench-201 benchmark file {text}: ")
    assert message.split(f"{text}: ", 1)[1].split(". --benchmark-file takes")[0].strip()  # the cause, as torch says
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in message  # loading it fully would not help a text file


@pytest.mark.skipif(tuple(map(int, torch.__version__.split(".")[:2])) < (2, 6),
                    reason="torch.load refuses unknown classes by default only since torch 2.6")
def test_a_class_torch_refuses_is_named_with_the_way_out(tmp_path):
    pytest.importorskip("nas_201_api", reason=NO_API)
    path = tmp_path / "bench.pth"
    torch.save({"ratio": Fraction(1, 2)}, path)
    with pytest.raises(ConfigError) as error:
        evaluate(_target(tmp_path, benchmark_file=path), "nas-bench-201")
    assert "torch's weights-only loader refused it: Unsupported global: GLOBAL fractions.Fraction" in str(error.value)
    assert str(error.value).endswith("setting TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 lets torch unpickle it fully.")


def test_numpy_values_in_the_file_pass_torchs_safe_loader(tmp_path):
    """The release files hold numpy floats, which torch >= 2.6 refuses by default: this file gets past torch.load
    (saved in the old non-zip format, as in 2020) and fails only at the API's own check of its keys."""
    pytest.importorskip("nas_201_api", reason=NO_API)
    path = tmp_path / "bench.pth"
    torch.save({"params": np.float64(1.5), "counts": np.arange(3)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(ConfigError) as error:
        evaluate(_target(tmp_path, benchmark_file=path), "nas-bench-201")
    assert "AssertionError: Can not find key[meta_archs] in the dict" in str(error.value)
    assert "weights-only" not in str(error.value)


@pytest.mark.parametrize(("options", "expected"), [
    ({"dataset": "cifar-10"}, r"Unknown NAS-Bench-201 dataset 'cifar-10'\. Did you mean 'cifar10'\? Available: "
                              r"ImageNet16-120, cifar10, cifar10-valid, cifar100\."),
    ({"hp": 90}, r"training schedule in epochs, 12 or 200; got 90\."),
])
def test_bad_options_list_the_choices(tmp_path, bench_file, options, expected):
    with pytest.raises(ConfigError, match=expected):
        evaluate(_target(tmp_path, benchmark_file=bench_file), "nas-bench-201", options)


# ------------------------------------------------------------------------------------------------------------
# query plumbing, against a stand-in API (our plumbing only: its numbers are arbitrary, not the benchmark's)


class StandInApi:
    """Answers like NASBench201API: query_index_by_arch -> index or -1, get_more_info -> percentages."""

    def __init__(self, table: dict[str, int], info: dict[str, float] | Exception | None = None):
        self.table = table
        self.info = info
        self.calls: list[tuple] = []

    def query_index_by_arch(self, arch):
        self.calls.append(("query_index_by_arch", arch))
        return self.table.get(arch, -1)

    def get_more_info(self, index, dataset, iepoch=None, hp="12", is_random=True):
        self.calls.append(("get_more_info", index, dataset, iepoch, hp, is_random))
        if isinstance(self.info, Exception):
            raise self.info
        return dict(self.info)


@pytest.fixture
def stand_in(monkeypatch):
    """Install a stand-in API as the loader's result; returns (install(api), the paths the loader was given)."""
    loaded: list[str] = []

    def install(api: StandInApi) -> StandInApi:
        monkeypatch.setattr(nb201_benchmark, "load_api", lambda path: loaded.append(path) or api)
        return api

    return install, loaded


def test_lookup_sends_the_string_dataset_and_hp_and_returns_fractions(tmp_path, bench_file, stand_in):
    install, loaded = stand_in
    api = install(StandInApi({BEST: 42}, {"test-accuracy": 73.12, "valid-accuracy": 70.88, "train-accuracy": 99.0}))
    result = evaluate(_target(tmp_path, benchmark_file=bench_file), "nas-bench-201", {"dataset": "cifar100", "hp": 12})
    assert loaded == [str(bench_file.resolve())]
    assert api.calls == [("query_index_by_arch", BEST), ("get_more_info", 42, "cifar100", None, "12", False)]
    assert result.metrics == {"nb201_test_acc": pytest.approx(0.7312), "nb201_valid_acc": pytest.approx(0.7088)}


def test_defaults_are_cifar10_at_200_epochs_without_valid_accuracy(tmp_path, bench_file, stand_in):
    install, _ = stand_in
    api = install(StandInApi({SPARSE: 3}, {"test-accuracy": 12.5}))  # 'cifar10' has no validation split
    result = evaluate(_target(tmp_path, SPARSE, bench_file), "nas-bench-201")
    assert api.calls[-1] == ("get_more_info", 3, "cifar10", None, "200", False)
    assert result.metrics["nb201_test_acc"] == 0.125
    assert math.isnan(result.metrics["nb201_valid_acc"])


def test_architecture_not_in_the_file_names_the_string(tmp_path, bench_file, stand_in):
    install, _ = stand_in
    install(StandInApi({}))
    expected = f"The architecture {SPARSE} is not in the benchmark file {bench_file.resolve()}."
    with pytest.raises(ConfigError, match=re.escape(expected)):
        evaluate(_target(tmp_path, SPARSE, bench_file), "nas-bench-201")


def test_dataset_without_results_at_that_hp_is_a_config_error(tmp_path, bench_file, stand_in):
    install, _ = stand_in
    install(StandInApi({BEST: 0}, KeyError("cifar100")))  # the API's lookup of a dataset the file lacks
    with pytest.raises(ConfigError, match=r"holds no cifar100 results at hp=12 for .* \(KeyError: 'cifar100'\)"):
        evaluate(_target(tmp_path, benchmark_file=bench_file), "nas-bench-201", {"dataset": "cifar100", "hp": 12})


# ------------------------------------------------------------------------------------------------------------
# loading


def test_a_file_is_loaded_once_per_path(tmp_path, monkeypatch):
    built: list[tuple[str, bool]] = []

    class CountingApi:
        def __init__(self, path, verbose=True):
            built.append((path, verbose))

    monkeypatch.setitem(sys.modules, "nas_201_api", types.SimpleNamespace(NASBench201API=CountingApi))
    first = nb201_benchmark.load_api(str(tmp_path / "a.pth"))
    assert nb201_benchmark.load_api(str(tmp_path / "a.pth")) is first
    nb201_benchmark.load_api(str(tmp_path / "b.pth"))
    assert built == [(str(tmp_path / "a.pth"), False), (str(tmp_path / "b.pth"), False)]
