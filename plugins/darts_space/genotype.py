"""DARTS genotypes: the discrete cells a search of the DARTS space ends with.

``Genotype`` has the fields of the reference namedtuple (``normal``, ``normal_concat``,
``reduce``, ``reduce_concat``); each cell is a list of ``(op, input)`` pairs, two per
intermediate node, where input 0 and 1 are the cell inputs and input ``k >= 2`` is node
``k - 2`` of the same cell. ``KNOWN`` holds the four published genotypes under their
reference names.
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


class Genotype(NamedTuple):
    normal: list[Edge]
    normal_concat: list[int]
    reduce: list[Edge]
    reduce_concat: list[int]


def _cell_text(cell: list[Edge]) -> str:
    return "[" + ", ".join(f"({op!r}, {i})" for op, i in cell) + "]"


def to_dict(genotype: Genotype) -> dict[str, Any]:
    """Plain JSON-ready dict: edges as ``[op, input]`` lists."""
    return {
        "normal": [[op, int(i)] for op, i in genotype.normal],
        "normal_concat": [int(i) for i in genotype.normal_concat],
        "reduce": [[op, int(i)] for op, i in genotype.reduce],
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


def validate(genotype: Genotype, *, steps: int = 4) -> Genotype:
    """Check every edge and concat index; return the genotype with plain list/tuple/int fields."""
    cells: dict[str, Any] = {}
    for cell in ("normal", "reduce"):
        edges = genotype._asdict()[cell]
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
        cells[cell] = clean
        cells[f"{cell}_concat"] = concat_list
    return Genotype(**cells)


def _known(normal: list[Edge], reduce: list[Edge]) -> Genotype:
    return Genotype(normal=normal, normal_concat=[2, 3, 4, 5], reduce=reduce, reduce_concat=[2, 3, 4, 5])


#: The published genotypes, under the names of the reference genotypes.py.
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
}


def parse_text(text: str) -> Genotype:
    """A name from :data:`KNOWN` or a ``Genotype(...)`` literal (JSON and paths are read by nasbench_pc.genotypes)."""
    text = text.strip()
    return KNOWN[text] if text in KNOWN else from_python(text)
