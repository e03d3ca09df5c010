"""User-facing errors.

Every error a user can cause (a bad option, a malformed genotype, a missing dataset)
is a :class:`NasbenchError` whose message is one paragraph naming the problem and the
fix. The CLI prints it without a traceback.
"""

from __future__ import annotations


class NasbenchError(Exception):
    """Base class: the message says what went wrong and how to fix it."""


class ConfigError(NasbenchError, ValueError):
    """An option, method or plugin name that cannot be used as given."""


class GenotypeError(NasbenchError, ValueError):
    """A genotype that does not describe a valid cell."""


class PluginError(NasbenchError):
    """A plugin that cannot be loaded or that clashes with another."""


def unknown_name(kind: str, name: str, known: list[str] | tuple[str, ...], hint: str = "") -> ConfigError:
    """Error for a name missing from a registry, with a close match when there is one."""
    import difflib

    close = difflib.get_close_matches(name, known, n=1)
    guess = f" Did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(sorted(known)) or "(none registered)"
    return ConfigError(f"Unknown {kind} {name!r}.{guess} Available: {listed}.{(' ' + hint) if hint else ''}")
