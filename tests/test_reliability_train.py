"""Reliability of ``train`` and ``export``: recipes by provenance, stops by signal, kills, guards, bad input,
damaged or unsafe checkpoints, and exports that never write outside their folder."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from cli_output import flat
from click.testing import CliRunner, Result

from nasbench_pc import genotypes
from nasbench_pc.cli import main
from nasbench_pc.errors import ConfigError
from nasbench_pc.networks.export import CHECKPOINT_FORMAT, load_checkpoint, resolve_source
from nasbench_pc.networks.recipes import choose_recipe, make_config
from nasbench_pc.networks.recipes import learning_rate as lr_at
from nasbench_pc.networks.train import TrainProgress, epoch_batches, resume, train
from nasbench_pc.plugins.darts_space.network import DartsNetwork
from nasbench_pc.plugins.darts_space.space import PUBLISHED_RECIPES, DartsSearchSpace
from nasbench_pc.runtime.interrupt import Interrupted

#: The tiny run of the signal tests: 4 steps per epoch, drop path on (the DARTS recipe) and augmentation.
SIGNAL_RUN = ["--dataset", "synthetic", "--epochs", "3", "--limit", "64", "-C", "4", "--layers", "3",
              "--batch-size", "16", "--auxiliary-weight", "0", "--device", "cpu", "--quiet"]
TINY = dict(dataset="synthetic", limit=24, epochs=1, batch_size=12, init_channels=4, layers=3)


pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-epoch training run (read-only for the tests: copy it before changing it)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    train(make_config("DARTS_V2", **TINY), out)
    return out


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


# --- 1. the training recipe by provenance ------------------------------------------------------------------------


def test_published_genotypes_get_their_papers_recipe() -> None:
    darts = make_config("DARTS_V2", dataset="cifar10")
    assert (darts.recipe, darts.hparams.drop_path, darts.hparams.lr, darts.hparams.batch_size) == \
        ("darts", 0.2, 0.025, 96)
    assert darts.recipe_reason == "DARTS_V2 is a published darts genotype"
    assert make_config("DARTS_V1").hparams.drop_path == 0.2
    pc = make_config("PC_DARTS_cifar", dataset="cifar10")
    assert (pc.recipe, pc.hparams.drop_path) == ("pc-darts", 0.3)
    image = make_config("PC_DARTS_image", dataset="imagenet").hparams
    assert (image.batch_size, image.lr, image.lr_schedule, image.warmup_epochs) == (1024, 0.5, "linear", 5)


@pytest.mark.parametrize("name, recipe", [
    ("GDAS_V1", "darts"), ("SDARTS_RS", "darts"), ("SDARTS_ADV", "darts"), ("DARTS_MINUS_C10_S0_0", "darts"),
    ("DrNAS_cifar10", "pc-darts"),
])
def test_darts_family_genotypes_get_their_repositorys_cifar_recipe(name: str, recipe: str) -> None:
    config = make_config(name, dataset="cifar10")
    assert (config.recipe, config.hparams.drop_path) == (recipe, {"darts": 0.2, "pc-darts": 0.3}[recipe])
    assert config.recipe_reason.startswith(f"{name} is a published ")
    assert config.recipe_reason.endswith(f" genotype, trained with the {recipe} recipe")


def test_every_published_darts_genotype_names_its_search_and_recipe() -> None:
    space = DartsSearchSpace()
    assert list(space.provenance) == list(space.known) == list(PUBLISHED_RECIPES)


def test_drnas_imagenet_genotype_gets_the_pc_darts_imagenet_recipe() -> None:
    config = make_config("DrNAS_imagenet", dataset="imagenet")
    assert config.recipe_reason == "DrNAS_imagenet is a published drnas genotype, trained with the pc-darts recipe"
    assert config.hparams == make_config("PC_DARTS_image", dataset="imagenet").hparams


def test_darts_imagenet_recipe_is_the_reference_train_imagenet() -> None:
    hp = make_config("DARTS_V2", dataset="imagenet").hparams
    assert (hp.epochs, hp.batch_size, hp.lr, hp.lr_schedule, hp.lr_gamma, hp.warmup_epochs) == \
        (250, 128, 0.1, "step", 0.97, 0)
    assert (hp.momentum, hp.weight_decay, hp.label_smoothing, hp.auxiliary_weight, hp.grad_clip) == \
        (0.9, 3e-5, 0.1, 0.4, 5.0)
    assert (hp.init_channels, hp.layers, hp.drop_path, hp.cutout) == (48, 14, 0.0, 0)
    assert lr_at(hp, 0) == 0.1
    assert lr_at(hp, 3) == pytest.approx(0.1 * 0.97**3, rel=1e-12)
    assert lr_at(hp, 249) == pytest.approx(0.1 * 0.97**249, rel=1e-12)


def _search_run(path: Path, method: str, k: int | None = None) -> Path:
    """A search run directory as ``nasbench-pc search`` leaves it (the parts train reads)."""
    path.mkdir()
    genotypes.save(genotypes.KNOWN["DARTS_V1"], path / "genotype.json")
    config = {"config": {"method": method, "k": k}, "method": {"name": method}, "dataset": {"name": "synthetic"}}
    (path / "config.json").write_text(json.dumps(config))
    return path


@pytest.mark.parametrize("method, k, recipe", [
    ("darts", None, "darts"), ("darts-1st", None, "darts"), ("en-only", None, "darts"),
    ("pc-darts", None, "pc-darts"), ("pc-only", None, "pc-darts"),
    ("pc-darts", 1, "darts"),  # K=1 samples every channel: DARTS' edge
])
def test_a_search_runs_recipe_follows_its_methods_sampler(tmp_path: Path, method: str, k: int | None,
                                                          recipe: str) -> None:
    run = _search_run(tmp_path / "run", method, k)
    config = make_config(str(run))
    assert config.recipe == recipe
    assert config.hparams.drop_path == {"darts": 0.2, "pc-darts": 0.3}[recipe]
    assert config.recipe_reason.startswith(f"searched by {method}, whose ")
    assert choose_recipe(str(run / "genotype.json")) == (config.recipe, config.recipe_reason)


def test_a_search_run_of_this_version_gives_its_sampler_options(tmp_path: Path) -> None:
    """config.json of today's search holds sampler_options (not k): K=1 sends every channel, so darts."""
    run = _search_run(tmp_path / "run", "pc-darts")
    config = json.loads((run / "config.json").read_text())
    config["config"] = {"method": "pc-darts", "space": "darts", "sampler_options": {"k": 1}}
    (run / "config.json").write_text(json.dumps(config))
    assert choose_recipe(str(run))[0] == "darts"
    config["config"] = {"method": "pc-darts", "no_such_field": 1}  # another version's settings: the method's own K
    (run / "config.json").write_text(json.dumps(config))
    assert choose_recipe(str(run))[0] == "pc-darts"


