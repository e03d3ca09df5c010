# tests/test_sampler.py
"""The random-partial sampler and the pc-random method, tested through the installed package (pip install .)."""

import pytest
import torch
from torch import nn

import nasbench_pc as nbp

RandomPartialSampler = nbp.available("sampler")["random-partial"]  # found through its entry point, as a search does


class Negate(nn.Module):
    """Stands in for a MixedOp: it negates the channels it reads (every ``stride``-th pixel), which shows them."""

    def __init__(self, stride: int = 1):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        return -x[:, :, :: self.stride, :: self.stride]


X = torch.arange(1.0, 9.0).view(1, 8, 1, 1)  # 8 channels, channel c holding c + 1


def sampled(edge: nn.Module) -> list[int]:
    """The channels ``edge`` sent through its MixedOp, after checking that every channel kept its place."""
    out = edge(X, None)
    assert torch.equal(out.abs(), X)
    return (out.flatten() < 0).nonzero().flatten().tolist()


def test_each_training_step_draws_new_channels_and_the_seed_repeats_them():
    edge = RandomPartialSampler(k=4).build_edge(lambda c: Negate(), 8, 1)
    torch.manual_seed(0)
    draws = [sampled(edge) for _ in range(3)]
    torch.manual_seed(0)  # the draws are torch.randperm's from the default generator: C/K = 2 of 8 channels each
    assert draws == [sorted(torch.randperm(8)[:2].tolist()) for _ in range(3)]
    assert len({tuple(d) for d in draws}) == 3
    torch.manual_seed(0)
    assert [sampled(edge) for _ in range(3)] == draws


def test_eval_mode_uses_one_seeded_draw_and_leaves_torchs_generator_alone():
    edge = RandomPartialSampler(k=4, seed=1).build_edge(lambda c: Negate(), 8, 1).eval()
    state = torch.get_rng_state()
    assert sampled(edge) == sampled(edge) == sorted(torch.randperm(8, generator=torch.Generator().manual_seed(1))[:2]
                                                    .tolist())
    assert torch.equal(torch.get_rng_state(), state)


def test_a_stride_2_edge_max_pools_the_channels_that_bypass_it():
    x = torch.arange(1.0, 9.0).view(1, 8, 1, 1) * torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # channel c: (c+1)*[1 2; 3 4]
    edge = RandomPartialSampler(k=4).build_edge(lambda c: Negate(stride=2), 8, 2)
    torch.manual_seed(0)
    out = edge(x, None).flatten().tolist()
    # sampled channels 0 and 4 hold -(c+1) * 1 (the top-left pixel); the others max-pool to (c+1) * 4
    assert out == [-1.0, 8.0, 12.0, 16.0, -5.0, 24.0, 28.0, 32.0]


def test_k_must_divide_the_channels():
    with pytest.raises(nbp.ConfigError, match=r"K=4 does not divide the 6 channels .* Choose K from \[1, 2, 3, 6\]"):
        nbp.create_supernet("pc-random", init_channels=6, layers=3)
    with pytest.raises(nbp.ConfigError, match="k must be an integer of at least 1, got 0"):
        RandomPartialSampler(k=0)


def test_pc_random_starts_from_the_weights_of_pc_darts():
    torch.manual_seed(2)
    pc_darts = nbp.create_supernet("pc-darts", init_channels=8, layers=3)
    torch.manual_seed(2)
    pc_random = nbp.create_supernet("pc-random", init_channels=8, layers=3)
    assert type(pc_random.cells[0]._ops[0]).__name__ == "RandomPartialEdge"
    assert all(torch.equal(p, q) for p, q in zip(pc_darts.parameters(), pc_random.parameters(), strict=True))
    pc_random.eval()
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(pc_random(x), pc_random(x))
