"""Whether this machine's oneDNN channels-last kernels may run the stacked edges: checked here, not hoped.

Stacked edges (:mod:`nasbench_pc.supernet._stacking`) run channels-last on CPU because oneDNN's depthwise, pointwise and
batch-norm kernels are several times faster in that layout. Which kernel oneDNN runs depends on the CPU's
instruction set, the thread count, the torch build and the shapes, and one of them (the AVX2 stride-2 1x1
backward, see docs/benchmarks.md) once corrupted the heap. So before a search or ``bench`` on CPU uses the
layout, :func:`channels_last_verdict` runs the layers stacked edges use (depthwise convs 3x3/5x5, dilated,
stride 1 and 2; grouped and full 1x1 convs; batch norm; pools), on a grid of widths and batch sizes, in
channels-last with oneDNN against the default layout with oneDNN off, forward and backward, in a child process
at one thread and at the current thread count. A crash, a hang or a difference beyond float rounding turns
the layout off on this machine (the stacked edges still run, in the default layout) and says why.
The verdict is kept per machine, torch build, instruction-set limit and thread count in
``$XDG_CACHE_HOME/nasbench-pc/layout-check.json`` (``NASBENCH_PC_CACHE`` names another folder), so the check
runs once. ``NASBENCH_PC_CHANNELS_LAST=0`` turns the layout off without a check.

``python -m nasbench_pc.supernet._layout_check`` runs the grid in this process and prints the worst differences as JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

#: Bump when the grid changes, so kept verdicts are checked again.
GRID_VERSION = 1
#: Largest relative difference accepted between the two layouts: float32 sums in oneDNN's order differ by up to
#: 4e-4 after a batch norm (seen at one thread, AVX2 and AVX-512); a faulty kernel differs by order 1.
TOLERANCE = 1e-3
#: What the child process runs (tests point it elsewhere to see a crash turn the layout off).
CHECK_COMMAND = [sys.executable, "-m", "nasbench_pc.supernet._layout_check"]
TIMEOUT_S = 300


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str  # why not, or what was checked
    failed: bool = False  # the check ran and the kernels failed it (worth telling the user)


def _cases() -> list[tuple[str, dict]]:
    """The layers of stacked edges, at widths from PC-DARTS' few sampled channels to DARTS' stacked hundreds."""
    cases = []
    for batch in (2, 32):
        for channels, size in ((8, 32), (24, 32), (64, 16), (192, 8)):
            for kernel, dilation in ((3, 1), (5, 1), (3, 2), (5, 2)):
                for stride in (1, 2):
                    groups = 4 if channels % 4 == 0 and (kernel + stride) % 2 else 1
                    cases.append((f"separable b{batch} c{channels} {size}x{size} k{kernel} d{dilation} s{stride} "
                                  f"g{groups}", dict(kind="separable", batch=batch, channels=channels, size=size,
                                                     kernel=kernel, dilation=dilation, stride=stride, groups=groups)))
            for pool in ("max", "avg"):
                for stride in (1, 2):
                    cases.append((f"{pool}-pool b{batch} c{channels} {size}x{size} s{stride}",
                                  dict(kind=pool, batch=batch, channels=channels, size=size, stride=stride)))
        for c_in, c_out, size in ((48, 16, 32), (256, 64, 8), (128, 32, 16)):
            cases.append((f"pointwise b{batch} {c_in}->{c_out} {size}x{size}",
                           dict(kind="pointwise", batch=batch, c_in=c_in, c_out=c_out, size=size)))
    return cases


def _run(case: dict, x: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    kind = case["kind"]
    if kind in ("max", "avg"):
        pool = F.max_pool2d if kind == "max" else F.avg_pool2d
        extra = {} if kind == "max" else {"count_include_pad": False}
        return F.batch_norm(pool(x, 3, case["stride"], 1, **extra), None, None, training=True)
    if kind == "pointwise":
        return F.batch_norm(F.conv2d(torch.relu(x), params[0]), None, None, training=True)
    c, k, d = case["channels"], case["kernel"], case["dilation"]
    h = F.conv2d(torch.relu(x), params[0], None, case["stride"], d * (k - 1) // 2, d, c)
    h = F.conv2d(h, params[1], None, 1, 0, 1, case["groups"])
    return torch.relu(F.batch_norm(h, None, None, training=True))


def _params(case: dict, generator: torch.Generator) -> list[torch.Tensor]:
    if case["kind"] in ("max", "avg"):
        return []
    if case["kind"] == "pointwise":
        return [torch.randn(case["c_out"], case["c_in"], 1, 1, generator=generator)]
    c, k, g = case["channels"], case["kernel"], case["groups"]
    return [torch.randn(c, 1, k, k, generator=generator), torch.randn(c, c // g, 1, 1, generator=generator)]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def check_case(case: dict, passes: int = 3) -> float:
    """Largest relative difference (output, input gradient, weight gradients) between channels-last with
    oneDNN and the default layout without it."""
    generator = torch.Generator().manual_seed(0)
    channels = case.get("c_in", case.get("channels"))
    x = torch.randn(case["batch"], channels, case["size"], case["size"], generator=generator)
    params = _params(case, generator)
    grad_seed = torch.Generator().manual_seed(1)

    def forward_backward(layout: torch.memory_format) -> list[torch.Tensor]:
        inputs = x.contiguous(memory_format=layout).requires_grad_()
        weights = [p.clone().requires_grad_() for p in params]
        out = _run(case, inputs, weights)
        grad = torch.randn(out.shape, generator=grad_seed.manual_seed(1)).contiguous(memory_format=layout)
        out.backward(grad)
        return [out.detach(), inputs.grad, *(w.grad for w in weights)]

    for _ in range(passes):  # the AVX2 corruption needed a few backward passes to show
        fast = forward_backward(torch.channels_last)
    with torch.backends.mkldnn.flags(enabled=False):
        plain = forward_backward(torch.contiguous_format)
    return max(_rel(a, b) for a, b in zip(fast, plain))


def _cache_file() -> Path:
    root = os.environ.get("NASBENCH_PC_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache",
                                                       "nasbench-pc")
    return Path(root) / "layout-check.json"


def _fingerprint(threads: int) -> str:
    cpu = ""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = " ".join(sorted({line for line in lines if line.startswith(("model name", "flags"))}))
    except OSError:
        cpu = platform.processor()
    parts = [str(GRID_VERSION), torch.__version__, torch.__config__.show(), platform.machine(), cpu,
             os.environ.get("ONEDNN_MAX_CPU_ISA", ""), os.environ.get("DNNL_MAX_CPU_ISA", ""), str(threads)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _check_in_child(threads: int) -> Verdict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    try:
        proc = subprocess.run(CHECK_COMMAND, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return Verdict(False, f"the check at {threads} thread(s) did not finish in {TIMEOUT_S} s", True)
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-2:])[-300:]
        how = f"was killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exited {proc.returncode}"
        return Verdict(False, f"the check at {threads} thread(s) {how}: {tail}", True)
    report = json.loads(proc.stdout)
    if report["worst"] > TOLERANCE:
        return Verdict(False, f"at {threads} thread(s) '{report['worst_case']}' differs from the default layout by "
                              f"{report['worst']:.1e} (relative; allowed {TOLERANCE:.0e})", True)
    return Verdict(True, f"{report['cases']} layer cases at {threads} thread(s) matched the default layout "
                         f"(worst {report['worst']:.1e})")


def channels_last_verdict(device: str | torch.device) -> Verdict:
    """Whether stacked edges may run channels-last on ``device`` (CPU: checked once per machine, kept)."""
    if torch.device(device).type != "cpu":
        return Verdict(False, "channels-last stacked edges are only used, and only checked, on CPU")
    if os.environ.get("NASBENCH_PC_CHANNELS_LAST") == "0":
        return Verdict(False, "NASBENCH_PC_CHANNELS_LAST=0")
    if not torch.backends.mkldnn.is_available():
        return Verdict(False, "this torch build has no oneDNN")
    threads = torch.get_num_threads()
    key = _fingerprint(threads)
    path = _cache_file()
    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError):
        kept = {}
    if isinstance(kept.get(key), dict):
        return Verdict(bool(kept[key]["ok"]), str(kept[key]["reason"]), bool(kept[key].get("failed")))
    verdict = Verdict(True, "")
    for count in sorted({1, threads}):
        verdict = _check_in_child(count)
        if not verdict.ok:
            break
    kept[key] = {"ok": verdict.ok, "reason": verdict.reason, "failed": verdict.failed}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(kept, indent=1))
        tmp.replace(path)
    except OSError:
        pass  # an unwritable cache only means checking again next time
    return verdict


def main() -> None:
    worst, worst_case = 0.0, ""
    cases = _cases()
    for name, case in cases:
        diff = check_case(case)
        if math.isnan(diff):
            diff = math.inf
        if diff > worst:
            worst, worst_case = diff, name
    print(json.dumps({"cases": len(cases), "threads": torch.get_num_threads(), "worst": worst,
                      "worst_case": worst_case}))


if __name__ == "__main__":
    main()
