"""A method owns its settings (issue 21): an outside plugin method declares two, ``--method-option`` reaches its hooks,
config.json records every one, ``methods`` and ``search --help`` show them, ``--resume`` runs with them, and a
wrong key or value is one clear paragraph."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from nasbench_pc.errors import ConfigError
from nasbench_pc.records import Method
from nasbench_pc.search.config import SearchConfig, method_settings
from nasbench_pc.settings import SettingError, declare, positive_finite

TEMPERED = textwrap.dedent('''
    """An outside method: PC-DARTS with a temperature that anneals from tau_max over the epochs."""
    from nasbench_pc import hookimpl
    from nasbench_pc.interfaces import Method
    from nasbench_pc.settings import declare, positive_finite


    class Annealing:
        def __init__(self, tau_max, decay):
            self.tau_max, self.decay = tau_max, decay

        def epoch_start(self, *, epoch, epochs, supernet):
            tau = self.tau_max * self.decay ** epoch
            supernet.tau = tau  # what GDAS would read in its forward
            return {"tau": tau, "alphas": len(supernet.arch_parameters())}


    @hookimpl
    def register_methods():
        return {"tempered": Method(
            name="tempered", description="PC-DARTS with an annealed temperature (outside plugin)",
            sampler="partial", sampler_options={"k": 2}, normalizer="edge",
            settings=(declare("tau_max", 10.0, "Temperature of the first epoch.", check=positive_finite()),
                      declare("decay", 0.5, "Factor per epoch.", check=positive_finite())),
            hooks=Annealing)}
''')

ARGS = ["--method", "tempered", "--dataset", "synthetic", "--epochs", "3", "--limit", "96", "-C", "4", "--layers",
        "3", "--image-size", "8", "--batch-size", "16", "--threads", "1", "-q"]


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tempered")
    (folder / "tempered.py").write_text(TEMPERED)
    return folder


def _cli(folder: Path, *args: str, wait: bool = True) -> subprocess.CompletedProcess | subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(folder), "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "nasbench_pc", "--plugin", "tempered", *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=600)


def _flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_method_option_reaches_the_method_and_is_recorded(outside: Path) -> None:
    run = outside / "run"
    done = _cli(outside, "search", *ARGS, "--method-option", "tau_max=4", "--out", str(run))
    assert done.returncode == 0, done.stdout + done.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["config"]["method_options"] == {"tau_max": 4.0, "decay": 0.5}  # every setting, typed
    assert config["method"]["options"] == {"tau_max": 4.0, "decay": 0.5}
    # the hook ran before each epoch with the given tau_max and the default decay, on the real supernet
    assert [r["method"] for r in _metrics(run)] == [{"tau": 4.0, "alphas": 4}, {"tau": 2.0, "alphas": 4},
                                                    {"tau": 1.0, "alphas": 4}]


def test_resume_runs_with_the_recorded_settings(outside: Path) -> None:
    full, stopped = outside / "full", outside / "stopped"
    reference = _cli(outside, "search", *ARGS, "--method-option", "tau_max=3", "--method-option", "decay=0.25",
                     "--out", str(full))
    assert reference.returncode == 0, reference.stdout + reference.stderr
    victim = _cli(outside, "search", *ARGS, "--method-option", "tau_max=3", "--method-option", "decay=0.25",
                  "--out", str(stopped), wait=False)
    deadline = time.monotonic() + 300
    while not ((stopped / "metrics.jsonl").is_file() and (stopped / "metrics.jsonl").read_text().strip()):
        assert victim.poll() is None and time.monotonic() < deadline, victim.communicate()[0]
        time.sleep(0.05)
    victim.send_signal(signal.SIGTERM)
    assert victim.wait(timeout=300) == 128 + signal.SIGTERM
    assert len(_metrics(stopped)) < 3
    resumed = _cli(outside, "search", "--resume", str(stopped), "--threads", "1", "-q")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert [r["method"]["tau"] for r in _metrics(stopped)] == [3.0, 0.75, 0.1875]
    assert [r["genotype"] for r in _metrics(stopped)] == [r["genotype"] for r in _metrics(full)]


def test_methods_and_search_help_show_the_settings(outside: Path) -> None:
    listing = _cli(outside, "methods")
    assert listing.returncode == 0, listing.stderr
    assert "tempered tau_max 10.0 float Temperature of the first epoch." in _flat(listing.stdout)
    assert "tempered decay 0.5 float Factor per epoch." in _flat(listing.stdout)
    detail = _cli(outside, "methods", "tempered")
    assert "tau_max=10.0: Temperature of the first epoch." in _flat(detail.stdout)
    helped = _cli(outside, "search", "--help")
    assert "tempered: tau_max=10.0, decay=0.5." in _flat(helped.stdout)  # after the built-in methods' settings


@pytest.mark.parametrize("option, message", [
    ("tau_mx=1", "The method tempered has no setting 'tau_mx'. Did you mean 'tau_max'? It has decay, tau_max "
                 "(`nasbench-pc methods` lists them)."),
    ("tau_max=-1", "--method-option tau_max must be a positive finite number, got -1.0 (the method tempered)."),
    ("tau_max=hot", "The setting tau_max of the method tempered takes a float (its default is 10.0), got 'hot'."),
])
def test_a_wrong_key_or_value_is_one_paragraph(outside: Path, option: str, message: str) -> None:
    result = _cli(outside, "search", *ARGS, "--method-option", option, "--out", str(outside / "never"))
    assert result.returncode == 2
    assert message in _flat(result.stderr) and "Traceback" not in result.stderr
    assert not (outside / "never").exists()


def test_a_method_without_settings_refuses_any() -> None:
    with pytest.raises(ConfigError, match="The method darts has no setting 'tau'. It declares no settings."):
        SearchConfig(method="darts", method_options={"tau": 1.0}).method_record()


def test_library_errors_name_the_argument_and_the_cli_the_flag() -> None:
    with pytest.raises(SettingError) as caught:
        SearchConfig(method="darts", lr=0.01, lr_min=0.1)
    assert str(caught.value).startswith("lr_min (0.1) is above lr (0.01)")
    assert caught.value.for_cli().startswith("--lr-min (0.1) is above --lr (0.01)")
    method = Method(name="m", description="", settings=(declare("rate", 1.0, check=positive_finite()),))
    with pytest.raises(SettingError) as bad:
        method_settings(method, {"rate": 0})
    assert str(bad.value) == "rate must be a positive finite number, got 0.0 (the method m)."
    assert bad.value.for_cli() == "--method-option rate must be a positive finite number, got 0.0 (the method m)."
    assert method_settings(method, {"rate": 3}) == {"rate": 3.0}


def test_one_field_is_the_whole_definition_of_a_setting() -> None:
    """A setting added as one field gets its option (flag, type, help), its check and its config.json round trip."""
    import dataclasses

    import click
    from click.testing import CliRunner

    from nasbench_pc.cli._settings import settings_options
    from nasbench_pc.settings import at_least, setting

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Extended(SearchConfig):
        accumulate: int = setting(1, "Weight-split batches accumulated per weight step.", check=at_least(1))

    @click.command()
    @settings_options(Extended, only=("accumulate", "lr"))
    def command(**given: object) -> None:
        config = Extended(method="darts", **{k: v for k, v in given.items() if v is not None})
        click.echo(f"{config.accumulate} {Extended.from_dict(config.to_dict()).accumulate}")

    runner = CliRunner()
    assert "--accumulate INTEGER  Weight-split batches accumulated per weight step." in runner.invoke(
        command, ["--help"]).output
    assert runner.invoke(command, ["--accumulate", "3"]).output == "3 3\n"
    refused = runner.invoke(command, ["--accumulate", "0"])
    assert isinstance(refused.exception, SettingError)
    assert refused.exception.for_cli() == "--accumulate must be at least 1, got 0."