def test_recipe_option_overrides_and_unknown_provenance_gets_the_default(tmp_path: Path) -> None:
    forced = make_config("DARTS_V2", recipe="pc-darts")
    assert (forced.recipe, forced.recipe_reason, forced.hparams.drop_path) == ("pc-darts", "--recipe pc-darts", 0.3)
    literal = genotypes.to_json(genotypes.KNOWN["DARTS_V2"])  # longer than a file name may be
    assert choose_recipe(literal)[0] == "pc-darts" and "search is unknown" in choose_recipe(literal)[1]
    assert resolve_source(literal).method is None
    gone = _search_run(tmp_path / "gone", "no-such-method")
    assert choose_recipe(str(gone)) == ("pc-darts", "searched by no-such-method, which is not installed here, so the "
                                                    "default")
    with pytest.raises(ConfigError, match="Unknown training recipe 'dart'. Did you mean 'darts'"):
        make_config("DARTS_V2", recipe="dart")


def test_recipe_is_listed_in_help_printed_at_start_and_stored(tmp_path: Path) -> None:
    help_text = " ".join(invoke("train", "--help").output.split()).replace("- ", "-")  # click wraps at hyphens
    assert "auto: the genotype's search space picks (SearchSpace.recipe_for). DARTS: DARTS_V1/DARTS_V2, GDAS_V1, " \
           "SDARTS_RS/SDARTS_ADV, DARTS_MINUS_C10_S0_0..4, FairDARTS_a..g -> darts, PC_DARTS_cifar/PC_DARTS_image, " \
           "DrNAS_cifar10/DrNAS_imagenet -> pc-darts" in help_text
    result = invoke("train", "DARTS_V2", "--limit", "24", "--epochs", "1", "--batch-size", "12", "-C", "4",
                    "--layers", "3", "--out", tmp_path / "run", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "recipe darts (DARTS_V2 is a published darts genotype): epochs=1" in flat(result.output)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["recipe"], config["recipe_reason"]) == ("darts", "DARTS_V2 is a published darts genotype")
    assert config["hparams"]["drop_path"] == 0.2
    exported = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert exported["nasbench_pc"]["recipe"]["recipe"] == "darts"


