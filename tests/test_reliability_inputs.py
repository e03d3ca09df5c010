"""Bad input gives one clear error, never a traceback: unknown names (with the closest valid name),
impossible K, malformed genotypes in every text form, and missing, malformed or undecodable datasets."""

import copy
import gzip
import io
import json
import os
import pickle
import random
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torchvision import transforms as T

from nasbench_pc import genotypes, registry
from nasbench_pc.api import create_supernet
from nasbench_pc.cli import main
from nasbench_pc.errors import ConfigError, GenotypeError
from nasbench_pc.genotypes import KNOWN
from nasbench_pc.runtime.data import get_dataset, image_transform
from nasbench_pc.search.presets import resolve_config


def _flat(text: str) -> str:
    """CLI output without rich's panel borders and line breaks."""
    return " ".join(text.replace("│", " ").replace("╭", " ").replace("╰", " ").replace("─", " ").split())


# ---------------------------------------------------------------------------------------------------------------
# unknown names


@pytest.mark.parametrize("call, message", [
    (lambda: create_supernet("pc-dart"), "Unknown method 'pc-dart'. Did you mean 'pc-darts'?"),
    (lambda: create_supernet("pc-darts", sampler="partal"), "Unknown sampler 'partal'. Did you mean 'partial'?"),
    (lambda: create_supernet("pc-darts", normalizer="edges"), "Unknown normalizer 'edges'. Did you mean 'edge'?"),
    (lambda: create_supernet("pc-darts", search_space="dart"), "Unknown search space 'dart'. Did you mean 'darts'?"),
    (lambda: get_dataset("cifar1O"), "Unknown dataset 'cifar1O'. Did you mean 'cifar10'?"),
    (lambda: registry.get("evaluator", "proxy-trian"), "Unknown evaluator 'proxy-trian'. Did you mean 'proxy-train'?"),
    (lambda: resolve_config("pc-darts", "quik"), "Unknown preset 'quik'. Did you mean 'quick'?"),
    (lambda: resolve_config("darts-1"), "Unknown method 'darts-1'. Did you mean 'darts-1st'?"),
])
def test_unknown_names_suggest_the_closest_valid_name(call, message):
    with pytest.raises(ConfigError) as info:
        call()
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("args, expected", [
    (["supernet", "pc-dart"], "Unknown method 'pc-dart'. Did you mean 'pc-darts'?"),
    (["search", "--method", "pc-dart", "--epochs", "1"], "Unknown method 'pc-dart'. Did you mean 'pc-darts'?"),
    (["search", "--dataset", "cifar1O", "--epochs", "1", "--device", "cpu"],
     "Unknown dataset 'cifar1O'. Did you mean 'cifar10'?"),
    (["supernet", "pc-darts", "--k", "0"], "K (the partial-channel ratio) must be a positive integer, got 0."),
    (["supernet", "pc-darts", "--k", "-2"], "K (the partial-channel ratio) must be a positive integer, got -2."),
    (["supernet", "pc-darts", "--k", "3"], "K=3 does not divide the 16 channels of a cell edge"),
    (["supernet", "pc-darts", "--k", "32"], "K=32 does not divide the 16 channels of a cell edge"),
    # two cells, both reductions: 2C = 6 channels, 6/K = 3 is odd, and FactorizedReduce halves it
    (["supernet", "pc-darts", "-C", "3", "--layers", "2", "--k", "2"],
     "FactorizedReduce needs an even channel count but got 3."),
    (["supernet", "pc-darts", "-C", "0"], "init_channels must be a positive integer, got 0."),
    (["supernet", "pc-darts", "--layers", "0"], "layers must be a positive integer, got 0."),
])
def test_cli_reports_bad_names_and_k_in_one_paragraph_with_exit_2(tmp_path, monkeypatch, args, expected):
    monkeypatch.chdir(tmp_path)  # a search that got further would write runs/ here, not in the repository
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert expected in _flat(result.output)
    assert "Traceback" not in result.output


# ---------------------------------------------------------------------------------------------------------------
# genotype parsing

_LITERAL = genotypes.to_python(KNOWN["DARTS_V2"])


def _json_with(**fields) -> str:
    data = copy.deepcopy(genotypes.to_dict(KNOWN["DARTS_V2"]))
    data.update(fields)
    return json.dumps(data)


def _literal_concat(expression: str) -> str:
    return _LITERAL.replace("normal_concat=[2, 3, 4, 5]", f"normal_concat={expression}")


