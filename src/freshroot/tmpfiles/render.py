"""Writing tmpfiles.d text that systemd reads back as exactly the intended line.

The six fields are words: systemd unquotes and C-unescapes them, so anything that would split or
change a word (whitespace, quotes, backslashes, control bytes, bytes that are not UTF-8) is
written as a C escape. The argument is the raw rest of the line: for f, w, L and C systemd
C-unescapes it, so the same escaping applies (plus a leading or trailing blank, and a lone "-");
for the other types it is taken as written (t/T: ``name=value`` words, quoted as systemd
unquotes them) and may not contain a line break. Binary content
(a NUL, or bytes that are not UTF-8) is written base64-encoded with the '~' modifier.

'%' is left alone by default: specifiers (%h, %t, ...) mean in rendered settings what they mean
in tmpfiles.d. ``literal_percent=True`` writes '%%' so that the text means the characters given
(in the path, and in the arguments systemd expands specifiers in: f, w, L, C, t and T).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from freshroot.tmpfiles.model import USEC_INFINITY
from freshroot.tmpfiles.timespan import format_timespan

_UNESCAPED_ARGUMENT = frozenset("fFwLC")
_SPECIFIER_ARGUMENT = frozenset("tT")  # raw arguments whose specifiers systemd expands
_NAMED = {"\\": "\\\\", '"': '\\"', "'": "\\'", "\t": "\\t", "\n": "\\n", "\r": "\\r",
          "\a": "\\a", "\b": "\\b", "\f": "\\f", "\v": "\\v"}


class RenderError(ValueError):
    """A value that cannot be written as a tmpfiles.d line (a NUL, a line break in a raw argument)."""


def _escape_char(c: str, *, space: bool) -> str:
    if c in _NAMED:
        return _NAMED[c]
    if c == " ":
        return "\\x20" if space else c
    o = ord(c)
    if o == 0:
        raise RenderError("a NUL character cannot be written in a tmpfiles.d line")
    if 0xDC80 <= o <= 0xDCFF:  # a raw byte (surrogateescape): systemd's \xNN copies it as is
        return f"\\x{o - 0xDC00:02x}"
    if o < 0x20 or o == 0x7F:
        return f"\\x{o:02x}"
    return c


def escape_word(value: str, *, literal_percent: bool = False) -> str:
    """A word that extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE) turns back into ``value``."""
    if value == "":
        return '""'
    out = "".join(_escape_char(c, space=True) for c in value)
    if literal_percent:
        out = out.replace("%", "%%")
    if out == "-":
        return "\\x2d"  # a lone '-' would mean "unset"
    if out.startswith("#"):
        return "\\x23" + out[1:]  # only matters for the first word, harmless elsewhere
    return out


def escape_argument(value: str, type_letter: str, *, literal_percent: bool = False) -> str:
    """The argument field for ``type_letter`` (see the module docstring)."""
    if type_letter not in _UNESCAPED_ARGUMENT:
        if any(c in value for c in "\n\r\0"):
            raise RenderError(f"the argument of a {type_letter} line cannot contain a line break or NUL")
        if value.strip(" \t") != value or value in ("", "-"):
            raise RenderError(f"the argument of a {type_letter} line cannot start or end with a blank, "
                              "or be empty or '-'")
        if literal_percent and type_letter in _SPECIFIER_ARGUMENT:
            return value.replace("%", "%%")  # the extended attributes of t/T are expanded
        return value
    out = "".join(_escape_char(c, space=False) for c in value)
    if literal_percent:
        out = out.replace("%", "%%")
    if out[:1] in (" ", "\t"):
        out = "\\x20" + out[1:] if out[0] == " " else out
    if out.endswith(" "):
        out = out[:-1] + "\\x20"
    if out == "-":
        out = "\\x2d"
    return out


@dataclass(frozen=True, slots=True)
class Rule:
    """One line to render. ``mode``/``user``/``group``/``age`` are written as given (None: '-');
    ``argument`` as text, or ``data`` as bytes (base64 with '~' when not plain UTF-8)."""

    type: str  # with modifiers, e.g. "L+", "f~"
    path: str
    mode: str | int | None = None
    user: str | int | None = None
    group: str | int | None = None
    age: str | int | None = None  # text as in tmpfiles.d, or microseconds
    argument: str | None = None
    data: bytes | None = None


def _field(value: str | int | None, *, octal: bool = False) -> str:
    if value is None or value in ("", "-"):  # NixOS writes "-" for an unset field
        return "-"
    if isinstance(value, int):
        return f"{value:04o}" if octal else str(value)
    return escape_word(value)


def render_rule(rule: Rule, *, literal_percent: bool = False) -> str:
    """One tmpfiles.d line (without the newline)."""
    type_ = rule.type
    argument = rule.argument
    if rule.data is not None:
        try:
            text = rule.data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is None or "\0" in text:
            if "~" not in type_:
                type_ = type_[:1] + "~" + type_[1:]
            argument = base64.b64encode(rule.data).decode("ascii")
        else:
            argument = text
    age: str | int | None = rule.age
    if isinstance(age, int):
        age = "infinity" if age == USEC_INFINITY else format_timespan(age)
    fields = [
        type_,
        escape_word(rule.path, literal_percent=literal_percent),
        _field(rule.mode, octal=True),
        _field(rule.user),
        _field(rule.group),
        _field(age),
    ]
    line = " ".join(fields)
    # An argument "-" is NixOS's unset; content (data) "-" is the byte itself, escaped as \x2d.
    unset = ("",) if rule.data is not None else ("", "-")
    if argument is not None and argument not in unset:
        if "~" in type_[1:]:
            line += " " + argument  # base64 text: no escaping, no specifiers
        else:
            line += " " + escape_argument(argument, type_[:1], literal_percent=literal_percent)
    return line


def render_rules(rules: Sequence[str]) -> str:
    """Plain rule lines (NixOS' ``systemd.tmpfiles.rules``), one per line."""
    for r in rules:
        if "\n" in r or "\r" in r or "\0" in r:
            raise RenderError(f"a rule must be one line: {r!r}")
    return "".join(f"{r}\n" for r in rules)


SettingsEntry = Mapping[str, str | int | None]
Settings = Mapping[str, Mapping[str, Mapping[str, SettingsEntry]]]


def settings_rules(entries: Mapping[str, Mapping[str, SettingsEntry]]) -> list[Rule]:
    """NixOS' ``systemd.tmpfiles.settings.<name>``: path -> type -> {mode, user, group, age,
    argument} (an entry may also carry ``type`` to override its key, as in NixOS)."""
    rules = []
    for path, types in entries.items():
        for key, entry in types.items():
            type_ = entry.get("type") or key
            argument = entry.get("argument")
            rules.append(Rule(
                type=str(type_), path=path, mode=entry.get("mode"), user=entry.get("user"),
                group=entry.get("group"), age=entry.get("age"),
                argument=None if argument is None else str(argument),
            ))
    return rules


def render_settings(settings: Settings) -> dict[str, str]:
    """One file per settings name, as NixOS writes /etc/tmpfiles.d/<name>.conf."""
    return {
        f"{name}.conf": "".join(f"{render_rule(r)}\n" for r in settings_rules(entries))
        for name, entries in settings.items()
    }
