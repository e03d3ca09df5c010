"""DARTS genotypes: the discrete cells a search of the DARTS space ends with.

``Genotype`` has the fields of the reference namedtuple (``normal``, ``normal_concat``,
``reduce``, ``reduce_concat``); each cell is a list of ``(op, input)`` pairs, two per
intermediate node, where input 0 and 1 are the cell inputs and input ``k >= 2`` is node
``k - 2`` of the same cell. ``KNOWN`` holds the published genotypes under the names of the
reference genotypes.py files (DARTS, PC-DARTS, GDAS, DrNAS, SDARTS, DARTS-, FairDARTS).

A *sparse* genotype (FairDARTS' ``threshold_sparse`` derive, darts-family-facts.md 5.4) is the same ``Genotype``
whose cells list ``(op, node, input)`` triples instead: node ``node`` (2..5) sums the listed ops of its inputs, so
a node has 0, 1 or 2 inputs, and the cell outputs the nodes that have any (FairDARTS' DCOCell; its ``*_concat``
fields are kept for the text format and not read). :func:`is_sparse` tells the two kinds apart.
"""

from __future__ import annotations

import ast
from typing import Any, NamedTuple

from nasbench_pc.errors import GenotypeError, short_repr

#: Candidate operations of the DARTS cell space, in the reference order.
PRIMITIVES: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)

Edge = tuple[str, int]
SparseEdge = tuple[str, int, int]


class Genotype(NamedTuple):
    normal: list[Edge]
    normal_concat: list[int]
    reduce: list[Edge]
    reduce_concat: list[int]


def is_sparse(genotype: Genotype) -> bool:
    """Whether the cells list ``(op, node, input)`` triples (FairDARTS' sparse cells) rather than 2 pairs a node."""
    return any(isinstance(edge, (list, tuple)) and len(edge) == 3 for cell in (genotype.normal, genotype.reduce)
               if isinstance(cell, (list, tuple)) for edge in cell)


def _cell_text(cell: list[Edge] | list[SparseEdge]) -> str:
    return "[" + ", ".join("(" + ", ".join([repr(edge[0]), *map(str, edge[1:])]) + ")" for edge in cell) + "]"


def to_dict(genotype: Genotype) -> dict[str, Any]:
    """Plain JSON-ready dict: edges as ``[op, input]`` lists (``[op, node, input]`` in a sparse genotype)."""
    return {
        "normal": [[edge[0], *map(int, edge[1:])] for edge in genotype.normal],
        "normal_concat": [int(i) for i in genotype.normal_concat],
        "reduce": [[edge[0], *map(int, edge[1:])] for edge in genotype.reduce],
        "reduce_concat": [int(i) for i in genotype.reduce_concat],
    }


def to_python(genotype: Genotype) -> str:
    """The reference ``Genotype(...)`` literal, ready to paste into the reference genotypes.py."""
    return (
        f"Genotype(normal={_cell_text(genotype.normal)}, normal_concat={list(genotype.normal_concat)}, "
        f"reduce={_cell_text(genotype.reduce)}, reduce_concat={list(genotype.reduce_concat)})"
    )


def from_dict(data: Any, *, steps: int = 4) -> Genotype:
    """Build and validate a genotype from a dict such as the one :func:`to_dict` writes."""
    if not isinstance(data, dict):
        raise GenotypeError(
            f"A genotype must be an object with keys normal, normal_concat, reduce, reduce_concat; "
            f"got {type(data).__name__}. Write it as produced by `nasbench_pc.genotypes.to_json`."
        )
    missing = [k for k in Genotype._fields if k not in data]
    if missing:
        raise GenotypeError(
            f"The genotype lacks the field(s) {', '.join(missing)}. A genotype needs normal, "
            f"normal_concat, reduce and reduce_concat, as written by `nasbench_pc.genotypes.to_json`."
        )
    extra = sorted(map(short_repr, set(data) - set(Genotype._fields)))
    if extra:
        raise GenotypeError(
            f"The genotype has unexpected field(s) {', '.join(extra)}. Only normal, normal_concat, "
            f"reduce and reduce_concat are allowed; remove the others."
        )
    return validate(Genotype(**{k: data[k] for k in Genotype._fields}), steps=steps)