@pytest.mark.parametrize("text, message", [
    ("{normal: ", "not valid JSON (Expecting property name enclosed in double quotes at line 1, column 2)"),
    ("[1, 2]", "A genotype must be an object with keys normal, normal_concat, reduce, reduce_concat; got list."),
    ("[" * 100_000, "The genotype JSON cannot be read (maximum recursion depth exceeded"),
    ('{"normal": [["sep_conv_3x3", ' + "9" * 5000 + "]]}", "The genotype JSON cannot be read (Exceeds the limit"),
    (_json_with(normal=[["conv_9x9", 0]] * 8), "Edge 0 of the normal cell uses the unknown op 'conv_9x9'."),
    (_json_with(reduce=[["sep_conv_3x3", 0]] * 7), "The reduce cell has 7 edges but a cell with 4 intermediate "
                                                   "nodes needs exactly 8"),
    (_json_with(normal=[["sep_conv_3x3", 2]] * 8), "Edge 0 of the normal cell feeds node 2 from input 2, but that "
                                                   "node can only read inputs 0..1"),
    (_json_with(normal=[["sep_conv_3x3", True]] * 8), "Edge 0 of the normal cell feeds node 2 from input True"),
    (_json_with(normal=[["sep_conv_3x3", 0.0]] * 8), "Edge 0 of the normal cell feeds node 2 from input 0.0"),
    (_json_with(normal=[["sep_conv_3x3", "0"]] * 8), "Edge 0 of the normal cell feeds node 2 from input '0'"),
    (_json_with(normal=[["sep_conv_3x3", -1]] * 8), "Edge 0 of the normal cell feeds node 2 from input -1"),
    (_json_with(normal=[["sep_conv_3x3", 10 ** 80]] * 8),
     "Edge 0 of the normal cell feeds node 2 from input 100000000000000000000000000000000000000000000000000000000..."),
    (_json_with(normal=[[["sep_conv_3x3"], 0]] * 8), "Edge 0 of the normal cell uses the unknown op ['sep_conv_3x3']."),
    (_json_with(normal=[{"a": [[[1]]]}] * 8), "Edge 0 of the normal cell is {'a': [[[1]]]}; each edge must be an "
                                              "(op, input) pair"),
    (_json_with(normal="sep_conv_3x3"), "The normal cell has no edges but a cell with 4 intermediate nodes"),
    (_json_with(normal_concat=[2.0, 3]), "normal_concat is [2.0, 3]; it must list 1 to 6 state indices in 0..5"),
    (_json_with(normal_concat=[]), "normal_concat is []; it must list 1 to 6 state indices in 0..5"),
    (_json_with(normal_concat=[[2]]), "normal_concat is [[2]]; it must list 1 to 6 state indices in 0..5"),
    (_literal_concat("range(10**12)"), "('10 ** 12' is not a literal)"),
    (_literal_concat("range(1000000000000)"), "(range() of 1000000000000 numbers is far too long for a concat list)"),
    (_literal_concat("range('a')"), "(range() takes one to three integer arguments, as in range(2, 6))"),
    (_literal_concat("range(2.0, 6)"), "(range() takes one to three integer arguments, as in range(2, 6))"),
    (_literal_concat("range(True, 6)"), "(range() takes one to three integer arguments, as in range(2, 6))"),
    (_literal_concat("range(stop=6)"), "(range() takes one to three integer arguments, as in range(2, 6))"),
    (_literal_concat("range(1, 2, 3, 4)"), "(range() takes one to three integer arguments, as in range(2, 6))"),
    (_literal_concat("range(2, 6, 0)"), "(range() step must not be zero)"),
    (_literal_concat("range(-3, 2)"), "normal_concat is [-3, -2, -1, 0, 1]; it must list 1 to 6 state indices"),
    (_literal_concat("sorted([2, 3])"), "(only range(...) may be called, not sorted(...))"),
    (_literal_concat("__import__('os').getcwd()"), "(only range(...) may be called, not __import__('os').getcwd(...))"),
    (_literal_concat("[2, 3] * 2"), "('[2, 3] * 2' is not a literal)"),
    ("Genotype(normal=lambda: 1)", "('lambda: 1' is not a literal)"),
    ("Genotype(**{'normal': []})", "(** unpacking is not allowed)"),
    (_LITERAL[:-1] + ", normal=[])", "(normal is given twice)"),
    ("Genotype(1, 2, 3, 4, 5)", "(5 positional arguments, but a Genotype has 4 fields)"),
    ("Genotype(normal=" + "-" * 100_000 + "1)", "as a Genotype(...) literal: it is nested far too deeply"),
    ("Genotype(normal=" + "9" * 5000 + ")", "as a Genotype(...) literal (Exceeds the limit (4300 digits)"),
    ("Genotype(\x00)", "as a Genotype(...) literal (source code string cannot contain null bytes)"),
    ("Genotype(normal=[", "as a Genotype(...) literal ('[' was never closed"),
    ("DARTS_V3", "'DARTS_V3' is neither a known genotype (DARTS_V1, DARTS_V2, PC_DARTS_cifar, PC_DARTS_image, "
                 "GDAS_V1, DrNAS_cifar10, DrNAS_imagenet, SDARTS_RS, SDARTS_ADV, DARTS_MINUS_C10_S0_0, "
                 "DARTS_MINUS_C10_S0_1, DARTS_MINUS_C10_S0_2, DARTS_MINUS_C10_S0_3, DARTS_MINUS_C10_S0_4, "
                 "FairDARTS_a, FairDARTS_b, FairDARTS_c, FairDARTS_d, FairDARTS_e, FairDARTS_f, FairDARTS_g, "
                 "NB201_best_cifar10)"),
    ("a" * 5000, "'" + "a" * 56 + "... is neither a known genotype"),
    ("~no-such-user-xyz/genotype.json", "'~no-such-user-xyz/genotype.json' is neither a known genotype"),
    ("~\x00", "'~\\x00' is neither a known genotype"),  # found by hypothesis: expanduser raised ValueError
], ids=lambda value: value[:40])
def test_malformed_genotype_text_is_a_genotype_error(text, message):
    with pytest.raises(GenotypeError) as info:
        genotypes.parse(text)
    assert message in str(info.value)


