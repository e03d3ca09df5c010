"""The CPU kernels oneDNN picks for our networks, checked against the plain PyTorch path.

Each case runs tests/onednn_check.py in its own process, so a heap corruption inside a kernel fails
the test instead of killing pytest. ``ONEDNN_MAX_CPU_ISA=AVX2`` makes oneDNN pick the kernels of an
AVX2-only CPU on any newer one: that is where a channels-last activation once drove the AVX2 strided
1x1 backward-data kernel into heap corruption (docs/benchmarks.md, "channels-last on CPU").
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CHECK = Path(__file__).with_name("onednn_check.py")
CASES = [  # 16x16 inputs, batch 32 (16 for the derived network), C in {4, 8}, K in {2, 4}
    "pc-darts C=4 K=2", "pc-darts C=8 K=4", "pc-only C=4 K=4", "pc-only C=8 K=2",
    "darts C=4 K=None", "darts C=8 K=None", "derived PC_DARTS_cifar C=8",
]


@pytest.mark.parametrize(("threads", "isa"), [(1, "AVX2"), (2, "AVX2"), (2, None)],
                         ids=["1-thread-avx2", "2-threads-avx2", "2-threads-native"])
def test_reliability_onednn_matches_plain_path_in_a_subprocess(threads, isa):
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env.pop("ONEDNN_MAX_CPU_ISA", None)
    if isa:
        env["ONEDNN_MAX_CPU_ISA"] = isa
    proc = subprocess.run([sys.executable, "-W", "ignore", str(CHECK)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"exit {proc.returncode} (negative: killed by a signal)\n{proc.stderr[-3000:]}"
    report = json.loads(proc.stdout)
    assert report["threads"] == threads
    assert sorted(report["results"]) == sorted(CASES)
    for case, diff in report["results"].items():
        # float32 sums in another order: the limits the issue set for logits and architecture gradients
        assert diff["logits"] < 1e-4, (case, diff)
        assert diff["grads"] < 1e-2, (case, diff)
