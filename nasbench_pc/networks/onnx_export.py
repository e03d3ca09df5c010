"""ONNX export of a derived network, checked against onnxruntime on CPU as soon as it is written.

The file holds the network in eval mode, as ``timm.create_model`` builds it: logits only (the auxiliary head is a
training device timm builds without, and drop path runs only in training), one input ``image`` and one output
``logits``, both with a dynamic batch axis; the image size is fixed at the one it was exported at. The check runs
the same random input through PyTorch and onnxruntime at batch 1 and at batch 7 and refuses an export whose logits
differ by :data:`TOLERANCE` or more.

The exporter is torch's TorchScript-based one (``torch.onnx.export(..., dynamo=False)``): the derived networks'
forward is tensor code without data-dependent control flow, which tracing exports as is, and it needs the ``onnx``
package only. The torch.export-based exporter (``dynamo=True``, torch's default) would also need onnxscript,
one more dependency, for the same graph. torch marks ``dynamo=False`` deprecated; should a release drop it, the
export fails with the exporter's own message (:func:`export_onnx`), after the timm folder is written.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from nasbench_pc.errors import ConfigError

ONNX_NAME = "model.onnx"
#: An opset that runtimes a few years old read too; the networks (convolutions, BatchNorm, pooling, concatenation,
#: a linear classifier) need nothing newer.
OPSET = 17
#: The largest max abs logit difference between PyTorch and onnxruntime an export may have (issue 24).
TOLERANCE = 1e-4
#: The batch sizes the check runs: 1, and one that is not the size the graph was traced at.
BATCHES = (1, 7)
INPUT_NAME = "image"
OUTPUT_NAME = "logits"
BATCH_AXIS = "batch"
_CHECK_SEED = 0  # the check's random input is the same on every export


def require_packages() -> tuple[ModuleType, ModuleType]:
    """``onnx`` (torch's exporter writes through it) and ``onnxruntime`` (the check), or a ConfigError naming the
    extra that installs them."""
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise ConfigError(
            f"--onnx writes model.onnx with torch's ONNX exporter, which needs the onnx package, and checks it with "
            f"onnxruntime; {exc.name or 'one of them'} is not installed. Install the extra: pip install "
            f'"nasbench-pc[onnx]".'
        ) from None
    return onnx, onnxruntime


@dataclass(frozen=True)
class OnnxCheck:
    """What the check after writing measured: the file's ONNX opset, the max abs logit difference between
    PyTorch and onnxruntime at each batch size of :data:`BATCHES`, and the onnxruntime version that ran it."""

    opset: int
    max_abs_diff: dict[int, float]
    onnxruntime: str

    def describe(self) -> str:
        """``max abs logit difference 7.5e-09 at batch 1, 1.5e-08 at batch 7 (onnxruntime 1.32.0 on CPU, opset 17)``."""
        diffs = ", ".join(f"{diff:.2g} at batch {batch}" for batch, diff in self.max_abs_diff.items())
        return f"max abs logit difference {diffs} (onnxruntime {self.onnxruntime} on CPU, opset {self.opset})"

    def as_dict(self) -> dict[str, Any]:
        """The record config.json keeps (JSON object keys are strings: the batch sizes become ``"1"``, ``"7"``)."""
        return {"file": ONNX_NAME, "opset": self.opset, "onnxruntime": self.onnxruntime, "tolerance": TOLERANCE,
                "max_abs_diff": {str(batch): diff for batch, diff in self.max_abs_diff.items()}}


def export_onnx(model: nn.Module, path: Path, input_size: tuple[int, int, int], name: str) -> None:
    """Write ``model``, put in eval mode, to ``path`` with a dynamic batch axis.

    Args:
        model: a derived network on the CPU; its ``forward`` returns the logits.
        path: the ``.onnx`` file to write.
        input_size: (channels, height, width) of one image; the graph fixes it.
        name: how an error names the network (``darts_cifar (cifar network)``).
    """
    model.eval()
    example = torch.zeros(1, *input_size)
    try:
        with warnings.catch_warnings():
            # dynamo=False is deprecated in favour of the exporter that needs onnxscript (see the module docstring)
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=OPSET,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: BATCH_AXIS}, OUTPUT_NAME: {0: BATCH_AXIS}})
    except Exception as exc:  # the exporter raises many types: an op without an ONNX form, an unsupported opset
        raise ConfigError(
            f"The {name} cannot be exported to ONNX: torch's exporter (TorchScript-based, opset {OPSET}) stopped "
            f"with {_discard(path, exc)} The timm folder is written and loads as before; only {ONNX_NAME} "
            f"is missing. Use the folder as it is, or report this message together with the genotype."
        ) from None


def _discard(path: Path, exc: Exception) -> str:
    """Remove the half-made or rejected ``path``; ``exc`` on one line as the refusals quote it."""
    path.unlink(missing_ok=True)
    return f"{type(exc).__name__}: {' '.join(str(exc).split()) or 'no message'}"


def check_onnx(model: nn.Module, path: Path, input_size: tuple[int, int, int], name: str) -> OnnxCheck:
    """Run one random input at each batch size of :data:`BATCHES` through ``model`` (eval mode) and through
    ``path`` on onnxruntime's CPU provider, and measure the max abs logit difference. A file whose logits differ by
    :data:`TOLERANCE` or more (or whose output has another shape) is removed and refused with a ConfigError."""
    onnx, onnxruntime = require_packages()
    generator = torch.Generator().manual_seed(_CHECK_SEED)
    inputs = {batch: torch.randn(batch, *input_size, generator=generator) for batch in BATCHES}
    model.eval()
    with torch.no_grad():
        expected = {batch: model(x) for batch, x in inputs.items()}
    diffs = {}
    where = "when loaded"
    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
        opset = next(entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx"))
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for batch, x in inputs.items():
            where = f"at batch {batch}"
            got = torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0])
            want = expected[batch]
            diffs[batch] = (got - want).abs().max().item() if got.shape == want.shape else math.inf
    except Exception as exc:  # onnx and onnxruntime raise their own types for a file they reject
        raise ConfigError(
            f"The ONNX export of the {name} was written but does not run on onnxruntime {onnxruntime.__version__} "
            f"(CPU) {where}: {_discard(path, exc)} {ONNX_NAME} was removed so that it is not "
            f"deployed by mistake; the timm folder is written and loads as before. Try another onnxruntime version "
            f"(pip install -U onnxruntime), or use the timm folder."
        ) from None
    check = OnnxCheck(opset=opset, max_abs_diff=diffs, onnxruntime=onnxruntime.__version__)
    if not max(diffs.values()) < TOLERANCE:  # NaN fails too
        path.unlink()
        raise ConfigError(
            f"The ONNX export of the {name} does not reproduce its PyTorch logits: {check.describe()}, where less "
            f"than {TOLERANCE:g} is required. {ONNX_NAME} was removed so that it is not deployed by mistake; the timm "
            f"folder is written and loads as before. An op of this network is computed differently by this "
            f"onnxruntime: try another onnxruntime version (pip install -U onnxruntime), or use the timm folder."
        )
    return check