@pytest.mark.parametrize("name, suggestion", [("DARTS_V3", "DARTS_V2"), ("pc_darts_cifar", "PC_DARTS_cifar")])
def test_a_misspelled_genotype_name_suggests_the_known_one(name, suggestion):
    with pytest.raises(GenotypeError, match=f"Did you mean '{suggestion}'"):
        genotypes.parse(name)


def test_range_from_the_api_is_checked_before_it_is_listed():
    g = KNOWN["DARTS_V2"]
    with pytest.raises(GenotypeError, match=r"normal_concat is range\(0, 1000000000000000\); it must list 1 to 6"):
        genotypes.validate(g._replace(normal_concat=range(10 ** 15)))  # listing it would need 8 PB
    huge = g._replace(normal=[("sep_conv_3x3", 10 ** 5000)] * 8)  # too long for repr()
    with pytest.raises(GenotypeError, match="from input <an integer of 16610 bits>"):
        genotypes.validate(huge)


def test_dict_keys_of_mixed_types_are_named():
    data = {**genotypes.to_dict(KNOWN["DARTS_V2"]), 1: 2, "x": 3}
    with pytest.raises(GenotypeError, match="unexpected field\\(s\\) 'x', 1\\."):
        genotypes.parse(data)


def test_genotype_paths_folder_without_json_and_binary_file(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(GenotypeError, match="holds no genotype.json. Pass a run directory"):
        genotypes.parse(str(tmp_path / "run"))
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00\x80garbage")
    with pytest.raises(GenotypeError, match="bin.json is not a text file \\(it is not valid UTF-8\\)"):
        genotypes.parse(str(tmp_path / "bin.json"))
    (tmp_path / "run" / "genotype.json").write_text('{"normal": 1}')
    with pytest.raises(GenotypeError, match="genotype.json: The genotype lacks the field\\(s\\) normal_concat"):
        genotypes.parse(str(tmp_path / "run"))
    assert genotypes.parse(_literal_concat("range(2, 6)")) == KNOWN["DARTS_V2"]


# ---------------------------------------------------------------------------------------------------------------
# datasets: missing, empty and malformed folders


def _image(path: Path, color=(200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 10), color).save(path)


def test_folder_datasets_without_class_folders_or_images(tmp_path):
    _image(tmp_path / "flat" / "a.png")
    with pytest.raises(ConfigError) as info:
        get_dataset("imagefolder", root=str(tmp_path / "flat"))
    assert f"In {tmp_path / 'flat'}: Couldn't find any class folder" in str(info.value)
    assert "Pass --data-root DIR holding one sub-folder of images per class" in str(info.value)
    (tmp_path / "empty" / "train" / "cat").mkdir(parents=True)
    (tmp_path / "empty" / "train" / "cat" / "notes.txt").write_text("no images")
    _image(tmp_path / "empty" / "train" / "dog" / "0.png")
    with pytest.raises(ConfigError) as info:
        get_dataset("imagenet", root=str(tmp_path / "empty"))
    assert f"In {tmp_path / 'empty' / 'train'}: Found no valid file for the classes cat." in str(info.value)
    assert "image-net.org" in str(info.value)
    with pytest.raises(ConfigError, match="None of .*/val is a folder"):
        get_dataset("imagenet", root=str(tmp_path / "empty"), split="test")


@pytest.mark.parametrize("content, message", [
    (b"", "train-images-idx3-ubyte.gz is truncated: 0 bytes, shorter than an IDX header"),
    (b"\x00\x00\x08\x03\x00\x00", "train-images-idx3-ubyte.gz is truncated: its header declares 3 dimensions"),
    (b"\x00\x00\x08\x03" + b"\x00\x00\x00\x02" + b"\x00\x00\x00\x02" * 2 + b"\x01",
     "train-images-idx3-ubyte.gz is truncated: 1 bytes for shape (2, 2, 2)"),
    (b"\x00\x00\x0d\x03", "train-images-idx3-ubyte.gz is not an unsigned-byte IDX file"),
])
def test_truncated_fashion_mnist_is_a_config_error(tmp_path, content, message):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(content))
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x02\x01\x02"))
    with pytest.raises(ConfigError) as info:
        get_dataset("fashion-mnist", root=str(tmp_path))
    assert message in str(info.value)
    assert f"The fashion-mnist dataset was not found or is malformed at {tmp_path}." in str(info.value)


