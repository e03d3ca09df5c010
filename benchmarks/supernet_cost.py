"""Memory and speed of one supernet training step, per method (issue 2's measurement).

For each method: the bytes saved for backward during one forward pass (counted with
torch.autograd.graph.saved_tensors_hooks, summing every saved tensor, which is how the
reference figures in docs/benchmarks.md were counted; the distinct storage those tensors
occupy is shown too) and the median wall time of forward + backward.

    python benchmarks/supernet_cost.py --batch 32
    python benchmarks/supernet_cost.py --batch 32 --reference-pc ~/src/PC-DARTS --reference-darts ~/src/darts/cnn
    python benchmarks/supernet_cost.py --batch 32 --methods darts pc-darts --checkpoint-cells
    python benchmarks/supernet_cost.py --batch 32 --methods darts pc-darts --plain-path
    python benchmarks/supernet_cost.py --batch 32 --methods darts pc-darts --api

Our networks run as a search runs them: edges that read the same state stacked (nasbench_pc.supernet._stacking), in
channels-last where this machine passed nasbench_pc.supernet._layout_check (the title says which). --plain-path adds
each
method once more, one edge at a time in the default layout (the reference's way), timed interleaved with the rest.

--api adds each method as a user of the Python API gets it: ``create_supernet`` and a plain forward and backward
in a fresh process that never calls anything of the search (no ``stacking.prepare``), timed there the same way
(not interleaved: a process of its own). Its step time equals the search path's row within noise, since the
layout is the supernet's (``channels_last`` None: the device's checked layout), not a switch the search sets.

--checkpoint-cells adds each method with its cells recomputed in backward (``--checkpoint cells``), timed
interleaved with the rest, and a second table of its ratios to the same network without it: bytes saved for
backward (which, for recomputed cells, leave out the one cell recomputed at a time during backward) and the peak
of memory allocated over the step (torch.profiler's memory events, which include that recomputation), and step
time.

--search-step times whole search steps instead, for any method of the family on --space: the architecture step, the
method's hooks (a Gumbel or Dirichlet draw per forward, SDARTS' perturbation, a regulariser) and the weight step,
exactly ``Search.train_step`` on the synthetic data at the paper preset's shape (the space's default supernet),
interleaved, each method's median over --repeats steps and its ratio to darts-1st's:

    python benchmarks/supernet_cost.py --search-step --space nas-bench-201 --batch 64 \
        --methods darts-1st gdas drnas sdarts-rs sdarts-adv beta-darts

The --reference-* options time the reference model_search.py from a checkout you provide
(its folder must hold model_search.py, operations.py and genotypes.py), in the same process
and under the same settings, interleaved with ours, for a side-by-side comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path

import torch
from _common import cpu_model, isa, print_table, reference_network  # benchmarks/_common.py, next to this script

import nasbench_pc as nbp
from nasbench_pc.api import resolve_method, samples_every_channel
from nasbench_pc.runtime.profiling import step_cost, step_seconds
from nasbench_pc.supernet import _stacking as stacking


def load_reference(folder: str, tag: str, init_channels: int, layers: int) -> torch.nn.Module:
    """The reference Network from a user's checkout, built on CPU."""
    if not torch.cuda.is_available():  # the reference calls .cuda() on its alphas
        torch.Tensor.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    return reference_network(folder, tag)(init_channels, 10, layers, torch.nn.CrossEntropyLoss())


