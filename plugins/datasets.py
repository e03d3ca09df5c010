"""Built-in datasets: synthetic, cifar10, cifar100, fashion-mnist, imagenet, imagefolder.

CIFAR and Fashion-MNIST are read from their distribution files (the python pickles and the
IDX files) into memory; ``download=True`` fetches them with torchvision first. ImageNet and
any class-per-folder tree go through torchvision's ImageFolder.
"""

from __future__ import annotations

import functools
import gzip
import math
import pickle
import struct
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import datasets as tv_datasets
from torchvision.transforms.functional import pil_to_tensor

from nasbench_pc import hookimpl
from nasbench_pc.errors import ConfigError
from nasbench_pc.runtime.data import DatasetInfo, TensorImageDataset, channel_stats, dataset_help, image_transform

DEFAULT_ROOT = "data"
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _finish(name: str, images: torch.Tensor, targets: torch.Tensor, num_classes: int, mean: tuple[float, ...],
            std: tuple[float, ...], *, augment: bool, cutout: int, in_channels: int | None,
            image_size: int | None) -> tuple[Dataset, DatasetInfo]:
    native, side = images.shape[1], images.shape[-1]
    channels = in_channels or native
    size = image_size or side
    transform = image_transform(native_channels=native, in_channels=channels, mean=mean, std=std, image_size=size,
                                augment=augment, cutout=cutout, resize=size != side)
    info = DatasetInfo(name, num_classes, channels, size, *channel_stats(mean, std, native, channels))
    return TensorImageDataset(images, targets, transform), info


def _download(name: str, root: str | None, fetch: Callable[[], object]) -> None:
    """torchvision's download, with a network or checksum failure reported as a ConfigError."""
    try:
        fetch()
    except (OSError, RuntimeError) as exc:  # URLError is an OSError; a bad checksum is a RuntimeError
        raise dataset_help(name, root, f"Downloading it failed ({exc}). Check the network connection, or download "
                                       f"the files by hand into --data-root and drop --download.") from None


# ---------------------------------------------------------------------------------------------------------------
# synthetic


#: How far each class's mean colour sits from grey (a cue a network finds within a few steps).
TINT = 0.03


def make_synthetic(num_examples: int, *, seed: int, split: str = "train", num_classes: int = 10, channels: int = 3,
                   size: int = 32, noise: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Procedural images: each class is a faint tint plus a pair of coloured gratings (its tint, frequencies,
    orientations and colours drawn from ``seed``); an example shifts the gratings' phases at random, scales
    them and adds pixel noise. A small CNN starts at chance and picks the classes up within a few dozen steps
    (the main job's budget shows learning), yet orientation and frequency under noise keep the task from
    being solved at once. Same ``seed``: same classes; ``split`` picks an independent stream of examples.
    """
    proto = torch.Generator().manual_seed(seed)
    freqs = 1.0 + 4.0 * torch.rand(num_classes, 2, generator=proto)  # cycles per image
    angles = math.pi * torch.rand(num_classes, 2, generator=proto)
    colors = torch.rand(num_classes, 2, channels, generator=proto) * 2 - 1
    tints = torch.rand(num_classes, channels, generator=proto) * 2 - 1
    g = torch.Generator().manual_seed(seed * 7919 + (1 if split == "train" else 2))
    targets = torch.randperm(num_examples, generator=g) % num_classes
    coords = torch.arange(size, dtype=torch.float32) / size
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    images = 0.5 + TINT * tints[targets][:, :, None, None].expand(-1, -1, size, size)
    for wave in range(2):
        f, a = freqs[targets, wave], angles[targets, wave]
        kx, ky = (2 * math.pi * f * torch.cos(a)), (2 * math.pi * f * torch.sin(a))
        phase = 2 * math.pi * torch.rand(num_examples, generator=g)
        amp = 0.15 + 0.1 * torch.rand(num_examples, generator=g)
        grating = torch.cos(kx[:, None, None] * xx + ky[:, None, None] * yy + phase[:, None, None])
        images += (amp[:, None, None, None] * colors[targets, wave][:, :, None, None]) * grating[:, None]
    images += noise * torch.randn(images.shape, generator=g)
    return (images.clamp(0, 1) * 255).round().to(torch.uint8), targets


@functools.lru_cache(maxsize=4)
def _cached_synthetic(num_examples: int, seed: int, split: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Generated once per process (the tensors are never written to)."""
    return make_synthetic(num_examples, seed=seed, split=split, size=size)


def load_synthetic(*, split: str, root: str | None, download: bool, seed: int, augment: bool, cutout: int,
                   color_jitter: bool, in_channels: int | None, image_size: int | None, bad_images: str
                   ) -> tuple[Dataset, DatasetInfo]:
    """10 classes of 3x32x32 images made in memory (train 10000, test 2000); no files, no download."""
    size = image_size or 32
    images, targets = _cached_synthetic(10000 if split == "train" else 2000, seed, split, size)
    return _finish("synthetic", images, targets, 10, (0.5,) * 3, (0.15,) * 3, augment=augment, cutout=cutout,
                   in_channels=in_channels, image_size=size)


# ---------------------------------------------------------------------------------------------------------------
# CIFAR (python pickles of https://www.cs.toronto.edu/~kriz/cifar.html)

_CIFAR = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels", 10,
                (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), tv_datasets.CIFAR10),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels", 100,
                 (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), tv_datasets.CIFAR100),
}


