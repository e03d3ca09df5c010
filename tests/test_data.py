"""Datasets through the registry: synthetic, the file readers on generated files, Fashion-MNIST from
Debian's package, conversions, subsets, splits and the errors for missing data."""

import gzip
import os
import pickle
import struct
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from nasbench_pc import registry
from nasbench_pc.errors import ConfigError
from nasbench_pc.plugins.datasets import DEBIAN_FASHION_MNIST, make_synthetic
from nasbench_pc.runtime.data import (
    Cutout,
    DatasetInfo,
    get_dataset,
    per_class_split,
    random_subset,
    search_split,
    targets_of,
)

IN_CI = os.environ.get("CI", "").lower() == "true"


def test_builtin_datasets_are_registered_through_the_hook():
    assert {"synthetic", "cifar10", "cifar100", "fashion-mnist", "imagenet", "imagefolder"} <= set(
        registry.available("dataset"))


def test_synthetic_is_deterministic_per_seed_and_balanced():
    a, ya = make_synthetic(200, seed=3)
    b, yb = make_synthetic(200, seed=3)
    c, _ = make_synthetic(200, seed=4)
    assert a.shape == (200, 3, 32, 32) and a.dtype == torch.uint8
    assert torch.equal(a, b) and torch.equal(ya, yb)
    assert not torch.equal(a, c)
    assert torch.bincount(ya).tolist() == [20] * 10
    test, _ = make_synthetic(200, seed=3, split="test")
    assert not torch.equal(a, test)  # an independent stream of examples


def test_synthetic_dataset_info_and_size_option():
    ds, info = get_dataset("synthetic", image_size=16)
    assert info == DatasetInfo("synthetic", 10, 3, 16, (0.5,) * 3, (0.15,) * 3)
    assert len(ds) == 10000
    x, y = ds[0]
    assert x.shape == (3, 16, 16) and isinstance(y, int)


def test_synthetic_is_a_learning_task():
    """A small CNN starts at chance on held-out data and learns within a few dozen steps."""
    torch.manual_seed(0)
    x, y = make_synthetic(500, seed=2, size=16)
    xt, yt = make_synthetic(500, seed=2, size=16, split="test")
    x, xt = (x.float() / 255 - 0.5) / 0.15, (xt.float() / 255 - 0.5) / 0.15
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(32, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.0125, momentum=0.9)

    def accuracy():
        net.eval()
        with torch.no_grad():
            acc = (net(xt).argmax(1) == yt).float().mean().item()
        net.train()
        return acc

    before = accuracy()
    for idx in torch.randperm(500).split(32):  # one epoch: 16 steps, the main job's order of budget
        loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = accuracy()
    assert before < 0.2
    assert after > 0.35


def test_limit_is_a_seeded_subset_in_order():
    ds, _ = get_dataset("synthetic", limit=50, seed=1)
    again, _ = get_dataset("synthetic", limit=50, seed=1)
    assert len(ds) == 50
    assert ds.indices == again.indices == sorted(ds.indices)
    full, _ = get_dataset("synthetic", seed=1)
    assert torch.equal(ds[3][0], full[ds.indices[3]][0])
    assert torch.equal(targets_of(ds), targets_of(full)[torch.tensor(ds.indices)])


def test_search_split_is_the_reference_contiguous_split():
    assert search_split(10, 0.5) == ([0, 1, 2, 3, 4], [5, 6, 7, 8, 9])
    assert search_split(7, 0.5) == ([0, 1, 2], [3, 4, 5, 6])  # floor, as the reference
    with pytest.raises(ConfigError, match="empty"):
        search_split(1, 0.5)


def test_per_class_split_takes_fractions_of_every_class():
    targets = torch.arange(400) % 4  # 100 per class
    weights, arch = per_class_split(targets, 0.1, 0.025, seed=0)
    assert not set(weights) & set(arch)
    assert torch.bincount(targets[weights]).tolist() == [10] * 4
    assert torch.bincount(targets[arch]).tolist() == [2] * 4  # round(2.5) = 2
    assert per_class_split(targets, 0.1, 0.025, seed=0) == (weights, arch)
    assert per_class_split(targets, 0.1, 0.025, seed=1) != (weights, arch)


def test_cutout_zeroes_a_square():
    torch.manual_seed(0)
    out = Cutout(4)(torch.ones(3, 32, 32))
    zeros = (out == 0).all(0)
    assert 1 <= zeros.sum() <= 16
    rows, cols = zeros.any(1).nonzero().flatten(), zeros.any(0).nonzero().flatten()
    assert zeros.sum() == len(rows) * len(cols)  # one rectangle


