"""Datasets: the registry front door, tensor transforms, subsets and search splits.

Datasets come from the ``register_datasets`` hook (built-ins in ``plugins/datasets.py``). Each
registered value is a loader called as ``loader(split=..., root=..., download=..., seed=...,
augment=..., cutout=..., color_jitter=..., in_channels=..., image_size=..., bad_images=...)`` that
returns ``(dataset, DatasetInfo)``; :func:`get_dataset` checks the options and adds the generic
parts (``limit``) on top. A loader for data held in memory ignores ``bad_images``; one that only
does small-image augmentation ignores ``color_jitter``.

Every dataset yields ``(float CHW tensor, int label)``. Transforms work on tensors, so in-memory
datasets (synthetic, CIFAR, Fashion-MNIST) never round-trip through PIL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch.utils.data import Dataset, Subset
from torchvision import transforms as T

from nasbench_pc import registry
from nasbench_pc.errors import ConfigError
from nasbench_pc.settings import setting

SPLITS = ("train", "test")
BAD_IMAGES = ("stop", "skip")  # what an image-file dataset does with a file that cannot be decoded


@dataclass(frozen=True)
class DataSettings:
    """Which data a run reads and how: the settings search, train and evaluation share (each config inherits them),
    defined once here with their help (:mod:`nasbench_pc.settings`)."""

    dataset: str = setting("synthetic", "Registered dataset (`nasbench-pc plugins` lists them).", flags=("-d",))
    data_root: str | None = setting(None, "Folder holding the dataset files.")
    download: bool = setting(False, "Download the dataset into --data-root if it is missing (needs a network).")
    limit: int | None = setting(None, "Use at most this many training examples (a seeded subset).")
    in_channels: int | None = setting(None, "Convert images to 1 or 3 channels (grayscale is replicated to 3, RGB "
                                      "reduced to luminance) [native].", choices=(1, 3))
    image_size: int | None = setting(None, "Resize images to this square side, where the dataset supports it "
                                     "[native].")
    bad_images: str = setting("stop", "An image file that cannot be decoded: stop with an error, or skip it with a "
                              "warning.", choices=BAD_IMAGES)

    @staticmethod
    def of(config: Any) -> dict[str, Any]:
        """The data settings of any config that has them (a search's, a training run's), by name."""
        return {f.name: getattr(config, f.name) for f in fields(DataSettings)}


@dataclass(frozen=True)
class DatasetInfo:
    """What a network needs to know about a dataset. ``image_size`` is the square side fed to the network."""

    name: str
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


def get_dataset(name: str, *, split: str = "train", root: str | None = None, download: bool = False,
                limit: int | None = None, seed: int = 0, augment: bool = False, cutout: int = 0,
                color_jitter: bool = False, in_channels: int | None = None, image_size: int | None = None,
                bad_images: str = "stop") -> tuple[Dataset, DatasetInfo]:
    """A registered dataset split, ready for a DataLoader.

    ``augment`` applies the reference training augmentation (pad-4 random crop and horizontal flip
    on small images; random-resized crop and flip on ImageNet-style data); ``color_jitter`` adds
    ColorJitter(0.4, 0.4, 0.4, 0.2) to the ImageNet-style augmentation, as the reference
    ``train_imagenet.py`` does and its ``train_search_imagenet.py`` does not. ``cutout`` is the
    CIFAR cutout length (0 = off). ``in_channels`` converts the images (grayscale is replicated to 3
    channels; RGB is reduced to luminance for 1); None keeps the native channels. ``image_size``
    resizes where the dataset supports it. ``bad_images`` says what a dataset of image files does
    with a file that cannot be decoded: 'stop' raises a ConfigError naming it, 'skip' leaves it out
    with one warning. ``limit`` keeps a seeded random subset of at most that many examples (in their
    original order).
    """
    if split not in SPLITS:
        raise ConfigError(f"Unknown dataset split {split!r}; use one of {', '.join(SPLITS)}.")
    if in_channels is not None and in_channels not in (1, 3):
        raise ConfigError(f"in_channels must be 1 or 3, got {in_channels}. Grayscale data can be replicated to 3.")
    if cutout < 0:
        raise ConfigError(f"cutout must be 0 (off) or a positive length in pixels, got {cutout}.")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be a positive number of examples, got {limit}.")
    if bad_images not in BAD_IMAGES:
        raise ConfigError(f"--bad-images must be one of {', '.join(BAD_IMAGES)}, got {bad_images!r}.")
    loader = registry.get("dataset", name)
    dataset, info = loader(split=split, root=root, download=download, seed=seed, augment=augment, cutout=cutout,
                           color_jitter=color_jitter, in_channels=in_channels, image_size=image_size,
                           bad_images=bad_images)
    if limit is not None and limit < len(dataset):
        dataset = random_subset(dataset, limit, seed)
    return dataset, info


def available_datasets() -> list[str]:
    return sorted(registry.available("dataset"))


# ---------------------------------------------------------------------------------------------------------------
# transforms


class Cutout:
    """Zero a random ``length`` x ``length`` square (clipped at the border), as the reference CIFAR cutout."""

    def __init__(self, length: int):
        self.length = length

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        y, x = int(torch.randint(0, h, (1,))), int(torch.randint(0, w, (1,)))
        y0, y1 = max(y - self.length // 2, 0), min(y + self.length // 2, h)
        x0, x1 = max(x - self.length // 2, 0), min(x + self.length // 2, w)
        img = img.clone()
        img[..., y0:y1, x0:x1] = 0.0
        return img


_LUMA = (0.299, 0.587, 0.114)


def channel_stats(mean: Sequence[float], std: Sequence[float], native: int, wanted: int
                  ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Normalisation statistics after converting ``native`` channels to ``wanted``."""
    if native == wanted:
        return tuple(mean), tuple(std)
    if native == 1:  # replicated grayscale: same statistics on every channel
        return (mean[0],) * wanted, (std[0],) * wanted
    luma_mean = sum(c * m for c, m in zip(_LUMA, mean, strict=True))
    luma_std = sum(c * s for c, s in zip(_LUMA, std, strict=True))
    return (luma_mean,), (luma_std,)


