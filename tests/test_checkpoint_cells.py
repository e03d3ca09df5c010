"""``--checkpoint cells``: each cell's activations are recomputed in backward instead of saved, with the plain path's
logits, weight and architecture gradients (second-order DARTS included) and BatchNorm running statistics.

The equalities run in subprocesses (this file is also the script they run), at 1 and 2 threads, so a crash in a
kernel fails a test instead of killing pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: (method, space, space options, image size, batch): a small width and the default one of both spaces.
CASES = {
    "darts C=4": ("darts", "darts", {"init_channels": 4, "layers": 3}, 16, 4),
    "pc-darts C=4": ("pc-darts", "darts", {"init_channels": 4, "layers": 3}, 16, 4),
    "darts nb201 C=4": ("darts", "nas-bench-201", {"init_channels": 4, "cells_per_stage": 1}, 16, 4),
    "pc-darts nb201 C=4": ("pc-darts", "nas-bench-201", {"init_channels": 4, "cells_per_stage": 1}, 16, 4),
    "darts default": ("darts", "darts", {}, 32, 2),  # C=16, 8 cells
    "pc-darts default": ("pc-darts", "darts", {}, 32, 2),
    "darts nb201 default": ("darts", "nas-bench-201", {}, 32, 2),  # C=16, N=5
    "pc-darts nb201 default": ("pc-darts", "nas-bench-201", {}, 32, 2),
}


def _one_search_step(method: str, space: str, options: dict[str, Any], size: int, batch: int,
                     checkpoint_cells: bool) -> dict[str, Any]:
    """One architecture step (second order for darts: virtual step and Hessian-vector product) then one weight
    step from the same seed; what each produced."""
    import torch
    import torch.nn.functional as F

    import nasbench_pc as nbp
    from nasbench_pc.api import resolve_method
    from nasbench_pc.runtime.profiling import step_cost
    from nasbench_pc.search.architect import Architect

    torch.manual_seed(0)
    net = nbp.create_supernet(method, space=space, checkpoint_cells=checkpoint_cells, **options).train()
    gen = torch.Generator().manual_seed(1)
    train, arch = ((torch.randn(batch, 3, size, size, generator=gen), torch.randint(0, 10, (batch,), generator=gen))
                   for _ in range(2))
    weights = torch.optim.SGD(net.weight_parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    architect = Architect(net, arch_lr=3e-4, arch_weight_decay=1e-3, order=resolve_method(method).order,
                          momentum=0.9, weight_decay=3e-4, loss_fn=lambda model, b: F.cross_entropy(model(b[0]), b[1]))
    architect.step(train, arch, eta=0.025, weight_optimizer=weights)
    weights.zero_grad()
    logits = net(train[0])
    F.cross_entropy(logits, train[1]).backward()
    out = {"logits": logits.detach().clone(), "arch_grads": [p.grad.clone() for p in net.arch_parameters()],
           "weight_grads": [p.grad.clone() for p in net.weight_parameters()],
           "buffers": {name: b.clone() for name, b in net.named_buffers()}}
    out["saved_bytes"] = step_cost(net, *train).saved_bytes
    return out


def _max_diff(a: Any, b: Any) -> float:

    pairs = list(zip(a.values(), b.values(), strict=True)) if isinstance(a, dict) else \
        list(zip(a, b, strict=True)) if isinstance(a, list) else [(a, b)]
    return max(float((x.double() - y.double()).abs().max()) if x.numel() else 0.0 for x, y in pairs)


def _check(threads: int) -> dict[str, Any]:
    """Plain and checkpointed step of every case: the largest difference of each output, whether they are
    bitwise equal, the BatchNorm batch count and the ratio of bytes saved for backward."""
    import torch

    torch.set_num_threads(threads)
    results = {}
    for case, (method, space, options, size, batch) in CASES.items():
        plain, recomputed = (_one_search_step(method, space, options, size, batch, flag) for flag in (False, True))
        counts = {int(v) for k, v in recomputed["buffers"].items() if k.endswith("num_batches_tracked")}
        results[case] = {key: {"max_diff": _max_diff(plain[key], recomputed[key]),
                               "equal": _max_diff(plain[key], recomputed[key]) == 0.0}
                         for key in ("logits", "arch_grads", "weight_grads", "buffers")}
        results[case]["batches_tracked"] = sorted(counts)
        results[case]["saved_ratio"] = plain["saved_bytes"] / recomputed["saved_bytes"]
    return {"threads": torch.get_num_threads(), "results": results}


@pytest.mark.parametrize("threads", [1, 2], ids=["1-thread", "2-threads"])
def test_checkpoint_cells_matches_the_plain_path_in_a_subprocess(threads: int) -> None:
    # passive OpenMP waits: on a shared machine a spinning second thread makes these small convolutions up to 50x
    # slower (the results do not depend on it)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.run([sys.executable, "-W", "ignore", __file__, str(threads)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f"exit {proc.returncode} (negative: killed by a signal)\n{proc.stderr[-3000:]}"
    report = json.loads(proc.stdout)
    assert report["threads"] == threads
    assert sorted(report["results"]) == sorted(CASES)
    for case, result in report["results"].items():
        # the recomputation runs the same kernels on the same inputs, so every output is bit for bit the plain one
        for key in ("logits", "arch_grads", "weight_grads", "buffers"):
            assert result[key]["equal"], (case, key, result[key])
        # darts (second order): the loss at w, at w + R v and at w - R v, then the weight step; pc-darts: the
        # architecture loss and the weight step. A second update in the recomputation would double these.
        assert result["batches_tracked"] == ([4] if case.startswith("darts") else [2]), case
        if case.endswith("default"):
            assert result["saved_ratio"] >= 2, case


@dataclass(frozen=True)
class _OutsideSpace:
    """What the unknown-option check reads of an outside space that has no checkpoint_cells option."""

    name: str = "chain"
    options: Any = None


def test_checkpoint_shortcut_is_the_space_option_and_an_outside_space_refuses_it() -> None:
    from nasbench_pc.api import space_options
    from nasbench_pc.cli._plugin_options import plugin_overrides
    from nasbench_pc.errors import ConfigError

    overrides = plugin_overrides({"checkpoint": "cells", "init_channels": 8})
    assert overrides == {"space_options": {"init_channels": 8, "checkpoint_cells": True}}
    assert plugin_overrides({"checkpoint": None}) == {}
    outside = _OutsideSpace(options={"length": 3})
    with pytest.raises(ConfigError, match=r"^Unknown option\(s\) 'checkpoint_cells' for the search space 'chain'\. "
                                          r"Its options are length \(default 3\)\.$"):
        space_options(outside, plugin_overrides({"checkpoint": "cells"})["space_options"])


def test_search_records_checkpoint_cells_and_resume_keeps_it(tmp_path: Path, one_thread: None) -> None:
    from click.testing import CliRunner

    from nasbench_pc.cli import main
    from nasbench_pc.search import Search, load_run_config

    run = tmp_path / "run"
    args = ["search", "--method", "pc-darts", "--space", "nas-bench-201", "--checkpoint", "cells", "--epochs", "1",
            "--limit", "32", "--batch-size", "8", "--steps-per-epoch", "1", "-C", "4", "--threads", "1", "-q",
            "--out", str(run)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["config"]["space_options"] == {
        "init_channels": 4, "cells_per_stage": 1, "track_running_stats": True, "checkpoint_cells": True}
    assert Search(load_run_config(run)).model.checkpoint_cells is True  # the supernet --resume builds
    refused = CliRunner().invoke(main, ["search", "--resume", str(run), "--checkpoint", "cells"])
    assert refused.exit_code == 2 and "drop --checkpoint" in refused.output


def test_bench_and_plan_measure_with_checkpoint_cells(tmp_path: Path, one_thread: None) -> None:
    from click.testing import CliRunner

    from nasbench_pc.cli import main
    from nasbench_pc.console import console

    tiny = ["-C", "4", "--layers", "3", "--image-size", "16"]
    report = tmp_path / "bench.json"
    result = CliRunner().invoke(main, ["bench", "darts", "--batch", "4", "--repeats", "0", "--checkpoint", "cells",
                                       *tiny, "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["shape"]["options"] == {"init_channels": 4, "layers": 3,
                                                                   "checkpoint_cells": True}
    console.width = 200
    result = CliRunner().invoke(main, ["plan", "darts", "pc-darts", "--budget", "300MB", *tiny])
    assert result.exit_code == 0, result.output
    assert "batch (checkpoint cells)" in result.output
    for method in ("darts", "pc-darts"):
        row = next(line for line in result.output.splitlines() if f"│ {method} " in line).split("│")
        plain, bound = int(row[2]), row[7].strip()
        assert bound.startswith("<= ") and int(bound[3:]) >= 2 * plain > 0, (method, plain, bound)
    assert "only an upper bound" in " ".join(result.output.split())


if __name__ == "__main__":
    print(json.dumps(_check(int(sys.argv[1]))))
