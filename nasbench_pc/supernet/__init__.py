"""The supernet kit: what a search-space author builds a supernet from.

- :mod:`~nasbench_pc.supernet.mixed_op`: :class:`MixedOp` (one edge's weighted candidate ops, and a method's
  :class:`AuxBranch` on it: :func:`attach_aux_branches`) with the op kinds it
  shortcuts (:class:`Zero`, :class:`ReLUOp`, :class:`Identity`), and the mixins :class:`WeightParameters`
  (the weight side of the Supernet protocol) and :class:`StackedLayout` (a supernet's own memory layout);
- :mod:`~nasbench_pc.supernet.relaxation`: :class:`Relaxed`, a supernet's op weights from its alphas as the method
  relaxes them (softmax, a Dirichlet or Gumbel sample, SDARTS' pinned perturbed probabilities) and :class:`Sampled`, a
  sampled method's draw (GDAS: one op per edge);
- :mod:`~nasbench_pc.supernet.widen`: a module widened to more channels between search stages (:func:`widen_into`);
- :mod:`~nasbench_pc.supernet.recompute`: cells recomputed in backward (:func:`run_cell`, :func:`recomputed_cells`);
- :mod:`~nasbench_pc.supernet.timm_head`: what a derived network needs to be a timm model (:class:`TimmHead`,
  :func:`build_model`).

Internal machinery (not for import outside nasbench-pc and its built-in plugins): ``_stacking``, the fast path that
runs edges reading the same input as one wider layer, and ``_layout_check``, the per-machine check that decides
whether that path may run channels-last. :func:`prepare_layout` and :func:`run_edges` are their public face.
"""

from nasbench_pc.supernet._stacking import plain_path, run_edges
from nasbench_pc.supernet._stacking import prepare as prepare_layout
from nasbench_pc.supernet.mixed_op import (
    AuxBranch,
    Identity,
    MixedOp,
    ReLUOp,
    Sampled,
    StackedLayout,
    WeightParameters,
    Zero,
    attach_aux_branches,
)
from nasbench_pc.supernet.recompute import recomputed_cells, run_cell
from nasbench_pc.supernet.relaxation import Relaxed
from nasbench_pc.supernet.timm_head import CIFAR_MEAN, CIFAR_STD, TimmHead, build_model
from nasbench_pc.supernet.widen import Widened, widen_into, widen_like

__all__ = ["AuxBranch", "CIFAR_MEAN", "CIFAR_STD", "Identity", "MixedOp", "ReLUOp", "Relaxed", "Sampled",
           "StackedLayout", "TimmHead", "WeightParameters", "Widened", "Zero", "attach_aux_branches", "build_model",
           "plain_path", "prepare_layout", "recomputed_cells", "run_cell", "run_edges", "widen_into", "widen_like"]
