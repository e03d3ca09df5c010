"""A/B of the faster paths a GPU may allow that are off by default until measured: the first GPU session decides.

For pc-darts (batch 256) and darts (batch 64), C=16, 8 cells, 32x32, one first-order search step as the reference
train_search.py takes it (benchmarks/gpu_reference.py's Stepper), each variant against today's default on CUDA
(stacked edges, default memory layout, eager):

- ``plain path``: every edge on its own (``nasbench_pc.supernet._stacking.plain_path``), the reference's way: is
stacking a
  gain on the GPU too?
- ``stacked, channels-last``: stacked edges and activations channels-last, CUDA only (on CPU the whole network
  channels-last is refused, and oneDNN's AVX2 1x1 backward-weights kernel never returned at C=4: docs/benchmarks.md;
  on CUDA it is off until measured here);
- ``torch.compile``: the supernet compiled (inductor on CUDA);
- ``torch.compile, CUDA graphs``: ``mode="reduce-overhead"`` (CUDA only).

Each row gives the median step time over interleaved thirds, the ratio to the default, the peak allocated memory,
and how far the variant's logits and gradients lie from the default's on one batch (TF32 off for that check), so a
faster variant that is wrong shows as wrong. Rows are printed as each finishes, so a run cut short keeps them.

    python benchmarks/gpu_options.py                      # on a GPU
    python benchmarks/gpu_options.py --device cpu --batch 4 --init-channels 4 --layers 3 --compile-backend eager
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from gpu_reference import PAPER, Stepper  # benchmarks/gpu_reference.py, next to this script

import nasbench_pc as nbp
from nasbench_pc.supernet import _stacking as stacking


def _variants(device: torch.device, backend: str) -> dict[str, tuple[Callable, Callable[[torch.nn.Module], object]]]:
    """name -> (context to run it in, what to do to the network first)."""
    def channels_last(net: torch.nn.Module) -> torch.nn.Module:
        stacking.use_channels_last(device, True)
        return net.to(memory_format=torch.channels_last)

    out = {
        "default (stacked, eager)": (contextlib.nullcontext, lambda net: net),
        "plain path": (stacking.plain_path, lambda net: net),
        f"torch.compile ({backend})": (contextlib.nullcontext, lambda net: torch.compile(net, backend=backend)),
    }
    if device.type == "cuda":  # on CPU the whole network channels-last is refused (search --channels-last): see below
        out["stacked, channels-last"] = (contextlib.nullcontext, channels_last)
    if device.type == "cuda":
        out["torch.compile, CUDA graphs"] = (contextlib.nullcontext,
                                             lambda net: torch.compile(net, mode="reduce-overhead"))
    return out


def _fresh(method: str, device: torch.device, shape: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    return nbp.create_supernet(method, **shape).to(device).train()


def _outputs(net: torch.nn.Module, model: Callable, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Logits and every gradient of one forward and backward (TF32 off), flattened into one float64 vector."""
    net.zero_grad(set_to_none=True)
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        logits = model(x)
        F.cross_entropy(logits, y).backward()
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
    grads = [p.grad.flatten() for p in net.parameters() if p.grad is not None]
    out = torch.cat([logits.detach().flatten(), *grads]).double().cpu()
    net.zero_grad(set_to_none=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(PAPER), choices=list(PAPER))
    parser.add_argument("--batch", type=int, help="one batch for every method instead of each paper's")
    parser.add_argument("--init-channels", type=int, default=16)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per variant, in three interleaved parts")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation, cuDNN autotuning)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--compile-backend", default="inductor", help="inductor (the real one); eager for a quick "
                        "dry run of the script on CPU, where inductor takes minutes to compile")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("No CUDA GPU is visible: run this on a machine with an NVIDIA GPU (benchmarks/gpu.sh).")
    shape = {"init_channels": args.init_channels, "layers": args.layers}
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (a dry run, not a GPU figure)"
    print(f"**Faster paths A/B on {where}, torch {torch.__version__}, C={args.init_channels}, {args.layers} cells, "
          f"32x32, first-order search step**\n")
    print("| method | batch | variant | step ms (median) | vs default | peak allocated GiB | max rel. diff |")
    print("|---|---|---|---|---|---|---|", flush=True)
    for method in args.methods:
        batch = args.batch or PAPER[method][0]
        gen = torch.Generator().manual_seed(1)
        x = torch.randn(batch, 3, 32, 32, generator=gen).to(device)
        y = torch.randint(0, 10, (batch,), generator=gen).to(device)
        baseline = None
        times: dict[str, float] = {}
        if device.type == "cpu":
            print(f"| {method} | {batch} | stacked, channels-last | not run on CPU: the whole network channels-last "
                  f"is refused there (search --channels-last); at C=4 oneDNN's jit_avx2 1x1 backward-weights kernel "
                  f"never returned (docs/benchmarks.md) | | | |", flush=True)
        for name, (context, prepare) in _variants(device, args.compile_backend).items():
            stacking.use_channels_last(device, False)
            try:
                with context():
                    net = _fresh(method, device, shape)
                    model = prepare(net)
                    outputs = _outputs(net, model, x.contiguous(memory_format=torch.channels_last)
                                       if "channels-last" in name else x, y)
                    baseline = outputs if baseline is None else baseline
                    diff = float((outputs - baseline).norm() / baseline.norm())
                    stepper = Stepper(net, net.arch_parameters(), device)
                    stepper.net = model
                    stepper.timed(batch, 1, args.warmup)
                    parts = [stepper.timed(batch, max(1, args.steps // 3), 0) for _ in range(3)]
            except Exception as exc:  # a variant that does not run is a finding, not the end of the A/B
                print(f"| {method} | {batch} | {name} | failed: {type(exc).__name__}: "
                      f"{' '.join(str(exc).split())[:160]} | | | |", flush=True)
                continue
            finally:
                stacking.use_channels_last(device, False)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            step = statistics.median(seconds for seconds, _ in parts)
            times[name] = step
            first = next(iter(times.values()))
            peak = max(peak for _, peak in parts) / 2**30
            print(f"| {method} | {batch} | {name} | {step * 1e3:.1f} | {step / first:.2f}x | "
                  f"{peak:.2f} | {diff:.1e} |", flush=True)
    print()


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"({time.perf_counter() - start:.0f} s)")
