"""Every code block of docs/plugins.md is exercised: a listing of a file of the example package
(docs/examples/nasbench-pc-example, first line ``# <path>``) equals that file, the layout block lists the package,
the small Python examples run and their hook implementations match hookspecs.py, and the shell blocks run in order
in a temporary folder holding a copy of the package, which one of them pip-installs (offline, into that folder)."""

import json
import os
import re
import shutil
import subprocess
import types
from pathlib import Path

import pluggy
import pytest

from nasbench_pc import hookspecs

ROOT = Path(__file__).parent.parent
DOC = ROOT / "docs" / "plugins.md"
PACKAGE = ROOT / "docs" / "examples" / "nasbench-pc-example"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
LISTING = re.compile(r"# ([\w./-]+\.(?:py|toml))")


def _kind(lang: str, body: str) -> str:
    """'listing' (a package file), 'layout', 'example' (other Python), 'shell', or what no test exercises."""
    if lang in ("python", "toml") and LISTING.fullmatch(body.split("\n", 1)[0]):
        return "listing"
    return {"python": "example", "text": "layout", "bash": "shell"}.get(lang, f"unexercised {lang or 'plain'} block")


def _blocks(kind: str) -> list[str]:
    """The bodies of the doc's blocks of ``kind``, in order."""
    return [body for lang, body in BLOCK.findall(DOC.read_text()) if _kind(lang, body) == kind]


def _package_files() -> set[str]:
    """The package's files (paths relative to it), without what building or running it leaves."""
    return {path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*") if path.is_file()
            and not any(part in ("__pycache__", "build") or part.endswith(".egg-info")
                        for part in path.relative_to(PACKAGE).parts)}


def test_every_block_is_one_the_tests_exercise():
    kinds = [_kind(lang, body) for lang, body in BLOCK.findall(DOC.read_text())]
    assert set(kinds) == {"listing", "layout", "example", "shell"}
    assert (kinds.count("listing"), kinds.count("shell")) == (7, 9)


def test_each_listing_is_the_file_it_names():
    shown = {}
    for body in _blocks("listing"):
        path = LISTING.fullmatch(body.split("\n", 1)[0]).group(1)
        assert body == (PACKAGE / path).read_text(), f"docs/plugins.md shows an outdated {path}"
        shown[path] = body
    assert set(shown) == _package_files() - {"nasbench_pc_example/__init__.py"}  # all but a docstring


def test_the_layout_block_lists_the_package():
    (layout,) = _blocks("layout")
    names = {line.split()[0].rstrip("/") for line in layout.splitlines()}
    files = _package_files()
    assert names == {PACKAGE.name} | {part for path in files for part in path.split("/")}


def test_the_python_examples_run_and_implement_hooks_that_hookspecs_names():
    examples = _blocks("example")
    assert len(examples) == 3
    for i, body in enumerate(examples):
        module = types.ModuleType(f"plugins_doc_example_{i}")
        exec(compile(body, f"docs/plugins.md python example {i}", "exec"), module.__dict__)
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        pm.register(module)  # refuses an implementation naming an argument its spec lacks
        pm.check_pending()  # refuses an implementation of a hook no spec names
        assert pm.get_hookcallers(module), f"python example {i} implements no hook"


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, str]]]:
    """Run the doc's shell blocks in order in a temporary folder; (that folder, [(block, its output)])."""
    folder = tmp_path_factory.mktemp("plugins-doc")
    shutil.copytree(PACKAGE, folder / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    site = folder / "site"
    # `pip install ./nasbench-pc-example` offline, into `site`: the index, the dependencies (nasbench-pc and torch
    # are installed already) and build isolation (it would fetch setuptools) are turned off from the environment;
    # pip reads PIP_NO_BUILD_ISOLATION inverted, so "false" turns isolation off
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
           "COLUMNS": "200", "PIP_NO_INDEX": "1", "PIP_NO_DEPS": "1", "PIP_TARGET": str(site),
           "PIP_NO_BUILD_ISOLATION": "false"}
    ran = []
    for body in _blocks("shell"):
        out = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", body], cwd=folder, env=env, capture_output=True,
                             text=True, timeout=600)
        assert out.returncode == 0, f"{body}\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
        ran.append((body, " ".join((out.stdout + out.stderr).replace("│", " ").split())))
    return folder, ran


def _output(ran: list[tuple[str, str]], command: str) -> str:
    (output,) = [output for body, output in ran if command in body]
    return output


def test_plugin_loads_an_uninstalled_module_for_one_command(shell):
    _, ran = shell
    output = _output(ran, "--plugin nasbench_pc_example.sampler")
    assert "Supernet of pc-random" in output and "random-partial {'k': 2}" in output


def test_the_installed_package_shows_in_plugins_and_methods(shell):
    folder, ran = shell
    assert (folder / "site" / "nasbench_pc_example-0.1.0.dist-info" / "entry_points.txt").is_file()
    output = _output(ran, "nasbench-pc plugins")
    for name, module in (("csv_log", "csv_log"), ("param_count", "evaluator"), ("pc_random", "method"),
                         ("random_partial", "sampler"), ("snas", "snas")):
        assert f"{name} nasbench-pc-example 0.1.0 nasbench_pc_example.{module}" in output
    assert "pc-random random-partial k=4 edge 1 256 0.1 0.0006 15" in output  # the methods table
    assert "param-count params (search shape) (lower is better)" in output  # the evaluators table


def test_the_search_writes_metrics_csv_and_the_evaluations_are_kept(shell):
    folder, ran = shell
    output = _output(ran, "cut -d, -f1-6 runs/pc-random/metrics.csv")
    assert re.search(r"epoch,lr,arch_updates,train_loss,train_acc,arch_loss 1,[^ ]+ 2,[^ ]+$", output), output
    kept = folder / "runs" / "pc-random" / "evaluations"
    params = {path.name: json.loads(path.read_text())["metrics"]["params"] for path in kept.glob("param-count*.json")}
    default = params.pop("param-count.json")
    (hundred,) = params.values()
    assert hundred - default == 90 * (128 + 1)  # 90 more classes on the quick DARTS supernet's 128 features


def test_the_outside_family_member_anneals_its_temperature_in_metrics_jsonl(shell):
    folder, ran = shell
    records = [json.loads(line) for line in (folder / "runs" / "snas" / "metrics.jsonl").read_text().splitlines()]
    assert [r["method"]["tau"] for r in records] == pytest.approx([1.0, 1.0 - 0.97 / 150])
    assert json.loads((folder / "runs" / "snas" / "config.json").read_text())["config"]["method_options"] == {
        "tau0": 1.0, "tau_min": 0.03, "anneal_epochs": 150}
    assert '"tau": 1.0 "tau": 0.99353' in _output(ran, "--method snas")


def test_compare_shows_the_evaluators_column(shell):
    folder, ran = shell
    assert "params (search shape)" in _output(ran, "nasbench-pc compare pc-darts pc-random")
    header = (folder / "runs" / "compare" / "compare.csv").read_text().splitlines()[0].split(",")
    assert "params (search shape)" in header


def test_the_packages_tests_and_a_failing_plugin_module(shell):
    _, ran = shell
    assert "5 passed" in _output(ran, "python3 -m pytest tests")
    output = _output(ran, "nasbench_pc_example.smapler")
    assert "could not be imported: ModuleNotFoundError: No module named 'nasbench_pc_example.smapler'" in output
    assert "exit status 2" in output and "Traceback" not in output
