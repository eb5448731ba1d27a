"""A small writer of systemd unit files (and drop-ins), correct by construction.

A :class:`UnitFile` is a name and ordered sections; a section is an ordered list of
``Key=value`` lines, where a key may repeat (``After=`` twice, or ``ExecStart=`` reset with an
empty value and set again). Values are checked and escaped when added, so a rendered unit
means what the caller meant:

- '%' starts a specifier in almost every setting, so it is written '%%' unless the value is
  wrapped in :class:`Specifiers` (the caller wants ``%i`` expanded).
- A value cannot hold a newline, cannot end in a backslash (a line continuation), and cannot
  start or end with white space (systemd strips it): those raise UnitValueError rather
  than write a unit that means something else.
- Command lines (ExecStart= and friends) are built from an argv list with :func:`command`,
  which quotes words and escapes '\\', '"', '$' and '%' as systemd's command-line parser
  expects.

Booleans render as yes/no, integers as decimal, paths as strings.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from freshroot.errors import FreshrootError

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")
_SECTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9 -]*\Z|X-[^\]\n]+\Z")
# Words that need no quoting in a command line; anything else is double-quoted.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+\Z")


class UnitValueError(FreshrootError):
    """A value that no unit file line can carry as it is."""


@dataclass(frozen=True, slots=True)
class Specifiers:
    """A value whose '%' specifiers systemd is meant to expand (``%i``, ``%h``...)."""

    text: str


@dataclass(frozen=True, slots=True)
class Command:
    """A command line already quoted by :func:`command`: written as it is."""

    text: str


@dataclass(frozen=True, slots=True)
class Words:
    """A space-separated list value (RequiresMountsFor=, ReadWritePaths=, Environment=...),
    each word quoted as systemd's word splitter expects. Build it with :func:`words`."""

    text: str


Value = str | int | bool | os.PathLike[str] | Specifiers | Command | Words


def _check(key: str, text: str) -> str:
    if "\n" in text or "\r" in text or "\0" in text:
        raise UnitValueError(f"{key}={text!r}: a unit file value cannot contain a newline or NUL")
    if text.endswith("\\"):
        raise UnitValueError(f"{key}={text!r}: a value ending in '\\' would continue on the next line")
    if text != text.strip():
        raise UnitValueError(f"{key}={text!r}: systemd strips leading and trailing white space")
    return text


def render_value(key: str, value: Value) -> str:
    """The text after ``Key=`` for ``value``."""
    match value:
        case bool():
            return "yes" if value else "no"
        case int():
            return str(value)
        case Specifiers():
            return _check(key, value.text)
        case Command() | Words():
            return _check(key, value.text)
        case str():
            return _check(key, value).replace("%", "%%")
        case os.PathLike():
            return _check(key, os.fspath(value)).replace("%", "%%")
    raise TypeError(f"{key}: cannot write {type(value).__name__} in a unit file")


def _quote_word(word: str) -> str:
    if word and _PLAIN_WORD.match(word):
        return word.replace("%", "%%")
    escaped = (
        word.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$").replace("%", "%%").replace("\t", "\\t")
    )
    return f'"{escaped}"'


def words(items: Iterable[str | os.PathLike[str]]) -> Words:
    """A list setting's value: words with white space or quotes are double-quoted, '\\' and
    '"' escaped, '%' doubled (list settings expand specifiers but not $VARIABLES)."""
    out = []
    for item in items:
        word = os.fspath(item)
        if "\n" in word or "\0" in word:
            raise UnitValueError(f"{word!r}: a list item cannot contain a newline or NUL")
        text = word.replace("%", "%%")
        if not word or not _PLAIN_WORD.match(word):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out.append(text)
    return Words(" ".join(out))


def command(argv: Sequence[str | os.PathLike[str]], *, prefix: str = "") -> Command:
    """An ExecStart=-style command line running ``argv`` exactly, with no variable or
    specifier expansion. ``prefix`` is one of systemd's executable prefixes ("-", "+", "!",
    "@", ":"), e.g. "-" to ignore the exit status."""
    words = [os.fspath(a) for a in argv]
    if not words or not os.path.isabs(words[0]):
        raise UnitValueError(f"{words!r}: a command needs an absolute program path")
    if set(prefix) - set("-+!@:|"):
        raise UnitValueError(f"{prefix!r} is not an executable prefix")
    for word in words:
        if "\n" in word or "\0" in word:
            raise UnitValueError(f"{word!r}: a command word cannot contain a newline or NUL")
    # The program path is quoted like any other word; the prefix goes outside the quotes.
    return Command(prefix + " ".join(_quote_word(w) for w in words))


@dataclass(slots=True)
class Section:
    """One ``[Name]`` section: ordered ``Key=value`` lines; a key may repeat."""

    name: str
    lines: list[tuple[str, str]] = field(default_factory=list)

    def add(self, key: str, *values: Value) -> Section:
        """Add one ``key=value`` line per value (none: nothing). Returns self, for chaining."""
        if not _KEY.match(key):
            raise UnitValueError(f"{key!r} is not a unit file key")
        for value in values:
            self.lines.append((key, render_value(key, value)))
        return self

    def reset(self, key: str) -> Section:
        """An empty ``key=`` line: resets a list setting (ExecStart=, After=...) from earlier files."""
        if not _KEY.match(key):
            raise UnitValueError(f"{key!r} is not a unit file key")
        self.lines.append((key, ""))
        return self

    def extend(self, key: str, values: Iterable[Value]) -> Section:
        return self.add(key, *values)

    def get(self, key: str) -> list[str]:
        """The rendered values of ``key``, in order."""
        return [v for k, v in self.lines if k == key]

    def render(self) -> str:
        return f"[{self.name}]\n" + "".join(f"{k}={v}\n" for k, v in self.lines)


@dataclass(slots=True)
class UnitFile:
    """A unit file or drop-in: a name, a leading comment, ordered sections."""

    name: str
    comment: str = ""
    sections: list[Section] = field(default_factory=list)

    def section(self, name: str) -> Section:
        """The section called ``name``, created at the end if it is not there yet."""
        for section in self.sections:
            if section.name == name:
                return section
        if not _SECTION.match(name):
            raise UnitValueError(f"{name!r} is not a unit file section name")
        section = Section(name)
        self.sections.append(section)
        return section

    def render(self) -> str:
        head = "".join(f"# {line}".rstrip() + "\n" for line in self.comment.splitlines())
        body = "\n".join(s.render() for s in self.sections if s.lines)
        return head + ("\n" if head and body else "") + body