def _cifar_loader(name: str):
    folder, train_files, test_files, label_key, classes, mean, std, tv_class = _CIFAR[name]

    def load(*, split: str, root: str | None, download: bool, seed: int, augment: bool, cutout: int,
             color_jitter: bool, in_channels: int | None, image_size: int | None, bad_images: str
             ) -> tuple[Dataset, DatasetInfo]:
        base = Path(root or DEFAULT_ROOT)
        if download:
            _download(name, root, lambda: tv_class(str(base), train=split == "train", download=True))
        directory = base if base.name == folder else base / folder
        how = (f"Pass --data-root DIR where DIR holds {folder}/ (the extracted python version from "
               f"https://www.cs.toronto.edu/~kriz/cifar.html), or add --download to fetch it into DIR "
               f"(default ./{DEFAULT_ROOT}).")
        images, labels = [], []
        for file in train_files if split == "train" else test_files:
            try:
                with open(directory / file, "rb") as fh:
                    batch = pickle.load(fh, encoding="bytes")
                images.append(torch.as_tensor(batch[b"data"], dtype=torch.uint8).view(-1, 3, 32, 32))
                labels.append(torch.as_tensor(batch[label_key], dtype=torch.long).view(-1))
                if len(images[-1]) != len(labels[-1]) or not bool(((labels[-1] >= 0) & (labels[-1] < classes)).all()):
                    raise ValueError(f"its labels do not match its {len(images[-1])} images of {classes} classes")
            except Exception as exc:  # a damaged pickle raises nearly any exception type
                raise dataset_help(name, root, f"Reading {directory / file} failed ({type(exc).__name__}: "
                                               f"{exc}). {how}") from None
        return _finish(name, torch.cat(images), torch.cat(labels), classes, mean, std, augment=augment,
                       cutout=cutout, in_channels=in_channels, image_size=image_size)

    load.__doc__ = f"{name} from the python pickles in ROOT/{folder}."
    return load


# ---------------------------------------------------------------------------------------------------------------
# Fashion-MNIST (IDX files, gzipped or not)


