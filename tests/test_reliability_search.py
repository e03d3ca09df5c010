"""Reliability of the search path: precision of the second-order step, augmentation seeds of DataLoader
workers, per-rank random states, Ctrl-C / SIGTERM / SIGKILL and resume, the output-folder guard, bad input."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from cli_output import flat
from click.testing import CliRunner
from test_search import TINY, tiny_config
from torch.utils.data import Dataset

from nasbench_pc import genotypes
from nasbench_pc.cli import main
from nasbench_pc.console import console, err_console
from nasbench_pc.runtime.distributed import Context
from nasbench_pc.runtime.files import atomic_torch_save
from nasbench_pc.search import BatchStream, Search, derived_seed, run_search
from nasbench_pc.search import budget as search_module  # where the out-of-memory advice measures free memory
from nasbench_pc.search.budget import SupernetShape as BenchShape
from nasbench_pc.search.budget import plan
from nasbench_pc.search.presets import resolve_config


@pytest.fixture(autouse=True)
def wide_consoles(monkeypatch):
    """Error panels on one line each, so that long paths are not folded."""
    monkeypatch.setattr(err_console, "width", 400)
    monkeypatch.setattr(console, "width", 400)


def _arch_grads(config, batch, arch_batch) -> list[torch.Tensor]:
    """The architecture gradient of one architecture step of a fresh search on fixed batches."""
    search = Search(config)
    search.model.train()
    search.architect.step(batch, arch_batch, eta=0.01, weight_optimizer=search.optimizer)
    return [p.grad.clone() for p in search.model.arch_parameters()]


def _batches(config):
    search = Search(config)
    return search.to_device(next(search.weight_stream.iterate(0))), search.to_device(search.arch_stream.next())


# -- bf16 autocast and the second-order gradient ----------------------------------------------------------------------


def test_bf16_keeps_the_second_order_gradient_in_float32_and_autocasts_first_order_and_weight_steps():
    batch, arch_batch = _batches(tiny_config("darts"))
    fp32 = _arch_grads(tiny_config("darts"), batch, arch_batch)
    bf16 = _arch_grads(tiny_config("darts", amp="bf16"), batch, arch_batch)
    for a, b in zip(fp32, bf16, strict=True):
        assert a.abs().max() > 1e-3  # a real gradient
        assert torch.equal(a, b)  # the whole unrolled step ran in float32

    first32 = _arch_grads(tiny_config("darts-1st"), batch, arch_batch)
    first16 = _arch_grads(tiny_config("darts-1st", amp="bf16"), batch, arch_batch)
    for a, b in zip(first32, first16, strict=True):
        assert (a - b).abs().max() > 1e-3 * a.abs().max()  # bf16 rounding: first order does use autocast

    losses = []
    for amp in (None, "bf16"):
        weights_only = Search(tiny_config("darts-1st", amp=amp))
        losses.append(weights_only.train_step(batch, lr=0.01, arch_step=False)[0])
    assert losses[0] != losses[1] and losses[0] == pytest.approx(losses[1], rel=0.02)  # weight step: autocast


# -- architecture gradient clipping -----------------------------------------------------------------------------------


def test_architecture_gradient_is_clipped_when_asked_and_the_imagenet_preset_asks_for_5():
    batch, arch_batch = _batches(tiny_config("pc-darts"))
    free = torch.cat([g.flatten() for g in _arch_grads(tiny_config("pc-darts"), batch, arch_batch)]).norm()
    clipped = torch.cat([g.flatten() for g in
                         _arch_grads(tiny_config("pc-darts", arch_grad_clip=1e-3), batch, arch_batch)]).norm()
    assert free > 1e-2
    assert clipped.item() == pytest.approx(1e-3, rel=1e-4)
    assert resolve_config("pc-darts", "imagenet").arch_grad_clip == 5.0
    assert resolve_config("pc-darts", "paper").arch_grad_clip is None  # the CIFAR reference does not clip
    assert resolve_config("darts", "quick").arch_grad_clip is None


# -- DataLoader worker seeds ------------------------------------------------------------------------------------------


class RandomDraws(Dataset):
    """Each item is one draw of the global RNG: what a random crop or flip sees in a worker process."""

    def __len__(self) -> int:
        return 16

    def __getitem__(self, index: int):
        return torch.rand(3, 8, 8), 0


def _draws(name="weights", pass_no=0, rank=0, seed=2) -> torch.Tensor:
    stream = BatchStream(RandomDraws(), list(range(16)), name=name, batch_size=8, seed=seed,
                         ctx=Context(rank=rank, world_size=2), workers=2, pin_memory=False)
    return torch.cat([x.flatten() for x, _, _ in stream.iterate(pass_no)])


def test_worker_augmentation_differs_by_pass_stream_and_rank_and_is_reproducible():
    first = _draws()
    assert torch.equal(first, _draws())  # reproducible
    assert first.numel() == 2 * 4 * 3 * 8 * 8  # two batches of 8, four examples on this rank
    for other in (_draws(pass_no=1), _draws(name="architecture"), _draws(rank=1), _draws(seed=3)):
        assert (first != other).all()  # no draw repeats


class CtrlCIgnored(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int):
        return float(signal.getsignal(signal.SIGINT) is signal.SIG_IGN), 0


def test_workers_leave_ctrl_c_to_the_main_process():
    stream = BatchStream(CtrlCIgnored(), [0, 1], name="weights", batch_size=2, seed=0, ctx=Context(), workers=1,
                         pin_memory=False)
    assert [x.tolist() for x, _, _ in stream.iterate(0)] == [[1.0, 1.0]]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the main process's is untouched


def test_evaluation_draws_differ_by_epoch():
    search = Search(tiny_config(workers=2))
    search.dataset = RandomDraws()  # every evaluation input is a worker's random draw
    search.eval_batches = [list(range(8)), list(range(8, 16))]
    first = search.evaluate_arch_split()
    assert search.evaluate_arch_split() == first
    search.epoch = 1
    assert search.evaluate_arch_split()["loss"] != first["loss"]


# -- every rank's random state in the checkpoint ----------------------------------------------------------------------


def test_each_rank_restores_its_own_random_state_or_is_reseeded_for_another_world_size():
    search = Search(tiny_config())
    state = search.state_dict()
    states = [torch.manual_seed(s).get_state() for s in (10, 11, 12)]
    totals = [torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64) * (r + 1) for r in range(3)]
    state.update(epoch=1, step=4, ranks=[{"rng_cpu": states[r], "rng_cuda": None, "totals": totals[r]}
                                         for r in range(2)])
    search.ctx = Context(rank=1, world_size=2)  # written by two processes, read by rank 1 of two
    search.load_state_dict(state)
    assert torch.equal(torch.get_rng_state(), states[1]) and torch.equal(search.progress.totals, totals[1])
    assert search.progress.step == 4

    state["ranks"] = [{"rng_cpu": states[r], "rng_cuda": None, "totals": totals[r]} for r in range(3)]
    search.load_state_dict(state)  # written by three processes: reseeded from (seed, epoch, step, rank)
    assert torch.equal(torch.get_rng_state(), torch.manual_seed(derived_seed(2, 1, 4, 1)).get_state())
    assert torch.equal(search.progress.totals, torch.zeros(3, dtype=torch.float64))
    search.ctx = Context(rank=0, world_size=2)
    search.load_state_dict(state)
    assert search.progress.totals.tolist() == [6.0, 12.0, 18.0]  # rank 0 carries every rank's running sums


# -- Ctrl-C and SIGTERM: a mid-epoch checkpoint, then a bit-identical resume ------------------------------------------

ARGS = ["--method", "pc-darts", "--dataset", "synthetic", "--epochs", "2", "--warmup-epochs", "1", "--limit", "256",
        "-C", "4", "--layers", "3", "--image-size", "8", "--batch-size", "8", "--threads", "1", "-q"]  # 16 steps
ENV = {**os.environ, "COLUMNS": "400"}  # no line wrapping in the error panel


def _search(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nasbench_pc", "search", *args], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop_inside_an_epoch(victim: subprocess.Popen, ready, signum: int) -> str:
    """Wait until ``ready()``, let a few steps of 16 run (about 0.1 s each), send ``signum``; the output."""
    deadline = time.monotonic() + 120
    while not ready():
        assert victim.poll() is None and time.monotonic() < deadline, victim.stdout.read()
        time.sleep(0.01)
    time.sleep(0.5)
    victim.send_signal(signum)
    assert victim.wait(timeout=120) == 128 + signum
    output = " ".join(re.sub("[│╭╮╰╯─]", " ", victim.stdout.read()).split())
    assert f"{signal.Signals(signum).name} received: the search stopped after finishing its current step" in output
    assert "Traceback" not in output
    return output


def test_ctrl_c_inside_epoch_2_checkpoints_mid_epoch_and_resume_is_bit_identical(tmp_path):
    full, run = tmp_path / "full", tmp_path / "run"
    reference = _search(*ARGS, "--out", str(full))
    victim = _search(*ARGS, "--out", str(run))
    metrics = run / "metrics.jsonl"
    output = _stop_inside_an_epoch(victim, lambda: metrics.exists() and metrics.read_text(), signal.SIGINT)
    assert f"continue it with `nasbench-pc search --resume {run}`" in output
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1 and 1 <= state["step"] < 16  # inside epoch 2
    assert len(metrics.read_text().splitlines()) == 1  # finished epochs only

    resumed = _search("--resume", str(run), "--threads", "1", "-q")
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read()
    assert reference.wait(timeout=300) == 0, reference.stdout.read()
    a, b = (torch.load(d / "checkpoint.pt", weights_only=True) for d in (full, run))
    assert a["epoch"] == b["epoch"] == 2 and a["model"].keys() == b["model"].keys()
    for name, tensor in a["model"].items():  # alphas, betas, weights and BN statistics
        assert torch.equal(tensor, b["model"][name]), name
    assert genotypes.load(full / "genotype.json") == genotypes.load(run / "genotype.json")
    ma, mb = ([json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()] for d in (full, run))
    assert [m["epoch"] for m in mb] == [1, 2]
    assert [m["train_loss"] for m in ma] == [m["train_loss"] for m in mb]
    assert [m["arch_loss"] for m in ma] == [m["arch_loss"] for m in mb]


def test_sigterm_inside_epoch_1_exits_143_with_a_mid_epoch_checkpoint(tmp_path):
    run = tmp_path / "run"
    victim = _search(*ARGS, "--out", str(run))
    _stop_inside_an_epoch(victim, (run / "config.json").exists, signal.SIGTERM)  # written as the loop starts
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 0 and 1 <= state["step"] < 16
    assert (run / "metrics.jsonl").read_text() == ""


# -- SIGKILL during a checkpoint write --------------------------------------------------------------------------------

QUICK = ["search", "--method", "pc-darts", "--limit", "64", "--steps-per-epoch", "1", "--batch-size", "8", "-C", "4",
         "--layers", "3", "--image-size", "16", "--quiet"]


def _tiny_run(out, epochs: int = 2):
    result = CliRunner().invoke(main, [*QUICK, "--epochs", str(epochs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return result


def test_a_write_killed_half_way_leaves_garbage_that_the_next_start_discards(tmp_path, monkeypatch):
    run = tmp_path / "run"
    _tiny_run(run)

    def killed(obj, fh):  # what SIGKILL during torch.save leaves: a large, partial temporary file
        fh.write(os.urandom(1 << 20))
        raise KeyboardInterrupt

    good = (run / "checkpoint.pt").read_bytes()
    with monkeypatch.context() as patch:
        patch.setattr(torch, "save", killed)
        with pytest.raises(KeyboardInterrupt):
            atomic_torch_save({"epoch": 99}, run / "checkpoint.pt")
    leftovers = [p for p in run.iterdir() if p.name.startswith(".")]
    assert [p.stat().st_size for p in leftovers] == [1 << 20]
    assert (run / "checkpoint.pt").read_bytes() == good

    result = CliRunner().invoke(main, ["search", "--resume", str(run), "--quiet"])  # nothing left to train
    assert result.exit_code == 0, result.output
    assert not any(p.name.startswith(".") for p in run.iterdir())  # the garbage is gone
    assert (run / "checkpoint.pt").read_bytes() == good  # and the good checkpoint was what got loaded


def test_a_truncated_checkpoint_is_a_clear_error_never_loaded(tmp_path):
    run = tmp_path / "run"
    _tiny_run(run)
    whole = (run / "checkpoint.pt").read_bytes()
    for size in (0, 1, 64, len(whole) // 2, len(whole) - 22, len(whole) - 1):
        (run / "checkpoint.pt").write_bytes(whole[:size])
        result = CliRunner().invoke(main, ["search", "--resume", str(run)])
        assert result.exit_code == 2, (size, result.output)
        assert "cannot be read" in flat(result.output)
        assert "damaged or not a nasbench-pc search checkpoint" in flat(result.output)
        assert "Traceback" not in result.output
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2  # untouched


# -- the output folder guard ------------------------------------------------------------------------------------------


def test_an_out_folder_holding_a_search_is_refused_unless_force(tmp_path):
    run = tmp_path / "run"
    _tiny_run(run)
    (run / "notes.txt").write_text("mine")
    finished = CliRunner().invoke(main, [*QUICK, "--epochs", "1", "--out", str(run)])
    assert finished.exit_code == 2 and "already holds a finished search" in flat(finished.output)
    (run / "genotype.json").unlink()  # now it looks unfinished
    unfinished = CliRunner().invoke(main, [*QUICK, "--epochs", "1", "--out", str(run)])
    assert unfinished.exit_code == 2 and "already holds an unfinished search" in flat(unfinished.output)
    assert f"nasbench-pc search --resume {run}" in flat(unfinished.output)
    forced = CliRunner().invoke(main, [*QUICK, "--epochs", "1", "--out", str(run), "--force"])
    assert forced.exit_code == 0, forced.output
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1  # the new one-epoch run
    assert (run / "notes.txt").read_text() == "mine"  # nothing but the old run's files was removed
    both = CliRunner().invoke(main, ["search", "--resume", str(run), "--force"])
    assert both.exit_code == 2 and "drop --force" in flat(both.output)


# -- bad input --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--lr", "0"], "--lr must be a positive finite number, got 0.0"),
    (["--lr", "inf"], "--lr must be a positive finite number, got inf"),
    (["--arch-lr", "-1e-3"], "--arch-lr must be a positive finite number, got -0.001"),
    (["--momentum", "1.5"], "--momentum must lie between 0 and 1 (the reference uses 0.9), got 1.5"),
    (["--weight-decay", "nan"], "--weight-decay must be a finite number of at least 0, got nan"),
    (["--lr", "0.01", "--lr-min", "0.1"], "--lr-min (0.1) is above --lr (0.01)"),
    (["--arch-grad-clip", "0"], "--arch-grad-clip must be positive"),
    (["--k", "0"], "K (the partial-channel ratio) must be a positive integer, got 0"),
    (["--k", "3"], "K=3 does not divide the 4 channels of a cell edge"),
    (["--method", "darts", "--k", "2"], "does not accept the option(s) k"),
    (["--train-portion", "1"], "--train-portion is a fraction of the training set and must lie strictly between 0 "
                               "and 1, got 1.0"),
    (["--train-portion", "0"], "--train-portion is a fraction"),
    (["--arch-portion", "1.5"], "--arch-portion is a fraction of the training set and must lie strictly between 0 "
                                "and 1, got 1.5"),
    (["--channels-last", "--device", "cpu"], "--channels-last is for CUDA devices only"),
])
def test_bad_search_options_are_one_paragraph_errors(tmp_path, args, message):
    result = CliRunner().invoke(main, ["search", "--epochs", "1", "--limit", "64", *TINY, *args,
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert message in flat(result.output) and "Traceback" not in result.output
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_resume_refuses_folders_that_are_not_its_run(tmp_path):
    (tmp_path / "empty").mkdir()
    empty = CliRunner().invoke(main, ["search", "--resume", str(tmp_path / "empty")])
    assert empty.exit_code == 2 and "is not a search run directory" in flat(empty.output)

    run = tmp_path / "run"
    _tiny_run(run)
    saved = json.loads((run / "config.json").read_text())
    for change, words, reason in (
            ({"method": "darts-1st", "sampler_options": {}}, "(darts-1st on darts, init_channels=4, layers=3,",
             "tensor(s) this supernet does not have (e.g. betas_normal)"),
            ({"space_options": {**saved["config"]["space_options"], "init_channels": 8}},
             "(pc-darts on darts, init_channels=8, layers=3,",
             "have another shape (e.g. stem.0.weight: (12, 3, 3, 3) in the checkpoint, (24, 3, 3, 3) here)")):
        (run / "config.json").write_text(json.dumps({**saved, "config": {**saved["config"], **change}}))
        result = CliRunner().invoke(main, ["search", "--resume", str(run)])
        assert result.exit_code == 2, result.output
        assert f"does not fit the search that {run / 'config.json'} describes {words}" in flat(result.output)
        assert "config.json was edited" in flat(result.output) and "Traceback" not in result.output
        assert reason in flat(result.output)

    (run / "config.json").write_text(json.dumps(saved))
    (run / "checkpoint.pt").unlink()
    missing = CliRunner().invoke(main, ["search", "--resume", str(run)])
    assert missing.exit_code == 2 and f"No checkpoint in {run}" in flat(missing.output)


def test_out_of_memory_names_the_batch_that_plan_suggests_and_keeps_finished_epochs(tmp_path, monkeypatch):
    step = Search.train_step

    def second_epoch_does_not_fit(self, batch, **kwargs):
        if self.epoch == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return step(self, batch, **kwargs)

    monkeypatch.setattr(Search, "train_step", second_epoch_does_not_fit)
    monkeypatch.setattr(search_module, "_free_memory", lambda device: 300 * 10**6)
    result = CliRunner().invoke(main, [*QUICK, "--epochs", "2", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    suggested = plan("pc-darts", 300 * 10**6, shape=BenchShape(image_size=16, space="darts",
                                                              options={"init_channels": 4, "layers": 3}), device="cpu")
    assert suggested.batch > 8
    assert (f"Out of memory: the batch of 8 did not fit on cpu. The checkpoint and metrics of every finished epoch are "
            f"kept in the run directory. To go on, `nasbench-pc plan` suggests a batch of at most {suggested.batch} "
            f"for pc-darts here") in flat(result.output)
    assert f"--batch-size {suggested.batch} --lr {suggested.lr:.3g}" in flat(result.output)
    assert "or keep the batch and add --checkpoint cells" in flat(result.output)
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 1
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["epoch"] == 1


def test_run_search_without_a_folder_installs_no_signal_handler():
    handler = signal.getsignal(signal.SIGINT)
    seen = []

    class Watch:
        def epoch_start(self, epoch, epochs, steps):
            seen.append(signal.getsignal(signal.SIGINT))

        def step(self, step, stats):
            pass

        def epoch_end(self, record):
            pass

    run_search(tiny_config(epochs=1, steps_per_epoch=1), None, reporter=Watch())
    assert seen == [handler]  # Ctrl-C keeps raising KeyboardInterrupt: there is nowhere to save a checkpoint


# -- data-layer options -----------------------------------------------------------------------------------------------


def _image_tree(root, per_class: int = 8) -> None:
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            pixels = torch.randint(0, 256, (8, 8, 3), generator=g, dtype=torch.uint8).numpy()
            Image.fromarray(pixels).save(root / label / f"{i}.png")
    (root / "a" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")


def test_bad_images_option_stops_or_skips_undecodable_files(tmp_path):
    _image_tree(tmp_path / "images")
    args = ["search", "--dataset", "imagefolder", "--data-root", str(tmp_path / "images"), "-C", "4", "--layers",
            "3", "--image-size", "8", "--batch-size", "4", "--epochs", "1", "--steps-per-epoch", "1", "-q"]
    stop = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "stop")])
    assert stop.exit_code == 2 and "Traceback" not in stop.output
    assert f"The image {tmp_path / 'images' / 'a' / 'broken.jpg'} cannot be decoded" in flat(stop.output)
    assert "--bad-images skip" in flat(stop.output)
    with pytest.warns(UserWarning, match=r"Skipped 1 image file\(s\) that cannot be decoded"):
        skip = CliRunner().invoke(main, [*args, "--bad-images", "skip", "--out", str(tmp_path / "skip")])
    assert skip.exit_code == 0, skip.output
    assert json.loads((tmp_path / "skip" / "config.json").read_text())["config"]["bad_images"] == "skip"


def test_imagenet_search_augmentation_has_no_color_jitter(tmp_path):
    from torchvision import transforms as T

    _image_tree(tmp_path / "imagenet" / "train")
    (tmp_path / "imagenet" / "train" / "a" / "broken.jpg").unlink()
    config = resolve_config("pc-darts", "quick", dataset="imagenet", data_root=str(tmp_path / "imagenet"), limit=None,
                            init_channels=4, layers=3, image_size=8, batch_size=4, train_portion=0.5,
                            arch_portion=None)
    kinds = [type(t) for t in Search(config).dataset.transform.transforms]
    assert kinds[:2] == [T.RandomResizedCrop, T.RandomHorizontalFlip] and T.ColorJitter not in kinds
