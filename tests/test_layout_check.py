"""The fence of channels-last stacked edges: nasbench_pc.supernet._layout_check's verdict, its reasons and its cache."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from nasbench_pc.supernet import _layout_check as layout_check
from nasbench_pc.supernet import _stacking as stacking


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NASBENCH_PC_CACHE", str(tmp_path))
    monkeypatch.delenv("NASBENCH_PC_CHANNELS_LAST", raising=False)
    return tmp_path / "layout-check.json"


def _child(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    monkeypatch.setattr(layout_check, "CHECK_COMMAND", [sys.executable, "-c", code])


def test_a_crashing_kernel_turns_the_layout_off_and_says_why(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _child(monkeypatch, "import os, sys; sys.stderr.write('double free or corruption (!prev)\\n'); os.abort()")
    verdict = layout_check.channels_last_verdict("cpu")
    assert not verdict.ok and verdict.failed
    assert verdict.reason == ("the check at 1 thread(s) was killed by signal 6: double free or corruption (!prev)")
    kept = json.loads(cache.read_text())
    assert list(kept.values()) == [{"ok": False, "reason": verdict.reason, "failed": True}]


def test_a_wrong_result_turns_the_layout_off(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = {"cases": 102, "threads": 1, "worst": 0.5, "worst_case": "separable b32 c8 32x32 k5 d2 s2 g1"}
    _child(monkeypatch, f"print({json.dumps(json.dumps(report))})")
    verdict = layout_check.channels_last_verdict("cpu")
    assert (verdict.ok, verdict.failed) == (False, True)
    assert verdict.reason == ("at 1 thread(s) 'separable b32 c8 32x32 k5 d2 s2 g1' differs from the default layout "
                              "by 5.0e-01 (relative; allowed 1e-03)")


def test_a_passed_check_is_kept_and_not_run_again(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = {"cases": 102, "threads": 1, "worst": 3e-6, "worst_case": "max-pool b2 c8 32x32 s1"}
    _child(monkeypatch, f"print({json.dumps(json.dumps(report))})")
    first = layout_check.channels_last_verdict("cpu")
    assert first == layout_check.Verdict(True, "102 layer cases at 1 thread(s) matched the default layout "
                                               "(worst 3.0e-06)")
    _child(monkeypatch, "import os; os.abort()")  # would fail: the kept verdict answers instead
    assert layout_check.channels_last_verdict("cpu") == first


def test_the_layout_is_off_without_a_check_where_asked_or_off_cpu(cache: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _child(monkeypatch, "import os; os.abort()")
    assert layout_check.channels_last_verdict("cuda") == layout_check.Verdict(
        False, "channels-last stacked edges are only used, and only checked, on CPU")
    monkeypatch.setenv("NASBENCH_PC_CHANNELS_LAST", "0")
    assert layout_check.channels_last_verdict("cpu") == layout_check.Verdict(False, "NASBENCH_PC_CHANNELS_LAST=0")
    assert not cache.exists()


def test_prepare_follows_the_verdict(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    x = torch.zeros(2, 3, 4, 4)
    monkeypatch.setattr(layout_check, "channels_last_verdict", lambda device: layout_check.Verdict(True, "ok"))
    stacking.prepare("cpu")
    assert stacking.fast_layout(x).is_contiguous(memory_format=torch.channels_last)
    assert not stacking.fast_layout(x).is_contiguous()
    monkeypatch.setattr(layout_check, "channels_last_verdict", lambda device: layout_check.Verdict(False, "no"))
    stacking.prepare("cpu")
    assert stacking.fast_layout(x) is x


def test_the_check_itself_passes_here_and_covers_every_layer_kind() -> None:
    cases = dict(layout_check._cases())
    assert len(cases) == 102
    assert {case["kind"] for case in cases.values()} == {"separable", "max", "avg", "pointwise"}
    # one case of each kind, run as the child runs it: channels-last with oneDNN against the default layout without
    for name in ("separable b32 c24 32x32 k5 d2 s2 g4", "separable b2 c64 16x16 k3 d1 s1 g1",
                 "max-pool b32 c8 32x32 s2", "avg-pool b2 c192 8x8 s1", "pointwise b32 48->16 32x32"):
        assert layout_check.check_case(cases[name]) < layout_check.TOLERANCE, name
