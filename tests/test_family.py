"""The DARTS family's extension points (issue 22) and the methods built on them: beta-darts, sdarts-rs, sdarts-adv,
drnas. Each formula is pinned with concrete values on tiny tensors (darts-family-facts.md 11.3), the loop's
invariants with a spy, and a stochastic method's resume with a stopped and resumed search."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import test_nas_bench_201 as reference
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from nasbench_pc import genotypes, hookimpl, registry
from nasbench_pc.api import create_supernet
from nasbench_pc.cli import main
from nasbench_pc.console import console
from nasbench_pc.errors import ConfigError, GenotypeError
from nasbench_pc.interfaces import Method
from nasbench_pc.plugins import beta_darts, darts_minus, drnas, fairdarts, gdas, sdarts
from nasbench_pc.plugins.darts_space.genotype import is_sparse
from nasbench_pc.plugins.darts_space.network import DartsNetwork, SparseCell
from nasbench_pc.schedules import linear, value_at
from nasbench_pc.search import Search, run_search, stages
from nasbench_pc.search.presets import resolve_config
from nasbench_pc.supernet import MixedOp, Sampled, plain_path

NB201_TINY = dict(space="nas-bench-201", init_channels=4, cells_per_stage=1, image_size=8, batch_size=16, limit=64,
                  epochs=2, dataset="synthetic")

xautodl = reference.xautodl  # the reference fixture: a skip without xautodl, a failure in CI


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


def test_drnas_searches_the_darts_space_progressively_and_nb201_in_one_stage_as_the_reference_scripts() -> None:
    darts = resolve_config("drnas", "paper")
    assert (darts.space, darts.epochs, darts.batch_size, darts.lr, darts.lr_min, darts.arch_lr, darts.seed) == (
        "darts", 50, 64, 0.1, 0.0, 6e-4, 2)
    assert (darts.sampler_options, darts.space_options["init_channels"], darts.space_options["layers"],
            darts.space_options["drop_none"]) == ({"k": 6}, 36, 20, True)  # K of the first stage, 7 ops, C=36 x 20
    assert stages.plan(drnas.DARTS_STAGES, 50) == [stages.Span(0, 25, 6, None, 10),
                                                                       stages.Span(25, 50, 4, 4, 10)]
    nb201 = resolve_config("drnas", "paper", space="nas-bench-201")
    assert (nb201.epochs, nb201.sampler_options) == (100, {"k": 1})  # one stage, every channel
    progressive = resolve_config("drnas", "paper", space="nas-bench-201", method_options={"stages": "progressive"})
    assert progressive.sampler_options == {"k": 4}
    assert stages.plan(drnas.NB201_STAGES, 100) == [stages.Span(0, 50, 4, None, 10), stages.Span(50, 100, 2, 3, 10)]
    assert stages.plan(drnas.DARTS_STAGES, 10) == [stages.Span(0, 5, 6, None, 2), stages.Span(5, 10, 4, 4, 2)]
    assert stages.plan(drnas.DARTS_STAGES, 1) == [stages.Span(0, 1, 6, None, 0)]  # no epoch left for stage 2
    with pytest.raises(ConfigError, match=r"The method drnas searches in stages that change the partial-channel K "
                                          r"\(its first stage samples 1/6 of the channels\), but the sampler 'full' "
                                          r"has no K. Search it with a sampler that has one \(--sampler partial\)"):
        resolve_config("drnas", "quick", sampler="full")
    assert resolve_config("drnas", "quick", sampler="full", method_options={"stages": "one"}).sampler == "full"


def test_pruning_keeps_the_largest_alphas_and_the_dirichlet_weights_of_the_rest_are_exactly_0() -> None:
    net = create_supernet("drnas", space="nas-bench-201", init_channels=4, cells_per_stage=1, k=2)
    with torch.no_grad():
        net.alphas.copy_(torch.tensor([[0.5, -1.0, 2.0, 0.1, 0.3]]).repeat(6, 1))
    (mask,) = net.prune(3)
    assert mask.tolist() == [[True, False, True, False, True]] * 6
    assert net.alphas[0].tolist() == pytest.approx([0.5, 0.0, 2.0, 0.0, 0.3])  # pruned alphas are set to 0
    (mask,) = net.prune(2)  # among the ops left: 0.0 does not come back
    assert mask.tolist() == [[True, False, True, False, False]] * 6
    weights = net.op_weights(net.alphas)  # a Dirichlet sample over every op, masked and renormalised
    assert torch.equal(weights[:, [1, 3, 4]], torch.zeros(6, 3))
    torch.testing.assert_close(weights.sum(-1), torch.ones(6))
    F.cross_entropy(net(torch.randn(2, 3, 8, 8)), torch.tensor([1, 2])).backward()
    mixed = [m for m in net.modules() if isinstance(m, MixedOp)]
    assert len(mixed) == 3 * 6 and all(m.active == [True, False, True, False, False] for m in mixed)
    # the pruned convolution (nor_conv_3x3) never ran: no gradient; the kept one (nor_conv_1x1) did
    assert all(p.grad is None for m in mixed for p in m._ops[3].parameters())
    assert all(p.grad is not None for m in mixed for p in m._ops[2].parameters())
    assert str(net.genotype()).count("nor_conv_1x1") == 6  # derive reads the kept ops alone


def test_a_lower_k_widens_every_mixed_op_and_its_momentum_keeping_the_old_channels() -> None:
    torch.manual_seed(0)
    net = create_supernet("drnas", space="nas-bench-201", init_channels=8, cells_per_stage=1, k=4)
    optimizer = torch.optim.SGD(net.weight_parameters(), lr=0.1, momentum=0.9)
    F.cross_entropy(net(torch.randn(2, 3, 8, 8)), torch.tensor([1, 2])).backward()
    optimizer.step()
    edge = net.cells[0].edges[1]
    conv = edge.mixed._ops[3].op[1].weight.detach().clone()  # nor_conv_3x3 on 8 / 4 = 2 channels
    momentum = optimizer.state[edge.mixed._ops[3].op[1].weight]["momentum_buffer"].clone()
    widened = net.set_k(2)
    new = edge.mixed._ops[3].op[1].weight
    assert (edge.k, tuple(conv.shape), tuple(new.shape)) == (2, (2, 2, 3, 3), (4, 4, 3, 3))
    assert torch.equal(new[:2, :2], conv)  # the old channels, then copies of old ones (no rescaling)
    assert all(any(torch.equal(new[i, j], conv[a, b]) for a in range(2) for b in range(2))
               for i in range(4) for j in range(4))
    rebuilt = stages.rebuild_optimizer(optimizer, net.weight_parameters(), widened)
    carried = rebuilt.state[new]["momentum_buffer"]
    assert carried.shape == new.shape and torch.equal(carried[:2, :2], momentum)
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_a_progressive_search_moves_stage_by_stage_with_its_warm_up() -> None:
    config = resolve_config("drnas", "quick", **{**NB201_TINY, "epochs": 10}, steps_per_epoch=1,
                            method_options={"stages": "progressive"})
    search = Search(config)
    records = [search.train_epoch() for _ in range(10)]
    assert [r["arch_updates"] for r in records] == [False, True, True, True, True] * 2  # 1 of each 5-epoch stage
    assert [r["stage"]["index"] for r in records] == [1] * 5 + [2] * 5
    assert [r["stage"]["K"] for r in records] == [4] * 5 + [2] * 5
    assert all(row.count(0.0) == 2 for r in records[5:] for row in r["arch_weights"]["alphas_cell"])  # 3 ops kept


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


# -- the space and the presets --------------------------------------------------------------------------------------


def test_drop_none_leaves_none_out_of_every_edge_and_the_methods_of_7_op_references_set_it() -> None:
    net = create_supernet("darts-1st", init_channels=4, layers=3, drop_none=True)
    assert net.primitives == ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                              "dil_conv_3x3", "dil_conv_5x5")
    assert net.alphas_normal.shape == (14, 7)
    assert all(len(m._ops) == 7 for m in net.modules() if isinstance(m, MixedOp))
    assert {m: resolve_config(m, "quick").space_options["drop_none"] for m in (
        "sdarts-rs", "sdarts-adv", "fairdarts", "darts-1st", "gdas", "beta-darts", "darts-minus")} == {
        "sdarts-rs": True, "sdarts-adv": True, "fairdarts": True, "darts-1st": False, "gdas": False,
        "beta-darts": False, "darts-minus": False}
    assert resolve_config("sdarts-rs", "quick", drop_none=False).space_options["drop_none"] is False  # the user's wins


def test_the_quick_preset_scales_lr_min_too_where_the_scaled_lr_would_fall_below_it() -> None:
    fair = resolve_config("fairdarts", "quick", batch_size=16)  # 0.005 -> 0.001 at batch 128
    assert (fair.lr, fair.lr_min) == pytest.approx((0.000625, 0.000125))
    assert resolve_config("fairdarts", "quick").lr_min == pytest.approx(0.001)  # 0.00125 at 32 is still above it
    darts = resolve_config("darts-1st", "quick")  # 0.025 at 64 -> 0.0125 at 32 stays above 0.001
    assert (darts.lr, darts.lr_min) == pytest.approx((0.0125, 0.001))


# -- GDAS (H1 hard Gumbel, H2 one op per edge, H10 step order) -------------------------------------------------------


def test_gdas_supernet_draws_the_references_sample_logits_and_gradients(xautodl) -> None:
    """AutoDL's TinyNetworkGDAS and ours, same weights, alphas, temperature and seed, float64: the same Gumbel draw,
    so the same logits and the same gradient of every alpha and weight (AutoDL's NAS-Bench-201 edge: the ops not
    drawn add their weight as a scalar, so every alpha gets a gradient)."""
    from xautodl.models.cell_operations import NAS_BENCH_201
    from xautodl.models.cell_searchs.search_model_gdas import TinyNetworkGDAS

    ref = TinyNetworkGDAS(16, 5, 4, 10, NAS_BENCH_201, False, True).double()
    ours = create_supernet("gdas", space="nas-bench-201").double()
    reference._fill(ref.get_weights(), 0.0)
    reference._fill(ref.get_alphas(), 100.0)
    reference._copy(ref, ours)
    ref.set_tau(3.7)
    ours.relaxation.tau = 3.7
    x, y = reference._input(), torch.tensor([0, 7])
    torch.manual_seed(5)
    ref_logits = ref(x)[1]
    F.cross_entropy(ref_logits, y).backward()
    torch.manual_seed(5)
    logits = ours(x)
    F.cross_entropy(logits, y).backward()
    assert torch.equal(logits, ref_logits)
    assert torch.equal(ours.alphas.grad, ref.arch_parameters.grad)
    assert ours.alphas.grad.abs().min().item() > 0  # every alpha learns from the step
    used = [(p.grad, q.grad) for p, q in zip(ours.weight_parameters(), ref.get_weights(), strict=True)]
    assert all((a is None) == (b is None) for a, b in used)
    assert sum(a is None for a, _ in used) == 300  # the ops not drawn ran nowhere, so their weights have no gradient
    assert all(torch.equal(a, b) for a, b in used if a is not None)
    assert str(ours.genotype()) == ref.genotype().tostr()  # derive reads the alphas, never a sample


def test_gdas_draws_each_op_as_often_as_softmax_says_whatever_the_temperature() -> None:
    alphas = torch.tensor([[0.5, -1.0, 1.5, 0.0]]).expand(40000, 4).contiguous()
    expected = torch.softmax(alphas[0], dim=-1)
    for tau in (0.1, 1.0, 10.0):
        torch.manual_seed(0)
        h = gdas.gumbel_hard(alphas, tau)
        assert torch.equal(h.detach().sum(dim=-1), torch.ones(40000, dtype=h.dtype))  # one-hot in value
        assert torch.allclose(h.detach().mean(dim=0), expected, atol=0.01)


def _edge() -> tuple[MixedOp, list[torch.nn.Module]]:
    ops = [torch.nn.Conv2d(2, 2, 1, bias=False) for _ in range(3)]
    calls: list[torch.nn.Module] = []
    for op in ops:
        op.register_forward_hook(lambda module, _, __: calls.append(module))
    return MixedOp(ops), calls


@pytest.mark.parametrize("scalar_grad", [False, True])
def test_a_sampled_edge_runs_the_drawn_op_alone_and_says_where_its_gradient_goes(scalar_grad: bool) -> None:
    edge, calls = _edge()
    x = torch.randn(2, 2, 3, 3)
    p = torch.tensor([0.2, 0.5, 0.3], requires_grad=True)
    hard = torch.tensor([0.0, 1.0, 0.0]) - p.detach() + p
    out = edge(x, Sampled(hard, 1, scalar_grad))
    assert calls == [edge._ops[1]]  # op 0 and op 2 never ran
    assert torch.allclose(out, edge._ops[1](x))
    out.sum().backward()
    drawn = edge._ops[1](x).sum().item()
    # the op not drawn: the sum of the output's gradient (numel) with the scalar term, nothing without
    expected = [out.numel(), drawn, out.numel()] if scalar_grad else [0.0, drawn, 0.0]
    assert p.grad.tolist() == pytest.approx(expected, rel=1e-5)


def test_gdas_temperature_falls_from_10_to_0_1_at_the_last_epoch_and_nb201_steps_weights_first() -> None:
    hooks = gdas.GumbelSampling(10.0, 0.1, "auto", "auto", space="nas-bench-201")
    assert [hooks.epoch_start(epoch=e, epochs=250, supernet=None)["tau"] for e in (0, 1, 249)] == pytest.approx(
        [10.0, 10.0 - 9.9 / 249, 0.1])
    assert (hooks.scalar_grad, hooks.step_order) == (True, "weight_then_arch")
    darts = gdas.GumbelSampling(10.0, 0.1, "auto", "auto", space="darts")
    assert (darts.scalar_grad, darts.step_order) == (False, "arch_then_weight")
    assert gdas.GumbelSampling(10.0, 0.1, "every-op", "weight-then-arch", space="darts").scalar_grad


def test_gdas_on_nb201_takes_the_weight_step_before_the_architecture_step() -> None:
    search = Search(resolve_config("gdas", "quick", **NB201_TINY))
    events: list[str] = []
    search.architect.step = lambda *a, **k: events.append("arch") or 0.0
    step = search.optimizer.step
    search.optimizer.step = lambda *a, **k: events.append("weights") or step(*a, **k)
    batch = search.to_device(search.weight_stream.iterate(0, 0, 1).__next__())
    search.train_step(batch, lr=0.01, arch_step=True)
    assert events == ["weights", "arch"]


@pytest.mark.parametrize("options", [dict(), dict(sampler="partial", sampler_options={"k": 2}, normalizer="edge")])
def test_gdas_on_the_darts_space_runs_one_op_per_edge_also_recomputed_and_on_partial_channels(options) -> None:
    grads = []
    for checkpoint_cells in (False, True):
        torch.manual_seed(0)
        net = create_supernet("gdas", init_channels=4, layers=3, checkpoint_cells=checkpoint_cells, **options)
        ran: list[torch.nn.Module] = []
        for module in net.modules():
            if isinstance(module, MixedOp):
                for op in module._ops:
                    op.register_forward_hook(lambda m, _, __, ran=ran: ran.append(m))
        torch.manual_seed(1)
        logits = net(torch.randn(2, 3, 8, 8))
        assert len(ran) == 3 * 14  # one op per edge of the 3 cells
        F.cross_entropy(logits, torch.tensor([1, 2])).backward()
        grads.append([p.grad for p in net.arch_parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))  # the draw's gradient survives recomputation


# -- DARTS- (H7 auxiliary branch) -------------------------------------------------------------------------------------


def test_darts_minus_coefficient_is_1_at_epoch_0_and_0_02_at_epoch_49_of_50() -> None:
    hooks = darts_minus.AuxiliarySkip(1.0, 50, "linear")
    values = [hooks.epoch_start(epoch=e, epochs=50, supernet=None)["aux_coefficient"] for e in (0, 25, 49)]
    assert values == pytest.approx([1.0, 0.5, 0.02], abs=1e-12)
    cosine = darts_minus.AuxiliarySkip(1.0, 50, "cosine")
    assert cosine.epoch_start(epoch=25, epochs=50, supernet=None)["aux_coefficient"] == pytest.approx(0.5)
    assert cosine.epoch_start(epoch=10, epochs=50, supernet=None)["aux_coefficient"] == pytest.approx(
        (1 + math.cos(math.pi * 10 / 50)) / 2)


def test_every_darts_minus_edge_adds_its_skip_times_the_coefficient_outside_the_softmax() -> None:
    torch.manual_seed(0)
    net = create_supernet("darts-minus", init_channels=4, layers=3).double()
    reference = create_supernet("darts-1st", init_channels=4, layers=3)
    edges = [m for m in net.modules() if isinstance(m, MixedOp)]
    assert all(edge.aux is not None for edge in edges) and len(edges) == 3 * 14
    kinds = [type(edge.aux.op).__name__ for edge in edges]
    # the stride-2 edges (each node's from inputs 0 and 1) of the 2 reduction cells get a FactorizedReduce; the rest
    # the identity
    assert (kinds.count("FactorizedReduce"), kinds.count("Identity")) == (2 * 4 * 2, 3 * 14 - 16)
    extra = sum(p.numel() for p in net.weight_parameters()) - sum(p.numel() for p in reference.weight_parameters())
    assert extra == sum(p.numel() for edge in edges for p in edge.aux.parameters()) > 0
    edge, x = edges[0], torch.randn(2, 4, 8, 8, dtype=torch.float64)
    w = torch.softmax(torch.randn(8, dtype=torch.float64), dim=-1)
    net.relaxation.aux_coefficient = 0.25
    torch.testing.assert_close(edge(x, w), edge.forward_weighted(x, w) + 0.25 * x)  # stride 1: the identity
    images = torch.randn(2, 3, 8, 8, dtype=torch.float64)

    def step(plain: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        net.zero_grad()
        with plain_path() if plain else contextlib.nullcontext():
            logits = net(images)
        F.cross_entropy(logits, torch.tensor([1, 2])).backward()
        return logits.detach(), [p.grad.clone() for p in net.parameters() if p.grad is not None]

    (plain, plain_grads), (stacked, stacked_grads) = step(True), step(False)
    torch.testing.assert_close(stacked, plain)  # the stacked edges add the branch too, gradients alike
    assert len(stacked_grads) == len(plain_grads)
    for a, b in zip(stacked_grads, plain_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    net.relaxation.aux_coefficient = 0.0
    with torch.no_grad():
        assert not torch.allclose(net(images), plain)


# -- FairDARTS (sigmoid, zero-one loss, sparse derive) -----------------------------------------------------------------


def test_zero_one_loss_has_no_gradient_at_zero_and_the_closed_form_elsewhere() -> None:
    a = torch.zeros(2, 3, requires_grad=True)
    fairdarts.zero_one_loss([a]).backward()
    assert torch.equal(a.grad, torch.zeros(2, 3))
    a = torch.tensor([[0.0, 1.0, -2.0], [0.5, 3.0, 0.0]], requires_grad=True)
    loss = fairdarts.zero_one_loss([a[:1], a[1:]])  # N counts the entries of every tensor: 6
    loss.backward()
    s = a.detach().sigmoid()
    assert loss.item() == pytest.approx(-((s - 0.5) ** 2).mean().item())
    torch.testing.assert_close(a.grad, -(2 / 6) * (s - 0.5) * s * (1 - s))


def test_fairdarts_weighs_each_op_by_its_sigmoid_from_alpha_zero_with_its_own_adam() -> None:
    search = Search(resolve_config("fairdarts", "quick", **NB201_TINY))
    net = search.model
    assert torch.equal(net.alphas, torch.zeros(6, 5))
    assert torch.equal(net.op_weights(net.alphas), torch.full((6, 5), 0.5))  # no softmax: the weights sum to 2.5
    group = search.architect.optimizer.param_groups[0]
    assert (type(search.architect.optimizer).__name__, group["lr"], group["betas"], group["weight_decay"]) == (
        "Adam", 3e-3, (0.9, 0.999), 1e-3)
    assert resolve_config("fairdarts", "paper").space_options["drop_none"] is True  # its 7 ops on the DARTS space


def test_fairdarts_keeps_an_op_only_above_the_threshold_so_a_node_has_0_1_or_2_inputs() -> None:
    ops = ("max_pool_3x3", "skip_connect", "sep_conv_3x3")
    logit = torch.tensor(0.85).logit().item()
    w = torch.full((14, 3), -3.0)  # 4 nodes: edges 0-1, 2-4, 5-8, 9-13
    w[0, 2], w[1, 1] = 2.0, logit + 0.01  # node 2: both edges pass
    w[2, 0], w[3, 2] = 2.0, logit - 0.01  # node 3: one passes, the other is among the top 2 but below
    w[5, 2], w[6, 2] = logit - 0.5, logit - 0.6  # node 4: none passes
    w[13, 1], w[11, 0] = 3.0, 2.0  # node 5: from node 4 (no ops: kept, never run, as FairDARTS_c) and node 2
    gene = fairdarts.sparse_cell(w.sigmoid(), None, ops, 4, 0.85)
    assert gene == [("sep_conv_3x3", 2, 0), ("skip_connect", 2, 1), ("max_pool_3x3", 3, 0),
                    ("skip_connect", 5, 4), ("max_pool_3x3", 5, 2)]
    nothing = fairdarts.sparse_cell(torch.full((14, 3), 0.5), None, ops, 4, 0.85)
    assert nothing == [("max_pool_3x3", 2, 0)]  # a cell keeps its strongest op rather than have no output
    w = torch.full((14, 3), -3.0)
    w[2, 2], w[11, 1] = 2.0, 3.0  # node 3 from input 0; node 5 from node 4, which has no op
    assert fairdarts.sparse_cell(w.sigmoid(), None, ops, 4, 0.85) == [("sep_conv_3x3", 3, 0)]


def test_a_sparse_genotype_builds_fairdarts_dcocell_and_round_trips() -> None:
    space = genotypes.space_named("darts")
    a, c = space.parse("FairDARTS_a"), space.parse("FairDARTS_c")
    assert is_sparse(a) and not is_sparse(space.parse("DARTS_V2"))
    assert genotypes.from_json(genotypes.to_json(c)) == c == space.parse(space.to_text(c))
    net = DartsNetwork(c, init_channels=4, layers=3).eval()
    assert all(isinstance(cell, SparseCell) for cell in net.cells)
    assert [cell.multiplier for cell in net.cells] == [3, 4, 4]  # normal: nodes 2, 4, 5; reduction: all four
    unused = net.cells[0]._ops["5"]["3"][0]  # node 5 <- node 3, which has no op: built, never run
    ran = []
    unused.register_forward_hook(lambda *_: ran.append(1))
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10) and ran == []
    assert space.cell_lines(c)["normal cell"][2] == ("node 3 = skip_connect(node 1) [not run: node 1 has no op] + "
                                                     "sep_conv_3x3(c_{k-2})")


@pytest.mark.parametrize("text, message", [
    ("Genotype(normal=[('sep_conv_3x3', 2, 0), ('skip_connect', 1)], normal_concat=[2], reduce=[('skip_connect', 2, "
     "0)], reduce_concat=[2])", "Edge 1 of the sparse normal cell is ('skip_connect', 1)"),
    ("Genotype(normal=[('sep_conv_3x3', 3, 2)], normal_concat=[2], reduce=[('skip_connect', 2, 0)], "
     "reduce_concat=[2])", "Node 3 of the sparse normal cell reads only nodes that get no op"),
    ("Genotype(normal=[('sep_conv_3x3', 2, 2)], normal_concat=[2], reduce=[('skip_connect', 2, 0)], "
     "reduce_concat=[2])", "feeds node 2 from input 2, but that node can only read inputs 0..1"),
    ("Genotype(normal=[('sep_conv_3x3', 2, 0)], normal_concat=[2], reduce=[], reduce_concat=[2])",
     "The sparse reduce cell lists no edges"),
])
def test_a_sparse_genotype_that_cannot_be_built_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(GenotypeError, match=re.escape(message)):
        genotypes.space_named("darts").parse(text)


def test_fairdarts_leaves_another_spaces_derive_rule_alone() -> None:
    assert fairdarts.ZeroOne(10.0, 0.85, "l2", space="chain").derive(supernet=None) is None


def test_fairdarts_on_nas_bench_201_keeps_the_best_op_above_the_threshold_else_none() -> None:
    net = create_supernet("fairdarts", space="nas-bench-201", init_channels=4, cells_per_stage=1)
    with torch.no_grad():
        net.alphas.copy_(torch.tensor([[0, 0, 0, 2.0, 0], [0, 0, 1.0, 0, 0], [0, 3.0, 0, 0, 0],
                                       [0, 0, 0, 0, 2.5], [0, 0, 0, 0, 0], [0, 0, 0, 1.8, 1.7]]))
    assert str(net.genotype()) == ("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|"
                                   "nor_conv_3x3~2|")


@pytest.mark.parametrize("method", ["beta-darts", "sdarts-rs", "sdarts-adv", "drnas", "gdas", "darts-minus",
                                    "fairdarts"])
def test_each_family_member_searches_and_records_its_schedule(method: str, tmp_path: Path) -> None:
    result = run_search(resolve_config(method, "quick", **NB201_TINY), tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    expected = {"beta-darts": [{"beta_decay_lambda": 0.0}, {"beta_decay_lambda": 0.5}],
                "sdarts-rs": [{"epsilon": 0.03}, {"epsilon": 0.165}],
                "sdarts-adv": [{"epsilon": 0.03}, {"epsilon": 0.165}], "drnas": [None, None],
                "gdas": [{"tau": 10.0}, {"tau": 0.1}],
                "darts-minus": [{"aux_coefficient": 1.0}, {"aux_coefficient": 0.98}], "fairdarts": [None, None]}[method]
    assert [r.get("method") and {k: round(v, 12) for k, v in r["method"].items()} for r in records] == expected
    assert len(result.genotype.ops) == 6


def _cli(*args: str, wait: bool = True):
    cmd = [sys.executable, "-m", "nasbench_pc", *args]
    env = {**os.environ, "COLUMNS": "200"}
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("method, epochs, killed_after", [
    (["gdas"], 2, 1),  # a stochastic relaxation: the draws go on where they stopped
    (["drnas", "--method-option", "stages=progressive"], 4, 3),  # killed in stage 2: pruned, K 4 -> 2, widened
])
def test_a_stochastic_or_staged_search_stopped_and_resumed_ends_where_an_unstopped_one_does(
        tmp_path: Path, method: list[str], epochs: int, killed_after: int) -> None:
    args = ["search", "--method", *method, "--space", "nas-bench-201", "--dataset", "synthetic", "--epochs",
            str(epochs), "--limit", "96", "-C", "4", "--space-option", "cells_per_stage=1", "--image-size", "8",
            "--batch-size", "16", "--threads", "1", "-q"]
    full, stopped = tmp_path / "full", tmp_path / "stopped"
    done = _cli(*args, "--out", str(full))
    assert done.returncode == 0, done.stdout + done.stderr
    victim = _cli(*args, "--out", str(stopped), wait=False)
    deadline = time.monotonic() + 300
    metrics = stopped / "metrics.jsonl"
    while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= killed_after):
        assert victim.poll() is None and time.monotonic() < deadline, victim.communicate()[0]
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    assert not (stopped / "genotype.json").exists()  # killed before the end
    assert len(metrics.read_text().splitlines()) < epochs
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
    class Restricted:
        @hookimpl
        def register_methods(self) -> dict[str, Method]:
            return {"bench-only": Method(name="bench-only", description="Only on the benchmark", space="nas-bench-201",
                                         spaces=("nas-bench-201",))}

    monkeypatch.setattr(console, "width", 200)
    registry.plugin_manager().register(Restricted(), name="restricted")
    registry._registry.cache_clear()
    try:
        detail = " ".join(CliRunner().invoke(main, ["methods", "bench-only"]).output.replace("│", " ").split())
        assert "search space nas-bench-201 (runs on nas-bench-201 only)" in detail
        listing = " ".join(CliRunner().invoke(main, ["methods"]).output.replace("│", " ").split())
        assert "Only on the benchmark (nas-bench-201 only)" in listing
        with pytest.raises(ConfigError, match="The method bench-only runs on the nas-bench-201 search space"):
            resolve_config("bench-only", "quick", space="darts")
    finally:
        registry.reload()
    assert "beta-DARTS: DARTS (first order) with the beta-decay regulariser on the architecture loss (space darts)" \
        in listing
    assert "beta-DARTS: DARTS (first order) with the beta-decay regulariser on the architecture loss (space darts)" \
        in listing