# --- 2. Ctrl-C / SIGTERM: a mid-epoch checkpoint, then a bit-identical resume -----------------------------------


class _SignalAt(TrainProgress):
    """Sends ``signum`` to this process after step ``step`` (1-based) of epoch ``epoch`` (0-based)."""

    def __init__(self, signum: int, epoch: int, step: int):
        self.signum, self.at, self.steps = signum, (epoch, step), 0

    def step(self, epoch: int, loss: float, top1: float, images: int) -> None:
        self.steps += 1
        if (epoch, self.steps) == self.at:
            os.kill(os.getpid(), self.signum)

    def epoch(self, record: dict[str, Any]) -> None:
        self.steps = 0


def _same_runs(a: Path, b: Path) -> None:
    """Both runs ended with the same weights, optimizer state and metrics, bit for bit (seconds aside)."""
    ca, cb = load_checkpoint(a / "checkpoint.pt"), load_checkpoint(b / "checkpoint.pt")
    assert ca["state_dict"].keys() == cb["state_dict"].keys()
    for name, tensor in ca["state_dict"].items():
        assert torch.equal(tensor, cb["state_dict"][name]), name
    for key, state in ca["optimizer"]["state"].items():
        assert torch.equal(state["momentum_buffer"], cb["optimizer"]["state"][key]["momentum_buffer"])
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in ca["history"]]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in cb["history"]]
    assert len(strip) == 3


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted in-process run the interrupted ones must reproduce."""
    out = tmp_path_factory.mktemp("straight") / "run"
    train(_signal_config(), out)
    return out


def _signal_config():
    return make_config("DARTS_V2", dataset="synthetic", epochs=3, limit=64, init_channels=4, layers=3,
                       batch_size=16, auxiliary_weight=0)


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_epoch_saves_the_position_and_resume_is_bit_identical(tmp_path: Path, straight: Path,
                                                                           signum: int, code: int) -> None:
    cut = tmp_path / "cut"
    with pytest.raises(Interrupted) as stopped:
        train(_signal_config(), cut, progress=_SignalAt(signum, epoch=1, step=2))
    assert stopped.value.exit_code == code
    assert f"continue it with `nasbench-pc train --resume {cut}`" in str(stopped.value)
    ckpt = load_checkpoint(cut / "checkpoint.pt")
    assert (ckpt["epoch"], ckpt["step"], ckpt["running"]["count"]) == (1, 2, 32)
    assert len((cut / "metrics.jsonl").read_text().splitlines()) == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handlers are put back
    half = resolve_source(str(cut))  # a mid-epoch checkpoint exports without a test accuracy
    assert half.metrics == {} and half.recipe["steps_into_next_epoch"] == 2
    resume(cut)
    _same_runs(straight, cut)


def test_a_run_stopped_twice_still_matches(tmp_path: Path, straight: Path) -> None:
    cut = tmp_path / "cut"
    with pytest.raises(Interrupted):
        train(_signal_config(), cut, progress=_SignalAt(signal.SIGINT, epoch=0, step=3))
    with pytest.raises(Interrupted):  # stopped again in the epoch it resumed, one step later
        resume(cut, progress=_SignalAt(signal.SIGINT, epoch=0, step=1))
    assert load_checkpoint(cut / "checkpoint.pt")["step"] == 4
    resume(cut)
    _same_runs(straight, cut)


def test_epoch_order_depends_on_seed_and_epoch_only() -> None:
    first, _ = epoch_batches(10, 4, seed=0, epoch=1)
    torch.manual_seed(123)  # the global RNG plays no part
    assert epoch_batches(10, 4, seed=0, epoch=1)[0] == first
    assert [len(b) for b in first] == [4, 4, 2] and sorted(sum(first, [])) == list(range(10))
    assert epoch_batches(10, 4, seed=0, epoch=2)[0] != first


# --- 2 and 3 with real processes: SIGINT, SIGTERM and SIGKILL ---------------------------------------------------


def _train(*args: Any) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nasbench_pc", "train", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(path: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 240
    while not path.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.005)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Path]]:
    """An uninterrupted CLI run, started at once so that it runs beside the first victim; call to wait for it."""
    out = tmp_path_factory.mktemp("reference") / "run"
    proc = _train("DARTS_V2", *SIGNAL_RUN, "--out", out)

    def done() -> Path:
        assert proc.wait(timeout=300) == 0, proc.stdout.read() if proc.stdout else ""
        return out

    yield done
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_cli_signal_in_epoch_2_exits_128_plus_signum_and_resumes_bit_identical(
        tmp_path: Path, reference: Callable[[], Path], signum: int, code: int) -> None:
    cut = tmp_path / "cut"
    victim = _train("DARTS_V2", *SIGNAL_RUN, "--out", cut)
    _wait_for(cut / "checkpoint.pt", victim)  # epoch 1 is over: epoch 2 is running
    time.sleep(0.06)  # into epoch 2's steps (~50 ms each here); wherever the signal lands, resume must match
    victim.send_signal(signum)
    output = victim.communicate(timeout=240)[0]
    assert victim.returncode == code, output
    assert f"{signal.Signals(signum).name} received: the training stopped after finishing its current step" in \
        flat(output)
    assert "Traceback" not in output
    assert load_checkpoint(cut / "checkpoint.pt")["epoch"] >= 1
    resumed = _train("--resume", cut, "--device", "cpu", "--quiet")
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read() if resumed.stdout else ""
    _same_runs(reference(), cut)


def test_sigkill_after_a_checkpoint_then_resume_matches_bit_for_bit(tmp_path: Path,
                                                                   reference: Callable[[], Path]) -> None:
    cut = tmp_path / "cut"
    victim = _train("DARTS_V2", *SIGNAL_RUN, "--out", cut)
    _wait_for(cut / "checkpoint.pt", victim)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    assert not (cut / "model").exists()
    (cut / ".checkpoint.pt.tmp").write_bytes(b"half a checkpoint")  # what a kill during a write leaves
    resumed = _train("--resume", cut, "--device", "cpu", "--quiet")
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read() if resumed.stdout else ""
    _same_runs(reference(), cut)


# --- 3. damaged and unsafe checkpoints ---------------------------------------------------------------------------


def test_a_truncated_checkpoint_is_a_clear_error_on_resume_and_export(tmp_path: Path, finished_run: Path) -> None:
    whole = (finished_run / "checkpoint.pt").read_bytes()
    run = _copy(finished_run, tmp_path / "run")
    shutil.rmtree(run / "model")
    for n in (0, 1, 10, 100, 4096, len(whole) // 2, len(whole) - 22, len(whole) - 1):
        (run / "checkpoint.pt").write_bytes(whole[:n])
        with pytest.raises(ConfigError, match="cannot be read as a checkpoint"):
            load_checkpoint(run / "checkpoint.pt")
        for result in (invoke("train", "--resume", run, "--device", "cpu"),
                       invoke("export", run, "--out", tmp_path / "m")):
            assert result.exit_code == 2, (n, result.output)
            assert "it is damaged, cut short or not a checkpoint at all" in flat(result.output), n
            assert "Traceback" not in result.output
    assert not (tmp_path / "m").exists()


class _RunsCode:
    """Pickles as a call that creates ``marker``: what a booby-trapped checkpoint holds."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def test_a_checkpoint_that_would_run_code_is_refused_unrun(tmp_path: Path, finished_run: Path) -> None:
    marker = tmp_path / "marker"
    run = _copy(finished_run, tmp_path / "run")
    ckpt = load_checkpoint(run / "checkpoint.pt")
    torch.save({**ckpt, "history": [_RunsCode(marker)]}, run / "checkpoint.pt")
    with pytest.raises(ConfigError, match=r"holds a Python object \(exec\) that would run code when loaded"):
        load_checkpoint(run / "checkpoint.pt")
    for result in (invoke("train", "--resume", run, "--device", "cpu"),
                   invoke("export", run / "checkpoint.pt", "--out", tmp_path / "m")):
        assert result.exit_code == 2 and "would run code when loaded" in flat(result.output)
    assert not marker.exists()


