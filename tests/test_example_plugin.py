"""The example plugin package of docs/plugins.md (docs/examples/nasbench-pc-example): pip-installed offline into a
temporary folder, found through the ``nasbench_pc`` entry-point group and used from the command line; its evaluator
and CSV log are also called directly, loaded from their files (which registers nothing in this process)."""

import ast
import csv
import importlib.metadata
import importlib.util
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from offline_install import install

from nasbench_pc import ConfigError
from nasbench_pc.networks.cost import genotype_cost
from nasbench_pc.results.evaluation import target_from_genotype

PACKAGE = Path(__file__).parent.parent / "docs" / "examples" / "nasbench-pc-example"
SOURCE = PACKAGE / "nasbench_pc_example"
# The public plugin API: nothing of the built-in plugins, nothing of the harness's internals.
PUBLIC = {"nasbench_pc", "nasbench_pc.interfaces", "nasbench_pc.errors", "nasbench_pc.supernet.mixed_op",
          "nasbench_pc.results.evaluation", "nasbench_pc.settings", "nasbench_pc.schedules"}
TINY = ("--limit", "64", "--batch-size", "16", "--steps-per-epoch", "2", "--device", "cpu")


@dataclass(frozen=True)
class Installed:
    env: dict[str, str]  # the environment of a process that has the package
    source: Path  # the copy pip built it from
    site: Path  # the folder it is installed in


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """nasbench-pc-example, installed by pip from a copy of its source (so no build files land in the repository)
    into a folder that PYTHONPATH names."""
    source, site, env = install(PACKAGE, tmp_path_factory.mktemp("example"))
    assert (site / "nasbench_pc_example-0.1.0.dist-info" / "entry_points.txt").read_text().split() == [
        "[nasbench_pc]", "csv_log", "=", "nasbench_pc_example.csv_log", "param_count", "=",
        "nasbench_pc_example.evaluator", "pc_random", "=", "nasbench_pc_example.method", "random_partial", "=",
        "nasbench_pc_example.sampler", "snas", "=", "nasbench_pc_example.snas"]
    return Installed(env, source, site)


@pytest.fixture(scope="module")
def env(installed: Installed) -> dict[str, str]:
    return installed.env


def _cli(env: dict[str, str], cwd: Path, *args: str, status: int = 0) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "nasbench_pc", *args], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == status, out.stdout[-2000:] + out.stderr[-4000:]
    return out


def _load(name: str) -> ModuleType:
    """A module of the package, loaded from its file under a private name: its hooks are plain functions here."""
    spec = importlib.util.spec_from_file_location(f"_example_{name}", SOURCE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # a dataclass looks its module up while it is created
    spec.loader.exec_module(module)
    return module


def test_the_package_imports_only_public_nasbench_pc_modules_torch_and_the_standard_library(installed):
    modules = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module)
            elif isinstance(node, ast.Import):
                modules |= {alias.name for alias in node.names}
    ours = {m for m in modules if m.split(".")[0] == "nasbench_pc"}
    assert ours <= PUBLIC and ours >= {"nasbench_pc", "nasbench_pc.errors", "nasbench_pc.results.evaluation",
                                       "nasbench_pc.interfaces"}
    others = {m.split(".")[0] for m in modules} - {"nasbench_pc", "nasbench_pc_example", "pytest"}
    assert others - set(sys.stdlib_module_names) == {"torch"}
    dist = importlib.metadata.PathDistribution(installed.site / "nasbench_pc_example-0.1.0.dist-info")
    assert (dist.metadata["Name"], dist.requires) == ("nasbench-pc-example", ["nasbench-pc", "torch>=2.1"])


def test_plugins_lists_each_plugin_with_its_distribution_module_and_registrations(env, tmp_path):
    out = _cli(env, tmp_path, "plugins")
    for name, module, registers in (("csv_log", "csv_log", ""), ("param_count", "evaluator", "evaluators: param-count"),
                                    ("pc_random", "method", "methods: pc-random"),
                                    ("random_partial", "sampler", "samplers: random-partial"),
                                    ("snas", "snas", "methods: snas")):
        row = rf"│ {name} +│ nasbench-pc-example 0\.1\.0 +│ nasbench_pc_example\.{module} +│ {registers} *│"
        assert re.search(row, out.stdout), out.stdout
    assert "failed" not in out.stdout + out.stderr