def _write_idx(path: Path, array: torch.Tensor) -> None:
    header = struct.pack(">HBB", 0, 8, array.dim()) + struct.pack(f">{array.dim()}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + bytes(array.flatten().tolist()))


def test_fashion_mnist_reader_on_generated_idx_files(tmp_path):
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    labels = torch.tensor([3, 1, 4, 1, 5], dtype=torch.uint8)
    for prefix in ("train", "t10k"):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
    ds, info = get_dataset("fashion-mnist", root=str(tmp_path))
    assert info.in_channels == 1 and info.image_size == 28 and info.num_classes == 10
    x, y = ds[2]
    assert y == 4
    torch.testing.assert_close(x[0], (images[2].float() / 255 - 0.2860) / 0.3530)
    rgb, info3 = get_dataset("fashion-mnist", root=str(tmp_path), in_channels=3)
    assert info3.in_channels == 3 and info3.mean == (0.2860,) * 3
    assert rgb[2][0].shape == (3, 28, 28) and torch.equal(rgb[2][0][0], rgb[2][0][2])  # replicated


def test_malformed_and_missing_fashion_mnist_say_how_to_get_it(tmp_path):
    with pytest.raises(ConfigError, match="apt-get install dataset-fashion-mnist"):
        get_dataset("fashion-mnist", root=str(tmp_path))
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 20))
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05"))
    with pytest.raises(ConfigError, match="truncated"):
        get_dataset("fashion-mnist", root=str(tmp_path))


@pytest.mark.skipif(not Path(DEBIAN_FASHION_MNIST).is_dir() and not IN_CI,
                    reason="Debian's dataset-fashion-mnist is not installed (CI installs it)")
def test_fashion_mnist_from_the_debian_package():
    ds, info = get_dataset("fashion-mnist", root=DEBIAN_FASHION_MNIST, split="test")
    assert len(ds) == 10000 and info.num_classes == 10
    assert torch.bincount(targets_of(ds)).tolist() == [1000] * 10


def _write_cifar(root: Path, folder: str, files: list[str], key: bytes, n: int) -> torch.Tensor:
    (root / folder).mkdir(parents=True)
    data = torch.randint(0, 256, (n, 3 * 32 * 32), dtype=torch.uint8)
    for file in files:
        with open(root / folder / file, "wb") as fh:
            pickle.dump({b"data": data.numpy(), key: list(range(n))}, fh)
    return data


def test_cifar10_and_cifar100_readers_on_generated_pickles(tmp_path):
    data = _write_cifar(tmp_path, "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"],
                        b"labels", 4)
    ds, info = get_dataset("cifar10", root=str(tmp_path), split="train")
    assert len(ds) == 20 and info.num_classes == 10 and info.image_size == 32
    x, y = ds[5]  # second batch file, row 1
    assert y == 1
    expected = (data[1].view(3, 32, 32).float() / 255 - torch.tensor(info.mean)[:, None, None]) / torch.tensor(
        info.std)[:, None, None]
    torch.testing.assert_close(x, expected)
    _write_cifar(tmp_path, "cifar-100-python", ["train", "test"], b"fine_labels", 6)
    ds100, info100 = get_dataset("cifar100", root=str(tmp_path), split="test")
    assert len(ds100) == 6 and info100.num_classes == 100 and ds100[5][1] == 5


def test_missing_cifar_says_how_to_get_it(tmp_path):
    with pytest.raises(ConfigError, match="--download"):
        get_dataset("cifar10", root=str(tmp_path))


def test_imagefolder_reads_a_class_per_folder_tree(tmp_path):
    for label, color in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        (tmp_path / "train" / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40, 30), color).save(tmp_path / "train" / label / f"{i}.png")
    ds, info = get_dataset("imagefolder", root=str(tmp_path), image_size=16)
    assert info.num_classes == 2 and info.image_size == 16 and len(ds) == 6
    x, y = ds[4]
    assert y == 1 and x.shape == (3, 16, 16)
    assert x[2].mean() > x[0].mean()  # blue dog
    gray, ginfo = get_dataset("imagefolder", root=str(tmp_path), in_channels=1)
    assert ginfo.in_channels == 1 and gray[0][0].shape == (1, 32, 32)
    with pytest.raises(ConfigError, match="one sub-folder of images per class"):
        get_dataset("imagefolder", root=str(tmp_path), split="test")


def test_imagenet_needs_a_root():
    with pytest.raises(ConfigError, match="image-net.org"):
        get_dataset("imagenet")


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="Unknown dataset 'cifar1'. Did you mean"):
        get_dataset("cifar1")
    with pytest.raises(ConfigError, match="in_channels must be 1 or 3"):
        get_dataset("synthetic", in_channels=2)
    with pytest.raises(ConfigError, match="split"):
        get_dataset("synthetic", split="val")


def test_random_subset_keeps_order():
    ds, _ = get_dataset("synthetic")
    sub = random_subset(ds, 10, seed=0)
    assert sub.indices == sorted(sub.indices) and len(set(sub.indices)) == 10