_MAX_RANGE = 1000  # far more than any concat list; keeps range(10**12) from allocating


def _literal(node: ast.AST) -> Any:
    # ``range(a, b)`` is how the reference writes concat lists; everything else must be a literal.
    if isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id == "range"):
            raise ValueError(f"only range(...) may be called, not {ast.unparse(node.func)[:40]}(...)")
        args = [_literal(a) for a in node.args]
        if node.keywords or not 1 <= len(args) <= 3 or any(type(a) is not int for a in args):
            raise ValueError("range() takes one to three integer arguments, as in range(2, 6)")
        if args[-1] == 0 and len(args) == 3:
            raise ValueError("range() step must not be zero")
        span = range(*args)
        if len(span) > _MAX_RANGE:
            raise ValueError(f"range() of {len(span)} numbers is far too long for a concat list")
        return list(span)
    try:
        return ast.literal_eval(node)
    except ValueError as exc:
        if str(exc).startswith("malformed node"):  # literal_eval's message names an AST object, not the text
            raise ValueError(f"{short_repr(ast.unparse(node), 40)} is not a literal") from None
        raise


def from_python(text: str, *, steps: int = 4) -> Genotype:
    """Parse a reference-style ``Genotype(normal=[...], ...)`` literal (as printed in search logs)."""
    try:
        call = ast.parse(text.strip(), mode="eval").body
        if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Genotype"):
            raise ValueError("not a Genotype(...) call")
        if len(call.args) > len(Genotype._fields):
            raise ValueError(f"{len(call.args)} positional arguments, but a Genotype has {len(Genotype._fields)} "
                             f"fields")
        fields = dict(zip(Genotype._fields, [_literal(a) for a in call.args]))
        for kw in call.keywords:
            if kw.arg is None:
                raise ValueError("** unpacking is not allowed")
            if kw.arg in fields:
                raise ValueError(f"{kw.arg} is given twice")
            fields[kw.arg] = _literal(kw.value)
    except (RecursionError, MemoryError):  # the parser's own limits on nesting
        raise GenotypeError(
            f"Could not read {short_repr(text)} as a Genotype(...) literal: it is nested far too deeply. Use the form "
            f"printed by the reference code, e.g. Genotype(normal=[('sep_conv_3x3', 0), ...], ...)."
        ) from None
    except (SyntaxError, ValueError, TypeError) as exc:
        raise GenotypeError(
            f"Could not read {short_repr(text)} as a Genotype(...) literal ({exc}). Use the form "
            f"printed by the reference code, e.g. Genotype(normal=[('sep_conv_3x3', 0), ...], "
            f"normal_concat=range(2, 6), ...)."
        ) from None
    return from_dict(fields, steps=steps)


