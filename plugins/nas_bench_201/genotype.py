"""NAS-Bench-201 genotypes: one cell, written as the benchmark's architecture string.

A cell has an input node 0 and three nodes after it; node i reads every earlier node through one op
each, so the cell is fully described by 6 op names. The benchmark (and its lookup API) names a
cell by the string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (node 1, node 2, node 3; ``~j`` is
the node an edge reads). :class:`Nb201Genotype` reads and writes exactly that string, and a JSON
form tagged with ``"space": "nas-bench-201"`` so that a genotype file says which space it is for.
Every constructor validates, so a :class:`Nb201Genotype` always describes a cell of the space.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nasbench_pc.errors import GenotypeError, short_repr
from nasbench_pc.plugins.nas_bench_201.ops import PRIMITIVES

SPACE = "nas-bench-201"
#: Nodes after the cell input (the benchmark's max_nodes = 4 counts the input too).
NODES = 3
#: Each edge's (node, input), in the benchmark's order 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2: the rows of the alphas.
EDGES: tuple[tuple[int, int], ...] = tuple((i, j) for i in range(1, NODES + 1) for j in range(i))
NUM_EDGES = len(EDGES)

Edge = tuple[str, int]

_FORMAT = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
# The op's name, then the node it reads: no leading zeros, and short enough that int() is cheap.
_EDGE = re.compile(r"(?P<op>[^|~+]*)~(?P<input>0|[1-9][0-9]{0,8})")


def node_slices() -> list[slice]:
    """The rows of the (6, 5) alphas that belong to node 1, 2 and 3 (node i has i incoming edges)."""
    starts = [i * (i - 1) // 2 for i in range(1, NODES + 2)]
    return [slice(a, b) for a, b in zip(starts, starts[1:])]


def _check_edge(node: int, position: int, edge: Any) -> Edge:
    if not isinstance(edge, (list, tuple)) or len(edge) != 2:
        raise GenotypeError(
            f"Edge {position} of node {node} is {short_repr(edge)}, not an (op, input) pair. Write each edge as a "
            f"pair such as ('nor_conv_3x3', {position}), or as nor_conv_3x3~{position} in the benchmark string "
            f"{_FORMAT}."
        )
    op, source = edge
    if not isinstance(op, str) or op not in PRIMITIVES:
        close = difflib.get_close_matches(op, PRIMITIVES, n=1) if isinstance(op, str) else []
        guess = f" Did you mean {close[0]!r}?" if close else ""
        raise GenotypeError(
            f"Node {node} uses the unknown op {short_repr(op)}.{guess} A NAS-Bench-201 edge is one of "
            f"{', '.join(PRIMITIVES)}."
        )
    if isinstance(source, bool) or not isinstance(source, int):
        raise GenotypeError(
            f"Edge {position} of node {node} reads {short_repr(source)}, which is not a node number. The input of "
            f"an edge is the integer j of the node it reads (0 is the cell input)."
        )
    if not 0 <= source < node:
        raise GenotypeError(
            f"Node {node} reads node {short_repr(source)}, but node {node} can only read the nodes before it "
            f"(0 to {node - 1}). Fix the number after '~' in that edge."
        )
    if source != position:
        raise GenotypeError(
            f"Node {node} lists its inputs out of order: edge {position} reads node {source}. Each node reads "
            f"every earlier node once, in order (node {node}: "
            f"{'|'.join(f'op~{j}' for j in range(node))}), as in {_FORMAT}."
        )
    return op, source


@dataclass(frozen=True)
class Nb201Genotype:
    """A NAS-Bench-201 cell: ``nodes[i - 1]`` holds node i's (op, input) pairs, inputs 0 .. i-1 in order.

    Lists are accepted and stored as tuples; anything that is not a cell of the space raises
    :class:`~nasbench_pc.errors.GenotypeError`.
    """

    nodes: tuple[tuple[Edge, ...], ...]

    def __post_init__(self) -> None:
        nodes = self.nodes
        if not isinstance(nodes, (list, tuple)) or len(nodes) != NODES:
            got = f"{len(nodes)} nodes" if isinstance(nodes, (list, tuple)) else short_repr(nodes)
            raise GenotypeError(
                f"A NAS-Bench-201 cell has {NODES} nodes after its input, got {got}. Write it as "
                f"{_FORMAT} (node 1, node 2, node 3), or in JSON as a list of the three nodes' [op, input] pairs."
            )
        checked = []
        for node, edges in enumerate(nodes, start=1):
            if not isinstance(edges, (list, tuple)) or len(edges) != node:
                got = f"{len(edges)} edges" if isinstance(edges, (list, tuple)) else short_repr(edges)
                raise GenotypeError(
                    f"Node {node} of a NAS-Bench-201 cell reads every earlier node, so it has {node} edge(s), "
                    f"got {got}. Write node {node} as {'|' + '|'.join(f'op~{j}' for j in range(node)) + '|'}."
                )
            checked.append(tuple(_check_edge(node, position, edge) for position, edge in enumerate(edges)))
        object.__setattr__(self, "nodes", tuple(checked))

    @property
    def edges(self) -> tuple[Edge, ...]:
        """All 6 (op, input) pairs in the benchmark's edge order (the rows of the alphas)."""
        return tuple(edge for node in self.nodes for edge in node)

    @property
    def ops(self) -> tuple[str, ...]:
        """The 6 op names in edge order."""
        return tuple(op for op, _ in self.edges)

    @classmethod
    def from_ops(cls, ops: Sequence[str]) -> Nb201Genotype:
        """The cell whose 6 edges, in the benchmark's edge order, use ``ops``."""
        if isinstance(ops, str) or len(ops) != NUM_EDGES:
            raise GenotypeError(
                f"A NAS-Bench-201 cell has {NUM_EDGES} edges (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2), so it needs "
                f"{NUM_EDGES} op names; got {short_repr(ops)}."
            )
        names = iter(ops)
        return cls(tuple(tuple((next(names), j) for j in range(node)) for node in range(1, NODES + 1)))

    @classmethod
    def from_str(cls, text: str) -> Nb201Genotype:
        """Parse the benchmark string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (surrounding blanks ignored)."""
        if not isinstance(text, str):
            raise GenotypeError(f"A NAS-Bench-201 architecture string must be text, got {type(text).__name__}.")
        parts = text.strip().split("+")
        if len(parts) != NODES:
            raise GenotypeError(
                f"{short_repr(text)} has {len(parts)} node(s) separated by '+', but a NAS-Bench-201 cell has "
                f"{NODES}. Write it as {_FORMAT}."
            )
        nodes = []
        for node, part in enumerate(parts, start=1):
            if len(part) < 2 or part[0] != "|" or part[-1] != "|":
                raise GenotypeError(
                    f"Node {node} of {short_repr(text)} is {short_repr(part)}; each node is its edges between bars, "
                    f"like |op~0|op~1|. Write the whole cell as {_FORMAT}."
                )
            edges = []
            for token in part[1:-1].split("|"):
                match = _EDGE.fullmatch(token)
                if match is None:
                    raise GenotypeError(
                        f"{short_repr(token)} in node {node} is not an edge: write each edge as op~j, the op's name "
                        f"and the number j of the node it reads (for example nor_conv_3x3~0), as in {_FORMAT}."
                    )
                edges.append((match["op"], int(match["input"])))
            nodes.append(edges)
        return cls(nodes)

    def to_str(self) -> str:
        """The benchmark's architecture string, as its lookup API expects it."""
        return "+".join("|" + "|".join(f"{op}~{j}" for op, j in node) + "|" for node in self.nodes)

    def __str__(self) -> str:
        return self.to_str()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"space": "nas-bench-201", "nodes": [[[op, input], ...], ...]}``."""
        return {"space": SPACE, "nodes": [[[op, j] for op, j in node] for node in self.nodes]}

    @classmethod
    def from_dict(cls, data: Any) -> Nb201Genotype:
        """Build and validate a genotype from the dict :meth:`to_dict` writes."""
        if not isinstance(data, dict) or set(data) != {"space", "nodes"}:
            got = sorted(map(short_repr, data)) if isinstance(data, dict) else type(data).__name__
            raise GenotypeError(
                f"A NAS-Bench-201 genotype is an object with exactly the keys 'space' and 'nodes', got {got}. "
                f"Write it as produced by Nb201Genotype.to_dict."
            )
        if data["space"] != SPACE:
            raise GenotypeError(
                f"This genotype is for the space {short_repr(data['space'])}, not {SPACE!r}. Read it with that "
                f"space, or set \"space\": \"{SPACE}\" if it is a NAS-Bench-201 cell."
            )
        return cls(data["nodes"])


#: The best CIFAR-10 cell of the benchmark (the default genotype of the timm model ``nasbench201_cifar``).
BEST_CIFAR10 = Nb201Genotype.from_str(
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)
