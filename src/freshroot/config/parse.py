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


def parse_text(text: str, file: str) -> Document:
    """Parse TOML ``text`` read from ``file`` (the name used in messages)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise syntax_error(e, text, file) from None
    return Document(file, data, locate(text, file) if data else LazyPositions(dict))


def parse_bytes(raw: bytes, file: str) -> Document:
    return parse_text(decode(raw, file), file)