def test_weights_that_do_not_fit_or_a_checkpoint_of_another_shape_are_clear_errors(
        tmp_path: Path, finished_run: Path) -> None:
    run = _copy(finished_run, tmp_path / "run")
    shutil.rmtree(run / "model")
    ckpt = load_checkpoint(run / "checkpoint.pt")
    name = "classifier.weight"
    torch.save({**ckpt, "state_dict": {**ckpt["state_dict"], name: torch.zeros(3, 3)}}, run / "checkpoint.pt")
    result = invoke("train", "--resume", run, "--device", "cpu")
    assert result.exit_code == 2
    assert "does not fit the run it belongs to (RuntimeError: Error(s) in loading state_dict" in flat(result.output)
    assert "size mismatch for classifier.weight" in flat(result.output)
    result = invoke("export", run, "--out", tmp_path / "m")
    assert result.exit_code == 2 and "do not fit the architecture recorded with them" in flat(result.output)

    del ckpt["history"]
    torch.save(ckpt, run / "checkpoint.pt")
    for result in (invoke("train", "--resume", run, "--device", "cpu"), invoke("export", run, "--out", tmp_path / "m")):
        assert result.exit_code == 2 and "checkpoint without a usable history" in flat(result.output)
        assert "Traceback" not in result.output
    assert not (tmp_path / "m").exists()


