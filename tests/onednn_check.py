"""Run by tests/test_reliability_cpu.py in a subprocess (a heap corruption kills only that process).

Builds small supernets (and a derived network) and prints, as JSON, the largest relative difference
between the default CPU path (oneDNN kernels) and the same network with oneDNN disabled: logits and
architecture gradients (all arch tensors
flattened together) after three forward/backward passes. The caller sets the thread count and
ONEDNN_MAX_CPU_ISA in the environment.
"""

import json
import sys

import torch
import torch.nn.functional as F

import nasbench_pc as nbp
from nasbench_pc.plugins.darts_space.network import DartsNetwork


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b||: float32 sums in another order differ in the last bits, amplified by depth."""
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def _pass(net: torch.nn.Module, params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor, passes: int):
    for _ in range(passes):
        for p in params:
            p.grad = None
        logits = net(x)
        F.cross_entropy(logits, y).backward()
    return logits.detach(), [p.grad.clone() for p in params]


def check(net: torch.nn.Module, params: list[torch.Tensor], batch: int) -> dict[str, float]:
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(batch, 3, 16, 16, generator=g), torch.randint(0, 10, (batch,), generator=g)
    fast = _pass(net, params, x, y, passes=3)  # the AVX2 corruption needed a few backward passes to show
    with torch.backends.mkldnn.flags(enabled=False):
        plain = _pass(net, params, x, y, passes=1)
    return {"logits": _rel(fast[0], plain[0]),
            "grads": _rel(torch.cat([g.flatten() for g in fast[1]]), torch.cat([g.flatten() for g in plain[1]]))}


def main() -> None:
    results = {}
    # each method at both widths and (partial channels) both K, in two of the four pairs: the AVX2 kernel fault
    # showed at every one of them, and the three subprocesses of the matrix run on CI's two cores
    for method, width, k in [("pc-darts", 4, 2), ("pc-darts", 8, 4), ("pc-only", 4, 4), ("pc-only", 8, 2),
                             ("darts", 4, None), ("darts", 8, None)]:
        torch.manual_seed(0)
        net = nbp.create_supernet(method, init_channels=width, layers=5, **({} if k is None else {"k": k}))
        results[f"{method} C={width} K={k}"] = check(net, net.arch_parameters(), 32)
    torch.manual_seed(0)
    derived = DartsNetwork(nbp.KNOWN["PC_DARTS_cifar"], init_channels=8, layers=5, num_classes=10)
    results["derived PC_DARTS_cifar C=8"] = check(derived, [derived.stem[0].weight, derived.classifier.weight], 16)
    json.dump({"threads": torch.get_num_threads(), "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
