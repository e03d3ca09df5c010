"""Where one supernet training step spends its time: torch.profiler's count and self CPU time per op.

Runs one warm forward + backward of a method's supernet (as a search runs it: stacked edges, in channels-last
where nasbench_pc.supernet._layout_check passed; with --plain-path one edge at a time in the default layout) and prints
the convolution and batch-norm call counts (PyTorch's, and nasbench_pc.supernet._stacking's own for narrow channels-last
ones) and the ops that took the most time.

    python benchmarks/profile_step.py --method pc-darts
    python benchmarks/profile_step.py --method pc-darts --plain-path
"""

from __future__ import annotations

import argparse
import contextlib

import torch
import torch.nn.functional as F
from _common import print_table  # benchmarks/_common.py, next to this script
from torch.profiler import ProfilerActivity, profile

import nasbench_pc as nbp
from nasbench_pc.supernet import _stacking as stacking


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="pc-darts")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--init-channels", type=int, default=16)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--plain-path", action="store_true", help="one edge at a time, default layout")
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    layout = stacking.prepare("cpu")
    torch.manual_seed(0)
    net = nbp.create_supernet(args.method, init_channels=args.init_channels, layers=args.layers).train()
    x, y = torch.randn(args.batch, 3, 32, 32), torch.randint(0, 10, (args.batch,))
    with stacking.plain_path() if args.plain_path else contextlib.nullcontext():
        for _ in range(2):  # warm-up: oneDNN builds its kernels
            F.cross_entropy(net(x), y).backward()
            net.zero_grad(set_to_none=True)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            F.cross_entropy(net(x), y).backward()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    count = {e.key: e.count for e in events}
    path = "plain path" if args.plain_path else ("stacked, channels-last" if layout.ok else "stacked, default layout")
    rows = [[e.key, str(e.count), f"{e.self_cpu_time_total / 1e3:.0f}", f"{100 * e.self_cpu_time_total / total:.0f}"]
            for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:args.top]]
    print_table(f"{args.method}, batch {args.batch}, C={args.init_channels}, {args.layers} cells, {args.threads} "
                f"threads, {path}: {count.get('aten::convolution', 0)} convolutions, "
                f"{count.get('aten::native_batch_norm', 0) + count.get('_NarrowBatchNorm', 0)} batch norms, "
                f"{total / 1e3:.0f} ms self CPU in all",
                ["op", "calls", "self CPU ms", "%"], rows, args.markdown)


if __name__ == "__main__":
    main()