def _sparse_cell(edges: Any, cell: str, steps: int) -> list[SparseEdge]:
    """A sparse cell's (op, node, input) triples, checked: every input is a cell input or a node listed before, and
    every node reads at least one state that exists (FairDARTS' DCOCell skips an edge from a node that got no op)."""
    if not isinstance(edges, (list, tuple)) or not edges:
        raise GenotypeError(f"The sparse {cell} cell lists no edges; it needs at least one (op, node, input) triple "
                            f"such as ('sep_conv_3x3', 2, 0).")
    clean: list[SparseEdge] = []
    for pos, edge in enumerate(edges):
        if not (isinstance(edge, (list, tuple)) and len(edge) == 3):
            raise GenotypeError(f"Edge {pos} of the sparse {cell} cell is {short_repr(edge)}; a sparse cell lists "
                                f"(op, node, input) triples such as ('sep_conv_3x3', 2, 0), every one of them.")
        op, node, src = edge
        if op not in PRIMITIVES:
            raise GenotypeError(f"Edge {pos} of the {cell} cell uses the unknown op {short_repr(op)}. Known ops: "
                                f"{', '.join(PRIMITIVES)}.")
        if isinstance(node, bool) or not isinstance(node, int) or not 2 <= node < steps + 2:
            raise GenotypeError(f"Edge {pos} of the sparse {cell} cell feeds node {short_repr(node)}; nodes are "
                                f"2..{steps + 1}.")
        if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src < node:
            raise GenotypeError(f"Edge {pos} of the sparse {cell} cell feeds node {node} from input "
                                f"{short_repr(src)}, but that node can only read inputs 0..{node - 1}.")
        clean.append((op, node, src))
    present = {0, 1}
    for node in dict.fromkeys(node for _, node, _ in clean):  # in the order the nodes are first listed
        if not any(src in present for _, to, src in clean if to == node):
            raise GenotypeError(f"Node {node} of the sparse {cell} cell reads only nodes that get no op (or are "
                                f"listed after it), so it would have no input. Give it an edge from an input or an "
                                f"earlier node.")
        present.add(node)
    return clean


def _pair_cell(edges: Any, cell: str, steps: int) -> list[Edge]:
    """A cell's (op, input) pairs, two per node, checked."""
    if not isinstance(edges, (list, tuple)) or len(edges) != 2 * steps:
        count = len(edges) if isinstance(edges, (list, tuple)) else "no"
        raise GenotypeError(
            f"The {cell} cell has {count} edges but a cell with {steps} intermediate nodes needs "
            f"exactly {2 * steps} (two inputs per node, listed node by node)."
        )
    clean: list[Edge] = []
    for pos, edge in enumerate(edges):
        if not (isinstance(edge, (list, tuple)) and len(edge) == 2):
            raise GenotypeError(
                f"Edge {pos} of the {cell} cell is {short_repr(edge)}; each edge must be an (op, input) pair "
                f"such as ('sep_conv_3x3', 0)."
            )
        op, src = edge
        if op not in PRIMITIVES:
            raise GenotypeError(
                f"Edge {pos} of the {cell} cell uses the unknown op {short_repr(op)}. Known ops: "
                f"{', '.join(PRIMITIVES)}."
            )
        node = pos // 2
        if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src < node + 2:
            raise GenotypeError(
                f"Edge {pos} of the {cell} cell feeds node {node + 2} from input {short_repr(src)}, but that node "
                f"can only read inputs 0..{node + 1} (the two cell inputs and the nodes before it)."
            )
        clean.append((op, src))
    return clean


def validate(genotype: Genotype, *, steps: int = 4) -> Genotype:
    """Check every edge and concat index; return the genotype with plain list/tuple/int fields."""
    cells: dict[str, Any] = {}
    sparse = is_sparse(genotype)
    for cell in ("normal", "reduce"):
        edges = genotype._asdict()[cell]
        cells[cell] = _sparse_cell(edges, cell, steps) if sparse else _pair_cell(edges, cell, steps)
        concat = genotype._asdict()[f"{cell}_concat"]
        # the length check comes first so that range(10**12) is never listed
        sequence = isinstance(concat, (list, tuple, range)) and 0 < len(concat) <= steps + 2
        concat_list = list(concat) if sequence else []
        if not concat_list or any(
            isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < steps + 2 for i in concat_list
        ):
            raise GenotypeError(
                f"{cell}_concat is {short_repr(concat)}; it must list 1 to {steps + 2} state indices in "
                f"0..{steps + 1}, usually [2, 3, 4, 5]."
            )
        cells[f"{cell}_concat"] = concat_list
    return Genotype(**cells)


def _known(normal: list[Edge] | list[SparseEdge], reduce: list[Edge] | list[SparseEdge]) -> Genotype:
    return Genotype(normal=normal, normal_concat=[2, 3, 4, 5], reduce=reduce, reduce_concat=[2, 3, 4, 5])


