"""Property tests (hypothesis): every valid genotype survives each text form the CLI reads, any text
gives a Genotype or a GenotypeError, and any option value gives a config or a NasbenchError."""

import json
import math
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nasbench_pc import genotypes
from nasbench_pc.cli import main
from nasbench_pc.errors import GenotypeError, NasbenchError
from nasbench_pc.genotypes import PRIMITIVES, Genotype
from nasbench_pc.networks.recipes import TrainHParams
from nasbench_pc.search import SearchConfig
from nasbench_pc.search.presets import resolve_config

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SLOW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# ---------------------------------------------------------------------------------------------------------------
# genotypes


@st.composite
def cells(draw, steps: int = 4) -> list[tuple[str, int]]:
    """Two (op, input) edges per node; node i reads the two cell inputs and the i nodes before it."""
    return [(draw(st.sampled_from(PRIMITIVES)), draw(st.integers(0, node + 1)))
            for node in range(steps) for _ in range(2)]


concats = st.lists(st.integers(0, 5), min_size=1, max_size=6)
valid_genotypes = st.builds(Genotype, normal=cells(), normal_concat=concats, reduce=cells(), reduce_concat=concats)


@FAST
@given(valid_genotypes)
def test_every_valid_genotype_round_trips_through_json_and_the_reference_literal(genotype):
    assert genotypes.validate(genotype) == genotype
    assert genotypes.from_json(genotypes.to_json(genotype)) == genotype
    assert genotypes.from_python(genotypes.to_python(genotype)) == genotype
    assert genotypes.parse(genotypes.to_json(genotype, indent=None)) == genotype  # the CLI's JSON argument
    assert genotypes.parse("  " + genotypes.to_python(genotype) + "\n") == genotype  # pasted from a search log
    assert genotypes.parse(genotypes.to_dict(genotype)) == genotype


@SLOW
@given(valid_genotypes)
def test_every_valid_genotype_round_trips_through_a_file_and_a_run_directory(genotype):
    with tempfile.TemporaryDirectory() as folder:
        genotypes.save(genotype, Path(folder) / "genotype.json")
        assert genotypes.parse(str(Path(folder) / "genotype.json")) == genotype
        assert genotypes.parse(folder) == genotype
        assert genotypes.load(Path(folder) / "genotype.json") == genotype


def _parse_or_error(parse, text):
    """A Genotype or a one-paragraph GenotypeError; any other exception fails the test."""
    try:
        result = parse(text)
    except GenotypeError as exc:
        assert str(exc) and len(str(exc)) < 1000
        return None
    assert isinstance(result, Genotype)
    return result


_KNOWN_NAMES = st.sampled_from(sorted(genotypes.KNOWN))
# fragments of every form parse() accepts, so that generated text gets past the first character
_FRAGMENTS = st.sampled_from(["{", "}", "[", "]", "(", ")", ",", ":", "'", '"', "Genotype(", "range(", "normal=",
                              "normal_concat", "reduce", '"normal": ', "sep_conv_3x3", "2", "-1", "10**12", "1e999",
                              "True", "None", "*", "=", "/", ".", "~", "DARTS_V2", "\\", "\x00", "\n"])
texts = st.one_of(st.text(max_size=80), st.lists(_FRAGMENTS, max_size=30).map("".join), _KNOWN_NAMES)


@FAST
@given(texts)
def test_any_text_is_a_genotype_or_a_genotype_error(text):
    _parse_or_error(genotypes.parse, text)
    _parse_or_error(genotypes.from_json, text)
    _parse_or_error(genotypes.from_python, text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=10)
    | st.sampled_from(PRIMITIVES),
    lambda children: st.lists(children, max_size=9) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


@FAST
@given(valid_genotypes, st.sampled_from(Genotype._fields), st.data())
def test_a_genotype_with_any_value_in_one_place_is_a_genotype_or_a_genotype_error(genotype, field, data):
    """Replace one field, one edge or one part of an edge with any JSON value."""
    d = genotypes.to_dict(genotype)
    value = data.draw(json_values)
    where = data.draw(st.sampled_from(["field", "edge", "op", "input"]) if field in ("normal", "reduce")
                      else st.just("field"))
    if where == "field":
        d[field] = value
    else:
        edge = data.draw(st.integers(0, 7))
        if where == "edge":
            d[field][edge] = value
        else:
            d[field][edge][0 if where == "op" else 1] = value
    text = json.dumps(d)
    result = _parse_or_error(genotypes.parse, text)
    if result is not None:  # accepted: then it is exactly the valid genotype it says
        assert genotypes.validate(result) == result
    literal = genotypes.to_python(genotype).replace(f"{field}=", f"{field}={value!r}, _old_{field}=", 1)
    _parse_or_error(genotypes.parse, literal)


_EXPRESSIONS = st.recursive(
    st.integers(-10, 10 ** 15).map(str) | st.sampled_from(["'sep_conv_3x3'", "'x'", "1.5", "True", "None", "x",
                                                           "b'1'", "1j", "...", "-0"]),
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
        st.lists(children, max_size=3).map(lambda items: "(" + ", ".join(items) + ",)"),
        st.lists(children, max_size=4).map(lambda items: "range(" + ", ".join(items) + ")"),
        st.tuples(st.sampled_from(["len", "os.system", "f", "range"]), children).map(lambda p: f"{p[0]}({p[1]})"),
        st.tuples(children, st.sampled_from(["*", "**", "+", "-"]), children).map(" ".join),
    ),
    max_leaves=12,
)


