"""The DARTS family's extension points (issue 22) and the methods built on them: beta-darts, sdarts-rs, sdarts-adv,
drnas. Each formula is pinned with concrete values on tiny tensors (darts-family-facts.md 11.3), the loop's
invariants with a spy, and a stochastic method's resume with a stopped and resumed search."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from nasbench_pc.cli import main
from nasbench_pc.console import console
from nasbench_pc.errors import ConfigError
from nasbench_pc.plugins import beta_darts, drnas, sdarts
from nasbench_pc.schedules import linear, value_at
from nasbench_pc.search import Search, run_search
from nasbench_pc.search.presets import resolve_config

NB201_TINY = dict(space="nas-bench-201", init_channels=4, cells_per_stage=1, image_size=8, batch_size=16, limit=64,
                  epochs=2, dataset="synthetic")


# -- schedules (H3) --------------------------------------------------------------------------------------------------

def test_schedules_keep_each_references_endpoint_convention() -> None:
    # GDAS: tau 10 -> 0.1 reaching 0.1 at the last of 250 epochs
    assert linear(0, start=10, end=0.1, length=249) == 10
    assert linear(249, start=10, end=0.1, length=249) == pytest.approx(0.1, abs=1e-12)
    # SDARTS: 0.03 -> 0.3 over 50 epochs, 0.2946 at the last
    assert linear(49, start=0.03, end=0.3, length=50) == pytest.approx(0.2946, abs=1e-12)
    # DARTS-: 1 at epoch 0, 0.02 at epoch 49 of 50
    assert linear(0, start=1.0, end=0.0, length=50) == 1.0
    assert linear(49, start=1.0, end=0.0, length=50) == pytest.approx(0.02, abs=1e-12)
    # beta-DARTS: 0.5 per epoch whatever the search's length
    assert [linear(e, start=0.0, end=50.0, length=100) for e in (0, 1, 2, 100, 120)] == [0.0, 0.5, 1.0, 50.0, 50.0]
    assert value_at(25, start=1.0, end=0.0, length=50, shape="cosine") == pytest.approx(0.5, abs=1e-12)
    assert value_at(7, start=3.0, end=0.0, length=50, shape="constant") == 3.0


def test_an_unknown_schedule_shape_is_refused() -> None:
    with pytest.raises(ConfigError, match="Unknown schedule shape 'cosin'; use one of linear, cosine, constant."):
        value_at(0, start=1, end=0, length=3, shape="cosin")


# -- beta-DARTS (H4) -------------------------------------------------------------------------------------------------

def test_beta_decay_gradient_is_softmax_over_the_number_of_edges() -> None:
    torch.manual_seed(0)
    normal, reduce = torch.randn(14, 8, requires_grad=True), torch.randn(14, 8, requires_grad=True)
    lam = 2.5
    (lam * beta_darts.beta_decay([normal, reduce])).backward()
    torch.testing.assert_close(normal.grad, lam * F.softmax(normal.detach(), -1) / 28, rtol=0, atol=1e-7)
    torch.testing.assert_close(reduce.grad, lam * F.softmax(reduce.detach(), -1) / 28, rtol=0, atol=1e-7)
    a = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    assert float(beta_darts.beta_decay([a])) == pytest.approx((math.log(2.0) + math.log(4.0)) / 2, abs=1e-6)


def test_beta_decay_lambda_follows_the_epoch() -> None:
    hooks = beta_darts.BetaDecay(lam_max=50.0, lam_epochs=100)
    assert [hooks.epoch_start(epoch=e, epochs=3, supernet=None) for e in (0, 1, 2)] == [
        {"beta_decay_lambda": 0.0}, {"beta_decay_lambda": 0.5}, {"beta_decay_lambda": 1.0}]


# -- SDARTS (H6) -----------------------------------------------------------------------------------------------------

def test_clip_is_clamp_then_renormalise_with_the_argmax_for_an_empty_row() -> None:
    p = torch.tensor([[-0.1, 0.6, 0.7], [-0.2, -0.1, -0.3], [0.2, 0.3, 0.5]])
    torch.testing.assert_close(sdarts.clip(p), torch.tensor([[0.0, 0.6 / 1.3, 0.7 / 1.3], [0.0, 1.0, 0.0],
                                                             [0.2, 0.3, 0.5]]))


def test_random_perturbation_stays_within_eps_before_the_clip_and_on_the_simplex_after(monkeypatch) -> None:
    torch.manual_seed(1)
    p = F.softmax(torch.randn(6, 5), -1)
    monkeypatch.setattr(sdarts, "clip", lambda x: x)
    raw = sdarts.random_perturbation([p], 0.1)[0]
    assert 0.09 < float((raw - p).abs().max()) <= 0.1
    monkeypatch.undo()
    out = sdarts.random_perturbation([p], 0.1)[0]
    torch.testing.assert_close(out.sum(-1), torch.ones(6))
    assert float(out.min()) >= 0.0


def test_pgd_raises_the_loss_within_the_ball_or_keeps_the_probabilities() -> None:
    torch.manual_seed(2)
    p = F.softmax(torch.randn(6, 5), -1)
    target = torch.zeros(6, 5)
    target[:, 0] = 1.0

    def ascent(w: list[torch.Tensor]) -> torch.Tensor:
        return (w[0] * target).sum()  # rises with the weight on op 0

    out = sdarts.pgd_perturbation([p], 0.05, ascent)[0]
    assert float(ascent([out])) > float(ascent([p]))
    torch.testing.assert_close(out.sum(-1), torch.ones(6))

    def peaked(w: list[torch.Tensor]) -> torch.Tensor:
        return -((w[0] - p) ** 2).sum()  # highest at p itself: every attack lowers it, so p is kept

    assert sdarts.pgd_perturbation([p], 0.05, peaked)[0] is not p
    torch.testing.assert_close(sdarts.pgd_perturbation([p], 0.05, peaked)[0], p, rtol=0, atol=0)


def test_eps_grows_from_0_03_and_never_reaches_eps_max() -> None:
    hooks = sdarts.Perturbation(eps_max=0.3, attack=False)
    assert hooks.epoch_start(epoch=0, epochs=50, supernet=None) == {"epsilon": 0.03}
    assert hooks.epoch_start(epoch=49, epochs=50, supernet=None)["epsilon"] == pytest.approx(0.2946, abs=1e-12)


# -- DrNAS (H1, H4, H5) ----------------------------------------------------------------------------------------------

def test_dirichlet_weights_are_a_fresh_simplex_sample_per_forward() -> None:
    torch.manual_seed(3)
    theta = (1e-3 * torch.randn(6, 5)).requires_grad_(True)
    hooks = drnas.DirichletRelaxation("l2", 1e-3)
    first, second = hooks.arch_weights(theta), hooks.arch_weights(theta)
    torch.testing.assert_close(first.sum(-1), torch.ones(6))
    assert float(first.detach().min()) > 0 and not torch.equal(first, second)
    (first[:, 0]).sum().backward()  # the pathwise gradient reaches theta
    assert float(theta.grad.abs().sum()) > 0
    torch.testing.assert_close(drnas.concentration(torch.zeros(2, 3)), torch.ones(2, 3))


def test_dirichlet_kl_to_uniform_is_the_closed_form() -> None:
    theta = torch.tensor([[0.5, -0.3, 1.2], [0.0, 0.0, 0.0]])
    c = F.elu(theta) + 1
    expected = 0.0
    for row in c.tolist():
        s = sum(row)
        expected += (math.lgamma(s) - sum(math.lgamma(x) for x in row) - math.lgamma(3)
                     + sum((x - 1) * (torch.digamma(torch.tensor(x)) - torch.digamma(torch.tensor(s))).item()
                           for x in row))
    assert float(drnas.kl_to_uniform([theta])) == pytest.approx(expected, abs=1e-5)
    assert float(drnas.kl_to_uniform([torch.zeros(6, 5)])) == pytest.approx(0.0, abs=1e-6)


def test_drnas_anchor_is_weight_decay_or_kl_never_both() -> None:
    params = [torch.nn.Parameter(torch.zeros(6, 5))]
    l2 = drnas.DirichletRelaxation("l2", 1e-3).arch_optimizer(parameters=params, lr=3e-4, weight_decay=1e-3)
    kl = drnas.DirichletRelaxation("kl", 1e-3).arch_optimizer(parameters=params, lr=3e-4, weight_decay=1e-3)
    assert (l2.defaults["weight_decay"], kl.defaults["weight_decay"]) == (1e-3, 0.0)
    assert l2.defaults["betas"] == (0.5, 0.999)


def test_drnas_runs_on_nas_bench_201_only_and_says_so() -> None:
    with pytest.raises(ConfigError, match="The method drnas runs on the nas-bench-201 search space"):
        resolve_config("drnas", "quick", space="darts")
    assert resolve_config("drnas", "paper").epochs == 100


def test_family_presets_on_nas_bench_201_are_the_smoothdarts_code_bases() -> None:
    for method in ("beta-darts", "sdarts-rs", "sdarts-adv", "drnas"):
        config = resolve_config(method, "paper", space="nas-bench-201")
        assert (config.epochs, config.batch_size, config.lr, config.lr_min, config.weight_decay, config.arch_lr,
                config.arch_weight_decay, config.seed) == (100, 64, 0.025, 0.001, 3e-4, 3e-4, 1e-3, 2), method


# -- the loop's invariants -------------------------------------------------------------------------------------------

class Spy:
    """Hooks that record when the loop calls them."""

    def __init__(self, model: torch.nn.Module):
        self.model, self.events = model, []

    def arch_weights(self, alphas: torch.Tensor) -> torch.Tensor:
        self.events.append("weights")
        return F.softmax(alphas, -1)

    def arch_loss(self, *, supernet) -> torch.Tensor:
        self.events.append("arch_loss" if supernet._fixed is None else "arch_loss under pinned weights")
        return 0.0 * supernet.alpha_parameters()[0].sum()

    def perturb_weights(self, *, supernet, probabilities, loss_at) -> list[torch.Tensor]:
        self.events.append("perturb")
        pinned = [torch.zeros_like(p) for p in probabilities]
        for w in pinned:
            w[:, 1] = 1.0  # every edge a skip connection
        return pinned


def test_perturbation_is_the_weight_steps_alone_and_arch_terms_the_arch_steps_alone() -> None:
    search = Search(resolve_config("darts-1st", "quick", **NB201_TINY))
    spy = Spy(search.model)
    search.model.relaxation = search.hooks = spy
    search.architect.extra_loss = search._arch_loss_terms
    batch = search.to_device(search.weight_stream.iterate(0, 0, 1).__next__())
    search.train_step(batch, lr=0.01, arch_step=True)
    # the arch step samples and adds its term; then the perturbation; the weight step runs on the pinned weights
    assert spy.events == ["weights", "arch_loss", "perturb"]
    assert search.model._fixed is None
    spy.events.clear()
    search.train_step(batch, lr=0.01, arch_step=False)
    assert spy.events == ["perturb"]


@pytest.mark.parametrize("method", ["beta-darts", "sdarts-rs", "sdarts-adv", "drnas"])
def test_each_family_member_searches_and_records_its_schedule(method: str, tmp_path: Path) -> None:
    result = run_search(resolve_config(method, "quick", **NB201_TINY), tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    expected = {"beta-darts": [{"beta_decay_lambda": 0.0}, {"beta_decay_lambda": 0.5}],
                "sdarts-rs": [{"epsilon": 0.03}, {"epsilon": 0.165}],
                "sdarts-adv": [{"epsilon": 0.03}, {"epsilon": 0.165}], "drnas": [None, None]}[method]
    assert [r.get("method") for r in records] == pytest.approx(expected)
    assert len(result.genotype.ops) == 6


def _cli(*args: str, wait: bool = True):
    cmd = [sys.executable, "-m", "nasbench_pc", *args]
    env = {**os.environ, "COLUMNS": "200"}
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def test_a_stochastic_search_stopped_and_resumed_ends_where_an_unstopped_one_does(tmp_path: Path) -> None:
    args = ["search", "--method", "drnas", "--dataset", "synthetic", "--epochs", "3", "--limit", "96", "-C", "4",
            "--space-option", "cells_per_stage=1", "--image-size", "8", "--batch-size", "16", "--threads", "1", "-q"]
    full, stopped = tmp_path / "full", tmp_path / "stopped"
    done = _cli(*args, "--out", str(full))
    assert done.returncode == 0, done.stdout + done.stderr
    victim = _cli(*args, "--out", str(stopped), wait=False)
    deadline = time.monotonic() + 300
    while not ((stopped / "metrics.jsonl").is_file() and (stopped / "metrics.jsonl").read_text().strip()):
        assert victim.poll() is None and time.monotonic() < deadline, victim.communicate()[0]
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    assert not (stopped / "genotype.json").exists()  # killed before the end
    assert len((stopped / "metrics.jsonl").read_text().splitlines()) < 3
    resumed = _cli("search", "--resume", str(stopped), "--threads", "1", "-q")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    lines = [(tmp_path / name / "metrics.jsonl").read_text().splitlines() for name in ("full", "stopped")]
    strip = [[{k: v for k, v in json.loads(line).items() if k not in ("epoch_seconds", "images_per_second")
               and not k.startswith("peak_")} for line in run] for run in lines]
    assert strip[0] == strip[1]
    assert (full / "genotype.json").read_text() == (stopped / "genotype.json").read_text()


def test_compare_divides_by_the_first_method_named_and_records_each_schedule(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [
        "compare", "sdarts-rs", "darts-1st", "beta-darts", "--space", "nas-bench-201", "--epochs", "1", "--limit",
        "64", "--steps-per-epoch", "2", "--batch-size", "8", "--init-channels", "4", "--space-option",
        "cells_per_stage=1", "--image-size", "8", "--format", "json", "--save", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["method"] for r in rows] == ["beta-darts", "darts-1st", "sdarts-rs"]  # the table's order
    assert [r["baseline"] for r in rows] == ["sdarts-rs"] * 3  # the ratios divide by the first named
    assert rows[2]["time_vs_baseline"] == 1.0


def test_methods_says_where_a_restricted_method_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "width", 200)
    detail = " ".join(CliRunner().invoke(main, ["methods", "drnas"]).output.replace("│", " ").split())
    assert "search space nas-bench-201 (runs on nas-bench-201 only)" in detail
    listing = " ".join(CliRunner().invoke(main, ["methods"]).output.replace("│", " ").split())
    assert "DrNAS: Dirichlet-sampled op weights (one-stage NAS-Bench-201 search) (nas-bench-201 only)" in listing
    assert "beta-DARTS: DARTS (first order) with the beta-decay regulariser on the architecture loss (space darts)" \
        in listing
