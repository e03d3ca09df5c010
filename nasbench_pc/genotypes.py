"""Genotypes of every search space: reading, writing, and finding the space one belongs to.

A genotype's JSON carries ``"space"`` (the name of the space plugin that reads it); a genotype.json
without it belongs to the default space (the one that says ``default = True``), as every file written
before spaces were plugins does. Everything else about a genotype (its type, validation, text format)
belongs to its space (:class:`nasbench_pc.interfaces.SearchSpace`).

The default space's ``exports`` (the DARTS space's ``Genotype``, ``PRIMITIVES``, ``KNOWN``,
``from_python``, ``to_python``, ``validate``) can still be imported from here, where code written for the
DARTS-only releases imports them; they are looked up in the registry when first asked for.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nasbench_pc import registry
from nasbench_pc.errors import GenotypeError, short_repr
from nasbench_pc.protocols import SearchSpace

__all__ = ["default_export", "from_dict", "from_json", "known", "load", "parse", "save", "space_named", "space_of",
           "to_dict", "to_json", "to_text"]


def default_export(name: str) -> Any:
    """``name`` from the default space's ``exports``; AttributeError when it has none of that name."""
    space = space_named(registry.default("search_space"))
    exports = getattr(space, "exports", {})
    if name not in exports:
        raise AttributeError(f"module 'nasbench_pc.genotypes' has no attribute {name!r}")
    return exports[name]


def __getattr__(name: str) -> Any:  # the default space's exports (PEP 562), e.g. nasbench_pc.genotypes.Genotype
    if name.startswith("__"):
        raise AttributeError(name)
    return default_export(name)


def space_named(name: str) -> SearchSpace:
    """The registered search space called ``name`` (a clear error lists the others)."""
    return registry.get("search_space", name)


def space_of(genotype: Any) -> SearchSpace:
    """The registered space whose genotype type ``genotype`` is."""
    for space in registry.available("search_space").values():
        if isinstance(genotype, space.genotype_type):
            return space
    raise GenotypeError(
        f"{short_repr(genotype)} is a {type(genotype).__name__}, which no registered search space uses for its "
        f"genotypes ({', '.join(registry.available('search_space'))}). Parse it first with "
        f"`nasbench_pc.genotypes.parse`, or install the plugin of its space."
    )


def known() -> dict[str, Any]:
    """Every space's published genotypes, by name."""
    return {name: g for space in registry.available("search_space").values() for name, g in space.known.items()}


def to_dict(genotype: Any) -> dict[str, Any]:
    """JSON-ready data: ``{"space": ..., **the space's own fields}``."""
    space = space_of(genotype)
    return {"space": space.name, **space.to_dict(genotype)}


def to_json(genotype: Any, indent: int | None = 2) -> str:
    return json.dumps(to_dict(genotype), indent=indent)


def to_text(genotype: Any) -> str:
    """The genotype in its space's own one-line text format (DARTS: the ``Genotype(...)`` literal)."""
    return space_of(genotype).to_text(genotype)


def from_dict(data: Any, *, space: str | None = None) -> Any:
    """The genotype that ``data`` (as :func:`to_dict` writes it) describes; no ``"space"`` means the default space.
    With ``space``, a genotype of another space is refused."""
    fallback = space or registry.default("search_space")
    name = data.get("space", fallback) if isinstance(data, Mapping) else fallback
    if not isinstance(name, str) or name not in registry.available("search_space"):
        raise GenotypeError(
            f"The genotype names the search space {short_repr(name)}, which is not installed "
            f"({', '.join(registry.available('search_space'))} are). Install the plugin that provides it, or fix "
            f"the \"space\" field."
        )
    if space is not None and name != space:
        raise GenotypeError(f"This genotype belongs to the search space {name!r}, not {space!r}. Pass a {space} "
                            f"genotype, or use the {name} space.")
    fields = {k: v for k, v in data.items() if k != "space"} if isinstance(data, Mapping) else data
    return space_named(name).from_dict(fields)