@FAST
@given(st.lists(st.tuples(st.sampled_from([*Genotype._fields, None, "extra"]), _EXPRESSIONS), max_size=5))
def test_any_genotype_call_is_a_genotype_or_a_genotype_error(arguments):
    """Keyword and positional arguments holding literals, calls and operators, with range() anywhere."""
    text = "Genotype(" + ", ".join(v if k is None else f"{k}={v}" for k, v in arguments) + ")"
    _parse_or_error(genotypes.from_python, text)


# ---------------------------------------------------------------------------------------------------------------
# options

_any_float = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 1e-300, 1e300])
_any_int = st.integers(-(2 ** 70), 2 ** 70) | st.integers(-3, 3)
SEARCH_NUMBERS = {
    "epochs": _any_int, "batch_size": _any_int, "init_channels": _any_int, "layers": _any_int,
    "warmup_epochs": _any_int, "lr_warmup_epochs": _any_int, "workers": _any_int, "limit": _any_int,
    "steps_per_epoch": _any_int, "k": _any_int, "cutout": _any_int, "image_size": _any_int, "seed": _any_int,
    "lr": _any_float, "lr_min": _any_float, "momentum": _any_float, "weight_decay": _any_float,
    "arch_lr": _any_float, "arch_weight_decay": _any_float, "grad_clip": _any_float,
    "train_portion": _any_float, "arch_portion": _any_float, "arch_grad_clip": _any_float,
}


def _config_or_error(build, *args, **values):
    try:
        return build(*args, **values)
    except NasbenchError as exc:
        assert str(exc)
        return None


@FAST
@given(st.sampled_from(["pc-darts", "darts"]), st.sampled_from(["quick", "paper", "imagenet"]),
       st.fixed_dictionaries({}, optional=SEARCH_NUMBERS))
def test_search_options_give_a_config_or_a_nasbench_error(method, preset, values):
    config = _config_or_error(resolve_config, method, preset, device="cpu", **values)
    if config is not None:
        assert isinstance(config, SearchConfig)
        assert config.epochs >= 1 and config.batch_size >= 1 and config.lr > 0 and 0 < config.train_portion < 1


TRAIN_NUMBERS = {
    "epochs": _any_int, "batch_size": _any_int, "init_channels": _any_int, "layers": _any_int, "seed": _any_int,
    "warmup_epochs": _any_int, "cutout": _any_int, "lr": _any_float, "lr_min": _any_float, "lr_gamma": _any_float,
    "momentum": _any_float, "weight_decay": _any_float, "grad_clip": _any_float, "auxiliary_weight": _any_float,
    "drop_path": _any_float, "label_smoothing": _any_float,
}


@FAST
@given(st.fixed_dictionaries({}, optional=TRAIN_NUMBERS))
def test_train_hyperparameters_give_hparams_or_a_nasbench_error(values):
    hparams = _config_or_error(TrainHParams, **values)
    if hparams is not None:
        assert hparams.epochs >= 1 and 0 < hparams.lr < math.inf and 0 <= hparams.drop_path < 1


def _flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


@SLOW
@given(st.integers(-4, 12), st.integers(-3, 4), st.one_of(st.none(), st.integers(-3, 20)))
def test_supernet_command_builds_or_fails_cleanly(channels, layers, k):
    args = ["supernet", "pc-darts", "-C", str(channels), "--layers", str(layers)]
    result = CliRunner().invoke(main, args + ([] if k is None else ["--k", str(k)]))
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if channels < 1 or layers < 1 or (k is not None and (k < 1 or channels % k)):
        assert result.exit_code == 2
        assert "error" in result.output
    if result.exit_code == 0:
        assert f"init_channels={channels}, layers={layers}," in _flat(result.output)


# one invalid value at a time: the search must stop before any data is read or any folder written
INVALID_SEARCH_OPTIONS = st.one_of(
    st.tuples(st.sampled_from(["--epochs", "--batch-size", "--init-channels", "--layers", "--steps-per-epoch"]),
              st.integers(-(10 ** 6), 0)),
    st.tuples(st.sampled_from(["--lr", "--arch-lr", "--grad-clip"]),
              st.floats(max_value=0) | st.just(math.nan)),
    st.tuples(st.sampled_from(["--momentum", "--weight-decay", "--lr-min", "--arch-weight-decay"]),
              st.floats(max_value=-1e-12, allow_infinity=True)),
    st.tuples(st.sampled_from(["--train-portion", "--arch-portion"]),
              st.floats(min_value=1) | st.floats(max_value=0) | st.just(math.nan)),
    st.tuples(st.sampled_from(["--warmup-epochs", "--lr-warmup-epochs", "--workers"]), st.integers(-(10 ** 6), -1)),
)


@SLOW
@given(INVALID_SEARCH_OPTIONS)
def test_invalid_search_options_stop_before_training(tmp_path, option_value):
    option, value = option_value
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["search", "--device", "cpu", "--out", str(out), option, str(value)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    named = (option, option.removeprefix("--"), option.removeprefix("--").replace("-", "_"))  # or the space's option
    assert any(name in _flat(result.output) for name in named)
    assert "search pc-darts" not in result.output  # stopped before the settings panel, hence before any data
    assert not out.exists()


@pytest.mark.parametrize("value", ["nan", "-inf"])
def test_non_finite_learning_rates_from_the_cli(tmp_path, value):
    result = CliRunner().invoke(main, ["search", "--device", "cpu", "--out", str(tmp_path / "r"), "--lr", value])
    assert result.exit_code == 2, result.output
    assert "--lr must be" in _flat(result.output)
