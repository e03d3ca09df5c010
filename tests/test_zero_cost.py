"""Zero-cost proxies (plugins/zero_cost.py): hand-computed scores on tiny networks, the model left as it was,
and the four evaluators through nasbench_pc.results.evaluation.evaluate on DARTS and NAS-Bench-201 genotypes."""

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasbench_pc import registry
from nasbench_pc.errors import ConfigError
from nasbench_pc.plugins.zero_cost import grad_norm, naswot, snip, synflow
from nasbench_pc.results.evaluation import evaluate, target_from_genotype

pytestmark = pytest.mark.usefixtures("one_thread")

NB201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
NB201_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
SMALL = {"init_channels": 4, "layers": 2}  # DARTS: 2 cells; NAS-Bench-201: 2 cells per stage
PROXIES = {"synflow": "synflow", "naswot": "naswot", "grad-norm": "grad_norm", "snip": "snip"}


def options(name: str) -> dict:
    return SMALL if name == "synflow" else {**SMALL, "batch_size": 8}


def linear(weight: list[list[float]], bias: list[float] | None = None) -> nn.Linear:
    layer = nn.Linear(len(weight[0]), len(weight), bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        if bias is not None:
            layer.bias.copy_(torch.tensor(bias))
    return layer


# ------------------------------------------------------------------------------------------------------------
# synflow


def test_synflow_of_a_linear_chain_is_depth_times_r_with_batchnorm_removed():
    # |W1| 1 = [3, 3, 2]; |W2| [3, 3, 2] = [5, 9]; R = 14. R is linear in each layer's weights, so each layer's
    # sum of theta * dR/dtheta is R: 2 layers -> 28. The BN (x / 2 * 5 if it stayed) must be gone.
    bn = nn.BatchNorm1d(3)
    bn.running_var.fill_(4.0)
    bn.weight.data.fill_(5.0)
    model = nn.Sequential(linear([[1, -2], [0, 3], [1, 1]]), bn, nn.ReLU(), linear([[1, 0, -1], [2, 1, 0]]))
    assert synflow(model, (2,)) == 28.0


def test_synflow_sums_conv_and_linear_weights_not_biases():
    # Conv 1x1 with weights -2 and 3 on a 2x2 all-ones image: outputs 2 and 3 at 4 pixels, sum 20; the linear
    # layer's |-1| weights keep R = 20 (+ |bias| 7 = 27); weights only: 2 layers x 20 = 40.
    conv = nn.Conv2d(1, 2, 1, bias=False)
    conv.weight.data = torch.tensor([-2.0, 3.0]).view(2, 1, 1, 1)
    model = nn.Sequential(conv, nn.Flatten(), linear([[-1.0] * 8], bias=[-7.0]))
    assert synflow(model, (1, 2, 2)) == 40.0
    assert synflow(linear([[-1, 2]], bias=[-3]), (2,)) == 3.0  # R = 1 + 2 + 3 = 6, the weight's share is 3


# ------------------------------------------------------------------------------------------------------------
# naswot


class ThreeReLUs(nn.Module):
    """A ReLU module on x, torch.relu on -x and Tensor.relu on 2x: codes [c, 1 - c, c] for inputs without zeros."""

    def __init__(self) -> None:
        super().__init__()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.relu(x), torch.relu(-x), (2 * x).relu()], dim=1)


def test_naswot_counts_module_functional_and_method_relus():
    # codes of x: [1,0,1], [1,1,0], [0,0,0]; pairwise Hamming distance 2 each, 3 units: K = [[3,1,1],[1,3,1],
    # [1,1,3]], det 20. The three ReLUs triple every entry (9 units, distances 6): det 27 * 20 = 540.
    inputs = torch.tensor([[1.0, -1.0, 1.0], [1.0, 1.0, -1.0], [-1.0, -1.0, -1.0]])
    assert naswot(ThreeReLUs(), inputs) == pytest.approx(math.log(540.0), abs=1e-12)
    assert naswot(nn.ReLU(), inputs) == pytest.approx(math.log(20.0), abs=1e-12)


def test_naswot_of_two_inputs_with_one_code_is_minus_infinity():
    inputs = torch.tensor([[1.0, -1.0, 1.0], [2.0, -5.0, 0.5]])  # same signs: K = [[9, 9], [9, 9]], singular
    assert naswot(ThreeReLUs(), inputs) == -math.inf


# ------------------------------------------------------------------------------------------------------------
# grad-norm and snip


def test_grad_norm_and_snip_of_one_linear_layer_by_hand():
    # W = I, x = [1, 2], class 0: dL/dlogits = softmax([1, 2]) - [1, 0] = [-a, a] with a = e / (1 + e), so
    # dL/dW = [[-a, -2a], [a, 2a]]: ||dL/dW|| = a sqrt(10) and sum |W * dL/dW| = a + 2a.
    model = linear([[1, 0], [0, 1]], bias=[0, 0])
    inputs, targets = torch.tensor([[1.0, 2.0]]), torch.tensor([0])
    a = math.e / (1 + math.e)
    assert grad_norm(model, inputs, targets) == pytest.approx(a * math.sqrt(10), rel=1e-6)
    assert snip(model, inputs, targets) == pytest.approx(3 * a, rel=1e-6)


def conv_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(3, 4))


