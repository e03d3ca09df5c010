"""Search step time and peak GPU memory: PC-DARTS (paper preset, batch 256) vs DARTS (batch 64).

Runs full search steps (architecture step + weight step, as after the warm-up) of both methods
with their reference CIFAR-10 settings on the synthetic dataset (3x32x32, 10 classes) and prints
the GPU, the mean step time over the timed steps and ``torch.cuda.max_memory_allocated``.

    python benchmarks/gpu_search.py            # 20 timed steps each, after 3 warm-up steps
    python benchmarks/gpu_search.py --steps 50 --amp bf16
    python benchmarks/gpu_search.py --device cpu --tiny --steps 2 --warmup 1   # gpu.sh's dry run of the script

The numbers go into docs/benchmarks.md with the GPU name this prints.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

import torch

from nasbench_pc.search import Search
from nasbench_pc.search.presets import resolve_config

RUNS = (("pc-darts", 256), ("darts", 64))  # the paper's batches: PC-DARTS fits 4x DARTS' batch


def full_batches(search: Search):
    """Endless full-size batches of the weight split, pass after pass."""
    for pass_no in itertools.count():
        for batch in search.weight_stream.iterate(pass_no):
            if batch[2] == search.config.batch_size:
                yield batch


#: --tiny: what a CPU runs in seconds
TINY = {"batch_size": 8, "image_size": 16, "limit": 64, "init_channels": 4, "layers": 3}


def bench(method: str, batch_size: int, steps: int, warmup: int, amp: str | None, device: str = "cuda",
          tiny: bool = False) -> dict[str, float]:
    sizes = {**TINY} if tiny else {"batch_size": batch_size}
    config = resolve_config(method, "paper", dataset="synthetic", device=device, amp=amp, **sizes)
    search = Search(config)
    cuda = search.device.type == "cuda"
    lr = config.lr
    batches = full_batches(search)
    for _ in range(warmup):
        search.train_step(search.to_device(next(batches)), lr=lr, arch_step=True)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        batch = search.to_device(next(batches))
        sync()
        start = time.perf_counter()
        search.train_step(batch, lr=lr, arch_step=True)
        sync()
        times.append(time.perf_counter() - start)
    return {"step_s": sum(times) / len(times), "peak_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else 0,
            "order": search.method.order, "batch": config.batch_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per method")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (cuDNN autotuning)")
    parser.add_argument("--amp", choices=["bf16"], default=None)
    parser.add_argument("--device", default="cuda", help="cuda (the point of it), or cpu to try the script out")
    parser.add_argument("--tiny", action="store_true", help="batch 8, 16x16, C=4, 3 cells: a dry run's sizes")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("gpu_search.py measures CUDA step time and memory, but this PyTorch sees no CUDA GPU; "
                 "run it on a machine with an NVIDIA GPU and a CUDA build of PyTorch.")
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU (a dry run, not a GPU figure)"
    print(f"**Our search loop on {where}, torch {torch.__version__}, amp: {args.amp or 'off (fp32)'}"
          f"{', tiny sizes' if args.tiny else ''}**\n")
    print("| method | order | batch | step time (s) | images/s | peak memory (MiB) |")
    print("|---|---|---|---|---|---|")
    for method, batch in RUNS:
        r = bench(method, batch, args.steps, args.warmup, args.amp, args.device, args.tiny)
        print(f"| {method} | {r['order']} | {r['batch']} | {r['step_s']:.3f} | {r['batch'] / r['step_s']:.0f} | "
              f"{r['peak_mib']:.0f} |", flush=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