#: The published genotypes, under the names of the reference genotypes.py files (SDARTS and DARTS- renamed
#: after their method; FairDARTS_a..g are sparse; GDAS_F1 needs a hand-made reduction cell, so it is not here).
KNOWN: dict[str, Genotype] = {
    "DARTS_V1": _known(
        [("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
         ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
        [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
         ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)],
    ),
    "DARTS_V2": _known(
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
         ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
        [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
         ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    ),
    "PC_DARTS_cifar": _known(
        [("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 0), ("dil_conv_3x3", 1),
         ("sep_conv_5x5", 0), ("sep_conv_3x3", 1), ("avg_pool_3x3", 0), ("dil_conv_3x3", 1)],
        [("sep_conv_5x5", 1), ("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_5x5", 2),
         ("sep_conv_3x3", 0), ("sep_conv_3x3", 3), ("sep_conv_3x3", 1), ("sep_conv_3x3", 2)],
    ),
    "PC_DARTS_image": _known(
        [("skip_connect", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 0), ("skip_connect", 1),
         ("sep_conv_3x3", 1), ("sep_conv_3x3", 3), ("sep_conv_3x3", 1), ("dil_conv_5x5", 4)],
        [("sep_conv_3x3", 0), ("skip_connect", 1), ("dil_conv_5x5", 2), ("max_pool_3x3", 1),
         ("sep_conv_3x3", 2), ("sep_conv_3x3", 1), ("sep_conv_5x5", 0), ("sep_conv_3x3", 3)],
    ),
    # GDAS (D-X-Y/GDAS lib/nas/genotypes.py): the author's copy; FairDARTS' copy differs in the last reduce edge.
    "GDAS_V1": _known(
        [("skip_connect", 0), ("skip_connect", 1), ("skip_connect", 0), ("sep_conv_5x5", 2),
         ("sep_conv_3x3", 3), ("skip_connect", 0), ("sep_conv_5x5", 4), ("sep_conv_3x3", 3)],
        [("sep_conv_5x5", 0), ("sep_conv_3x3", 1), ("sep_conv_5x5", 2), ("sep_conv_5x5", 1),
         ("dil_conv_5x5", 2), ("sep_conv_3x3", 1), ("sep_conv_5x5", 0), ("sep_conv_5x5", 1)],
    ),
    # DrNAS (xiangning-chen/DrNAS DARTS-space/genotypes.py), searched on CIFAR-10 and on ImageNet.
    "DrNAS_cifar10": _known(
        [("sep_conv_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_3x3", 1), ("sep_conv_3x3", 2),
         ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 2), ("dil_conv_5x5", 3)],
        [("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("dil_conv_5x5", 2), ("sep_conv_5x5", 1),
         ("sep_conv_5x5", 1), ("dil_conv_5x5", 3), ("skip_connect", 4), ("sep_conv_5x5", 1)],
    ),
    "DrNAS_imagenet": _known(
        [("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
         ("sep_conv_3x3", 0), ("dil_conv_3x3", 3), ("skip_connect", 0), ("sep_conv_3x3", 1)],
        [("max_pool_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2),
         ("sep_conv_3x3", 0), ("sep_conv_3x3", 2), ("sep_conv_3x3", 3), ("sep_conv_3x3", 1)],
    ),
    # SDARTS (xiangning-chen/SmoothDARTS sota/cnn/genotypes.py c10_s5_random, c10_s5_pgd), CIFAR-10.
    "SDARTS_RS": _known(
        [("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 1), ("skip_connect", 0),
         ("sep_conv_3x3", 3), ("skip_connect", 1), ("sep_conv_3x3", 1), ("dil_conv_3x3", 2)],
        [("max_pool_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
         ("dil_conv_5x5", 3), ("max_pool_3x3", 0), ("sep_conv_3x3", 2), ("sep_conv_5x5", 3)],
    ),
    "SDARTS_ADV": _known(
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 1), ("skip_connect", 0),
         ("sep_conv_5x5", 0), ("dil_conv_3x3", 3), ("dil_conv_3x3", 4), ("skip_connect", 0)],
        [("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
         ("skip_connect", 3), ("skip_connect", 2), ("skip_connect", 2), ("sep_conv_5x5", 4)],
    ),
    # DARTS- (Meituan-AutoML/DARTS- src/eval/genotypes.py cifar10_s0_0..4), CIFAR-10; _0 is their best.
    "DARTS_MINUS_C10_S0_0": _known(
        [("sep_conv_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_3x3", 1), ("dil_conv_3x3", 2),
         ("skip_connect", 1), ("sep_conv_3x3", 0), ("skip_connect", 1), ("sep_conv_3x3", 0)],
        [("sep_conv_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
         ("skip_connect", 2), ("skip_connect", 3), ("skip_connect", 2), ("skip_connect", 3)],
    ),
    "DARTS_MINUS_C10_S0_1": _known(
        [("sep_conv_3x3", 0), ("dil_conv_5x5", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
         ("dil_conv_5x5", 1), ("sep_conv_3x3", 0), ("skip_connect", 1), ("sep_conv_3x3", 0)],
        [("sep_conv_3x3", 1), ("max_pool_3x3", 0), ("skip_connect", 2), ("max_pool_3x3", 1),
         ("skip_connect", 2), ("skip_connect", 3), ("skip_connect", 2), ("skip_connect", 3)],
    ),
    "DARTS_MINUS_C10_S0_2": _known(
        [("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
         ("skip_connect", 1), ("sep_conv_5x5", 0), ("sep_conv_3x3", 0), ("skip_connect", 1)],
        [("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2), ("max_pool_3x3", 1),
         ("skip_connect", 2), ("skip_connect", 3), ("skip_connect", 2), ("skip_connect", 3)],
    ),
    "DARTS_MINUS_C10_S0_3": _known(
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
         ("sep_conv_3x3", 0), ("dil_conv_5x5", 1), ("skip_connect", 1), ("skip_connect", 0)],
        [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("sep_conv_5x5", 0),
         ("skip_connect", 3), ("skip_connect", 2), ("skip_connect", 3), ("skip_connect", 2)],
    ),
    "DARTS_MINUS_C10_S0_4": _known(
        [("sep_conv_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0),
         ("skip_connect", 1), ("dil_conv_3x3", 0), ("skip_connect", 1), ("sep_conv_5x5", 0)],
        [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("max_pool_3x3", 0), ("skip_connect", 2),
         ("skip_connect", 2), ("skip_connect", 3), ("skip_connect", 2), ("skip_connect", 3)],
    ),
    # FairDARTS (xiaomi-automl/FairDARTS fairdarts/genotypes.py @270cfc9): sparse cells, (op, node, input) triples.
    # FairDARTS_g's last reduce edge is dil_conv_3x3 in that file (darts-family-facts.md has dil_conv_5x5).
    "FairDARTS_a": _known(
        [("sep_conv_3x3", 2, 0), ("sep_conv_5x5", 2, 1), ("max_pool_3x3", 4, 0), ("sep_conv_3x3", 5, 0)],
        [("max_pool_3x3", 2, 0), ("avg_pool_3x3", 2, 1), ("avg_pool_3x3", 3, 0), ("dil_conv_5x5", 3, 1),
         ("avg_pool_3x3", 4, 0), ("sep_conv_5x5", 4, 1), ("skip_connect", 5, 0), ("skip_connect", 5, 1)],
    ),
    "FairDARTS_b": _known(
        [("sep_conv_3x3", 2, 0), ("sep_conv_3x3", 2, 1), ("sep_conv_3x3", 3, 1), ("dil_conv_3x3", 4, 0),
         ("sep_conv_5x5", 4, 1), ("dil_conv_5x5", 5, 1)],
        [("skip_connect", 2, 0), ("dil_conv_3x3", 2, 1), ("skip_connect", 3, 0), ("dil_conv_3x3", 3, 1),
         ("max_pool_3x3", 4, 0), ("sep_conv_3x3", 4, 1), ("skip_connect", 5, 2), ("max_pool_3x3", 5, 0)],
    ),
    "FairDARTS_c": _known(
        [("max_pool_3x3", 2, 0), ("sep_conv_5x5", 2, 1), ("dil_conv_3x3", 4, 0), ("dil_conv_5x5", 4, 2),
         ("skip_connect", 5, 3), ("sep_conv_3x3", 5, 0)],
        [("dil_conv_3x3", 2, 1), ("dil_conv_5x5", 2, 0), ("dil_conv_3x3", 3, 0), ("sep_conv_3x3", 3, 1),
         ("sep_conv_5x5", 4, 0), ("sep_conv_5x5", 4, 3), ("sep_conv_5x5", 5, 0), ("skip_connect", 5, 1)],
    ),
    "FairDARTS_d": _known(
        [("sep_conv_3x3", 2, 0), ("sep_conv_5x5", 2, 1), ("dil_conv_3x3", 3, 1), ("max_pool_3x3", 3, 0),
         ("dil_conv_3x3", 4, 0), ("dil_conv_3x3", 4, 1), ("sep_conv_3x3", 5, 0), ("dil_conv_5x5", 5, 1)],
        [("max_pool_3x3", 2, 0), ("sep_conv_5x5", 2, 1), ("avg_pool_3x3", 3, 0), ("dil_conv_5x5", 3, 2),
         ("dil_conv_3x3", 4, 3), ("avg_pool_3x3", 4, 0), ("avg_pool_3x3", 5, 0), ("skip_connect", 5, 3)],
    ),
    "FairDARTS_e": _known(
        [("sep_conv_3x3", 2, 0), ("sep_conv_3x3", 2, 1), ("dil_conv_3x3", 4, 1), ("dil_conv_3x3", 4, 2),
         ("dil_conv_3x3", 5, 0), ("dil_conv_5x5", 5, 1)],
        [("max_pool_3x3", 2, 1), ("max_pool_3x3", 2, 0), ("max_pool_3x3", 3, 1), ("max_pool_3x3", 3, 0),
         ("sep_conv_5x5", 4, 1), ("max_pool_3x3", 4, 0), ("avg_pool_3x3", 5, 0), ("dil_conv_5x5", 5, 1)],
    ),
    "FairDARTS_f": _known(
        [("max_pool_3x3", 2, 0), ("sep_conv_3x3", 2, 1), ("dil_conv_3x3", 3, 1), ("sep_conv_5x5", 4, 1),
         ("sep_conv_3x3", 5, 0), ("sep_conv_3x3", 5, 1)],
        [("max_pool_3x3", 2, 0), ("max_pool_3x3", 2, 1), ("max_pool_3x3", 3, 0), ("dil_conv_3x3", 3, 1),
         ("dil_conv_3x3", 4, 2), ("max_pool_3x3", 4, 0), ("max_pool_3x3", 5, 0), ("sep_conv_3x3", 5, 1)],
    ),
    "FairDARTS_g": _known(
        [("sep_conv_3x3", 2, 0), ("sep_conv_3x3", 2, 1), ("skip_connect", 4, 3), ("sep_conv_5x5", 4, 1),
         ("dil_conv_3x3", 5, 0), ("sep_conv_3x3", 5, 1)],
        [("avg_pool_3x3", 2, 1), ("skip_connect", 2, 0), ("skip_connect", 3, 2), ("max_pool_3x3", 3, 1),
         ("sep_conv_5x5", 4, 3), ("max_pool_3x3", 4, 0), ("dil_conv_3x3", 5, 1), ("dil_conv_3x3", 5, 4)],
    ),
}


def parse_text(text: str) -> Genotype:
    """A name from :data:`KNOWN` or a ``Genotype(...)`` literal (JSON and paths are read by nasbench_pc.genotypes)."""
    text = text.strip()
    return KNOWN[text] if text in KNOWN else from_python(text)