def test_fashion_mnist_labels_beyond_ten_classes(tmp_path):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(b"\x00\x00\x08\x03\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x07"))
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x0c"))
    with pytest.raises(ConfigError, match="a label is 12, but Fashion-MNIST has 10 classes"):
        get_dataset("fashion-mnist", root=str(tmp_path))


@pytest.mark.parametrize("content, error", [
    (random.Random(0).randbytes(64), None),  # random bytes (seeded: every xdist worker collects the same test)
    (b"", "EOFError"),
    (pickle.dumps([1, 2, 3]), "TypeError"),
    (pickle.dumps({b"data": [[0] * 3072], b"labels": [1, 2]}), "its labels do not match its 1 images of 10 classes"),
    (pickle.dumps({b"data": [[0] * 3072], b"labels": [10]}), "its labels do not match its 1 images of 10 classes"),
    (pickle.dumps({b"data": [[0] * 100], b"labels": [1]}), "RuntimeError"),
    (pickle.dumps({b"labels": [1]}), "KeyError"),
])
def test_a_bad_cifar_pickle_is_a_config_error_naming_the_file(tmp_path, content, error):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(content)
    with pytest.raises(ConfigError) as info:
        get_dataset("cifar10", root=str(tmp_path), split="test")
    assert f"Reading {folder / 'test_batch'} failed (" in str(info.value)
    assert error is None or error in str(info.value)
    assert "or add --download" in str(info.value)


# ---------------------------------------------------------------------------------------------------------------
# datasets: image files that cannot be decoded


