"""A broken plugin never breaks the CLI; ``nasbench-pc plugins`` reports it; ``--plugin`` loads a module (issue 10)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from nasbench_pc import hookimpl, registry
from nasbench_pc.cli import main
from nasbench_pc.console import console
from nasbench_pc.errors import ConfigError, PluginError
from nasbench_pc.interfaces import Method

WARNING = "warning: 1 nasbench_pc plugin failed to load (broken); see `nasbench-pc plugins`"

MY_DARTS = textwrap.dedent('''
    from nasbench_pc import hookimpl
    from nasbench_pc.interfaces import Method

    @hookimpl
    def register_methods():
        return {"my-darts": Method(name="my-darts", description="DARTS under another name")}
''')


def _install(folder: Path, package: str, entry_point: str, code: str) -> None:
    """A package with a ``nasbench_pc`` entry point, importable once ``folder`` is on the path."""
    (folder / package).mkdir()
    (folder / package / "__init__.py").write_text(code)
    dist = folder / f"{package}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[nasbench_pc]\n{entry_point} = {package}\n")


def _cli(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m nasbench_pc ARGS`` with ``folder`` on PYTHONPATH, wide enough that no table cell folds."""
    env = {key: value for key, value in os.environ.items() if key != registry.PLUGINS_ENV}
    env.update(PYTHONPATH=str(folder), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "nasbench_pc", *args], cwd=folder, capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding an installed plugin ``broken`` whose import raises RuntimeError('boom')."""
    folder = tmp_path_factory.mktemp("broken")
    _install(folder, "broken_plugin", "broken", 'raise RuntimeError("boom")\n')
    return folder


@pytest.fixture
def fresh_registry():
    """Load the plugins again after the test, so what it installed or registered is gone."""
    yield
    registry.reload()


def test_help_works_with_a_broken_plugin_installed(broken: Path) -> None:
    out = _cli(broken, "--help")
    assert out.returncode == 0, out.stderr
    assert "--plugin MODULE" in out.stdout


def test_commands_work_and_warn_once_with_a_broken_plugin_installed(broken: Path) -> None:
    out = _cli(broken, "methods")
    assert out.returncode == 0, out.stderr
    assert "darts-1st" in out.stdout
    assert out.stderr.splitlines() == [WARNING]


def test_a_search_runs_with_a_broken_plugin_installed(broken: Path) -> None:
    out = _cli(broken, "search", "--method", "pc-darts", "--dataset", "synthetic", "--epochs", "1",
               "--steps-per-epoch", "1", "--limit", "64", "--out", str(broken / "run"))
    assert out.returncode == 0, out.stderr
    assert out.stderr.count(WARNING) == 1
    assert (broken / "run" / "config.json").is_file()


def test_plugins_lists_the_builtins_then_the_failure(broken: Path) -> None:
    out = _cli(broken, "plugins")
    assert out.returncode == 0, out.stderr
    rows = [" ".join(line.replace("│", " ").split()) for line in out.stdout.splitlines()]
    assert "pc_darts nasbench-pc 0.1.0 nasbench_pc.plugins.pc_darts methods: pc-darts, pc-only, en-only" in rows
    assert "darts_space nasbench-pc 0.1.0 nasbench_pc.plugins.darts_space.space search_spaces: darts" in rows
    assert "broken broken_plugin 0.1 broken_plugin load RuntimeError: boom" in rows
    assert out.stderr == ""  # the listing is the report; no warning on top


def test_an_unknown_name_points_at_the_plugin_that_failed_to_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 fresh_registry: None) -> None:
    _install(tmp_path, "syntax_plugin", "bad_syntax", "def register_methods(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.reload()
    [failure] = registry.failures()
    assert (failure.plugin, failure.hook) == (registry.PluginInfo("bad_syntax", "syntax_plugin", "0.1",
                                                                  "syntax_plugin"), None)
    assert failure.error.startswith("SyntaxError: ")
    assert "darts" in registry.available("method")  # the others loaded
    with pytest.raises(ConfigError, match=r"Unknown method 'random-search'\. Available: beta-darts, darts, darts-1st, "
                                          r"darts-minus, drnas, en-only, fairdarts, gdas, pc-darts, pc-only, "
                                          r"sdarts-adv, "
                                          r"sdarts-rs\. \(the plugin 'bad_syntax' failed to load: "
                                          r"SyntaxError: "):
        registry.get("method", "random-search")


class _ListMethods:
    @hookimpl
    def register_methods(self):
        return [Method(name="listed", description="returned in a list")]


class _RaisingSampler:
    @hookimpl
    def register_samplers(self):
        raise RuntimeError("sampler plugin bug")


class _HalfGood:
    @hookimpl
    def register_methods(self):
        return {"fine": Method(name="fine", description="kept"), "not-a-method": "darts"}


@pytest.fixture
def malformed():
    """Three plugins whose hooks fail in three ways, registered on the loaded manager."""
    pm = registry.plugin_manager()
    for name, plugin in (("listy", _ListMethods()), ("raising", _RaisingSampler()), ("half_good", _HalfGood())):
        pm.register(plugin, name=name)
    registry._registry.cache_clear()
    yield
    registry.reload()


def test_malformed_hooks_lose_only_their_contribution(malformed: None) -> None:
    failed = [(f.plugin.name, f.hook, f.error) for f in registry.failures()]
    assert failed == [
        ("raising", "register_samplers", "RuntimeError: sampler plugin bug"),
        ("listy", "register_methods", "returned a list, not a dict {name: a nasbench_pc.interfaces.Method}"),
        ("half_good", "register_methods", "registered 'not-a-method' as a str, not a nasbench_pc.interfaces.Method"),
    ]
    assert sorted(registry.available("method")) == ["beta-darts", "darts", "darts-1st", "darts-minus", "drnas",
                                                    "en-only", "fairdarts", "fine", "gdas", "pc-darts", "pc-only",
                                                    "sdarts-adv", "sdarts-rs"]
    assert sorted(registry.available("sampler")) == ["full", "partial"]
    with pytest.raises(ConfigError, match=r"\(the plugin 'listy' failed in register_methods: returned a list"):
        registry.get("method", "listed")


def test_the_cli_warns_and_plugins_reports_malformed_hooks(malformed: None) -> None:
    console.width = 200  # rich would fold the tables to 80 columns outside a terminal
    runner = CliRunner()
    result = runner.invoke(main, ["methods"])
    assert result.exit_code == 0
    assert "warning: 3 nasbench_pc plugins failed (raising, listy, half_good); see `nasbench-pc plugins`" \
        in result.output
    result = runner.invoke(main, ["plugins"])
    assert result.exit_code == 0
    rows = [" ".join(line.replace("│", " ").split()) for line in result.output.splitlines()]
    assert "half_good _HalfGood methods: fine, not-a-method" not in rows  # a malformed entry is not registered
    assert "half_good _HalfGood methods: fine" in rows
    assert "listy _ListMethods register_methods returned a list, not a dict {name: a " \
           "nasbench_pc.interfaces.Method}" in rows


def test_plugins_shows_a_name_conflict_and_still_exits_0(fresh_registry: None) -> None:
    class Twin:
        @hookimpl
        def register_samplers(self):
            return {"partial": object}

    registry.plugin_manager().register(Twin(), name="twin")
    registry._registry.cache_clear()
    console.width = 300
    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 0
    assert ("(conflict) register_samplers Two plugins register a sampler named 'partial': partial_channels and "
            "twin.") in " ".join(result.output.replace("│", " ").split())


def test_dash_dash_plugin_loads_a_module_without_an_entry_point(tmp_path: Path) -> None:
    (tmp_path / "mymod.py").write_text(MY_DARTS)
    out = _cli(tmp_path, "--plugin", "mymod", "methods")
    assert out.returncode == 0, out.stderr
    assert "my-darts" in out.stdout and "DARTS under another name" in out.stdout
    assert out.stderr == ""


def test_added_plugin_modules_reach_child_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    fresh_registry: None) -> None:
    (tmp_path / "mymod.py").write_text(MY_DARTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv(registry.PLUGINS_ENV, "")  # recorded, so the test's change is undone
    registry.add_plugin_modules(["mymod"])
    assert os.environ[registry.PLUGINS_ENV] == "mymod"
    assert registry.get("method", "my-darts").description == "DARTS under another name"
    assert registry.loaded_plugins()[-1] == registry.PluginInfo("mymod", registry.AD_HOC, "", "mymod")
    # what `compare --devices` does: a worker process started from here
    child = subprocess.run([sys.executable, "-c", "import nasbench_pc; print('my-darts' in nasbench_pc.available("
                            "'method'))"], capture_output=True, text=True, timeout=300)
    assert child.stdout.strip() == "True", child.stderr


def test_dash_dash_plugin_of_a_missing_module_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(registry.PLUGINS_ENV, "")  # recorded, so the test's change is undone
    result = CliRunner().invoke(main, ["--plugin", "no.such.module", "methods"])
    assert result.exit_code == 2
    message = " ".join(result.output.replace("│", " ").split())
    assert ("The plugin module 'no.such.module' given with --plugin (or NASBENCH_PC_PLUGINS) could not be "
            "imported: ModuleNotFoundError: No module named 'no'.") in message
    assert "Traceback" not in result.output
    assert os.environ[registry.PLUGINS_ENV] == ""  # left as it was
    assert "darts" in registry.available("method")


def test_a_plugin_module_with_an_unknown_hook_is_refused_when_asked_for(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "typo_mod.py").write_text("from nasbench_pc import hookimpl\n\n@hookimpl\ndef register_method():\n"
                                          "    return {}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(registry.PLUGINS_ENV, "")  # recorded, so the test's change is undone
    with pytest.raises(PluginError, match=r"The plugin module 'typo_mod' given with --plugin \(or NASBENCH_PC_PLUGINS\)"
                                          r" cannot be registered: The nasbench_pc plugin 'typo_mod' \(typo_mod\) "
                                          r"implements the unknown hook\(s\) 'register_method' \(did you mean "
                                          r"'register_methods'\?\)"):
        registry.add_plugin_modules(["typo_mod"])
    assert os.environ[registry.PLUGINS_ENV] == ""


def test_a_plugin_imported_before_nasbench_pc_is_registered_once_its_import_finishes(tmp_path: Path) -> None:
    # importing the plugin first runs `import nasbench_pc` inside it, which loads the entry points while the
    # plugin's hooks are not yet defined; it must still count once its own import is done
    _install(tmp_path, "early_plugin", "early", MY_DARTS)
    code = "import early_plugin, nasbench_pc; print(sorted(nasbench_pc.available('method')))"
    env = {key: value for key, value in os.environ.items() if key != registry.PLUGINS_ENV}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**env, "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "'my-darts'" in done.stdout
