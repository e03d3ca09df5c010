"""The architecture step: Adam settings, first-order gradient, and the second-order gradient of the
reference (finite-difference Hessian-vector product) against exact autograd on a tiny supernet."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from nasbench_pc import create_supernet
from nasbench_pc.search.architect import Architect
from nasbench_pc.supernet import _stacking as stacking

ETA, MOMENTUM, WD = 0.1, 0.9, 3e-4


def _loss(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)


def _setup(method="darts", order=2, hvp_radius=1e-2):
    torch.manual_seed(0)
    net = create_supernet(method, init_channels=4, layers=3).double()  # cell 0 normal, 1-2 reduction
    g = torch.Generator().manual_seed(1)
    train = (torch.randn(6, 3, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 10, (6,), generator=g))
    val = (torch.randn(6, 3, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 10, (6,), generator=g))
    opt = torch.optim.SGD(net.weight_parameters(), lr=ETA, momentum=MOMENTUM, weight_decay=WD)
    _loss(net, train).backward()  # one real step so that the momentum buffers exist
    opt.step()
    opt.zero_grad()
    arch = Architect(net, arch_lr=6e-4, arch_weight_decay=1e-3, order=order, momentum=MOMENTUM, weight_decay=WD,
                     loss_fn=_loss, hvp_radius=hvp_radius)
    return net, opt, arch, train, val


def _exact_unrolled_gradient(net, opt, train, val):
    """d/dalpha L_val(w'(alpha), alpha) with w' = w - eta (m buf + dL_train/dw + wd w), by autograd."""
    names = [n for n, _ in net.named_weight_parameters()]
    weights = net.weight_parameters()
    grads = torch.autograd.grad(_loss(net, train), weights, create_graph=True, allow_unused=True)
    unrolled = {}
    for n, w, g in zip(names, weights, grads, strict=True):
        g = torch.zeros_like(w) if g is None else g
        unrolled[n] = w - ETA * (MOMENTUM * opt.state[w]["momentum_buffer"] + g + WD * w)
    alphas = dict(net.named_parameters())
    params = {**{n: p for n, p in alphas.items() if n not in unrolled}, **unrolled}
    x, y = val
    loss = F.cross_entropy(functional_call(net, params, (x,)), y)
    return torch.autograd.grad(loss, net.arch_parameters())


@pytest.fixture(params=["default layout", "channels-last"])
def layout(request):
    """Stacked edges in either layout: the exact gradient below differentiates their backward (create_graph)."""
    stacking.use_channels_last("cpu", request.param == "channels-last")
    yield request.param
    stacking.use_channels_last("cpu", False)


@pytest.mark.parametrize("method", ["darts", "pc-darts"])
def test_second_order_gradient_matches_exact_autograd(method, layout):
    # The reference radius (0.01) crosses ReLU / max-pool kinks on a net this small, so the finite
    # difference is checked in float64 at a radius where it converges to the derivative.
    net, opt, arch, train, val = _setup(method, hvp_radius=1e-6)
    exact = _exact_unrolled_gradient(net, opt, train, val)  # reads net, changes only BN running statistics
    _, approx = arch.unrolled_gradient(train, val, eta=ETA, weight_optimizer=opt)
    for a, e in zip(approx, exact, strict=True):
        assert e.abs().max() > 1e-6  # a real gradient, not a zero tensor
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-9)


def test_hessian_vector_product_restores_the_weights():
    net, opt, arch, train, _ = _setup()
    before = [w.detach().clone() for w in net.weight_parameters()]
    vector = [torch.randn_like(w) for w in before]
    arch.hessian_vector_product(vector, train)
    for w, b in zip(net.weight_parameters(), before, strict=True):
        torch.testing.assert_close(w.detach(), b, rtol=0, atol=1e-15)


def test_first_order_step_is_adam_on_the_validation_gradient():
    net, opt, arch, train, val = _setup("pc-darts", order=1)
    assert arch.optimizer.param_groups[0]["betas"] == (0.5, 0.999)
    assert arch.optimizer.param_groups[0]["weight_decay"] == 1e-3
    reference = copy.deepcopy(net)
    ref_opt = torch.optim.Adam(reference.arch_parameters(), lr=6e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    _loss(reference, val).backward()
    ref_opt.step()
    weights_before = [w.detach().clone() for w in net.weight_parameters()]
    alphas_before = [a.detach().clone() for a in net.arch_parameters()]
    arch.step(train, val, eta=ETA, weight_optimizer=opt)
    for a, r, b in zip(net.arch_parameters(), reference.arch_parameters(), alphas_before, strict=True):
        torch.testing.assert_close(a, r, rtol=0, atol=0)
        assert (a - b).abs().max() > 1e-4  # Adam moved every tensor by about the learning rate
    for w, b in zip(net.weight_parameters(), weights_before, strict=True):
        assert torch.equal(w, b)  # the architecture step leaves the weights alone


def test_reference_radius_is_the_default():
    _, _, arch, _, _ = _setup()
    assert arch.hvp_radius == 1e-2
