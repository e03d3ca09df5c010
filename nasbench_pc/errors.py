"""User-facing errors.

Every error a user can cause (a bad option, a malformed genotype, a missing dataset)
is a :class:`NasbenchError` whose message is one paragraph naming the problem and the
fix. The CLI prints it without a traceback.
"""

from __future__ import annotations


class NasbenchError(Exception):
    """Base class: the message says what went wrong and how to fix it; the CLI exits with ``exit_code``."""

    exit_code = 2


class ConfigError(NasbenchError, ValueError):
    """An option, method or plugin name that cannot be used as given."""


class GenotypeError(NasbenchError, ValueError):
    """A genotype that does not describe a valid cell."""


class PluginError(NasbenchError):
    """A plugin that cannot be loaded or that clashes with another."""


class DivergedError(NasbenchError):
    """Training produced a NaN or infinite loss."""


def check_finite(loss: float, *, what: str, epoch: int, lr: float, kept: str) -> None:
    """Stop with a clear error when ``loss`` is NaN or infinite, instead of training on garbage.

    ``kept`` says where the finished epochs are, so the user knows nothing finished is lost."""
    import math

    if not math.isfinite(loss):
        raise DivergedError(
            f"The {what} became {loss} in epoch {epoch} (learning rate {lr:g}): training diverged. {kept} "
            f"Lower the learning rate (--lr, or --arch-lr for the architecture), keep --grad-clip on, and start "
            f"again with those settings."
        )


def unknown_name(kind: str, name: str, known: list[str] | tuple[str, ...], hint: str = "") -> ConfigError:
    """Error for a name missing from a registry, with a close match when there is one."""
    import difflib

    close = difflib.get_close_matches(name, known, n=1)
    guess = f" Did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(sorted(known)) or "(none registered)"
    return ConfigError(f"Unknown {kind} {name!r}.{guess} Available: {listed}.{(' ' + hint) if hint else ''}")


def short_repr(value: object, width: int = 60) -> str:
    """A short repr for error messages: user input can be huge (an int too long for repr, a long list)."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond sys.get_int_max_str_digits()
        return f"<an integer of {value.bit_length()} bits>"  # type: ignore[attr-defined]
    return text if len(text) <= width else text[:width - 3] + "..."


def brief(exc: BaseException, limit: int = 240) -> str:
    """An exception as one short line for an error paragraph: its type and message, cut at ``limit`` characters."""
    words = " ".join(str(exc).split()) or "no message"
    return f"{type(exc).__name__}: {words if len(words) <= limit else words[:limit] + '...'}"