def test_a_pc_random_search_writes_one_csv_row_per_epoch_with_the_scalar_metrics(env, tmp_path):
    run = tmp_path / "run"
    _cli(env, tmp_path, "search", "--method", "pc-random", "--epochs", "2", *TINY, "--out", str(run))
    config = json.loads((run / "config.json").read_text())["config"]
    assert (config["method"], config["sampler_options"]) == ("pc-random", {"k": 4})
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    with (run / "metrics.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    scalar = [k for k, v in records[0].items() if isinstance(v, (bool, int, float, str))]
    assert reader.fieldnames == scalar and scalar[:3] == ["epoch", "lr", "arch_updates"]
    assert "genotype" not in scalar and "arch_weights" not in scalar and "train_loss" in scalar
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert [row["train_loss"] for row in rows] == [repr(r["train_loss"]) for r in records]


def test_the_packages_own_tests_pass(installed):
    # tests/test_sampler.py: fresh channels each training step, the same under one seed, one seeded draw in eval
    # mode, max-pooled bypass on stride 2, K not dividing C refused, pc-random starting from pc-darts' weights
    out = subprocess.run([sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"],
                         cwd=installed.source, env=installed.env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "5 passed" in out.stdout, out.stdout[-3000:] + out.stderr[-2000:]


def test_a_k_that_does_not_divide_the_channels_is_one_paragraph_and_exit_2(env, tmp_path):
    out = _cli(env, tmp_path, "supernet", "pc-random", "--init-channels", "6", status=2)
    text = " ".join(out.stderr.replace("│", " ").split())
    assert "K=4 does not divide the 6 channels of a cell edge" in text and "Choose K from [1, 2, 3, 6]" in text
    assert "Traceback" not in out.stdout + out.stderr


def test_compare_adds_the_param_count_column_of_each_runs_genotype(env, tmp_path):
    save = tmp_path / "cmp"
    _cli(env, tmp_path, "compare", "pc-darts", "pc-random", "--evaluate", "param-count", "--epochs", "1", *TINY,
         "--save", str(save))
    rows = {row["method"]: row for row in json.loads((save / "compare.json").read_text())}
    with (save / "compare.csv").open(newline="") as f:
        table = {row["method"]: row for row in csv.DictReader(f)}
    for method in ("pc-darts", "pc-random"):
        genotype = json.loads((save / "runs" / f"{method}-seed0" / "genotype.json").read_text())
        params = genotype_cost(genotype, init_channels=8, layers=5).params  # the quick preset's supernet shape
        assert rows[method]["evaluations"]["params"] == {"label": "params (search shape)", "higher_is_better": False,
                                                         "mean": params, "std": None}
        assert table[method]["params (search shape)"] == f"{params:,}"


def test_param_count_counts_the_derived_network_at_the_supernet_shape(tmp_path):
    evaluator = _load("evaluator").ParamCount()
    target = target_from_genotype("PC_DARTS_cifar", tmp_path)  # the quick preset's DARTS shape: C=8, 5 cells
    assert target.network_shape() == (8, 5)
    ten = evaluator.evaluate(target, num_classes=10, in_channels=3)["params"]
    assert ten == genotype_cost("PC_DARTS_cifar", init_channels=8, layers=5).params == 66770
    # 100 classes: 90 more outputs of the 128-feature classifier (4 nodes x 32 channels after two reductions)
    assert evaluator.evaluate(target, num_classes=100, in_channels=3)["params"] - ten == 90 * (128 + 1)
    with pytest.raises(ConfigError, match="at least one class and one input channel, got num_classes=0"):
        evaluator.evaluate(target, num_classes=0, in_channels=3)


def test_the_csv_log_appends_rows_rewrites_on_resume_and_widens_for_a_new_column(tmp_path):
    log = _load("csv_log")
    r1 = {"epoch": 1, "loss": 0.5, "collapsed": True, "genotype": {"space": "darts"}}
    r2 = {"epoch": 2, "loss": 0.25, "collapsed": False, "genotype": {"space": "darts"}}
    log.on_run_start(run_dir=tmp_path, history=[])
    assert (tmp_path / "metrics.csv").read_text() == ""
    log.on_epoch_end(run_dir=tmp_path, record=r1, history=[r1])
    log.on_epoch_end(run_dir=tmp_path, record=r2, history=[r1, r2])
    assert (tmp_path / "metrics.csv").read_text() == "epoch,loss,collapsed\n1,0.5,True\n2,0.25,False\n"
    # a resume from the checkpoint of epoch 1 drops the row of epoch 2, which is run again
    log.on_run_start(run_dir=tmp_path, history=[r1])
    assert (tmp_path / "metrics.csv").read_text() == "epoch,loss,collapsed\n1,0.5,True\n"
    r2b = {**r2, "loss": 0.125, "note": "x"}
    log.on_epoch_end(run_dir=tmp_path, record=r2b, history=[r1, r2b])
    log.on_run_end(run_dir=tmp_path)
    assert (tmp_path / "metrics.csv").read_text() == "epoch,loss,collapsed,note\n1,0.5,True,\n2,0.125,False,x\n"
    assert log._open == {}
    log.on_run_start(run_dir=None, history=[r1])  # a run without a folder: nothing to write
    log.on_epoch_end(run_dir=None, record=r1, history=[r1])
    assert log._open == {}