def from_json(text: str, *, space: str | None = None) -> Any:
    """Parse the JSON that :func:`to_json` writes."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GenotypeError(
            f"The genotype is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}). "
            f"Fix the file or regenerate it with `nasbench_pc.genotypes.to_json`."
        ) from None
    except (ValueError, RecursionError) as exc:  # an integer too long to convert, or absurd nesting
        raise GenotypeError(
            f"The genotype JSON cannot be read ({exc}). Fix the file or regenerate it with "
            f"`nasbench_pc.genotypes.to_json`."
        ) from None
    return from_dict(data, space=space)


def parse(spec: Any, *, space: str | None = None) -> Any:
    """Anything a user may hand us as a genotype: a genotype object, a dict, JSON text, a space's own text
    format (DARTS: a ``Genotype(...)`` literal; NAS-Bench-201: ``|op~0|+|...|``), a published name, or a path
    to a genotype.json (or a run directory holding one). With ``space``, only that space's genotypes."""
    spaces = registry.available("search_space")
    candidates = {space: space_named(space)} if space is not None else spaces
    for candidate in candidates.values():
        if isinstance(spec, candidate.genotype_type):
            return candidate.from_dict(candidate.to_dict(spec))  # validated, with plain fields
    if isinstance(spec, Mapping):
        return from_dict(spec, space=space)
    if isinstance(spec, (str, Path)):
        text = str(spec).strip()
        if text.startswith(("{", "[")):
            return from_json(text, space=space)
        for candidate in candidates.values():
            if candidate.claims(text):
                return candidate.parse(text)
        return load(_genotype_file(text, candidates), space=space)
    what = f"{space} genotype" if space else "genotype"
    raise GenotypeError(f"Cannot read a {what} from a {type(spec).__name__}; pass a genotype, dict, JSON or path.")


def _genotype_file(text: str, spaces: Mapping[str, SearchSpace]) -> Path:
    """The genotype.json that ``text`` names, itself or in the run directory it names."""
    try:
        path = Path(text).expanduser()
        is_dir, is_file = path.is_dir(), path.is_file()
    except (OSError, RuntimeError, ValueError):  # too long for the file system; an unknown ~user; ~ and a NUL
        is_dir = is_file = False
    if is_dir:
        if not (path / "genotype.json").is_file():
            raise GenotypeError(
                f"The folder {short_repr(text)} holds no genotype.json. Pass a run directory written by "
                f"`nasbench-pc search` (it saves genotype.json) or the genotype file itself."
            )
        return path / "genotype.json"
    if is_file:
        return path
    names = [name for s in spaces.values() for name in s.known]
    by_case = {name.casefold(): name for name in names}
    close = difflib.get_close_matches(text.casefold(), by_case, n=1)
    guess = f" Did you mean {by_case[close[0]]!r}?" if close else ""
    raise GenotypeError(
        f"{short_repr(text)} is neither a known genotype ({', '.join(names)}), nor a genotype.json file or run "
        f"directory that exists, nor JSON text, nor a genotype in the text format of the search space(s) "
        f"{', '.join(spaces)} (e.g. a Genotype(...) literal for darts).{guess} Pass one of those."
    )


def load(path: str | Path, *, space: str | None = None) -> Any:
    """Read a genotype.json file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GenotypeError(f"Cannot read genotype file {path}: {exc.strerror}. Check the path.") from None
    except UnicodeDecodeError:
        raise GenotypeError(
            f"{path} is not a text file (it is not valid UTF-8), so it cannot be a genotype.json. Pass the JSON "
            f"file that `nasbench-pc search` writes, or its run directory."
        ) from None
    try:
        return from_json(text, space=space)
    except GenotypeError as exc:
        raise GenotypeError(f"{path}: {exc}") from None


def save(genotype: Any, path: str | Path) -> None:
    Path(path).write_text(to_json(genotype) + "\n")