def peak_allocated(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """Peak bytes allocated on CPU during one forward + backward, over what was allocated before it, from the
    profiler's allocation and free events in time order."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        torch.nn.functional.cross_entropy(net(x), y).backward()
    net.zero_grad(set_to_none=True)
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak


def median(row: dict) -> float:
    return statistics.median(row["times"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--methods", nargs="+", default=["darts", "pc-darts", "pc-only", "en-only"])
    parser.add_argument("--init-channels", type=int, default=16)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the reference figures use 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per network (after one warm-up)")
    parser.add_argument("--reference-pc", help="folder holding the PC-DARTS reference model_search.py")
    parser.add_argument("--reference-darts", help="folder holding the DARTS reference model_search.py")
    parser.add_argument("--checkpoint-cells", action="store_true", help="also each method with its cells recomputed "
                        "in backward, and its ratios to the network without it")
    parser.add_argument("--plain-path", action="store_true", help="also each method run edge by edge in the default "
                        "layout (stacking and channels-last off)")
    parser.add_argument("--api", action="store_true", help="also each method through create_supernet alone, in a "
                        "fresh process (what a Python API user's own loop gets)")
    parser.add_argument("--search-step", action="store_true", help="time whole search steps (architecture step, "
                        "the method's hooks, weight step) of each method on --space instead")
    parser.add_argument("--space", default="darts", help="the search space of --search-step")
    parser.add_argument("--device", default="cpu", help="the device of --search-step (cpu, cuda)")
    parser.add_argument("--tiny", action="store_true", help="--search-step on a tiny supernet (a dry run)")
    parser.add_argument("--json", help="also write the step times and ratios to this file (benchmarks/cpu_sweep.py)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table for docs/benchmarks.md")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    if args.search_step:
        search_steps(args)
        return
    layout = stacking.prepare("cpu")
    torch.manual_seed(0)
    nets: dict[str, torch.nn.Module] = {
        m: nbp.create_supernet(m, init_channels=args.init_channels, layers=args.layers) for m in args.methods
    }
    recomputed = {f"{m} (checkpoint cells)": m for m in args.methods} if args.checkpoint_cells else {}
    for name, m in recomputed.items():
        nets[name] = nbp.create_supernet(m, init_channels=args.init_channels, layers=args.layers,
                                         checkpoint_cells=True)
    plain_rows = {f"{m} (plain path)": m for m in args.methods} if args.plain_path else {}
    for name, m in plain_rows.items():
        nets[name] = nets[m]  # the same network, timed with stacking off
    if args.reference_darts:
        nets["reference DARTS"] = load_reference(args.reference_darts, "darts", args.init_channels, args.layers)
    if args.reference_pc:
        nets["reference PC-DARTS"] = load_reference(args.reference_pc, "pc", args.init_channels, args.layers)
    x = torch.randn(args.batch, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch,))

    def path(name: str) -> contextlib.AbstractContextManager:
        return stacking.plain_path() if name in plain_rows else contextlib.nullcontext()

    rows = {}
    for name, net in nets.items():
        net.train()
        with path(name):
            cost = step_cost(net, x, y)  # doubles as the warm-up step
        rows[name] = {"saved": (cost.saved_bytes, cost.distinct_bytes), "times": []}
    for _ in range(args.repeats):  # interleaved, so machine noise hits every network alike
        for name, net in nets.items():
            with path(name):
                rows[name]["times"].append(step_seconds(net, x, y))

    if args.api:
        for m in args.methods:
            rows[f"{m} (create_supernet, fresh process)"] = _api_row(m, args)

    base = rows.get("darts", {}).get("saved", (0, 0))[0]
    header = ["method", "saved for backward (GB)", "distinct storage (GB)", "darts / method", "step s (median)"]
    lines = []
    for name, row in rows.items():
        total, distinct = row["saved"]
        ratio = f"{base / total:.2f}x" if base else "-"
        lines.append([name, f"{total / 1e9:.2f}", f"{distinct / 1e9:.2f}", ratio,
                      f"{statistics.median(row['times']):.2f}"])
    machine = (f"{cpu_model()}, {isa()}, torch {torch.__version__}, {args.threads} threads; our layout: "
               f"{'channels-last' if layout.ok else 'default (' + layout.reason + ')'}")
    title = (f"One training step, batch {args.batch}, C={args.init_channels}, {args.layers} cells, 32x32, "
             f"CPU ({machine})")
    tables = [(title, header, lines)]
    if recomputed:
        peaks = {name: peak_allocated(nets[name], x, y) for name in [*recomputed.values(), *recomputed]}
        ratios = []
        for name, m in recomputed.items():
            without, ckpt = rows[m], rows[name]
            time_ratio = median(ckpt) / median(without)
            ratios.append([m, f"{without['saved'][0] / 1e9:.2f} / {ckpt['saved'][0] / 1e9:.3f}",
                           f"{without['saved'][0] / ckpt['saved'][0]:.1f}x",
                           f"{peaks[m] / 1e9:.2f} / {peaks[name] / 1e9:.2f}", f"{peaks[m] / peaks[name]:.1f}x",
                           f"{time_ratio:.2f}x"])
        tables.append((f"--checkpoint cells against the same network without it, same step ({args.threads} threads)",
                       ["method", "saved for backward (GB, without / with)", "fewer saved bytes",
                        "peak allocated (GB, without / with)", "lower peak", "step time (with / without)"],
                       ratios))
    references = {m: ("reference PC-DARTS" if not samples_every_channel(resolve_method(m)) else "reference DARTS")
                  for m in args.methods}
    references = {m: ref for m, ref in references.items() if ref in rows}
    ratios_to_reference = {m: median(rows[m]) / median(rows[ref]) for m, ref in references.items()}
    if ratios_to_reference:
        tables.append(("Step time over the reference's (same process, interleaved; target <= 0.6 for darts and "
                       "pc-darts, < 1 for every method)", ["method", "reference", "step s / reference step s"],
                       [[m, references[m], f"{r:.2f}x"] for m, r in ratios_to_reference.items()]))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "batch": args.batch, "init_channels": args.init_channels, "layers": args.layers,
            "threads": args.threads, "machine": machine, "cpu": cpu_model(), "isa": isa(), "torch": torch.__version__,
            "channels_last": layout.ok,
            "step_s": {name: median(row) for name, row in rows.items()},
            "saved_bytes": {name: row["saved"][0] for name, row in rows.items()},
            "over_reference": ratios_to_reference}, indent=1))
    for name, cols, body in tables:
        print_table(name, cols, body, args.markdown)


def search_steps(args: argparse.Namespace) -> None:
    """--search-step: each method's ``Search.train_step`` on --space, interleaved, against darts-1st's; on CUDA also
    each step's peak memory allocated."""
    from nasbench_pc.search.loop import Search  # noqa: PLC0415 (only this mode builds searches)
    from nasbench_pc.search.presets import resolve_config  # noqa: PLC0415

    cuda = args.device.startswith("cuda")
    methods = list(dict.fromkeys(["darts-1st", *args.methods]))
    searches, batches, times, peaks = {}, {}, {m: [] for m in methods}, {}
    preset, shape = ("quick", dict(init_channels=4, layers=3, image_size=16)) if args.tiny else ("paper", {})
    if args.tiny and args.space != "darts":
        shape = dict(init_channels=4, image_size=16)
    for m in methods:
        config = resolve_config(m, preset, space=args.space, dataset="synthetic", batch_size=args.batch,
                                warmup_epochs=0, device=args.device, **shape)
        search = searches[m] = Search(config)
        search._method_epoch_start(0)  # the method's epoch-0 values (tau, eps, lambda)
        batches[m] = search.to_device(next(search.weight_stream.iterate(0)))
        search.train_step(batches[m], lr=config.lr, arch_step=True)  # warm-up
    for _ in range(args.repeats):
        for m in methods:
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            searches[m].train_step(batches[m], lr=searches[m].config.lr, arch_step=True)
            if cuda:
                torch.cuda.synchronize()
                peaks[m] = max(peaks.get(m, 0), torch.cuda.max_memory_allocated())
            times[m].append(time.perf_counter() - start)
    base = statistics.median(times["darts-1st"])
    shape_words = searches["darts-1st"].config.space_options
    machine = (torch.cuda.get_device_name() if cuda else
               f"{cpu_model()}, {isa()}, torch {torch.__version__}, {args.threads} threads")
    title = (f"One search step (architecture step + weight step), {args.space} {shape_words}, batch {args.batch}, "
             f"{'CUDA' if cuda else 'CPU'} ({machine})")
    lines = [[m, f"{statistics.median(times[m]):.3f}", f"{statistics.median(times[m]) / base:.2f}x",
              *([f"{peaks[m] / 2**20:.0f}"] if cuda else [])] for m in methods]
    if args.json:
        Path(args.json).write_text(json.dumps({"space": args.space, "batch": args.batch, "machine": machine,
                                               "step_s": {m: statistics.median(t) for m, t in times.items()},
                                               "peak_bytes": peaks}, indent=1))
    print_table(title, ["method", "step s (median)", "over darts-1st", *(["peak MiB"] if cuda else [])], lines,
                args.markdown)


_API = """
import json, sys, time
import torch
import nasbench_pc as nbp
from nasbench_pc.runtime.profiling import step_cost, step_seconds
method, channels, layers, batch, threads, repeats = sys.argv[1:]
torch.set_num_threads(int(threads))
torch.manual_seed(0)
net = nbp.create_supernet(method, init_channels=int(channels), layers=int(layers)).train()
x, y = torch.randn(int(batch), 3, 32, 32), torch.randint(0, 10, (int(batch),))
cost = step_cost(net, x, y)
print(json.dumps({"saved": [cost.saved_bytes, cost.distinct_bytes],
                  "times": [step_seconds(net, x, y) for _ in range(int(repeats))]}))
"""


def _api_row(method: str, args: argparse.Namespace) -> dict:
    """A method's row measured through create_supernet alone, in a fresh Python process."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _API, method, str(args.init_channels), str(args.layers),
                          str(args.batch), str(args.threads), str(args.repeats)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


if __name__ == "__main__":
    main()