def _convert_channels(native: int, wanted: int) -> Callable[[torch.Tensor], torch.Tensor]:
    if native == 1:
        return lambda x: x.expand(wanted, -1, -1).contiguous()
    weights = torch.tensor(_LUMA).view(3, 1, 1)
    return lambda x: (x * weights).sum(0, keepdim=True)


def image_transform(*, native_channels: int, in_channels: int, mean: Sequence[float], std: Sequence[float],
                    image_size: int, augment: bool, cutout: int, style: str = "small", resize: bool = False,
                    color_jitter: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
    """Float CHW tensor in [0, 1] -> network input.

    ``style='small'``: reference CIFAR pipeline (RandomCrop(size, padding=4) + flip when augmenting).
    ``style='imagenet'``: RandomResizedCrop + flip when augmenting (the reference search), plus
    ColorJitter(0.4, 0.4, 0.4, 0.2) on RGB when ``color_jitter`` (the reference ImageNet training);
    else Resize(size / 0.875) + CenterCrop. ``resize`` resizes small-style images to ``image_size``.
    The small style never jitters colours: the CIFAR reference does not.
    """
    steps: list[Callable[[torch.Tensor], torch.Tensor]] = []
    if native_channels != in_channels:
        steps.append(_convert_channels(native_channels, in_channels))
    if style == "imagenet":
        if augment:
            steps += [T.RandomResizedCrop(image_size, antialias=True), T.RandomHorizontalFlip()]
            if color_jitter and in_channels == 3:
                steps.append(T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.2))
        else:
            steps += [T.Resize(round(image_size / 0.875), antialias=True), T.CenterCrop(image_size)]
    else:
        if resize:
            steps.append(T.Resize((image_size, image_size), antialias=True))
        if augment:
            steps += [T.RandomCrop(image_size, padding=4), T.RandomHorizontalFlip()]
    stats_mean, stats_std = channel_stats(mean, std, native_channels, in_channels)
    steps.append(T.Normalize(stats_mean, stats_std))
    if cutout:
        steps.append(Cutout(cutout))
    return T.Compose(steps)