def test_grad_norm_and_snip_match_autograd_in_train_mode():
    model = conv_net().eval()  # the proxies score in train mode (BatchNorm on batch statistics) whatever it is in
    inputs, targets = torch.randn(4, 2, 5, 5, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 1, 2, 3])
    reference = copy.deepcopy(model).train()
    F.cross_entropy(reference(inputs), targets).backward()
    layers = [reference[0], reference[5]]
    expected_norm = sum(float(layer.weight.grad.norm()) for layer in layers)
    expected_snip = sum(float((layer.weight.detach() * layer.weight.grad).abs().sum()) for layer in layers)
    assert grad_norm(model, inputs, targets) == pytest.approx(expected_norm, rel=1e-6)
    assert snip(model, inputs, targets) == pytest.approx(expected_snip, rel=1e-6)
    assert expected_norm > 0 and expected_snip > 0


# ------------------------------------------------------------------------------------------------------------
# the model passed in is left as it was


@pytest.mark.parametrize("proxy", ["synflow", "naswot", "grad-norm", "snip"])
def test_scoring_leaves_the_model_as_it_was(proxy):
    model = conv_net()
    model[1].eval()  # mixed modes must come back mixed
    model[0].weight.requires_grad_(False)
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
    calls = []
    model[0].register_forward_hook(lambda module, args, out: calls.append(1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.grad.clone() for p in model.parameters()]
    inputs, targets = torch.randn(4, 2, 5, 5), torch.tensor([0, 1, 2, 3])
    score = {"synflow": lambda: synflow(model, (2, 5, 5)), "naswot": lambda: naswot(model, inputs),
             "grad-norm": lambda: grad_norm(model, inputs, targets), "snip": lambda: snip(model, inputs, targets)}
    assert math.isfinite(score[proxy]())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # parameters and BN running statistics
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))
    assert [m.training for m in model] == [True, False, True, True, True, True]
    assert [p.requires_grad for p in model.parameters()] == [False, True, True, True, True, True]
    assert [len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model] == [
        1, 0, 0, 0, 0, 0]
    assert model[0].weight.dtype == torch.float32


# ------------------------------------------------------------------------------------------------------------
# the evaluators


def test_the_four_evaluators_are_registered_with_their_metrics():
    evaluators = registry.available("evaluator")
    for name, key in PROXIES.items():
        evaluator = evaluators[name]
        assert evaluator.needs == frozenset({"data"})
        assert [(m.key, m.label, m.higher_is_better, m.fmt) for m in evaluator.metrics] == [(key, name, True, ".4g")]
        assert dict(evaluator.options) == {**({} if name == "synflow" else {"batch_size": 64}),
                                           "init_channels": None, "layers": None, "seed": None}


@pytest.mark.parametrize("name", list(PROXIES))
def test_evaluate_darts_genotype_is_finite_deterministic_and_kept(tmp_path, name):
    target = target_from_genotype("PC_DARTS_cifar", tmp_path, limit=64)
    first = evaluate(target, name, options(name))
    value = first.metrics[PROXIES[name]]
    assert math.isfinite(value) and not first.reused
    assert json.loads(first.path.read_text())["metrics"] == {PROXIES[name]: value}
    again = evaluate(target, name, options(name), reuse=False)  # computed again: the same number
    assert again.metrics == first.metrics and not again.reused
    kept = evaluate(target, name, options(name))
    assert kept.reused and kept.metrics == first.metrics


def test_evaluate_nas_bench_201_genotype(tmp_path):
    target = target_from_genotype(NB201, tmp_path, limit=64)
    values = {name: evaluate(target, name, options(name)).metrics[key] for name, key in PROXIES.items()}
    assert all(math.isfinite(v) and v > 0 for v in values.values())


def test_a_cell_with_no_path_scores_zero_and_naswot_minus_infinity(tmp_path):
    # Every cell outputs zeros, so the logits are the classifier's bias for every image: no weight gets a
    # gradient, and every ReLU code is all zeros (one code for all images: K = N_A * ones, singular).
    target = target_from_genotype(NB201_NONE, tmp_path, limit=64)
    values = {key: evaluate(target, name, options(name)).metrics[key] for name, key in PROXIES.items()}
    assert values == {"synflow": 0.0, "naswot": -math.inf, "grad_norm": 0.0, "snip": 0.0}
    kept = evaluate(target, "naswot", options("naswot"))  # -inf is kept as JSON's -Infinity and read back
    assert kept.reused and kept.metrics == {"naswot": -math.inf}


def test_the_seed_option_draws_another_network_and_batch(tmp_path):
    target = target_from_genotype("PC_DARTS_cifar", tmp_path, limit=64)
    default = evaluate(target, "grad-norm", options("grad-norm")).metrics["grad_norm"]
    seeded = evaluate(target, "grad-norm", {**options("grad-norm"), "seed": 1}).metrics["grad_norm"]
    assert seeded != default


def test_bad_options_are_config_errors(tmp_path):
    target = target_from_genotype("PC_DARTS_cifar", tmp_path, limit=64)
    with pytest.raises(ConfigError, match="option batch_size must be an integer of at least 1, got 0"):
        evaluate(target, "naswot", {**SMALL, "batch_size": 0})
    with pytest.raises(ConfigError, match="option init_channels must be an integer of at least 1, got 'wide'"):
        evaluate(target, "snip", {"init_channels": "wide"})
    with pytest.raises(ConfigError, match="Unknown option.*batch_size.*synflow"):  # synflow reads no minibatch
        evaluate(target, "synflow", {"batch_size": 8})
