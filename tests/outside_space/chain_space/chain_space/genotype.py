"""Chain genotypes: one op name per edge, written ``chain:conv_3x3>skip_connect>conv_3x3``.

The text format starts with ``chain:`` so that nasbench-pc's generic ``parse`` can tell it from the
other spaces' formats (:meth:`ChainSearchSpace.claims`). The JSON form is ``{"ops": [...]}``; the core
adds ``"space": "chain"`` when it writes a genotype.json. Every constructor validates, so a
:class:`ChainGenotype` always describes a cell of the space.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chain_space.ops import PRIMITIVES
from nasbench_pc.errors import GenotypeError, short_repr

SPACE = "chain"
PREFIX = "chain:"
_EXAMPLE = "chain:conv_3x3>skip_connect>conv_3x3"


def _check_op(edge: int, op: Any) -> str:
    if op == "none":
        raise GenotypeError(
            f"Edge {edge} of the chain is 'none', which would cut the chain: every later node would be zero. "
            f"Choose one of {', '.join(p for p in PRIMITIVES if p != 'none')} for it."
        )
    if not isinstance(op, str) or op not in PRIMITIVES:
        close = difflib.get_close_matches(op, PRIMITIVES, n=1) if isinstance(op, str) else []
        guess = f" Did you mean {close[0]!r}?" if close else ""
        raise GenotypeError(
            f"Edge {edge} of the chain uses the unknown op {short_repr(op)}.{guess} A chain edge is one of "
            f"{', '.join(p for p in PRIMITIVES if p != 'none')}, as in {_EXAMPLE}."
        )
    return op


@dataclass(frozen=True)
class ChainGenotype:
    """A chain cell: ``ops[i]`` is the op of edge i + 1, which turns node i into node i + 1.

    Lists are accepted and stored as tuples; anything that is not a chain cell raises
    :class:`~nasbench_pc.errors.GenotypeError`.
    """

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if isinstance(self.ops, str) or not isinstance(self.ops, (list, tuple)) or not self.ops:
            raise GenotypeError(
                f"A chain cell is a non-empty sequence of op names, got {short_repr(self.ops)}. Write it as "
                f"{_EXAMPLE}, or in JSON as {{\"ops\": [\"conv_3x3\", \"skip_connect\", \"conv_3x3\"]}}."
            )
        object.__setattr__(self, "ops", tuple(_check_op(edge, op) for edge, op in enumerate(self.ops, start=1)))

    @classmethod
    def from_text(cls, text: str) -> ChainGenotype:
        """Parse ``chain:op>op>...`` (surrounding blanks ignored)."""
        body = text.strip()
        if not body.startswith(PREFIX):
            raise GenotypeError(f"{short_repr(text)} is not a chain genotype: write it as {_EXAMPLE}.")
        return cls(tuple(op.strip() for op in body[len(PREFIX):].split(">")))

    def to_text(self) -> str:
        """The one-line text form that :meth:`from_text` reads back."""
        return PREFIX + ">".join(self.ops)

    def __str__(self) -> str:
        return self.to_text()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form without the ``"space"`` key: ``{"ops": [...]}``."""
        return {"ops": list(self.ops)}

    @classmethod
    def from_dict(cls, data: Any) -> ChainGenotype:
        """Build and validate a genotype from the dict :meth:`to_dict` writes."""
        if not isinstance(data, Mapping) or set(data) != {"ops"}:
            got = sorted(map(short_repr, data)) if isinstance(data, Mapping) else type(data).__name__
            raise GenotypeError(
                f"A chain genotype is an object with exactly the key 'ops', got {got}. Write it as "
                f"{{\"ops\": [\"conv_3x3\", \"skip_connect\", \"conv_3x3\"]}}."
            )
        if not isinstance(data["ops"], list):
            raise GenotypeError(f"'ops' of a chain genotype is a list of op names, got {short_repr(data['ops'])}.")
        return cls(tuple(data["ops"]))


def as_genotype(value: Any) -> ChainGenotype:
    """A :class:`ChainGenotype` from itself, its text form, or its dict form (with or without ``"space"``)."""
    if isinstance(value, ChainGenotype):
        return value
    if isinstance(value, str):
        return ChainGenotype.from_text(value)
    if isinstance(value, Mapping) and value.get("space", SPACE) == SPACE:
        return ChainGenotype.from_dict({k: v for k, v in value.items() if k != "space"})
    raise GenotypeError(f"Cannot read a chain genotype from {short_repr(value)}; pass a ChainGenotype, its text "
                        f"({_EXAMPLE}) or its dict form.")


#: The genotype of a bare ``timm.create_model("chain_tiny")``.
DEFAULT = ChainGenotype(("conv_3x3", "skip_connect", "conv_3x3"))