# --- 4. the output folder guard ---------------------------------------------------------------------------------

_TINY_ARGS = ["--limit", "24", "--epochs", "1", "--batch-size", "12", "-C", "4", "--layers", "3", "--device", "cpu",
              "--quiet"]


def test_a_folder_with_a_finished_or_unfinished_run_is_refused_unless_force(tmp_path: Path,
                                                                            finished_run: Path) -> None:
    run = _copy(finished_run, tmp_path / "run")
    (run / "notes.txt").write_text("mine")
    result = invoke("train", "PC_DARTS_cifar", *_TINY_ARGS, "--out", run)
    assert result.exit_code == 2 and "already holds a finished training run" in flat(result.output)
    shutil.rmtree(run / "model")
    result = invoke("train", "PC_DARTS_cifar", *_TINY_ARGS, "--out", run)
    assert result.exit_code == 2
    assert f"already holds an unfinished training run. Continue it with `nasbench-pc train --resume {run}`" in \
        flat(result.output)
    assert json.loads((run / "config.json").read_text())["source"] == "DARTS_V2"  # nothing touched
    result = invoke("train", "PC_DARTS_cifar", *_TINY_ARGS, "--out", run, "--force")
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["source"] == "PC_DARTS_cifar"
    assert (run / "model" / "model.safetensors").is_file() and (run / "notes.txt").read_text() == "mine"


# --- 5. bad input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("option, value, message", [
    ("--epochs", "0", "--epochs 0 (must be at least 1)"),
    ("--batch-size", "0", "--batch-size 0 (must be at least 1)"),
    ("--lr", "0", "--lr 0.0 (must be above 0)"),
    ("--lr", "-0.1", "--lr -0.1 (must be above 0)"),
    ("--lr", "nan", "--lr nan (must be above 0)"),
    ("--drop-path", "1", "--drop-path 1.0 (must be at least 0 and below 1)"),
    ("--drop-path", "-0.2", "--drop-path -0.2 (must be at least 0 and below 1)"),
    ("--lr-gamma", "1.5", "--lr-gamma 1.5 (must be above 0 and at most 1)"),
])
def test_bad_settings_are_one_paragraph_errors(tmp_path: Path, option: str, value: str, message: str) -> None:
    result = invoke("train", "DARTS_V2", option, value, "--out", tmp_path / "run", "--device", "cpu")
    assert result.exit_code == 2
    assert f"Invalid training setting(s): {message}. Change them and start again." in flat(result.output)
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_resume_of_a_folder_that_is_no_train_run_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    search = _search_run(tmp_path / "search", "pc-darts")
    torch.save({"format": 1, "epoch": 1}, search / "checkpoint.pt")
    for folder in (tmp_path / "empty", search, tmp_path / "missing"):
        result = invoke("train", "--resume", folder, "--device", "cpu")
        assert result.exit_code == 2
        assert "is not a `nasbench-pc train` run directory (it has no config.json of kind 'train')" in \
            flat(result.output)
        # (without spaces: a long temporary path, as under pytest-xdist, wraps inside the panel)
        assert f"A search run continues with `nasbench-pc search --resume {folder}`".replace(" ", "") in \
            "".join(result.output.replace("│", "").split())
        assert "Traceback" not in result.output


