"""Every CUDA path, checked against its plain path or the CPU result (``python -m pytest -m cuda``).

Each test takes the ``device`` fixture: ``cpu`` always runs (so CI keeps the CUDA code paths' logic honest on
CPU), ``cuda`` runs where PyTorch sees a GPU and is skipped with its reason elsewhere. On CUDA the comparisons run
with TF32 off and cuDNN's deterministic algorithms (a search itself runs with cuDNN's autotuner); a lent GPU runs
them first thing through ``benchmarks/gpu.sh``.

What is covered: every built-in method's supernet on both spaces (stacked edges against the plain path; recomputed
cells bit for bit, their random draws replayed), bf16 autocast (first order in bf16, second order in float32),
out-of-memory advice from a real impossible batch, ``bench`` and ``plan`` on the device, a short ``search`` stopped
by SIGTERM and resumed in the same data order, ``train`` and ``export``, every evaluator that runs a network, and a
one-process ``torchrun`` (NCCL on CUDA, gloo on CPU).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import timm
import torch
import torch.nn.functional as F
from cli_output import flat
from click.testing import CliRunner
from test_search import tiny_config
from torch import nn

import nasbench_pc as nbp
from nasbench_pc import registry
from nasbench_pc.api import resolve_method
from nasbench_pc.cli import main
from nasbench_pc.console import console, err_console
from nasbench_pc.results.evaluation import evaluate, target_from_genotype
from nasbench_pc.search import Search
from nasbench_pc.search.architect import Architect
from nasbench_pc.supernet import _stacking as stacking
from nasbench_pc.supernet import run_cell

pytestmark = pytest.mark.cuda

NO_GPU = "no CUDA GPU is visible to this PyTorch; benchmarks/gpu.sh runs these on a lent GPU"
#: NASBENCH_PC_TEST_DEVICES=cuda keeps only the CUDA parametrisation (benchmarks/gpu.sh, whose minutes are few)
DEVICES = [pytest.param(name, id=name, marks=pytest.mark.skipif(name == "cuda" and not torch.cuda.is_available(),
                                                                reason=NO_GPU))
           for name in os.environ.get("NASBENCH_PC_TEST_DEVICES", "cpu,cuda").split(",")]

#: tiny shapes of the two built-in spaces
SHAPES = {"darts": {"init_channels": 4, "layers": 3}, "nas-bench-201": {"init_channels": 4, "cells_per_stage": 1}}


@contextlib.contextmanager
def _exact_cuda() -> Iterator[None]:
    """TF32 off and deterministic cuDNN kernels, so that two CUDA runs can be compared value for value."""
    backends = torch.backends
    before = (backends.cudnn.benchmark, backends.cudnn.deterministic, backends.cudnn.allow_tf32,
              backends.cuda.matmul.allow_tf32, torch.are_deterministic_algorithms_enabled())
    backends.cudnn.benchmark, backends.cudnn.deterministic = False, True
    backends.cudnn.allow_tf32 = backends.cuda.matmul.allow_tf32 = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        (backends.cudnn.benchmark, backends.cudnn.deterministic, backends.cudnn.allow_tf32,
         backends.cuda.matmul.allow_tf32) = before[:4]
        torch.use_deterministic_algorithms(before[4])


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> Iterator[str]:
    with _exact_cuda() if request.param == "cuda" else contextlib.nullcontext():
        yield request.param


@pytest.fixture(autouse=True)
def wide_consoles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(err_console, "width", 400)
    monkeypatch.setattr(console, "width", 400)


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _run(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


# -- supernets: stacked edges against the plain path, recomputed cells bit for bit -------------------------------------


def _search_step(method: str, space: str, device: str, *, checkpoint_cells: bool = False) -> dict[str, torch.Tensor]:
    """From one seed: a weight-split forward and backward (logits, weight gradients, running statistics), then one
    architecture step of the method's order (its architecture gradient), all brought back to the CPU."""
    torch.manual_seed(0)
    net = nbp.create_supernet(method, space=space, checkpoint_cells=checkpoint_cells, **SHAPES[space])
    net = net.to(device).train()
    gen = torch.Generator().manual_seed(1)
    train, arch = ((torch.randn(4, 3, 16, 16, generator=gen).to(device),
                    torch.randint(0, 10, (4,), generator=gen).to(device)) for _ in range(2))
    logits = net(train[0])
    F.cross_entropy(logits, train[1]).backward()
    out = {"logits": logits.detach(),
           "weight_grads": torch.cat([p.grad.flatten() for p in net.weight_parameters()]),
           "buffers": torch.cat([b.double().flatten() for b in net.buffers()])}
    weights = torch.optim.SGD(net.weight_parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    weights.zero_grad(set_to_none=True)
    net.zero_grad(set_to_none=True)
    architect = Architect(net, arch_lr=3e-4, arch_weight_decay=1e-3, order=resolve_method(method).order,
                          momentum=0.9, weight_decay=3e-4, loss_fn=lambda model, b: F.cross_entropy(model(b[0]), b[1]))
    architect.step(train, arch, eta=0.025, weight_optimizer=weights)
    out["arch_grads"] = torch.cat([p.grad.flatten() for p in net.arch_parameters()])
    return {key: value.detach().cpu() for key, value in out.items()}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


@pytest.mark.parametrize("space", list(SHAPES))
@pytest.mark.parametrize("method", ["darts", "darts-1st", "pc-darts", "pc-only", "en-only"])
def test_supernet_step_stacked_equals_plain_and_recomputed_is_bit_for_bit(method: str, space: str, device: str,
                                                                          one_thread: None) -> None:
    assert method in registry.available("method")
    stacked = _search_step(method, space, device)
    with stacking.plain_path():
        plain = _search_step(method, space, device)
    recomputed = _search_step(method, space, device, checkpoint_cells=True)
    assert plain["arch_grads"].abs().max() > 1e-6  # a real architecture gradient
    for key in ("logits", "buffers"):
        assert _rel(stacked[key], plain[key]) < 1e-4, (key, _rel(stacked[key], plain[key]))
    for key in ("weight_grads", "arch_grads"):  # float32 sums in another order
        assert _rel(stacked[key], plain[key]) < 5e-3, (key, _rel(stacked[key], plain[key]))
    for key in stacked:  # the same kernels on the same inputs: nothing may differ
        assert torch.equal(recomputed[key], stacked[key]), (key, float((recomputed[key] - stacked[key]).abs().max()))


def test_a_recomputed_cell_replays_its_random_draws(device: str) -> None:
    """A cell with dropout: the recomputation in backward draws the same mask (CPU and CUDA generator replayed)."""
    torch.manual_seed(0)
    cell = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.Dropout(0.5), nn.BatchNorm2d(4)).to(device).train()
    x = torch.randn(2, 4, 8, 8, device=device, requires_grad=True)
    target = torch.randn(2, 4, 8, 8, device=device)
    results = []
    for recompute, seed in ((False, 3), (True, 3), (True, 4)):
        torch.manual_seed(seed)  # seeds the CUDA generators too
        out = run_cell(cell, x, recompute=recompute)
        grads = torch.autograd.grad((out * target).sum(), [x, *cell.parameters()])
        results.append([out.detach(), *grads])
    plain, replayed, other_seed = results
    for a, b in zip(plain, replayed, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(plain[0], other_seed[0])  # the draws are real: another seed, another mask
    assert int(cell[2].num_batches_tracked) == 3  # once per forward, never again in a recomputation


# -- bf16 autocast ----------------------------------------------------------------------------------------------------


def _search(config: Any) -> Search:
    search = Search(config)
    if search.device.type == "cuda":  # Search turns cuDNN's autotuner on; these comparisons need fixed kernels
        torch.backends.cudnn.benchmark = False
    return search


def test_bf16_autocasts_first_order_and_weight_steps_and_keeps_second_order_in_float32(device: str) -> None:
    def arch_grads(method: str, amp: str | None) -> list[torch.Tensor]:
        search = _search(tiny_config(method, amp=amp, device=device))
        search.model.train()
        search.architect.step(batch, arch_batch, eta=0.01, weight_optimizer=search.optimizer)
        return [p.grad.detach().cpu() for p in search.model.arch_parameters()]

    first = _search(tiny_config("darts", device=device))
    batch, arch_batch = first.to_device(next(first.weight_stream.iterate(0))), first.to_device(first.arch_stream.next())
    assert batch[0].device.type == device
    for a, b in zip(arch_grads("darts", None), arch_grads("darts", "bf16"), strict=True):
        assert a.abs().max() > 1e-3 and torch.equal(a, b)  # the whole unrolled step ran in float32
    for a, b in zip(arch_grads("darts-1st", None), arch_grads("darts-1st", "bf16"), strict=True):
        assert (a - b).abs().max() > 1e-3 * a.abs().max()  # bf16 rounding: first order does use autocast
        assert (a - b).norm() < 0.2 * a.norm()  # and stays near the float32 gradient
    losses = [_search(tiny_config("darts-1st", amp=amp, device=device)).train_step(batch, lr=0.01, arch_step=False)[0]
              for amp in (None, "bf16")]
    assert losses[0] != losses[1] and losses[0] == pytest.approx(losses[1], rel=0.02)


# -- out of memory ----------------------------------------------------------------------------------------------------

#: an impossible batch per device: ~50 GB of activations on CPU (run under a 3 GB address-space limit), over a TB on
#: any GPU; the suggestion then comes from `plan` on the device
IMPOSSIBLE = {
    "cpu": ["-C", "8", "--layers", "3", "--image-size", "32", "--batch-size", "2048", "--limit", "4096"],
    "cuda": ["-C", "16", "--layers", "5", "--image-size", "64", "--batch-size", "4096", "--limit", "8192"],
}

_LIMITED = """
import resource, sys
from pathlib import Path
import torch
from nasbench_pc.cli import main
used = int(Path("/proc/self/status").read_text().split("VmSize:")[1].split()[0]) * 1024
if sys.argv[1] == "cpu":  # the CPU allocator refuses what passes 3 GB more than this process maps now
    resource.setrlimit(resource.RLIMIT_AS, (used + 3 * 2**30, resource.RLIM_INFINITY))
sys.argv = ["nasbench-pc", *sys.argv[2:]]
main()
"""


def test_an_impossible_batch_stops_with_the_batch_plan_suggests(device: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = _run("-c", _LIMITED, device, "search", "--method", "darts-1st", "--dataset", "synthetic", "--epochs", "1",
                "--steps-per-epoch", "1", "--device", device, "--threads", "1", "--out", str(run), "-q",
                *IMPOSSIBLE[device], env={"COLUMNS": "400", "NASBENCH_PC_CHANNELS_LAST": "0"})
    text = flat(proc.stdout + proc.stderr)
    batch = IMPOSSIBLE[device][IMPOSSIBLE[device].index("--batch-size") + 1]
    assert proc.returncode == 2, text[-3000:]
    assert "Traceback" not in text
    assert f"Out of memory: the batch of {batch} did not fit on {device}" in text
    suggestion = text.split("`nasbench-pc plan` suggests a batch of at most ")[1]
    suggested = int(suggestion.split()[0])
    assert 8 <= suggested < int(batch)
    assert f"start again with --batch-size {suggested} --lr" in text
    assert "or keep the batch and add --checkpoint cells" in text
    assert (run / "config.json").is_file()  # the run folder was made and kept


# -- bench and plan on the device -------------------------------------------------------------------------------------


def test_bench_and_plan_measure_on_the_device(device: str, tmp_path: Path) -> None:
    tiny = ["-C", "4", "--layers", "3", "--image-size", "16", "--device", device]
    report = tmp_path / "bench.json"
    _cli("bench", "darts", "pc-darts", "--batch", "4", "8", "--repeats", "1", "--budget", "200MB", *tiny,
         "--json", str(report))
    data = json.loads(report.read_text())
    assert data["device"] == device
    kind = "CUDA peak" if device == "cuda" else "saved for backward"
    assert [(p["method"], p["batch"], p["memory_kind"]) for p in data["points"]] == [
        ("darts", 4, kind), ("darts", 8, kind), ("pc-darts", 4, kind), ("pc-darts", 8, kind)]
    for point in data["points"]:
        assert point["memory_bytes"] > 0 and point["step_seconds"] > 0
    memory = {(p["method"], p["batch"]): p["memory_bytes"] for p in data["points"]}
    assert memory["darts", 8] > memory["darts", 4] and memory["darts", 8] > memory["pc-darts", 8]
    fits = {f["method"]: f for f in data["budget"]["fits"]}
    for fit in fits.values():  # tried batch by batch on CUDA, extrapolated on CPU
        assert fit["extrapolated"] is (device == "cpu")
        assert fit["batch"] % 8 == 0 and 8 <= fit["batch"] and fit["memory_bytes"] <= 200e6
    assert fits["pc-darts"]["batch"] > fits["darts"]["batch"]

    output = _cli("plan", "darts", "--budget", "200MB", *tiny)
    row = next(line for line in output.splitlines() if "│ darts " in line).split("│")
    assert int(row[2]) == fits["darts"]["batch"]  # plan's batch is bench's largest batch
    assert ("extrapolated" in row[6]) is (device == "cpu")


# -- search, SIGTERM and --resume -------------------------------------------------------------------------------------

#: 32 weight steps an epoch (512 images in each split, batch 16): long enough on CPU and GPU alike for a signal sent
#: 0.3 s into epoch 2 to land inside it
SEARCH = ["--method", "pc-darts", "--dataset", "synthetic", "--epochs", "2", "--limit", "1024", "-C", "4", "--layers",
          "3", "--image-size", "8", "--batch-size", "16", "--threads", "1", "-q"]


def _search_process(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nasbench_pc", "search", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_search_stopped_by_sigterm_resumes_in_the_same_data_order(device: str, tmp_path: Path) -> None:
    full, run = tmp_path / "full", tmp_path / "run"
    reference = _search_process(*SEARCH, "--device", device, "--out", str(full))
    victim = _search_process(*SEARCH, "--device", device, "--out", str(run))
    deadline = time.monotonic() + 300
    while not (run / "metrics.jsonl").exists() or not (run / "metrics.jsonl").read_text():  # epoch 1 finished
        assert victim.poll() is None and time.monotonic() < deadline, victim.stdout.read() if victim.stdout else ""
        time.sleep(0.005)
    time.sleep(0.3)  # into epoch 2 (a signal right at the boundary would stop the search there, at step 0)
    victim.send_signal(signal.SIGTERM)
    assert victim.wait(timeout=120) == 128 + signal.SIGTERM, victim.stdout.read()
    stopped = torch.load(run / "checkpoint.pt", weights_only=True)
    assert stopped["epoch"] == 1 and 1 <= stopped["step"] < 32
    resumed = _search_process("--resume", str(run), "--threads", "1", "-q")
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read()
    assert reference.wait(timeout=300) == 0, reference.stdout.read()

    a, b = (torch.load(d / "checkpoint.pt", weights_only=True) for d in (full, run))
    assert json.loads((run / "config.json").read_text())["config"]["device"] == device
    # the data order: the same steps and architecture-split position as the uninterrupted run (32 weight steps an
    # epoch, each after an architecture step on the next of the split's 32 batches: 64 steps end pass 1 at 32)
    assert (a["epoch"], a["arch_stream"]) == (b["epoch"], b["arch_stream"]) == (2, {"pass_no": 1, "position": 32})
    ma, mb = ([json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()] for d in (full, run))
    assert [m["epoch"] for m in mb] == [1, 2]
    if device == "cpu":  # bit for bit on CPU
        for name, tensor in a["model"].items():
            assert torch.equal(tensor, b["model"][name]), name
        assert [m["train_loss"] for m in ma] == [m["train_loss"] for m in mb]
    else:  # cuDNN's autotuned kernels sum in their own order: the same run up to float rounding
        for name, tensor in a["model"].items():
            if tensor.is_floating_point():
                torch.testing.assert_close(b["model"][name], tensor, rtol=1e-3, atol=1e-4, msg=name)
        assert [m["train_loss"] for m in mb] == pytest.approx([m["train_loss"] for m in ma], rel=1e-3)


# -- train and export -------------------------------------------------------------------------------------------------


def test_train_and_export_on_the_device(device: str, tmp_path: Path) -> None:
    output = _cli("train", "PC_DARTS_cifar", "--dataset", "synthetic", "--limit", "24", "--epochs", "1",
                  "--batch-size", "12", "-C", "4", "--layers", "3", "--device", device, "--out", str(tmp_path / "run"),
                  "--quiet")
    assert "test top-1" in output
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text())
    # the CPU's figures (the same at 1 and 2 threads and with AVX2 kernels), reached on the device too
    assert (record["epoch"], record["train_loss"], record["test_loss"]) == (1, pytest.approx(3.37363, rel=1e-3),
                                                                            pytest.approx(2.29564, rel=1e-3))
    assert ("peak_cuda_allocated_mib" in record) is (device == "cuda")  # peak memory where it is the run's own
    _cli("export", str(tmp_path / "run"), "--out", str(tmp_path / "m"))
    exported = timm.create_model(f"local-dir:{tmp_path / 'm'}", pretrained=True).eval()
    at_end = timm.create_model(f"local-dir:{tmp_path / 'run' / 'model'}", pretrained=True).eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(exported(x), at_end(x))  # the weights trained on the device, read back on the CPU


# -- evaluators -------------------------------------------------------------------------------------------------------

#: each evaluator that runs a network, on PC_DARTS_cifar (C=4, 3 cells) and 64 synthetic images, seed 0: the value
#: this code computes on CPU, the same at 1 and 2 threads and with oneDNN's AVX2 kernels (tests/test_zero_cost.py pins
#: the proxies' definitions on hand-made networks)
EVALUATED = {
    "synflow": ({}, "synflow", 1.3812803232881e10),
    "naswot": ({"batch_size": 16}, "naswot", 185.92726540758886),
    "grad-norm": ({"batch_size": 16}, "grad_norm", 12.43764),
    "snip": ({"batch_size": 16}, "snip", 13.23162),
    "proxy-train": ({"epochs": 1, "batch_size": 16}, "proxy_loss", 2.29141),  # test loss after one epoch
}


@pytest.mark.parametrize("name", list(EVALUATED))
def test_each_evaluator_runs_on_the_device(name: str, device: str, tmp_path: Path) -> None:
    options, key, expected = EVALUATED[name]
    target = target_from_genotype("PC_DARTS_cifar", tmp_path, limit=64, device=device)
    target = replace(target, shape={**target.shape, "init_channels": 4, "layers": 3})
    result = evaluate(target, name, options)
    value = result.metrics[key]
    assert math.isfinite(value)
    assert value == pytest.approx(expected, rel=1e-3), value


# -- torchrun ---------------------------------------------------------------------------------------------------------


def test_one_process_torchrun_joins_a_process_group_and_matches_a_plain_run(device: str, tmp_path: Path) -> None:
    args = ["--method", "darts", "--dataset", "synthetic", "--epochs", "1", "--limit", "64", "-C", "4", "--layers",
            "3", "--image-size", "8", "--batch-size", "16", "--no-augment", "--device", device, "--threads", "1", "-q"]
    single, launched = tmp_path / "single", tmp_path / "torchrun"
    plain = _run("-m", "nasbench_pc", "search", *args, "--out", str(single))
    assert plain.returncode == 0, plain.stdout + plain.stderr
    one = _run("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", "-m", "nasbench_pc",
               "search", *args, "--out", str(launched))
    assert one.returncode == 0, one.stdout + one.stderr
    meta = json.loads((launched / "config.json").read_text())
    assert (meta["world_size"], meta["backend"]) == (1, "nccl" if device == "cuda" else "gloo")
    assert json.loads((single / "config.json").read_text())["backend"] is None
    a = torch.load(single / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(launched / "checkpoint.pt", weights_only=True)["model"]
    for name in a:  # global batch norm and all-reduces over one rank: the plain run up to float rounding
        if a[name].is_floating_point():
            torch.testing.assert_close(b[name], a[name], rtol=1e-3, atol=1e-4, msg=name)
