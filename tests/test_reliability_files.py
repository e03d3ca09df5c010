"""Atomic writes (nasbench_pc/runtime/files.py) never write through a symlink, never leave half a file, and two
writers of one target (two processes, as two hosts sharing a filesystem would be) each publish a whole file."""

import os
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch

from nasbench_pc.runtime.files import atomic_torch_save, atomic_write_text, leftovers, temporary_path
from nasbench_pc.runtime.rundir import writing


def test_reliability_planted_symlinks_are_replaced_not_followed(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    outside, outside_tmp = tmp_path / "outside.txt", tmp_path / "outside-tmp.txt"
    outside.write_text("keep me")
    outside_tmp.write_text("keep me too")
    (run / "config.json").symlink_to(outside)  # the target itself
    (run / ".config.json.tmp").symlink_to(outside_tmp)  # and an earlier version's temporary name next to it
    atomic_write_text(run / "config.json", "{}")
    assert outside.read_text() == "keep me" and outside_tmp.read_text() == "keep me too"
    assert not (run / "config.json").is_symlink() and (run / "config.json").read_text() == "{}"
    # the write never touched the planted name; the run's writer removes it under the lease, still unfollowed
    assert leftovers(run, ["config.json"]) == [run / ".config.json.tmp"]
    with writing(run, ["config.json"]):
        assert not (run / ".config.json.tmp").is_symlink()
    assert outside_tmp.read_text() == "keep me too"


def test_each_write_stages_in_its_own_file_and_leftovers_are_found(tmp_path):
    names = {temporary_path(tmp_path / "checkpoint.pt").name for _ in range(50)}
    assert len(names) == 50 and all(n.startswith(".checkpoint.pt.") and n.endswith(".tmp") for n in names)
    half = tmp_path / ".checkpoint.pt.otherhost.4242.1.deadbeef.tmp"
    half.write_bytes(b"half of a killed write")
    atomic_torch_save({"epoch": 3}, tmp_path / "checkpoint.pt")
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True) == {"epoch": 3}
    assert leftovers(tmp_path, ["checkpoint.pt", "config.json"]) == [half]  # only the killed one is left
    with writing(tmp_path, ["checkpoint.pt"]):
        assert leftovers(tmp_path, ["checkpoint.pt"]) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # and the lease is gone


def test_a_failed_write_removes_its_staging_file_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "checkpoint.pt"
    atomic_torch_save({"epoch": 1}, target)
    with pytest.raises((AttributeError, pickle.PicklingError)):
        atomic_torch_save({"epoch": 2, "bad": lambda: None}, target)  # a lambda cannot be pickled
    assert torch.load(target, weights_only=True) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from nasbench_pc.runtime.files import atomic_write_text
    target, mark, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    for i in range(n):
        atomic_write_text(target, f"{mark}{i:05d}" + mark * 200_000 + "end")
""")


def test_two_processes_writing_one_target_each_publish_whole_files(tmp_path):
    target = tmp_path / "compare.md"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(target), mark, "60"]) for mark in "AB"]
    seen = set()
    while any(w.poll() is None for w in writers):  # a reader meanwhile only ever sees whole files
        try:
            text = target.read_text()
        except FileNotFoundError:
            continue
        assert text.endswith("end") and len(text) == 200_009 and text[6:-3] == text[0] * 200_000, text[:20]
        seen.add(text[0])
    assert [w.wait() for w in writers] == [0, 0]
    final = target.read_text()
    assert final in ("A00059" + "A" * 200_000 + "end", "B00059" + "B" * 200_000 + "end")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compare.md"], "a staging file was left behind"
    assert seen  # the reader did look while both wrote
    assert os.stat(target).st_size == 200_009
