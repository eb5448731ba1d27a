"""A generator of TOML documents that knows the line of every key path it writes.

It writes the text itself (not through a TOML library), so the test of the position scanner
compares two independent accounts of the same document: what this generator meant and what
the scanner found. Everything TOML 1.0 allows in a declaration is drawn: all four string
kinds with escapes, quotes and comment characters inside, bare/quoted/dotted keys with
whitespace around the dots, single- and multi-line arrays with comments between elements,
inline tables (with multi-line values inside), table headers with implicit parents, a
super-table defined after its sub-table, arrays of tables with sub-tables and nested arrays
of tables, CRLF line ends.
"""

from __future__ import annotations

import string
from typing import Any

from hypothesis import strategies as st

from freshroot.config.table import KeyPath

BARE = string.ascii_letters + string.digits + "_-"
# Text with the characters that trip scanners: quotes, comment and bracket characters, escapes.
_TRICKY = st.sampled_from([*"ab #[]{}=,.'\"\\\t", "é", "€", "\U0001f600", "\x01", "\x7f"])
_TEXT = st.lists(_TRICKY, max_size=8).map("".join)


def _escape_basic(s: str, draw: Any) -> str:
    out = []
    for c in s:
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c == "\n":
            out.append("\\n")
        elif (ord(c) < 0x20 and c != "\t") or c == "\x7f":
            out.append(f"\\u{ord(c):04x}")
        elif draw(st.integers(0, 9)) == 0:
            out.append(f"\\U{ord(c):08x}" if ord(c) > 0xFFFF else f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return "".join(out)


class Writer:
    def __init__(self, draw: Any) -> None:
        self.draw = draw
        self.nl = draw(st.sampled_from(["\n", "\n", "\r\n"]))
        self.parts: list[str] = []
        self.line = 1
        self.expected: dict[KeyPath, int] = {}
        self.used: dict[KeyPath, set[str]] = {}

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.line += text.count("\n")

    def newline(self) -> None:
        self.write(self.nl)

    def expect(self, path: KeyPath, *, first: bool = False) -> None:
        if first:
            self.expected.setdefault(path, self.line)
        else:
            self.expected[path] = self.line

    def flip(self, chance: int = 2) -> bool:
        return bool(self.draw(st.integers(0, chance - 1)) == 0)

    def ws(self) -> str:
        return str(self.draw(st.sampled_from(["", " ", "  ", "\t"])))

    def comment(self) -> str:
        return "# " + str(self.draw(_TEXT)).replace("\n", "").replace("\x01", "").replace("\x7f", "")

    def blank_lines(self) -> None:
        for _ in range(self.draw(st.integers(0, 2))):
            if self.flip():
                self.write(self.ws() + self.comment())
            self.newline()

    # --- keys ---

    def fresh(self, table: KeyPath) -> str:
        used = self.used.setdefault(table, set())
        name = str(self.draw(st.one_of(st.text(BARE, min_size=1, max_size=6), _TEXT)))
        if name in used:
            name += f"~{len(used)}"
        used.add(name)
        return name

    def key_text(self, name: str) -> str:
        if name and all(c in BARE for c in name) and self.flip():
            return name
        literal_ok = all(c not in "'\n\x7f" and (c >= " " or c == "\t") for c in name)
        if literal_ok and self.flip():
            return f"'{name}'"
        return f'"{_escape_basic(name, self.draw)}"'

    def dotted(self, names: list[str]) -> str:
        return "".join((self.ws() + "." + self.ws() if i else "") + self.key_text(n)
                       for i, n in enumerate(names))

    # --- values ---

    def string_value(self) -> None:
        kind = self.draw(st.sampled_from(["basic", "literal", "ml-basic", "ml-literal"]))
        text = str(self.draw(_TEXT))
        if kind == "basic":
            self.write(f'"{_escape_basic(text, self.draw)}"')
        elif kind == "literal":
            self.write("'" + "".join(c for c in text if c not in "'\x01\x7f") + "'")
        elif kind == "ml-basic":
            self.write('"""' + (self.nl if self.flip() else ""))
            for _ in range(self.draw(st.integers(0, 4))):
                piece = self.draw(st.sampled_from(["text", "nl", "quotes", "escape", "line-end"]))
                if piece == "text":
                    self.write(_escape_basic(text, self.draw))
                elif piece == "nl":
                    self.newline()
                elif piece == "quotes":
                    self.write(self.draw(st.sampled_from(['"', '""'])) + "x")
                elif piece == "escape":
                    self.write(self.draw(st.sampled_from(["\\n", '\\"', "\\\\", "\\t", '\\"\\"\\"'])))
                else:
                    self.write("\\" + self.nl + self.ws())
            self.write(self.draw(st.sampled_from(["", '"', '""'])) + '"""')
        else:
            self.write("'''" + (self.nl if self.flip() else ""))
            for _ in range(self.draw(st.integers(0, 4))):
                piece = self.draw(st.sampled_from(["text", "nl", "quotes"]))
                if piece == "text":
                    self.write("".join(c for c in text if c not in "'\x01\x7f"))
                elif piece == "nl":
                    self.newline()
                else:
                    self.write(self.draw(st.sampled_from(["'", "''"])) + "x")
            self.write(self.draw(st.sampled_from(["", "'", "''"])) + "'''")

    def value(self, path: KeyPath, depth: int) -> None:
        kinds = ["string", "string", "scalar"] + (["array", "inline"] if depth < 3 else [])
        kind = self.draw(st.sampled_from(kinds))
        if kind == "string":
            self.string_value()
        elif kind == "scalar":
            self.write(self.draw(st.sampled_from([
                "1", "-17", "1_000", "0x1f", "0o17", "0b101", "3.14", "-0.5e3", "inf", "-nan", "true",
                "false", "1979-05-27 07:32:00Z", "1979-05-27T07:32:00.5-07:00", "07:32:00", "1979-05-27",
            ])))
        elif kind == "array":
            self.array(path, depth)
        else:
            self.inline_table(path, depth)

    def array(self, path: KeyPath, depth: int) -> None:
        count = self.draw(st.integers(0, 4))
        multi = self.flip()
        self.write("[")
        for i in range(count):
            if multi:
                self.newline()
                self.blank_lines()
                self.write(self.ws())
            elif i:
                self.write(self.ws())
            self.expect((*path, i))
            self.value((*path, i), depth + 1)
            if i < count - 1 or self.flip():
                self.write(self.ws() + ",")
            if multi and self.flip():
                self.write(" " + self.comment())
        if multi:
            self.newline()
            self.blank_lines()
        self.write(self.ws() + "]")

    def inline_table(self, path: KeyPath, depth: int) -> None:
        self.write("{" + self.ws())
        pairs = self.draw(st.integers(0, 3))
        for i in range(pairs):
            if i:
                self.write(self.ws() + "," + self.ws())
            self.key_value(path, depth + 1, inline=True)
        self.write(self.ws() + "}")

    def key_value(self, table: KeyPath, depth: int, *, inline: bool = False) -> None:
        if self.flip(4):  # a dotted key: its intermediate tables start here
            outer = self.fresh(table)
            inner = self.fresh((*table, outer))
            self.expect((*table, outer), first=True)
            self.expect((*table, outer, inner))
            self.write(self.dotted([outer, inner]))
            path: KeyPath = (*table, outer, inner)
        else:
            name = self.fresh(table)
            self.expect((*table, name))
            self.write(self.key_text(name))
            path = (*table, name)
        self.write(self.ws() + "=" + self.ws())
        self.value(path, depth)
        if not inline:
            if self.flip(3):
                self.write(self.ws() + self.comment())
            self.newline()

    def body(self, table: KeyPath) -> None:
        for _ in range(self.draw(st.integers(0, 3))):
            self.blank_lines()
            self.write(self.ws())
            self.key_value(table, 0)

    # --- headers ---

    def header(self, names: list[str], *, array: bool) -> None:
        o, c = ("[[", "]]") if array else ("[", "]")
        self.write(self.ws() + o + self.ws() + self.dotted(names) + self.ws() + c)
        if self.flip(3):
            self.write(self.ws() + self.comment())
        self.newline()

    def table_section(self) -> None:
        names = [self.fresh(())]
        for _ in range(self.draw(st.integers(0, 2))):
            names.append(self.fresh(tuple(names)))
        self.blank_lines()
        for n in range(1, len(names)):
            self.expect(tuple(names[:n]), first=True)
        self.expect(tuple(names))
        self.header(names, array=False)
        self.body(tuple(names))
        if len(names) > 1 and self.flip():  # the super-table, defined after its sub-table
            self.blank_lines()
            self.expect(tuple(names[:-1]))
            self.header(names[:-1], array=False)
            self.body(tuple(names[:-1]))

    def array_section(self) -> None:
        name = self.fresh(())
        for index in range(self.draw(st.integers(1, 3))):
            self.blank_lines()
            self.expect((name,), first=True)
            self.expect((name, index))
            self.header([name], array=True)
            self.body((name, index))
            element: KeyPath = (name, index)
            if self.flip(3):
                sub = self.fresh(element)
                self.expect((*element, sub))
                self.header([name, sub], array=False)
                self.body((*element, sub))
            if self.flip(3):
                inner = self.fresh(element)
                for j in range(self.draw(st.integers(1, 2))):
                    self.expect((*element, inner), first=True)
                    self.expect((*element, inner, j))
                    self.header([name, inner], array=True)
                    self.body((*element, inner, j))

    def document(self) -> str:
        self.body(())
        for _ in range(self.draw(st.integers(0, 3))):
            if self.flip():
                self.table_section()
            else:
                self.array_section()
        self.blank_lines()
        return "".join(self.parts)


@st.composite
def documents(draw: Any) -> tuple[str, dict[KeyPath, int]]:
    """A TOML document and the line of each key path in it."""
    writer = Writer(draw)
    text = writer.document()
    return text, writer.expected


def all_paths(value: Any, path: KeyPath = ()) -> set[KeyPath]:
    """Every key path in what tomllib produced (tables, keys and array elements)."""
    found: set[KeyPath] = {path} if path else set()
    if isinstance(value, dict):
        for key, child in value.items():
            found |= all_paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found |= all_paths(child, (*path, index))
    return found