def _tree_with_bad_files(root: Path) -> tuple[str, str]:
    for label in ("cat", "dog"):
        for i in range(2):
            _image(root / label / f"{i}.png")
    (root / "cat" / "1_random.jpg").write_bytes(os.urandom(600))
    png = io.BytesIO()
    Image.new("RGB", (40, 40), (0, 0, 255)).save(png, format="PNG")
    (root / "dog" / "2_truncated.png").write_bytes(png.getvalue()[:len(png.getvalue()) // 2])
    return str(root / "cat" / "1_random.jpg"), str(root / "dog" / "2_truncated.png")


def test_bad_images_stop_names_the_first_bad_file_and_the_skip_option(tmp_path):
    random_jpg, _ = _tree_with_bad_files(tmp_path)
    with pytest.raises(ConfigError) as info:
        get_dataset("imagefolder", root=str(tmp_path))
    assert str(info.value).startswith(f"The image {random_jpg} cannot be decoded (UnidentifiedImageError: ")
    assert str(info.value).endswith("Delete or replace it, or pass --bad-images skip (bad_images='skip') to leave "
                                    "out every image file that cannot be decoded.")


def test_bad_images_skip_drops_them_with_one_warning(tmp_path):
    random_jpg, truncated_png = _tree_with_bad_files(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds, info = get_dataset("imagefolder", root=str(tmp_path), bad_images="skip", image_size=8)
    assert [str(w.message) for w in caught] == [
        f"Skipped 2 image file(s) that cannot be decoded (--bad-images skip): {random_jpg}, {truncated_png}."]
    assert caught[0].filename == __file__  # attributed to the caller of get_dataset
    assert len(ds) == 4 and info.num_classes == 2
    assert ds.targets == [0, 0, 1, 1] and [Path(p).name for p, _ in ds.samples] == ["0.png", "1.png"] * 2
    assert ds[3][0].shape == (3, 8, 8)


def test_bad_images_skip_with_nothing_left_is_a_config_error(tmp_path):
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "0.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning, match="Skipped 1 image file"), pytest.raises(ConfigError,
                                                                               match="No image in .* can be decoded"):
        get_dataset("imagefolder", root=str(tmp_path), bad_images="skip")


def test_a_truncated_jpeg_whose_header_passes_fails_clearly_when_read(tmp_path):
    _image(tmp_path / "cat" / "0.png")
    jpg = io.BytesIO()
    Image.effect_noise((64, 64), 40).convert("RGB").save(jpg, format="JPEG")
    (tmp_path / "cat" / "1.jpg").write_bytes(jpg.getvalue()[:len(jpg.getvalue()) * 3 // 4])
    ds, _ = get_dataset("imagefolder", root=str(tmp_path))  # the header check cannot see the missing tail
    assert ds[0][0].shape == (3, 32, 32)
    with pytest.raises(ConfigError, match=r"cat/1.jpg cannot be decoded \(OSError: image file is truncated.*"
                                          r"Delete or replace the file\.$"):
        ds[1]


def test_bad_images_option_is_checked_and_in_memory_datasets_ignore_it():
    with pytest.raises(ConfigError, match="--bad-images must be one of stop, skip, got 'ignore'"):
        get_dataset("synthetic", bad_images="ignore")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds, _ = get_dataset("synthetic", bad_images="skip", limit=3)
    assert len(ds) == 3


# ---------------------------------------------------------------------------------------------------------------
# ImageNet augmentation: ColorJitter only when asked


def _steps(**options) -> list[str]:
    transform = image_transform(native_channels=3, mean=(0.5,) * 3, std=(0.2,) * 3, image_size=8, cutout=0,
                                **options)
    return [type(step).__name__ for step in transform.transforms]


def test_imagenet_search_augmentation_has_no_color_jitter():
    assert _steps(in_channels=3, augment=True, style="imagenet") == [
        "RandomResizedCrop", "RandomHorizontalFlip", "Normalize"]
    assert _steps(in_channels=3, augment=True, style="imagenet", color_jitter=True) == [
        "RandomResizedCrop", "RandomHorizontalFlip", "ColorJitter", "Normalize"]
    jitter = image_transform(native_channels=3, in_channels=3, mean=(0.5,) * 3, std=(0.2,) * 3, image_size=8,
                             augment=True, cutout=0, style="imagenet", color_jitter=True).transforms[2]
    assert isinstance(jitter, T.ColorJitter)
    assert (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue) == (
        (0.6, 1.4), (0.6, 1.4), (0.6, 1.4), (-0.2, 0.2))  # ColorJitter(0.4, 0.4, 0.4, 0.2)
    # no jitter without augmentation, on luminance, or on the small-image (CIFAR) pipeline
    assert "ColorJitter" not in _steps(in_channels=3, augment=False, style="imagenet", color_jitter=True)
    assert "ColorJitter" not in _steps(in_channels=1, augment=True, style="imagenet", color_jitter=True)
    assert "ColorJitter" not in _steps(in_channels=3, augment=True, style="small", color_jitter=True)


def test_get_dataset_passes_color_jitter_to_imagenet(tmp_path):
    for label in ("a", "b"):
        _image(tmp_path / "train" / label / "0.png")
    plain, _ = get_dataset("imagenet", root=str(tmp_path), augment=True, image_size=8)
    jittered, _ = get_dataset("imagenet", root=str(tmp_path), augment=True, image_size=8, color_jitter=True)
    assert not any(isinstance(t, T.ColorJitter) for t in plain.transform.transforms)
    assert [type(t).__name__ for t in jittered.transform.transforms][2] == "ColorJitter"
    torch.manual_seed(0)
    assert jittered[0][0].shape == (3, 8, 8)
