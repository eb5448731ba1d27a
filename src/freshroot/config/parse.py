"""One TOML file -> its values and the file:line of every key.

tomllib reads the values; :mod:`freshroot.config.positions` finds the lines. Every problem
becomes a ConfigError that names the file and, where it can, the line.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from freshroot.config.positions import LazyPositions, locate
from freshroot.config.table import KeyPath, Table
from freshroot.errors import ConfigError, Location

# tomllib (3.11) puts the position in the message only: "Invalid value (at line 3, column 9)".
_AT_LINE = re.compile(r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$", re.DOTALL)
_AT_END = re.compile(r"^(?P<msg>.*) \(at end of document\)$", re.DOTALL)
MAX_DEPTH = 64  # levels of nested tables and arrays; a declaration has about six


@dataclass(frozen=True, slots=True)
class Document:
    """One parsed file: what tomllib made of it, and where each key path was written."""

    file: str
    data: dict[str, Any]
    positions: Mapping[KeyPath, Location]

    def table(self) -> Table:
        return Table(self.data, (), self.file, self.positions)


def decode(raw: bytes, file: str) -> str:
    """UTF-8 text of a declaration file; anything else is a ConfigError naming the line."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a byte-order mark is skipped, as systemd's parsers do (some editors write one)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise ConfigError(
            f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {column})",
            location=Location(file, line), hint="TOML files must be UTF-8 encoded",
        ) from None


def syntax_error(error: tomllib.TOMLDecodeError, text: str, file: str) -> ConfigError:
    message = str(error)
    if (m := _AT_LINE.match(message)) is not None:
        return ConfigError(
            f"TOML syntax error: {m['msg']} (column {m['col']})", location=Location(file, int(m["line"]))
        )
    if (m := _AT_END.match(message)) is not None:
        last = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        return ConfigError(f"TOML syntax error: {m['msg']} (at the end of the file)",
                           location=Location(file, max(last, 1)))
    return ConfigError(f"TOML syntax error: {message}", location=Location(file))


def _too_deep(text: str) -> int | None:
    """The line where arrays and inline tables nest deeper than MAX_DEPTH, or None.

    A rough scan (strings and comments skipped, headers counted as a level): it only has
    to find the line of a document already known to be too deep.
    """
    depth, line, quote, i = 0, 1, "", 0
    while i < len(text):
        c = text[i]
        if c == "\n":
            line += 1
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "#":
            while i + 1 < len(text) and text[i + 1] != "\n":
                i += 1
        elif c in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line
        elif c in "]}":
            depth -= 1
        i += 1
    return None


def _too_deep_path(data: dict[str, Any]) -> KeyPath | None:
    """The key path of a value nested more than MAX_DEPTH levels deep in ``data``, or None
    (found without recursion)."""
    stack: list[tuple[Any, KeyPath]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) >= MAX_DEPTH:
            return path
        items = value.items() if isinstance(value, dict) else enumerate(value)
        stack += [(v, (*path, k)) for k, v in items if isinstance(v, dict | list)]
    return None


def _deep_line(text: str, data: dict[str, Any] | None, file: str) -> int | None:
    line = _too_deep(text)
    if line is None and data is not None and (path := _too_deep_path(data)) is not None:
        # Dotted keys (a.b.c... = 1) nest without brackets: ask the position scanner.
        try:
            positions = locate(text, file)
            found = next((p for n in range(len(path), 0, -1) if (p := positions.get(path[:n])) is not None), None)
        except RecursionError:
            found = None
        line = None if found is None else found.line
    return line


def parse_text(text: str, file: str) -> Document:
    """Parse TOML ``text`` read from ``file`` (the name used in messages)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise syntax_error(e, text, file) from None
    except RecursionError:  # tomllib recurses once per level of nested arrays and tables
        data = None
    if data is None or _too_deep_path(data) is not None:
        # Refused here, so that merging, positions and the section parsers (which walk the
        # values level by level) never meet a document deep enough to exhaust the stack.
        raise ConfigError(f"arrays or tables are nested more than {MAX_DEPTH} levels deep",
                          location=Location(file, _deep_line(text, data, file)),
                          hint="a declaration needs a handful of levels; is this file generated wrongly?")
    return Document(file, data, locate(text, file) if data else LazyPositions(dict))


def parse_bytes(raw: bytes, file: str) -> Document:
    return parse_text(decode(raw, file), file)
