"""Each PC-DARTS / DARTS mechanism pinned with concrete values."""

import pytest
import torch
from torch import nn

import nasbench_pc as nbp
from nasbench_pc.errors import ConfigError
from nasbench_pc.plugins.darts_space.supernet import derive_genotype, node_slices
from nasbench_pc.plugins.edge_normalization import EdgeNormalization
from nasbench_pc.plugins.partial_channels import PartialChannelEdge, PartialChannelSampler, channel_shuffle

SMALL = dict(init_channels=8, layers=3)


def test_channel_shuffle_puts_processed_channels_at_multiples_of_k():
    x = torch.arange(16.0).view(1, 16, 1, 1)
    order = channel_shuffle(x, 4).flatten().long().tolist()
    assert order == [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15]


class _Marker(nn.Module):
    """Stands in for a MixedOp: turns every sampled channel into 100 + its index."""

    def forward(self, x, weights):
        return x * 0 + 100 + torch.arange(x.shape[1], dtype=x.dtype).view(1, -1, 1, 1)


def test_partial_edge_samples_first_c_over_k_channels_and_shuffles():
    x = torch.arange(16.0).view(1, 16, 1, 1).expand(2, 16, 3, 3).contiguous()
    out = PartialChannelEdge(_Marker(), k=4, stride=1)(x, None)
    assert out.shape == (2, 16, 3, 3)
    assert out[0, :, 0, 0].tolist() == [100, 4, 8, 12, 101, 5, 9, 13, 102, 6, 10, 14, 103, 7, 11, 15]


def test_stride_two_bypass_is_max_pooled():
    x = torch.randn(2, 16, 8, 8)

    class Halve(nn.Module):
        def forward(self, x, weights):
            return x[:, :, ::2, ::2] * 0

    out = PartialChannelEdge(Halve(), k=4, stride=2)(x, None)
    assert out.shape == (2, 16, 4, 4)
    bypass = out[:, [i for i in range(16) if i % 4]]  # un-shuffled positions of channels 4..15
    expected = nn.functional.max_pool2d(x[:, 4:], 2, 2)
    assert torch.equal(bypass, channel_shuffle(torch.cat([torch.zeros(2, 4, 4, 4), expected], 1), 4)[:, [
        i for i in range(16) if i % 4]])
    assert torch.equal(out[:, 0::4], torch.zeros(2, 4, 4, 4))


def test_k_that_does_not_divide_channels_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"K=3 does not divide the 16 channels .* Choose K from \[1, 2, 4, 8, 16\]"):
        nbp.create_supernet("pc-darts", k=3)


def test_odd_sampled_width_in_reduction_cell_is_a_clear_error():
    # layers=2: cell 0 is a reduction cell with 24 channels, and 24/8 = 3 channels reach its ops
    with pytest.raises(ConfigError, match="FactorizedReduce needs an even channel count but got 3"):
        nbp.create_supernet("pc-darts", init_channels=12, layers=2, k=8)


def test_edge_normalization_is_a_softmax_per_node():
    en = EdgeNormalization()
    weights = en.edge_weights(torch.zeros(14), node_slices(4))
    expected = [1 / 2] * 2 + [1 / 3] * 3 + [1 / 4] * 4 + [1 / 5] * 5
    assert weights.tolist() == pytest.approx(expected)
    betas = torch.tensor([0.0, 1.0] + [0.0] * 12)
    assert en.edge_weights(betas, node_slices(4))[:2].tolist() == pytest.approx([0.2689414, 0.7310586])


