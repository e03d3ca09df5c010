"""Our supernets against the reference model_search.py on one GPU: search step, peak memory, batch in a budget.

For each method and its reference (pc-darts: yuhuixu1993/PC-DARTS, darts: quark0/darts cnn/), on the same GPU in
one process, interleaved:

- one first-order search step as the reference's train_search.py takes it: the architecture step (loss on a
  validation batch, backward, Adam on the architecture parameters), then the weight step (loss on a training
  batch, backward, gradient clipping at 5, SGD with momentum); mean seconds over the timed steps;
- ``torch.cuda.max_memory_allocated`` over those steps;
- the largest batch whose step fits in ``--budget`` (doubling, then bisection; out-of-memory counts as no);
- the epoch of the paper's CIFAR-10 search (25,000 training images, so 98 steps of batch 256 for PC-DARTS and
  391 of batch 64 for DARTS) projected from the step time, and 50 epochs of it in GPU-hours (data loading and
  the validation pass left out: this times the network, which is what differs).

    python benchmarks/gpu_reference.py --reference-pc ~/src/PC-DARTS --reference-darts ~/src/darts/cnn
    python benchmarks/gpu_reference.py --reference-pc ~/src/PC-DARTS --methods pc-darts --markdown

The GPU's name is printed with every table; the numbers go into docs/benchmarks.md with it.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch
import torch.nn.functional as F
from _common import print_table, reference_network  # benchmarks/_common.py, next to this script

import nasbench_pc as nbp
from nasbench_pc.supernet import _stacking as stacking

#: method -> (batch of the paper's CIFAR-10 search, reference option, reference tag)
PAPER = {"pc-darts": (256, "reference_pc", "PC-DARTS"), "darts": (64, "reference_darts", "DARTS")}
CIFAR_SEARCH_IMAGES = 25_000  # train_portion 0.5 of CIFAR-10's 50,000
EPOCHS = 50


class Stepper:
    """One network with the reference train_search.py's optimizers; ``step(batch)`` is one first-order search
    step on random CIFAR-sized data."""

    def __init__(self, net: torch.nn.Module, arch: list[torch.Tensor], device: torch.device):
        self.net, self.arch, self.device = net.to(device).train(), arch, device
        arch_ids = {id(p) for p in arch}
        self.weights = [p for p in net.parameters() if id(p) not in arch_ids]
        self.w_opt = torch.optim.SGD(self.weights, lr=0.1, momentum=0.9, weight_decay=3e-4)
        self.a_opt = torch.optim.Adam(arch, lr=6e-4, betas=(0.5, 0.999), weight_decay=1e-3)

    def step(self, batch: int) -> None:
        x = torch.randn(2, batch, 3, 32, 32, device=self.device)
        y = torch.randint(0, 10, (2, batch), device=self.device)
        self.a_opt.zero_grad()
        F.cross_entropy(self.net(x[1]), y[1]).backward()
        self.a_opt.step()
        self.w_opt.zero_grad()
        F.cross_entropy(self.net(x[0]), y[0]).backward()
        torch.nn.utils.clip_grad_norm_(self.weights, 5.0)
        self.w_opt.step()

    def timed(self, batch: int, steps: int, warmup: int) -> tuple[float, int]:
        """Mean step seconds and peak allocated bytes (0 on CPU) over ``steps`` steps after ``warmup``."""
        cuda = self.device.type == "cuda"
        for _ in range(warmup):
            self.step(batch)
        if cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        start = time.perf_counter()
        for _ in range(steps):
            self.step(batch)
        if cuda:
            torch.cuda.synchronize(self.device)
        return (time.perf_counter() - start) / steps, torch.cuda.max_memory_allocated(self.device) if cuda else 0


def fits(make, batch: int, budget: int, device: torch.device) -> bool:
    """Whether one search step at ``batch`` stays within ``budget`` bytes of allocated memory."""
    stepper = None
    try:
        stepper = make()
        torch.cuda.reset_peak_memory_stats(device)
        stepper.step(batch)
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) <= budget
    except torch.OutOfMemoryError:
        return False
    finally:
        del stepper
        torch.cuda.empty_cache()


def largest_batch(make, budget: int, device: torch.device, limit: int = 4096) -> int:
    low, high = 0, 16
    while high <= limit and fits(make, high, budget, device):
        low, high = high, high * 2
    while high - low > 8:
        mid = (low + high) // 2
        low, high = (mid, high) if fits(make, mid, budget, device) else (low, mid)
    return low


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(PAPER), choices=list(PAPER))
    parser.add_argument("--reference-pc", help="folder holding the PC-DARTS reference model_search.py")
    parser.add_argument("--reference-darts", help="folder holding the DARTS reference cnn/model_search.py")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--budget", default="11GB", help="memory budget for the largest batch (a 1080 Ti's 11 GB)")
    parser.add_argument("--batch", type=int, help="one batch for every method instead of each paper's")
    parser.add_argument("--device", default="cuda", help="cuda (the point of it), or cpu to try the script out: "
                        "no peak memory, no largest batch")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("No CUDA GPU is visible: run this on a machine with an NVIDIA GPU (benchmarks/gpu.sh).")
    if device.type == "cpu" and not torch.cuda.is_available():
        torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]  # the reference's .cuda()
    budget = int(float(args.budget.upper().removesuffix("GB")) * 1e9)
    torch.backends.cudnn.benchmark = True  # as the reference scripts do
    stacking.prepare(device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (a try-out, not a GPU figure)"

    rows = []
    for method in args.methods:
        batch, option, tag = PAPER[method]
        batch = args.batch or batch
        makers = {method: lambda m=method: _ours(m, device)}
        folder = getattr(args, option)
        if folder:
            network = reference_network(folder, tag)
            makers[f"reference {tag}"] = lambda net_cls=network: _reference(net_cls, device)
        steppers = {name: make() for name, make in makers.items()}
        for stepper in steppers.values():  # warm-up and cuDNN autotuning before any timing
            stepper.timed(batch, 1, args.warmup)
        times: dict[str, list[float]] = {name: [] for name in steppers}
        peaks: dict[str, int] = {}
        for _ in range(3):  # interleaved thirds, so clock and thermal drift hit both alike
            for name, stepper in steppers.items():
                seconds, peak = stepper.timed(batch, max(1, args.steps // 3), 0)
                times[name].append(seconds)
                peaks[name] = max(peaks.get(name, 0), peak)
        del steppers
        torch.cuda.empty_cache()
        steps_per_epoch = math.ceil(CIFAR_SEARCH_IMAGES / batch)
        step_s = {name: sorted(times[name])[1] for name in makers}
        reference = step_s.get(f"reference {tag}")
        for name, make in makers.items():
            epoch_s = steps_per_epoch * step_s[name]
            ratio = f"{step_s[name] / reference:.2f}x" if reference and name == method else "-"
            largest = str(largest_batch(make, budget, device)) if device.type == "cuda" else "-"
            rows.append([name, str(batch), f"{step_s[name] * 1e3:.0f}", ratio, f"{peaks[name] / 2**30:.2f}",
                         largest, f"{epoch_s:.0f}", f"{EPOCHS * epoch_s / 3600:.2f}"])
    header = ["network", "batch", "search step ms (median of 3)", "ours / reference", "peak allocated GiB",
              f"largest batch in {args.budget}", "CIFAR-10 search epoch s (projected)",
              f"{EPOCHS} epochs, GPU-hours"]
    title = f"First-order search step on {gpu}, torch {torch.__version__}, C=16, 8 cells, 32x32"
    print_table(title, header, rows, args.markdown)


def _ours(method: str, device: torch.device) -> Stepper:
    torch.manual_seed(0)
    net = nbp.create_supernet(method)
    return Stepper(net, net.arch_parameters(), device)


def _reference(network: type, device: torch.device) -> Stepper:
    torch.manual_seed(0)
    net = network(16, 10, 8, torch.nn.CrossEntropyLoss())  # its alphas are created with .cuda() already
    return Stepper(net, list(net.arch_parameters()), device)


if __name__ == "__main__":
    main()