def test_out_of_memory_is_advice_and_keeps_finished_epochs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    forward = DartsNetwork.forward_with_aux
    calls = []

    def third_training_step_runs_out(self: DartsNetwork, x: torch.Tensor):
        if self.training:
            calls.append(1)
            if len(calls) == 3:  # the first step of epoch 2
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return forward(self, x)

    monkeypatch.setattr(DartsNetwork, "forward_with_aux", third_training_step_runs_out)
    result = invoke("train", "DARTS_V2", *_TINY_ARGS, "--epochs", "2", "--out", tmp_path / "run")
    assert result.exit_code == 2
    assert "Out of memory: a batch of 12 images on the network with C=4 and 3 cells did not fit" in flat(result.output)
    assert "start a new run with a lower --batch-size (e.g. 6)" in flat(result.output)
    assert "Traceback" not in result.output
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["epoch"] == 1


def test_ctrl_c_before_the_first_step_exits_130_without_traceback(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: Any, **kwargs: Any):
        raise KeyboardInterrupt

    monkeypatch.setattr("nasbench_pc.networks.train.get_dataset", interrupted)
    result = invoke("train", "DARTS_V2", *_TINY_ARGS, "--out", tmp_path / "run")
    assert result.exit_code == 130
    assert "Interrupted outside a training step: no checkpoint was written yet, so start the run again." in \
        flat(result.output)


# --- 6. exports never write outside --out ---------------------------------------------------------------------


def test_export_replaces_symlinks_instead_of_writing_through_them(tmp_path: Path, finished_run: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    outside = {}
    for name in ("config.json", "model.safetensors", "README.md"):
        target = tmp_path / f"outside-{name}"
        target.write_text("precious")
        (out / name).symlink_to(Path("..") / target.name)
        outside[name] = target
    result = invoke("export", finished_run, "--out", out)
    assert result.exit_code == 0, result.output
    for name, target in outside.items():
        assert target.read_text() == "precious", name
        assert (out / name).is_file() and not (out / name).is_symlink(), name
    assert json.loads((out / "config.json").read_text())["nasbench_pc"]["trained"] is True


def test_a_foreign_format_marker_alone_does_not_make_a_checkpoint(tmp_path: Path) -> None:
    torch.save({"format": CHECKPOINT_FORMAT, "epoch": 1}, tmp_path / "c.pt")
    result = invoke("export", tmp_path / "c.pt", "--out", tmp_path / "m")
    assert result.exit_code == 2
    assert "checkpoint without a usable config, model_args, data, state_dict, optimizer, history" in flat(result.output)


# --- 7. data-layer options ---------------------------------------------------------------------------------------


def test_training_split_gets_color_jitter_and_bad_images_is_passed_and_stored(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nasbench_pc.networks.train as train_module

    calls = []
    real = train_module.get_dataset

    def recording(name: str, **options: Any):
        calls.append((options["split"], options["augment"], options["color_jitter"], options["bad_images"]))
        return real(name, **options)

    monkeypatch.setattr(train_module, "get_dataset", recording)
    result = invoke("train", "DARTS_V2", *_TINY_ARGS, "--bad-images", "skip", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert calls == [("train", True, True, "skip"), ("test", False, False, "skip")]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["bad_images"] == "skip"
    result = invoke("train", "DARTS_V2", "--bad-images", "ignore", "--out", tmp_path / "other")
    assert result.exit_code == 2 and "'ignore' is not one of 'stop', 'skip'" in flat(result.output)
