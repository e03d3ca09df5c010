"""Our supernets against the reference model_search.py of each repository.

tests/data/reference_golden.json was produced by running the reference code unmodified
except for dropping `.cuda()` (PC-DARTS: yuhuixu1993/PC-DARTS model_search.py @225925a;
DARTS: quark0/darts cnn/model_search.py @8876e79), C=16, 8 cells, batch 4, train mode:
1. after torch.manual_seed(0), the first values of the architecture tensors and weights;
2. in float64, with every weight and architecture tensor filled by 0.5*sin(0.7*i + index)
   in parameter order, the logits, the loss and the gradients of all architecture tensors
   for a fixed input, and the genotype the reference derives from those tensors. (float64,
   because in float32 this deep batch-4 network amplifies rounding: the reference itself
   differs by 0.5% in its alpha gradients between 1 and 2 CPU threads.)
"""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import nasbench_pc as nbp

GOLDEN = json.loads((Path(__file__).parent / "data" / "reference_golden.json").read_text())


def _fill(tensors, offset):
    with torch.no_grad():
        for i, t in enumerate(tensors):
            v = 0.5 * torch.sin(torch.arange(t.numel(), dtype=torch.float64) * 0.7 + i + offset)
            t.copy_(v.view(t.shape))


@pytest.mark.parametrize("method", ["pc-darts", "darts"])
def test_seeded_construction_draws_like_the_reference(method):
    ref = GOLDEN[method]["seeded"]
    torch.manual_seed(0)
    net = nbp.create_supernet(method)
    assert net.alphas_normal[0].tolist() == ref["alphas_normal_row0"]
    assert net.alphas_reduce[13].tolist() == ref["alphas_reduce_row13"]
    assert net.arch_parameters()[-1].flatten()[:4].tolist() == ref["last_arch_first4"]
    assert net.stem[0].weight.flatten()[:4].tolist() == ref["stem_conv_first4"]
    total = float(sum(p.detach().double().sum() for p in net.weight_parameters()))
    assert total == pytest.approx(ref["weight_sum"], rel=1e-12)


@pytest.mark.parametrize("method", ["pc-darts", "darts"])
def test_logits_gradients_and_genotype_match_the_reference(method):
    ref = GOLDEN[method]
    net = nbp.create_supernet(method).double()
    _fill(net.weight_parameters(), 0.0)
    _fill(net.arch_parameters(), 100.0)
    x = (torch.sin(torch.arange(4 * 3 * 32 * 32, dtype=torch.float64) * 0.013) * 2).view(4, 3, 32, 32)
    logits = net(x)
    loss = F.cross_entropy(logits, torch.tensor([0, 3, 7, 9]))
    loss.backward()
    torch.testing.assert_close(logits, torch.tensor(ref["logits"], dtype=torch.float64), rtol=1e-9, atol=1e-9)
    assert loss.item() == pytest.approx(ref["loss"], rel=1e-10)
    assert len(net.arch_parameters()) == len(ref["arch_grads"])
    for p, expected in zip(net.arch_parameters(), ref["arch_grads"]):
        torch.testing.assert_close(p.grad, torch.tensor(expected, dtype=torch.float64), rtol=1e-7, atol=1e-10)
    torch.testing.assert_close(net.stem[0].weight.grad.flatten()[:8],
                               torch.tensor(ref["stem_weight_grad_first8"], dtype=torch.float64), rtol=1e-7, atol=1e-10)
    g = net.genotype()
    assert [list(e) for e in g.normal] == ref["genotype"]["normal"]
    assert [list(e) for e in g.reduce] == ref["genotype"]["reduce"]
