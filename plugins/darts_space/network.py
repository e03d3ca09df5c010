"""Derived networks: a searched genotype as a trainable network, registered as timm models.

The networks are the reference evaluation networks (DARTS ``model.py``, also used by PC-DARTS):
a stem, ``layers`` cells built from the genotype with reduction cells at ``layers // 3`` and
``2 * layers // 3``, global average pooling and a linear classifier. ``stem='cifar'`` is
NetworkCIFAR (conv3x3 + BN to 3C channels); ``stem='imagenet'`` is the mobile NetworkImageNet
(stem0/stem1, three stride-2 convs). Module names follow the reference, so its ``state_dict``
keys load unchanged (see :func:`checkpoint_filter_fn`).

Registered on ``import nasbench_pc``: ``pc_darts_cifar``, ``pc_darts_imagenet``,
``darts_v1_cifar``, ``darts_v2_cifar``, ``darts_v2_imagenet``, ``fairdarts_a_cifar`` (published genotypes
at the reference width and depth; the last a sparse one, built with :class:`SparseCell`) and ``darts_cifar`` /
``darts_imagenet``, which take ``genotype=`` (default: the PC-DARTS genotype searched on that dataset, since timm
creates every name bare), a sparse one included.

The networks pass timm's own model tests (``tests/timm_suite/run.py``), TorchScript and fx included:
hence no postponed annotations here (fx copies ``forward``'s annotations into generated code) and
cell loops that TorchScript can unroll.
"""

from typing import Any

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import create_classifier
from timm.models import generate_default_cfgs, register_model
from timm.models._features import feature_take_indices
from torch import nn
from torch.utils.checkpoint import checkpoint

from nasbench_pc import genotypes
from nasbench_pc.errors import ConfigError
from nasbench_pc.plugins.darts_space import genotype as darts_genotype
from nasbench_pc.plugins.darts_space.genotype import Genotype
from nasbench_pc.plugins.darts_space.ops import OPS, FactorizedReduce, Identity, ReLUConvBN
from nasbench_pc.supernet import CIFAR_MEAN, CIFAR_STD, TimmHead, build_model

__all__ = ["AuxiliaryHead", "Cell", "DartsNetwork", "SparseCell", "checkpoint_filter_fn", "reduction_cells"]

STEMS = ("cifar", "imagenet")


def reduction_cells(layers: int) -> tuple[int, int]:
    """Indices of the two reduction cells (the reference puts them at 1/3 and 2/3 of the depth)."""
    return layers // 3, 2 * layers // 3


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples with probability ``drop_prob`` and rescale the rest (reference utils.drop_path).

    The mask is drawn as the reference draws it, one Bernoulli per sample, so a fixed seed gives the
    reference's masks.
    """
    keep_prob = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device).bernoulli_(keep_prob)
    return x / keep_prob * mask


def _preprocess(c_prev_prev: int, c_prev: int, c: int, reduction_prev: bool) -> tuple[nn.Module, nn.Module]:
    """A cell's two input convolutions to ``c`` channels (the first halves the resolution after a reduction cell)."""
    first = FactorizedReduce(c_prev_prev, c) if reduction_prev else ReLUConvBN(c_prev_prev, c, 1, 1, 0)
    return first, ReLUConvBN(c_prev, c, 1, 1, 0)