# ---------------------------------------------------------------------------------------------------------------
# in-memory datasets and subsets


class TensorImageDataset(Dataset):
    """Images held in memory as uint8 (N, C, H, W) with integer labels; ``transform`` sees float [0, 1] tensors."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor | Sequence[int],
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError("images must be a uint8 tensor of shape (N, C, H, W)")
        self.images = images
        self.targets = torch.as_tensor(targets, dtype=torch.long)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img = self.images[index].float().div_(255)
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.targets[index])


def targets_of(dataset: Dataset) -> torch.Tensor:
    """All labels of a dataset, without loading images where the dataset keeps them (``.targets``)."""
    if isinstance(dataset, Subset):
        return targets_of(dataset.dataset)[torch.as_tensor(dataset.indices, dtype=torch.long)]
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        return torch.as_tensor(targets, dtype=torch.long)
    return torch.tensor([int(dataset[i][1]) for i in range(len(dataset))], dtype=torch.long)


def random_subset(dataset: Dataset, size: int, seed: int) -> Subset:
    """A seeded random subset of ``size`` examples, kept in the dataset's order."""
    g = torch.Generator().manual_seed(seed)
    keep = torch.randperm(len(dataset), generator=g)[:size].sort().values
    return Subset(dataset, keep.tolist())


def search_split(num_examples: int, train_portion: float) -> tuple[list[int], list[int]]:
    """The reference search split: the first ``floor(train_portion * n)`` examples train the weights,
    the rest train the architecture."""
    if not 0.0 < train_portion < 1.0:
        raise ConfigError(f"train_portion must lie strictly between 0 and 1, got {train_portion}.")
    cut = int(train_portion * num_examples)
    if cut == 0 or cut == num_examples:
        raise ConfigError(
            f"train_portion {train_portion} of {num_examples} examples leaves an empty weight or architecture "
            f"split. Use more data (raise --limit) or a train_portion nearer 0.5."
        )
    return list(range(cut)), list(range(cut, num_examples))


def per_class_split(targets: torch.Tensor, weight_fraction: float, arch_fraction: float, seed: int
                    ) -> tuple[list[int], list[int]]:
    """Disjoint seeded per-class samples: ``weight_fraction`` of every class for the weights and
    ``arch_fraction`` for the architecture (the PC-DARTS ImageNet search: 10% and 2.5%)."""
    if weight_fraction <= 0 or arch_fraction <= 0 or weight_fraction + arch_fraction > 1:
        raise ConfigError(
            f"Per-class fractions must be positive and sum to at most 1, got {weight_fraction} (weights) and "
            f"{arch_fraction} (architecture)."
        )
    g = torch.Generator().manual_seed(seed)
    weight_idx: list[int] = []
    arch_idx: list[int] = []
    for label in torch.unique(targets).tolist():
        members = torch.nonzero(targets == label).flatten()
        members = members[torch.randperm(len(members), generator=g)]
        n_w = max(1, round(weight_fraction * len(members)))
        n_a = max(1, round(arch_fraction * len(members)))
        if n_w + n_a > len(members):
            raise ConfigError(
                f"Class {label} has only {len(members)} examples, too few for a per-class split of "
                f"{weight_fraction} + {arch_fraction}. Use more data per class or larger fractions."
            )
        weight_idx += members[:n_w].tolist()
        arch_idx += members[n_w:n_w + n_a].tolist()
    return sorted(weight_idx), sorted(arch_idx)


def dataset_help(name: str, root: Any, how: str) -> ConfigError:
    """The error for a dataset that is missing or malformed at ``root``, with how to get it."""
    where = f"at {root!s}" if root else "(no --data-root given)"
    return ConfigError(f"The {name} dataset was not found or is malformed {where}. {how}")
