"""One definition per setting: its name, type, default, range check and help, written once as a dataclass field.

A config dataclass declares each setting as ``name: type = setting(default, "help", check=...)``. Everything else is
derived from that line: the dataclass itself, the validation in ``__post_init__`` (:func:`validate`), the command-line
options of every command that takes the setting (``nasbench_pc.cli._settings``), the preset merge (the fields of a
group, :func:`names`) and the ``config.json`` round trip (:func:`to_dict` / the dataclass's own constructor). Adding a
search setting is one line in :class:`nasbench_pc.search.config.SearchConfig` (or in a group it inherits).

A method declares its own settings the same way, as :class:`Setting` records with a ``name`` and a ``default``
(:attr:`nasbench_pc.records.Method.settings`); ``--method-option key=value`` sets them (:func:`values_of`).

Errors speak in the library's terms: a :class:`SettingError` names the setting as the argument it is (``lr_min``);
the command line spells the same error with its flags (``--lr-min``, :meth:`SettingError.spelled`).
"""

from __future__ import annotations

import builtins
import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nasbench_pc.errors import ConfigError

#: the dataclass field metadata key holding a field's :class:`Setting`
KEY = "nasbench_pc.setting"


class SettingError(ConfigError):
    """A bad value of one or more named settings. The message is a template in which ``{name}`` stands for each
    setting it names; ``str()`` writes the settings' own names, :meth:`spelled` what a user types for them."""

    def __init__(self, template: str, *names: str, flags: Mapping[str, str] | None = None):
        self.template, self.names, self.flags = template, names, dict(flags or {})
        super().__init__(self.spelled(lambda name: name))

    def spelled(self, spell: Callable[[str], str]) -> str:
        text = self.template
        for name in self.names:
            text = text.replace("{" + name + "}", spell(name))
        return text

    def for_cli(self) -> str:
        """The message with each setting written as its flag: ``--lr-min``, or what ``flags`` says (a method's
        setting ``tau`` is ``--method-option tau``)."""
        return self.spelled(lambda name: self.flags.get(name) or flag(name))


def flag(name: str) -> str:
    """The command-line flag of setting ``name`` (``lr_min`` -> ``--lr-min``)."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Check:
    """A range check: ``ok(value)`` says whether a value is allowed; ``rule`` completes "NAME ..." when it is not
    (``"must be at least 1"``), followed by the value (``", got 0"``) and ``why``, if any. A check made of
    ``parts`` (:func:`all_of`) fails with its first failing part's message."""

    ok: Callable[[Any], bool]
    rule: str
    why: str = ""
    parts: tuple[Check, ...] = ()

    def complaint(self, name: str, value: Any) -> str | None:
        """None when ``value`` passes, else the error template for setting ``name``."""
        if self.parts:
            return next((c for c in (part.complaint(name, value) for part in self.parts) if c), None)
        if self.ok(value):
            return None
        return f"{{{name}}} {self.rule}, got {value!r}" + (f": {self.why}" if self.why else "") + "."


def at_least(low: int) -> Check:
    return Check(lambda v: v >= low, f"must be at least {low}")


def not_negative() -> Check:
    return Check(lambda v: v >= 0, "cannot be negative")


def positive_finite(why: str = "") -> Check:
    return Check(lambda v: 0 < v < math.inf, "must be a positive finite number", why)  # nan fails both


def finite_at_least_zero() -> Check:
    return Check(lambda v: 0 <= v < math.inf, "must be a finite number of at least 0")


def fraction(of: str) -> Check:
    return Check(lambda v: 0 < v < 1, f"is a fraction of {of} and must lie strictly between 0 and 1")


def one_of(*values: Any) -> Check:
    return Check(lambda v: v in values, f"must be one of {', '.join(map(str, values))}")


def all_of(*checks: Check) -> Check:
    """The first of ``checks`` that fails decides the message."""
    return Check(lambda v: all(check.ok(v) for check in checks), "", parts=checks)


@dataclass(frozen=True)
class Setting:
    """What one setting is, besides its name, type and default (which its dataclass field holds).

    ``help`` is its one-line description (the command line's help and ``nasbench-pc methods``); ``check`` its range
    (None: any value of its type; a None value always passes, for settings that default to None); ``choices`` the
    values it takes, if a fixed few; ``flags`` the command line's short aliases (``("-b",)``); ``cli`` False for a
    setting the command line sets another way (``method`` is an argument, ``space_options`` has ``--space-option``);
    ``groups`` the groups it belongs to (``"hparams"``: a method's search hyperparameters, which presets take from
    the method). A method's own settings also carry their ``name``, ``type`` and ``default`` here."""

    help: str = ""
    check: Check | None = None
    choices: tuple[Any, ...] = ()
    flags: tuple[str, ...] = ()
    cli: bool = True
    groups: frozenset[str] = frozenset()
    name: str = ""
    type: type | None = None
    default: Any = None

    def complaint(self, name: str, value: Any) -> str | None:
        if value is None:
            return None
        if self.choices and value not in self.choices:
            return f"{{{name}}} must be one of {', '.join(map(str, self.choices))}, got {value!r}."
        return self.check.complaint(name, value) if self.check else None


