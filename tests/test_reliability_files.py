"""Atomic writes (nasbench_pc/files.py) never write through a symlink, and never leave half a file."""

import torch

from nasbench_pc.runtime.files import atomic_torch_save, atomic_write_text


def test_reliability_planted_symlinks_are_replaced_not_followed(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    outside, outside_tmp = tmp_path / "outside.txt", tmp_path / "outside-tmp.txt"
    outside.write_text("keep me")
    outside_tmp.write_text("keep me too")
    (run / "config.json").symlink_to(outside)  # the target itself
    (run / ".config.json.tmp").symlink_to(outside_tmp)  # and the temporary file next to it
    atomic_write_text(run / "config.json", "{}")
    assert outside.read_text() == "keep me" and outside_tmp.read_text() == "keep me too"
    assert not (run / "config.json").is_symlink() and (run / "config.json").read_text() == "{}"
    assert not (run / ".config.json.tmp").exists()


def test_reliability_leftover_temporary_checkpoint_is_overwritten(tmp_path):
    (tmp_path / ".checkpoint.pt.tmp").write_bytes(b"half of a killed write")
    atomic_torch_save({"epoch": 3}, tmp_path / "checkpoint.pt")
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True) == {"epoch": 3}
    assert not (tmp_path / ".checkpoint.pt.tmp").exists()