def test_genotype_from_hand_set_alphas_and_betas():
    primitives = nbp.PRIMITIVES
    alphas = torch.full((14, 8), 0.1)
    # 'none' is excluded even when it is the largest
    alphas[0, primitives.index("none")] = 0.9
    alphas[0, primitives.index("sep_conv_5x5")] = 0.5
    alphas[1, primitives.index("max_pool_3x3")] = 0.4
    # node 1 (edges 2..4): edge 4 has the strongest op, then edge 2
    alphas[4, primitives.index("dil_conv_3x3")] = 0.8
    alphas[2, primitives.index("skip_connect")] = 0.3
    gene = derive_genotype(alphas, None, primitives, 4)
    assert gene[:4] == [("sep_conv_5x5", 0), ("max_pool_3x3", 1), ("dil_conv_3x3", 2), ("skip_connect", 0)]
    # with edge weights, node 1's edge 3 outweighs edge 2 once its beta-weight is large enough
    edge_weights = torch.ones(14)
    edge_weights[3] = 3.1  # 0.1 * 3.1 = 0.31 > 0.3
    gene = derive_genotype(alphas, edge_weights, primitives, 4)
    assert gene[2:4] == [("dil_conv_3x3", 2), ("max_pool_3x3", 1)]  # ties on edge 3: first non-'none' op wins


def test_k1_partial_equals_full_channels():
    torch.manual_seed(0)
    full = nbp.create_supernet("darts-1st", **SMALL)
    torch.manual_seed(0)
    partial = nbp.create_supernet("pc-only", k=1, **SMALL)
    assert [p.shape for p in full.parameters()] == [p.shape for p in partial.parameters()]
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(full(x), partial(x))


def test_gradient_reaches_alphas_and_betas():
    net = nbp.create_supernet("pc-darts", **SMALL)
    net(torch.randn(2, 3, 16, 16)).logsumexp(1).sum().backward()
    names = ["alphas_normal", "alphas_reduce", "betas_normal", "betas_reduce"]
    assert [tuple(p.shape) for p in net.arch_parameters()] == [(14, 8), (14, 8), (14,), (14,)]
    for name, p in zip(names, net.arch_parameters()):
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # 'none' gets a gradient only through the softmax normalisation, never from its own (zero) output
    assert net.alphas_normal.grad[:, 0].abs().sum() > 0


def test_darts_has_no_betas_and_weights_exclude_arch():
    net = nbp.create_supernet("darts", **SMALL)
    assert len(net.arch_parameters()) == 2
    arch = {id(p) for p in net.arch_parameters()}
    assert not arch & {id(p) for p in net.weight_parameters()}
    assert len(list(net.parameters())) == len(net.weight_parameters()) + 2


def test_reduction_cells_and_widths_follow_the_reference():
    net = nbp.create_supernet("darts", init_channels=16, layers=8)
    assert [c.reduction for c in net.cells] == [False, False, True, False, False, True, False, False]
    assert net.classifier.in_features == 4 * 64
    assert sum(p.numel() for p in net.weight_parameters()) == 1_930_618


def test_unknown_method_and_option_errors():
    with pytest.raises(ConfigError, match="Unknown method 'pcdarts'. Did you mean 'pc-darts'"):
        nbp.create_supernet("pcdarts")
    with pytest.raises(ConfigError, match="Unknown option.*foo"):
        nbp.create_supernet("pc-darts", foo=1)
    with pytest.raises(ConfigError, match="sampler 'full' .* does not accept the option"):
        nbp.create_supernet("darts", k=2)


def test_sampler_and_normalizer_overrides():
    net = nbp.create_supernet("darts-1st", sampler="partial", sampler_options={"k": 2}, normalizer="edge", **SMALL)
    edge = net.cells[0]._ops[0]
    assert isinstance(edge, PartialChannelEdge) and edge.k == 2
    assert len(net.arch_parameters()) == 4
    assert repr(PartialChannelSampler(2)) == "PartialChannelSampler(k=2)"


def test_imagenet_stem_reduces_by_eight():
    net = nbp.create_supernet("pc-darts", init_channels=8, layers=3, stem="imagenet", k=2)
    assert net(torch.randn(2, 3, 64, 64)).shape == (2, 10)
    assert net.cells[0].preprocess0.__class__.__name__ == "FactorizedReduce"