class Cell(nn.Module):
    """One cell of a genotype: node ``i`` sums two ops applied to earlier states; the output
    concatenates the states listed in ``concat``."""

    def __init__(self, edges: list[tuple[str, int]], concat: list[int], c_prev_prev: int, c_prev: int, c: int,
                 reduction: bool, reduction_prev: bool):
        super().__init__()
        self.reduction = reduction
        self.preprocess0, self.preprocess1 = _preprocess(c_prev_prev, c_prev, c, reduction_prev)
        # ``_ops`` (not ``ops``) keeps the reference's state_dict keys.
        self._ops = nn.ModuleList(OPS[op](c, 2 if reduction and src < 2 else 1, True) for op, src in edges)
        self._indices = [src for _, src in edges]
        # Drop path skips identity edges only, as in the reference (a stride-2 skip is a conv).
        self._droppable = [not isinstance(op, Identity) for op in self._ops]
        self._concat = list(concat)
        self.multiplier = len(concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        # Edges 2i and 2i+1 feed node i + 2; one flat loop over the ModuleList, which TorchScript unrolls.
        for j, op in enumerate(self._ops):
            h = op(states[self._indices[j]])
            if self.training and drop_prob > 0.0 and self._droppable[j]:
                h = drop_path(h, drop_prob)
            if j % 2 == 0:
                states.append(h)
            else:
                states[-1] = states[-1] + h
        return torch.cat([states[i] for i in self._concat], dim=1)


class SparseCell(nn.Module):
    """One cell of a sparse genotype (FairDARTS' DCOCell, darts-family-facts.md 5.4): an op for every listed
    ``(op, node, input)``; node ``node`` sums the ops of its inputs that exist; the output concatenates the nodes that
    got any op, in the order they are first listed (``multiplier`` of them). An edge from a node that got no op is
    built (and counted in the parameters, as the reference does) but never run. Drop path applies to each node's
    sum. Modules are registered as the reference's ``_ops[node][input][k]``, so its state_dict keys load."""

    def __init__(self, edges: list[tuple[str, int, int]], c_prev_prev: int, c_prev: int, c: int, reduction: bool,
                 reduction_prev: bool):
        super().__init__()
        self.reduction = reduction
        self.preprocess0, self.preprocess1 = _preprocess(c_prev_prev, c_prev, c, reduction_prev)
        self._ops = nn.ModuleDict()
        for op, node, src in edges:
            inputs = self._ops[str(node)] if str(node) in self._ops else nn.ModuleDict()
            self._ops[str(node)] = inputs
            if str(src) not in inputs:
                inputs[str(src)] = nn.ModuleList()
            inputs[str(src)].append(OPS[op](c, 2 if reduction and src < 2 else 1, True))
        self.multiplier = len(self._ops)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states: dict[str, torch.Tensor] = {"0": self.preprocess0(s0), "1": self.preprocess1(s1)}
        outputs: list[torch.Tensor] = []
        for node_key, inputs in self._ops.items():  # nn.ModuleDicts: TorchScript unrolls these loops
            node: torch.Tensor | None = None
            for src_key, ops in inputs.items():
                if src_key in states:
                    x = states[src_key]
                    for op in ops:
                        y = op(x)
                        node = y if node is None else node + y
            assert node is not None  # the genotype's validation: every node reads a state that exists
            if self.training and drop_prob > 0.0:
                node = drop_path(node, drop_prob)
            states[node_key] = node
            outputs.append(node)
        return torch.cat(outputs, dim=1)


class AuxiliaryHead(nn.Module):
    """The auxiliary classifier after cell ``2 * layers // 3`` (reference AuxiliaryHeadCIFAR/ImageNet).

    It expects the reference map sizes: 8x8 on CIFAR (32x32 inputs) and 7x7 on ImageNet (224x224).
    The ImageNet head has no BatchNorm after its 2x2 conv, as in the reference (and the paper's runs).
    """

    def __init__(self, c: int, num_classes: int, stem: str):
        super().__init__()
        imagenet = stem == "imagenet"
        layers: list[nn.Module] = [
            nn.ReLU(inplace=True),
            nn.AvgPool2d(5, stride=2 if imagenet else 3, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
        ]
        if not imagenet:
            layers.append(nn.BatchNorm2d(768))
        layers.append(nn.ReLU(inplace=True))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def _imagenet_stems(in_chans: int, c: int) -> tuple[nn.Module, nn.Module]:
    """stem0 (two stride-2 convs to C) and stem1 (a third): the input reaches the cells at stride 8."""
    stem0 = nn.Sequential(
        nn.Conv2d(in_chans, c // 2, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c // 2),
        nn.ReLU(inplace=True),
        nn.Conv2d(c // 2, c, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c),
    )
    stem1 = nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False),
                          nn.BatchNorm2d(c))
    return stem0, stem1


class DartsNetwork(TimmHead, nn.Module):
    """A genotype's evaluation network (reference NetworkCIFAR / NetworkImageNet) with the timm interface.

    ``forward`` returns logits only; :meth:`forward_with_aux` also returns the auxiliary logits
    (``auxiliary=True``). ``drop_path_prob`` is the per-edge drop-path probability, initialised
    to ``drop_path_rate``; the reference trainer raises it linearly over the epochs.
    Features (``features_only=True``) are the last cell of each resolution stage, plus
    ``stem0`` (stride 4) on the ImageNet network.
    """

    def __init__(self, genotype: Genotype | str | dict, stem: str = "cifar", init_channels: int = 36,
                 layers: int = 20, num_classes: int = 10, in_chans: int = 3, auxiliary: bool = False,
                 drop_rate: float = 0.0, drop_path_rate: float = 0.0, global_pool: str = "avg",
                 stem_multiplier: int = 3):
        super().__init__()
        if stem not in STEMS:
            raise ConfigError(f"Unknown stem {stem!r}; use 'cifar' (32x32 inputs) or 'imagenet' (224x224).")
        for name, value in (("init_channels", init_channels), ("layers", layers), ("in_chans", in_chans)):
            if value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value}.")
        self.genotype = genotypes.parse(genotype, space="darts")
        self.stem_type = stem
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.drop_path_prob = drop_path_rate
        self.grad_checkpointing = False
        self.aux_index = 2 * layers // 3

        c = init_channels
        if stem == "cifar":
            c_prev_prev = c_prev = stem_multiplier * c
            self.stem = nn.Sequential(nn.Conv2d(in_chans, c_prev, 3, padding=1, bias=False), nn.BatchNorm2d(c_prev))
            reduction_prev, stride = False, 1
        else:
            self.stem0, self.stem1 = _imagenet_stems(in_chans, c)
            c_prev_prev = c_prev = c
            reduction_prev, stride = True, 8
        # No annotations on these: TorchScript warns about annotated empty lists in __init__.
        self.feature_info = [dict(num_chs=c, reduction=4, module="stem0")] if stem == "imagenet" else []
        self._taps = [-1] if stem == "imagenet" else []  # -1: the stem0 output

        sparse = darts_genotype.is_sparse(self.genotype)  # FairDARTS' cells: SparseCell
        reductions = reduction_cells(layers)
        stage_ends = sorted({r - 1 for r in reductions if r > 0} | {layers - 1})
        c_curr = c
        c_aux = 0
        self.cells = nn.ModuleList()
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                c_curr *= 2
                stride *= 2
            edges, concat = (
                (self.genotype.reduce, self.genotype.reduce_concat) if reduction
                else (self.genotype.normal, self.genotype.normal_concat)
            )
            if sparse:
                cell = SparseCell(edges, c_prev_prev, c_prev, c_curr, reduction, reduction_prev)
            else:
                cell = Cell(edges, concat, c_prev_prev, c_prev, c_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
            if i == self.aux_index:
                c_aux = c_prev
            if i in stage_ends:
                self.feature_info.append(dict(num_chs=c_prev, reduction=stride, module=f"cells.{i}"))
                self._taps.append(i)

        self.auxiliary_head = AuxiliaryHead(c_aux, num_classes, stem) if auxiliary else None
        self.num_features = self.head_hidden_size = c_prev
        self.global_pool, self.classifier = create_classifier(c_prev, num_classes, pool_type=global_pool)

    # --- timm model interface (the classifier side is TimmHead's) ----------------------------------

    def _stem_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # hasattr, not stem_type: TorchScript resolves it while compiling and drops the other branch.
        if hasattr(self, "stem"):
            s = self.stem(x)
            return s, s
        s0 = self.stem0(x)
        return s0, self.stem1(s0)

    def _forward_cells(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        s0, s1 = self._stem_forward(x)
        logits_aux: torch.Tensor | None = None
        for i, cell in enumerate(self.cells):
            if self.grad_checkpointing and not torch.jit.is_scripting():
                s0, s1 = s1, checkpoint(cell, s0, s1, self.drop_path_prob, use_reentrant=False)
            else:
                s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if with_aux and i == self.aux_index and self.auxiliary_head is not None:
                logits_aux = self.auxiliary_head(s1)
        return s1, logits_aux

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward_cells(x, with_aux=False)[0]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        if self.drop_rate > 0.0:
            x = nn.functional.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits and auxiliary-head logits (None without an auxiliary head), for training."""
        features, logits_aux = self._forward_cells(x, with_aux=True)
        return self.forward_head(features), logits_aux

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: int | list[int] | None = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Stage outputs listed in ``feature_info`` (timm's ``forward_intermediates`` contract)."""
        if output_fmt != "NCHW":
            raise ConfigError(f"DARTS networks produce NCHW features only, not {output_fmt!r}.")
        take_indices, max_index = feature_take_indices(len(self._taps), indices)
        wanted = {self._taps[i] for i in take_indices}
        last = self._taps[max_index] if stop_early else len(self.cells) - 1
        intermediates = []
        s0, s1 = self._stem_forward(x)
        if -1 in wanted:
            intermediates.append(s0)
        for i, cell in enumerate(self.cells[: last + 1]):
            if self.grad_checkpointing:
                s0, s1 = s1, checkpoint(cell, s0, s1, self.drop_path_prob, use_reentrant=False)
            else:
                s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i in wanted:
                intermediates.append(s1)
        if intermediates_only:
            return intermediates
        return s1, intermediates

    def prune_intermediate_layers(self, indices: int | list[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        """Drop the cells after the last wanted stage (and the head); returns the absolute indices."""
        take_indices, max_index = feature_take_indices(len(self._taps), indices)
        last = self._taps[max_index]
        self.cells = self.cells[: last + 1]
        if last == -1:  # the stem0 tap: forward_features must end there too
            self.stem1 = nn.Identity()
        if self.aux_index > last:
            self.auxiliary_head = None
        if max_index < len(self._taps) - 1 or prune_head:
            self.num_features = self.head_hidden_size = self.feature_info[max_index]["num_chs"]
            self.reset_classifier(0, "")
        return take_indices


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: DartsNetwork) -> dict[str, torch.Tensor]:
    """Accept reference checkpoints too: unwrap ``{'state_dict': ...}``, strip DataParallel's
    ``module.`` prefix, and drop auxiliary-head weights when the model has no auxiliary head."""
    state_dict = state_dict.get("state_dict", state_dict)
    out = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        if key.startswith("auxiliary_head.") and model.auxiliary_head is None:
            continue
        out[key] = value
    return out


def num_stages(stem: str, layers: int) -> int:
    """How many feature maps ``features_only=True`` returns."""
    ends = {r - 1 for r in reduction_cells(layers) if r > 0} | {layers - 1}
    return len(ends) + (stem == "imagenet")


def _create_darts(variant: str, pretrained: bool = False, **kwargs: Any) -> DartsNetwork:
    """Build ``variant`` through timm's builder (:func:`~nasbench_pc.supernet.timm_head.build_model`)."""
    stem = "imagenet" if variant.endswith("imagenet") else "cifar"
    if kwargs.setdefault("stem", stem) != stem:
        raise ConfigError(
            f"{variant} is the {stem} network; for stem={kwargs['stem']!r} use darts_{kwargs['stem']} instead."
        )
    kwargs["genotype"] = genotypes.parse(kwargs["genotype"], space="darts")
    stages = num_stages(stem, kwargs.get("layers", 20))
    return build_model(DartsNetwork, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn,
                       feature_cfg=dict(feature_cls="getter", out_indices=tuple(range(stages))), **kwargs)


def _create_published(variant: str, known: str, pretrained: bool, /, **kwargs: Any) -> DartsNetwork:
    if "genotype" in kwargs:
        generic = "darts_imagenet" if variant.endswith("imagenet") else "darts_cifar"
        raise ConfigError(
            f"{variant} is the published {known} genotype and takes no genotype= argument; "
            f"use timm.create_model({generic!r}, genotype=...) for your own genotype."
        )
    return _create_darts(variant, pretrained, genotype=known, **kwargs)


def _cfg_cifar(**kwargs: Any) -> dict[str, Any]:
    return dict(
        url="", num_classes=10, input_size=(3, 32, 32), pool_size=(8, 8), crop_pct=1.0, interpolation="bilinear",
        mean=CIFAR_MEAN, std=CIFAR_STD, first_conv="stem.0", classifier="classifier", license="mit", **kwargs,
    )


def _cfg_imagenet(**kwargs: Any) -> dict[str, Any]:
    return dict(
        url="", num_classes=1000, input_size=(3, 224, 224), pool_size=(7, 7), crop_pct=0.875,
        interpolation="bilinear", mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, first_conv="stem0.0",
        classifier="classifier", license="mit", **kwargs,
    )


default_cfgs = generate_default_cfgs({
    "pc_darts_cifar": _cfg_cifar(),
    "darts_v1_cifar": _cfg_cifar(),
    "darts_v2_cifar": _cfg_cifar(),
    "darts_cifar": _cfg_cifar(),
    "fairdarts_a_cifar": _cfg_cifar(),
    "pc_darts_imagenet": _cfg_imagenet(),
    "darts_v2_imagenet": _cfg_imagenet(),
    "darts_imagenet": _cfg_imagenet(),
})


@register_model
def pc_darts_cifar(pretrained: bool = False, **kwargs: Any) -> DartsNetwork:
    """PC-DARTS CIFAR-10 genotype, C=36, 20 cells (3.6M parameters)."""
    return _create_published("pc_darts_cifar", "PC_DARTS_cifar", pretrained, **kwargs)


@register_model
def darts_v1_cifar(pretrained: bool = False, **kwargs: Any) -> DartsNetwork:
    """DARTS first-order CIFAR-10 genotype, C=36, 20 cells."""
    return _create_published("darts_v1_cifar", "DARTS_V1", pretrained, **kwargs)


@register_model
def darts_v2_cifar(pretrained: bool = False, **kwargs: Any) -> DartsNetwork:
    """DARTS second-order CIFAR-10 genotype, C=36, 20 cells (3.3M parameters)."""
    return _create_published("darts_v2_cifar", "DARTS_V2", pretrained, **kwargs)


@register_model
def fairdarts_a_cifar(pretrained: bool = False, **kwargs: Any) -> DartsNetwork:
    """FairDARTS_a, a sparse genotype (FairDARTS' DCOCell: nodes 2, 4, 5 of its normal cell), C=36, 20 cells
    (2.4M parameters; 2.8M with the auxiliary head, as its README counts)."""
    return _create_published("fairdarts_a_cifar", "FairDARTS_a", pretrained, **kwargs)


@register_model
def pc_darts_imagenet(pretrained: bool = False, **kwargs: Any) -> DartsNetwork:
    """PC-DARTS genotype searched on ImageNet, mobile setting C=48, 14 cells (5.3M parameters)."""
    kwargs.setdefault("init_channels", 48)
    kwargs.setdefault("layers", 14)
    return _create_published("pc_darts_imagenet", "PC_DARTS_image", pretrained, **kwargs)


@register_model
def darts_v2_imagenet(pretrained: bool = False, **kwargs: Any) -> DartsNetwork:
    """DARTS second-order genotype on ImageNet, mobile setting C=48, 14 cells (4.7M parameters)."""
    kwargs.setdefault("init_channels", 48)
    kwargs.setdefault("layers", 14)
    return _create_published("darts_v2_imagenet", "DARTS_V2", pretrained, **kwargs)


@register_model
def darts_cifar(pretrained: bool = False, **kwargs: Any) -> DartsNetwork:
    """Any genotype (``genotype=``, default PC_DARTS_cifar) as a CIFAR network; defaults C=36, 20 cells."""
    kwargs.setdefault("genotype", "PC_DARTS_cifar")
    return _create_darts("darts_cifar", pretrained, **kwargs)


@register_model
def darts_imagenet(pretrained: bool = False, **kwargs: Any) -> DartsNetwork:
    """Any genotype (``genotype=``, default PC_DARTS_image) as an ImageNet mobile network; defaults C=48, 14 cells."""
    kwargs.setdefault("genotype", "PC_DARTS_image")
    kwargs.setdefault("init_channels", 48)
    kwargs.setdefault("layers", 14)
    return _create_darts("darts_imagenet", pretrained, **kwargs)