def setting(default: Any, help: str = "", *, check: Check | None = None, choices: Iterable[Any] = (),
            flags: Iterable[str] = (), cli: bool = True, groups: Iterable[str] = ()) -> Any:
    """A dataclass field for a setting (see :class:`Setting`); a dict or list default becomes a factory."""
    record = Setting(help=help, check=check, choices=tuple(choices), flags=tuple(flags), cli=cli,
                     groups=frozenset(groups))
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={KEY: record})
    return dataclasses.field(default=default, metadata={KEY: record})


@dataclass(frozen=True)
class Declared:
    """One setting of a config class as the rest of the code reads it."""

    name: str
    type: type  # the value's type with None taken out (``int | None`` -> int)
    optional: bool  # None is a value it takes
    default: Any
    setting: Setting


def declared(cls: type) -> list[Declared]:
    """The settings of a config dataclass, in field order (inherited groups first)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        record = f.metadata.get(KEY)
        if record is None:
            continue
        kind, optional = _plain_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        out.append(Declared(f.name, kind, optional, default, record))
    return out


def names(cls: type, group: str | None = None) -> list[str]:
    """The names of ``cls``'s settings (of one ``group`` only, if given)."""
    return [d.name for d in declared(cls) if group is None or group in d.setting.groups]


def validate(config: Any) -> None:
    """Check every declared setting of a config dataclass instance; SettingError on the first bad value."""
    for item in declared(type(config)):
        value = getattr(config, item.name)
        if value is None and not item.optional:
            raise SettingError(f"{{{item.name}}} needs a value; None is not one.", item.name)
        complaint = item.setting.complaint(item.name, value)
        if complaint:
            raise SettingError(complaint, item.name)


def _plain_type(hint: Any) -> tuple[type, bool]:
    """(the type, whether None is allowed) of an annotation such as ``int | None``."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else object), type(None) in args
    return (typing.get_origin(hint) or hint), False


# ---------------------------------------------------------------------------------------------------------------
# settings a plugin declares (a method's)


def values_of(owner: str, declared_settings: Iterable[Setting], given: Mapping[str, Any], *,
              flag_of: Callable[[str], str] | None = None) -> dict[str, Any]:
    """Every setting ``owner`` (e.g. "the method gdas") declares, at its default unless ``given`` sets it; values
    given as text (``--method-option tau=5``) are read as the setting's type. An unknown key gets a did-you-mean."""
    settings = {s.name: s for s in declared_settings}
    unknown = sorted(set(given) - set(settings))
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, list(settings), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        has = (f"It has {', '.join(sorted(settings))} (`nasbench-pc methods` lists them)." if settings
               else "It declares no settings.")
        raise ConfigError(f"{owner[:1].upper()}{owner[1:]} has no setting {key!r}.{hint} {has}")
    values = {}
    for name, record in settings.items():
        value = _as_type(owner, record, given[name]) if name in given else record.default
        complaint = record.complaint(name, value)
        if complaint:
            raise SettingError(f"{complaint[:-1]} ({owner}).", name, flags={name: flag_of(name)} if flag_of else None)
        values[name] = value
    return values


def _as_type(owner: str, record: Setting, value: Any) -> Any:
    """``value`` as the setting's type: text is parsed, an int is taken for a float; anything else is an error."""
    kind = record.type
    if kind is None or value is None or (isinstance(value, kind) and not (kind is int and isinstance(value, bool))):
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    raise ConfigError(f"The setting {record.name} of {owner} takes a {kind.__name__} (its default is "
                      f"{record.default!r}), got {value!r}.")


def describe(record: Setting) -> str:
    """``name=default (type): help`` for listings."""
    kind = (record.type or type(record.default)).__name__
    return f"{record.name}={record.default!r} ({kind}): {record.help}"


def declare(name: str, default: Any, help: str = "", *, check: Check | None = None, choices: Iterable[Any] = (),
            type: type | None = None) -> Setting:
    """A plugin's own setting (a method's): ``declare("tau_max", 10.0, "Initial Gumbel temperature.",
    check=positive_finite())``. Its type is the default's unless given (a None default needs ``type``)."""
    return Setting(help=help, check=check, choices=tuple(choices), name=name,
                   type=type or (builtins.type(default) if default is not None else None), default=default)
