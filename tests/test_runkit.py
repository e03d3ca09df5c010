"""``nasbench_pc.runtime.runkit``: the schedules, top-k counter, memory record and run-file names that search and train
share. Each schedule is pinned bit for bit against the formula the search and train loops used before."""

from __future__ import annotations

import math
import resource

import pytest
import torch
from torch import nn

from nasbench_pc.errors import ConfigError
from nasbench_pc.networks import recipes, train
from nasbench_pc.runtime import runkit
from nasbench_pc.runtime.runkit import accuracy, peak_memory, topk_correct
from nasbench_pc.runtime.runkit import scheduled_lr as lr_at


@pytest.mark.parametrize("epoch", [0, 1, 7, 25, 49])
def test_cosine_is_the_search_schedule_bit_for_bit(epoch: int) -> None:
    expected = 0.001 + (0.025 - 0.001) * (1 + math.cos(math.pi * epoch / 50)) / 2
    assert lr_at(epoch, lr=0.025, lr_min=0.001, epochs=50) == expected


def test_cosine_concrete_values() -> None:
    assert lr_at(0, lr=0.025, lr_min=0.001, epochs=50) == 0.025
    assert lr_at(25, lr=0.1, epochs=50) == pytest.approx(0.05, abs=1e-15)
    assert lr_at(599, lr=0.025, epochs=600) == pytest.approx(1.713e-07, rel=1e-3)


@pytest.mark.parametrize("epoch", [0, 2, 4, 5, 20])
def test_search_warmup_ramps_the_initial_lr(epoch: int) -> None:
    """warmup_base='lr' is search.learning_rate: lr * (epoch + 1) / warmup during warm-up, cosine after."""
    got = lr_at(epoch, lr=0.5, lr_min=0.0, epochs=50, warmup_epochs=5, warmup_base="lr")
    if epoch < 5:
        assert got == 0.5 * (epoch + 1) / 5
    else:
        assert got == 0.0 + (0.5 - 0.0) * (1 + math.cos(math.pi * epoch / 50)) / 2
    assert [lr_at(e, lr=0.1, lr_min=0.0, epochs=10, warmup_epochs=5, warmup_base="lr") for e in range(5)] == \
        pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1])


def test_train_warmup_scales_the_scheduled_lr() -> None:
    """warmup_base='schedule' (the default) is PC-DARTS train_imagenet.py: the schedule's value times
    (epoch + 1) / warmup."""
    assert lr_at(0, lr=0.5, epochs=250, warmup_epochs=5, schedule="linear") == 0.5 * 245 / 245 * (1 / 5)
    assert lr_at(2, lr=0.5, epochs=250, warmup_epochs=5, schedule="linear") == 0.5 * 243 / 245 * (3 / 5)
    cosine = 0.0 + (0.5 - 0.0) * (1 + math.cos(math.pi * 2 / 250)) / 2
    assert lr_at(2, lr=0.5, epochs=250, warmup_epochs=5) == cosine * ((2 + 1) / 5)


def test_step_and_linear_schedules_bit_for_bit() -> None:
    assert lr_at(0, lr=0.1, epochs=250, schedule="step", gamma=0.97) == 0.1
    assert lr_at(3, lr=0.1, epochs=250, schedule="step", gamma=0.97) == 0.1 * 0.97 ** 3
    assert lr_at(100, lr=0.5, epochs=250, schedule="linear") == 0.5 * 145 / 245
    assert lr_at(245, lr=0.5, epochs=250, schedule="linear") == 0.5 * 5 / (245 * 5)  # the gentler last 5 epochs
    assert lr_at(1, lr=0.2, epochs=4, schedule="linear") == 0.2 * 3 / 4  # too short for the 5-epoch tail


def test_train_lr_at_is_the_runkit_schedule() -> None:
    hp = recipes.recipe_hparams("darts", "pc-darts", "imagenet")
    assert [recipes.learning_rate(hp, e) for e in range(250)] == [
        lr_at(e, lr=0.5, lr_min=0.0, epochs=250, warmup_epochs=5, schedule="linear") for e in range(250)]


def test_unknown_schedule_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="Unknown learning-rate schedule 'cosin'. Did you mean 'cosine'"):
        lr_at(0, lr=0.1, epochs=10, schedule="cosin")
    with pytest.raises(ConfigError, match="Unknown warm-up base 'base'"):
        lr_at(0, lr=0.1, epochs=10, warmup_base="base")


def test_topk_correct_counts_rows_with_the_target_in_the_top_k() -> None:
    logits = torch.tensor([[0.1, 0.9, 0.0, 0.0, 0.0, 0.0],   # target 1: top-1
                           [0.5, 0.1, 0.4, 0.3, 0.2, 0.0],   # target 3: third, top-5 only
                           [0.6, 0.5, 0.4, 0.3, 0.2, 0.1]])  # target 5: sixth, neither
    targets = torch.tensor([1, 3, 5])
    assert topk_correct(logits, targets) == [1, 2]
    assert topk_correct(logits, targets, ks=(1, 2, 3, 6)) == [1, 1, 2, 3]


def test_topk_above_the_number_of_classes_counts_every_row() -> None:
    logits = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]])
    assert topk_correct(logits, torch.tensor([2, 0])) == [0, 2]


def test_accuracy_counts_with_topk_correct() -> None:
    model = nn.Linear(6, 6, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(6))  # the logits are the inputs
    inputs = torch.tensor([[0.1, 0.9, 0.0, 0.0, 0.0, 0.0], [0.5, 0.1, 0.4, 0.3, 0.2, 0.0]])
    result = accuracy(model, [(inputs, torch.tensor([1, 3]))])
    assert (result["top1"], result["top5"], result["count"]) == (0.5, 1.0, 2)


def test_peak_memory_on_cpu_is_the_process_max_rss() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    key, mib = peak_memory(torch.device("cpu"))
    assert key == "peak_cpu_rss_mib"
    assert before <= mib <= resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_run_file_names() -> None:
    assert (runkit.CONFIG, runkit.METRICS, runkit.CHECKPOINT, runkit.GENOTYPE) == \
        ("config.json", "metrics.jsonl", "checkpoint.pt", "genotype.json")
    assert train.RUN_FILES == ("config.json", "genotype.json", "metrics.jsonl", "checkpoint.pt", "model")
