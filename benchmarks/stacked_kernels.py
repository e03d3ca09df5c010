"""The layer-level choices inside stacked edges (nasbench_pc.supernet._stacking), timed on this machine.

Three tables, forward + backward of one layer at the shapes a search at C=8 and C=16 (batch 32) produces, each
row the median of several repeats in this one process:

1. Batch norm of a channels-last tensor: PyTorch's kernel against ``stacking._NarrowBatchNorm`` (what stacked
   edges use below 16 channels) and against PyTorch's kernel in the default layout.
2. Each edge's block of a stacked tensor times its weight: as a 5-D (batch, edges, C, H, W) broadcast (what stacked
   edges did before) against a 4-D per-channel product (what they do now); and a shared tensor repeated once per
   edge and weighted, as a 5-D broadcast against ``stacking.weighted``'s 1x1 convolution.
3. 3x3 pooling of a channels-last tensor: PyTorch's layer against ``stacking._pool``'s images laid side by side
   as the channels of one image (what stacked edges use below 8 channels).

    python benchmarks/stacked_kernels.py
    python benchmarks/stacked_kernels.py --threads 1 --markdown
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from _common import cpu_model, isa, print_table  # benchmarks/_common.py, next to this script
from torch import nn

from nasbench_pc.supernet import _stacking as stacking

CL = torch.channels_last


def _ms(fn: Callable[[], object], repeats: int = 7, inner: int = 20) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - start) / inner * 1e3)
    return statistics.median(times)


def _forward_backward(make: Callable[[], torch.Tensor], inputs: list[torch.Tensor]) -> Callable[[], object]:
    def run() -> object:
        out = make()
        return torch.autograd.grad(out, inputs, torch.ones_like(out))
    return run


def batch_norm_row(c: int, size: int) -> list[str]:
    x = torch.randn(32, c, size, size).contiguous(memory_format=CL).requires_grad_()
    plain = x.detach().contiguous().requires_grad_()
    ones = torch.ones(c)
    native = _ms(_forward_backward(lambda: F.batch_norm(x, None, None, training=True), [x]))
    ours = _ms(_forward_backward(lambda: stacking._NarrowBatchNorm.apply(x, ones, 1e-5)[0], [x]))
    default = _ms(_forward_backward(lambda: F.batch_norm(plain, None, None, training=True), [plain]))
    return [f"32x{c}x{size}x{size}", f"{native:.3f}", f"{ours:.3f}", f"{default:.3f}",
            "ours" if c < 16 else "PyTorch's"]


def weighting_row(n: int, c: int, size: int) -> list[str]:
    weights = torch.rand(n, requires_grad=True)
    y = torch.randn(32, n * c, size, size).contiguous(memory_format=CL).requires_grad_()
    shared = torch.randn(32, c, size, size).contiguous(memory_format=CL).requires_grad_()
    five = _ms(_forward_backward(lambda: weights.view(1, n, 1, 1, 1) * y.unflatten(1, (n, c)), [y, weights]))
    four = _ms(_forward_backward(lambda: stacking.weighted(y, True, weights), [y, weights]))
    shared_five = _ms(_forward_backward(
        lambda: (shared.unsqueeze(1) * weights.view(1, n, 1, 1, 1)).flatten(1, 2) + y, [shared, weights]))
    shared_conv = _ms(_forward_backward(lambda: stacking.weighted(shared, False, weights) + y, [shared, weights]))
    return [f"{n} x 32x{c}x{size}x{size}", f"{five:.3f}", f"{four:.3f}", f"{shared_five:.3f}", f"{shared_conv:.3f}"]


def pool_row(c: int, size: int) -> list[str]:
    x = torch.randn(32, c, size, size).contiguous(memory_format=CL).requires_grad_()
    cells = []
    for pool in (nn.MaxPool2d(3, 1, 1), nn.AvgPool2d(3, 1, 1, count_include_pad=False)):
        cells += [f"{_ms(_forward_backward(lambda: pool(x), [x])):.3f}",  # noqa: B023 (timed at once)
                  f"{_ms(_forward_backward(lambda: stacking._pool(pool, x), [x])):.3f}"]  # noqa: B023
    return [f"32x{c}x{size}x{size}", *cells, "side by side" if c < 8 else "the layer"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    title = f"{cpu_model()}, {isa()}, torch {torch.__version__}, {args.threads} threads"
    print_table(f"Batch norm, channels-last input, forward + backward, ms ({title})",
                ["shape", "PyTorch, channels-last", "_NarrowBatchNorm", "PyTorch, default layout",
                 "stacked edges use"],
                [batch_norm_row(c, size) for c, size in [(2, 32), (4, 32), (6, 32), (8, 32), (12, 32), (16, 32),
                                                          (8, 16), (12, 16), (16, 16), (24, 16), (32, 16), (16, 8),
                                                          (32, 8), (64, 8)]], args.markdown)
    print_table(f"Per-edge weights on channels-last tensors, forward + backward, ms ({title})",
                ["edges x block", "stacked: 5-D broadcast", "stacked: 4-D per channel",
                 "shared: 5-D broadcast + sum", "shared: 1x1 conv + sum"],
                [weighting_row(n, c, size) for n, c, size in [(4, 2, 32), (4, 4, 32), (3, 4, 32), (4, 8, 16),
                                                              (2, 8, 16), (4, 16, 8)]], args.markdown)
    print_table(f"3x3 pooling, stride 1, channels-last input, forward + backward, ms ({title})",
                ["shape", "max: layer", "max: side by side", "avg: layer", "avg: side by side", "stacked edges use"],
                [pool_row(c, size) for c, size in [(2, 32), (4, 32), (4, 16), (8, 16), (8, 8), (16, 8)]],
                args.markdown)


if __name__ == "__main__":
    main()