def read_idx(path: Path) -> torch.Tensor:
    """An IDX file (the MNIST format) as a uint8 tensor of its declared shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4:
        raise ValueError(f"{path.name} is truncated: {len(data)} bytes, shorter than an IDX header")
    zero, dtype, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08 or dims == 0:
        raise ValueError(f"{path.name} is not an unsigned-byte IDX file")
    if len(data) < 4 + 4 * dims:
        raise ValueError(f"{path.name} is truncated: its header declares {dims} dimensions")
    shape = struct.unpack(f">{dims}I", data[4:4 + 4 * dims])
    body = data[4 + 4 * dims:]
    if len(body) != math.prod(shape):
        raise ValueError(f"{path.name} is truncated: {len(body)} bytes for shape {shape}")
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).view(*shape)


def _find_idx(directory: Path, stem: str) -> Path:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{stem}[.gz] is missing from {directory}")


def load_fashion_mnist(*, split: str, root: str | None, download: bool, seed: int, augment: bool, cutout: int,
                       color_jitter: bool, in_channels: int | None, image_size: int | None, bad_images: str
                       ) -> tuple[Dataset, DatasetInfo]:
    """Fashion-MNIST, 1x28x28, from a folder of the four IDX files (Debian's dataset-fashion-mnist
    installs them in /usr/share/datasets/fashion-mnist, the default when no root is given)."""
    if root is None and not download and Path(DEBIAN_FASHION_MNIST).is_dir():
        root = DEBIAN_FASHION_MNIST
    base = Path(root or DEFAULT_ROOT)
    if download:
        _download("fashion-mnist", root, lambda: tv_datasets.FashionMNIST(str(base), train=split == "train",
                                                                          download=True))
    directories = [base, base / "FashionMNIST" / "raw"]
    directory = next((d for d in directories if (d / "train-labels-idx1-ubyte.gz").exists()
                      or (d / "train-labels-idx1-ubyte").exists()), base)
    prefix = "train" if split == "train" else "t10k"
    try:
        images = read_idx(_find_idx(directory, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_find_idx(directory, f"{prefix}-labels-idx1-ubyte")).long()
        if images.dim() != 3 or labels.dim() != 1 or len(images) != len(labels):
            raise ValueError("image and label files do not match")
        if len(labels) and labels.max() >= 10:
            raise ValueError(f"a label is {int(labels.max())}, but Fashion-MNIST has 10 classes (0..9)")
    except (OSError, ValueError, EOFError) as exc:
        raise dataset_help(
            "fashion-mnist", root,
            f"({exc}). Point --data-root at a folder holding train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
            f"t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (on Debian/Ubuntu: `apt-get install "
            f"dataset-fashion-mnist` puts them in {DEBIAN_FASHION_MNIST}), or add --download.",
        ) from None
    return _finish("fashion-mnist", images[:, None], labels, 10, (0.2860,), (0.3530,), augment=augment,
                   cutout=cutout, in_channels=in_channels, image_size=image_size)


# ---------------------------------------------------------------------------------------------------------------
# ImageNet and any class-per-folder image tree


def _decode_error(path: str, exc: Exception, fix: str) -> ConfigError:
    return ConfigError(f"The image {path} cannot be decoded ({type(exc).__name__}: {exc}). {fix}")


class _ImageFolder(tv_datasets.ImageFolder):
    """ImageFolder whose images reach the transform as float CHW tensors in [0, 1]."""

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, target = self.samples[index]
        try:
            img = pil_to_tensor(self.loader(path)).float().div_(255)
        except (OSError, SyntaxError, ValueError) as exc:  # e.g. a truncated JPEG: its header passed the check
            raise _decode_error(path, exc, "It passed the header check when the dataset was loaded, so it is "
                                           "damaged past its header (which --bad-images skip cannot see) or "
                                           "changed since. Delete or replace the file.") from None
        return (self.transform(img) if self.transform else img), target


def _undecodable(path: str) -> Exception | None:
    """Why PIL cannot read ``path``, from its header (and, for PNG, its chunk checksums); None if it can.
    About 50 us per JPEG, so a whole ImageNet split is checked in about a minute."""
    try:
        with Image.open(path) as img:
            img.verify()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return exc
    return None


def _check_images(dataset: _ImageFolder, bad_images: str) -> None:
    """Apply ``bad_images`` to every file once, before any training: 'stop' raises on the first file
    PIL cannot read; 'skip' drops all such files with one warning."""
    bad: list[str] = []
    for path, _ in dataset.samples:
        exc = _undecodable(path)
        if exc is not None:
            if bad_images == "stop":
                raise _decode_error(path, exc, "Delete or replace it, or pass --bad-images skip "
                                               "(bad_images='skip') to leave out every image file that cannot "
                                               "be decoded.")
            bad.append(path)
    if not bad:
        return
    dropped = set(bad)
    dataset.samples = [s for s in dataset.samples if s[0] not in dropped]
    dataset.imgs = dataset.samples
    dataset.targets = [target for _, target in dataset.samples]
    shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
    warnings.warn(f"Skipped {len(bad)} image file(s) that cannot be decoded (--bad-images skip): {shown}.",
                  stacklevel=4)  # the caller of get_dataset


def _folder_loader(name: str, *, style: str, default_size: int, split_dirs: dict[str, tuple[str, ...]], how: str):
    def load(*, split: str, root: str | None, download: bool, seed: int, augment: bool, cutout: int,
             color_jitter: bool, in_channels: int | None, image_size: int | None, bad_images: str
             ) -> tuple[Dataset, DatasetInfo]:
        if root is None:
            raise dataset_help(name, root, how)
        base = Path(root)
        candidates = [base / d if d else base for d in split_dirs[split]]
        directory = next((d for d in candidates if d.is_dir()), None)
        if directory is None:
            raise dataset_help(name, root, f"None of {', '.join(map(str, candidates))} is a folder. {how}")
        channels, size = in_channels or 3, image_size or default_size
        transform = image_transform(native_channels=3, in_channels=channels, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                                    image_size=size, augment=augment, cutout=cutout, style=style,
                                    resize=style == "small", color_jitter=color_jitter)
        try:
            dataset = _ImageFolder(str(directory), transform=transform)
        except OSError as exc:  # no class folders, or a class folder without images
            raise dataset_help(name, root, f"In {directory}: {exc} {how}") from None
        _check_images(dataset, bad_images)
        if not dataset.samples:
            raise dataset_help(name, root, f"No image in {directory} can be decoded. {how}")
        info = DatasetInfo(name, len(dataset.classes), channels, size, *channel_stats(IMAGENET_MEAN, IMAGENET_STD, 3,
                                                                               channels))
        return dataset, info

    load.__doc__ = f"{name}: one folder of images per class; ``bad_images`` applies to files PIL cannot decode."
    return load


load_imagenet = _folder_loader(
    "imagenet", style="imagenet", default_size=224, split_dirs={"train": ("train",), "test": ("val",)},
    how="Pass --data-root DIR where DIR/train and DIR/val hold one folder of JPEGs per class (the ILSVRC-2012 "
        "layout after the usual valprep step). ImageNet cannot be downloaded automatically; get it from "
        "https://image-net.org.",
)
load_imagefolder = _folder_loader(
    "imagefolder", style="small", default_size=32,
    split_dirs={"train": ("train", ""), "test": ("val", "test")},
    how="Pass --data-root DIR holding one sub-folder of images per class (or DIR/train and DIR/val with that "
        "layout); images are resized to --image-size (default 32).",
)


@hookimpl
def register_datasets() -> dict[str, object]:
    return {
        "synthetic": load_synthetic,
        "cifar10": _cifar_loader("cifar10"),
        "cifar100": _cifar_loader("cifar100"),
        "fashion-mnist": load_fashion_mnist,
        "imagenet": load_imagenet,
        "imagefolder": load_imagefolder,
    }
