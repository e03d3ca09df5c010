"""Data-parallel search: ``torchrun --nproc_per_node 2`` on CPU (gloo) against one process with the
same global batch."""

import copy
import json
import subprocess
import sys

import torch

from nasbench_pc import create_supernet
from nasbench_pc.runtime.distributed import Context
from nasbench_pc.search import derived_seed, load_run_config, run_search

ARGS = ["--method", "darts", "--dataset", "synthetic", "--epochs", "1", "--limit", "64", "-C", "4", "--layers",
        "3", "--image-size", "8", "--batch-size", "16", "--no-augment", "--device", "cpu", "--threads", "1", "-q"]


def test_context_shards_cover_the_global_batch():
    parts = [Context(rank=r, world_size=3).shard(10) for r in range(3)]
    assert [(s.start, s.stop) for s in parts] == [(0, 3), (3, 6), (6, 10)]


def test_two_gloo_processes_match_one_process(tmp_path):
    single, multi = tmp_path / "single", tmp_path / "multi"
    one = subprocess.Popen([sys.executable, "-m", "nasbench_pc", "search", *ARGS, "--out", str(single)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "nasbench_pc", "search", *ARGS, "--out", str(multi)],
                         capture_output=True, text=True, timeout=400)
    assert two.returncode == 0, two.stdout + two.stderr
    assert one.wait(timeout=400) == 0, one.stdout.read()
    assert two.stdout.strip().splitlines()[-1] == str(multi)  # rank 0 alone prints (and writes)
    assert json.loads((multi / "config.json").read_text())["world_size"] == 2
    a = torch.load(single / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(multi / "checkpoint.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()
    for name in a:
        if a[name].is_floating_point():
            torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5, msg=name)
    torch.manual_seed(2)  # the search's seed: the supernet's initial alphas
    start = create_supernet("darts", init_channels=4, layers=3).alphas_normal.detach()
    assert (a["alphas_normal"] - start).abs().max() > 1e-4  # the second-order steps really moved the alphas
    assert (single / "genotype.json").read_text() == (multi / "genotype.json").read_text()
    ranks = torch.load(multi / "checkpoint.pt", weights_only=True)["ranks"]
    assert len(ranks) == 2 and not torch.equal(ranks[0]["rng_cpu"], ranks[1]["rng_cpu"])  # each rank's own state
    # one process continues a two-process run: its generator is reseeded, nothing else changes
    result = run_search(load_run_config(multi), multi, resume=True)
    assert result.history[-1]["train_loss"] == json.loads((multi / "metrics.jsonl").read_text())["train_loss"]
    assert torch.equal(torch.get_rng_state(), torch.manual_seed(derived_seed(2, 1, 0, 0)).get_state())


def test_global_batchnorm_equals_batchnorm_on_one_process():
    import torch.distributed as dist

    from nasbench_pc.runtime.distributed import GlobalBatchNorm2d, global_batchnorm

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
        synced = global_batchnorm(copy.deepcopy(plain))
        assert isinstance(synced[1], GlobalBatchNorm2d)
        x = torch.randn(5, 3, 6, 6)
        a, b = plain(x), synced(x)
        torch.testing.assert_close(b, a)
        target = torch.randn_like(a)  # (not a.square().sum(): its gradient through a BN is zero)
        (a * target).sum().backward()
        (b * target).sum().backward()
        torch.testing.assert_close(synced[0].weight.grad, plain[0].weight.grad)
        torch.testing.assert_close(synced[1].running_var, plain[1].running_var)  # unbiased, momentum 0.1
        torch.testing.assert_close(synced[1].running_mean, plain[1].running_mean)
    finally:
        dist.destroy_process_group()
