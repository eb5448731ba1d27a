"""Where each key of a TOML document was written.

tomllib gives values and no line numbers. This scanner walks the same text and records, for
every key path, the 1-based line it starts on: table headers (``[a."b c".d]``), arrays of
tables (``[[x]]``, one index per element), dotted keys, keys inside inline tables, and every
array element (its first line), with paths as :data:`freshroot.config.table.KeyPath`
(strings for keys, ints for indices). So ``persist."/persist".directories[3].mode`` maps to
the line where ``mode`` of the fourth entry is written.

It reads only positions; values come from tomllib. It is meant for text tomllib has already
accepted, so it does not validate: on malformed input it records what it can and stops.
"""

from __future__ import annotations

import bisect
import contextlib
import re
from collections.abc import Callable, Iterator, Mapping

from freshroot.config.table import KeyPath
from freshroot.errors import Location

# Each pattern matches at the scanner's position (re.match semantics via .match(s, pos)).
_WS = re.compile(r"[ \t]*")
_BLANK = re.compile(r"(?:[ \t\r\n]|#[^\n]*)*")  # whitespace, newlines and comments
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_BASIC = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
_LITERAL = re.compile(r"'([^'\n]*)'")
# Multi-line strings may hold one or two quotes right before the closing three, so the
# closing run is three to five quotes long and the extra ones belong to the content.
_ML_BASIC = re.compile(r'"""(?:[^"\\]+|\\[\s\S]|"{1,2}(?!"))*"{3,5}')
_ML_LITERAL = re.compile(r"'''[\s\S]*?'''(?:'{1,2})?")
# Numbers, booleans, dates and times: up to a separator (a local date-time may hold a space).
_SCALAR = re.compile(r"[^,\]}#\r\n]*")

_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\", "e": "\x1b"}
_ESCAPE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|x([0-9A-Fa-f]{2})|(.))")


def _unescape(body: str) -> str:
    if "\\" not in body:
        return body

    def one(m: re.Match[str]) -> str:
        code = m.group(1) or m.group(2) or m.group(3)
        if code is not None:
            return chr(int(code, 16))
        return _ESCAPES.get(m.group(4), m.group(4))

    return _ESCAPE.sub(one, body)


class _Stop(Exception):  # noqa: N818 - internal control flow, never escapes
    """Malformed input: give up quietly with what was recorded."""


class _Scanner:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        self.out: dict[KeyPath, int] = {}
        # Arrays of tables seen so far (resolved path -> number of elements), so that a later
        # header [x.y] or [[x.y]] lands in the last element of [[x]], as TOML says.
        self.aot: dict[KeyPath, int] = {}

    def line(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1

    def peek(self, k: int = 1) -> str:
        return self.s[self.i : self.i + k]

    def skip(self, pattern: re.Pattern[str]) -> None:
        m = pattern.match(self.s, self.i)
        if m is not None:
            self.i = m.end()

    def expect(self, token: str) -> None:
        if not self.s.startswith(token, self.i):
            raise _Stop
        self.i += len(token)

    # --- keys ------------------------------------------------------------------------------

    def simple_key(self) -> str:
        for pattern, decode in ((_BARE_KEY, False), (_BASIC, True), (_LITERAL, False)):
            m = pattern.match(self.s, self.i)
            if m is not None:
                self.i = m.end()
                if pattern is _BARE_KEY:
                    return m.group(0)
                return _unescape(m.group(1)) if decode else m.group(1)
        raise _Stop

    def key(self) -> list[str]:
        """A dotted key; whitespace is allowed around the dots."""
        parts = [self.simple_key()]
        while True:
            self.skip(_WS)
            if self.peek() != ".":
                return parts
            self.i += 1
            self.skip(_WS)
            parts.append(self.simple_key())

    def record(self, path: KeyPath, line: int, *, explicit: bool = True) -> None:
        if explicit:
            self.out[path] = line
        else:
            self.out.setdefault(path, line)

    # --- values ----------------------------------------------------------------------------

    def value(self, path: KeyPath) -> None:
        c = self.peek()
        if c == '"':
            pattern = _ML_BASIC if self.peek(3) == '"""' else _BASIC
        elif c == "'":
            pattern = _ML_LITERAL if self.peek(3) == "'''" else _LITERAL
        elif c == "[":
            self.array(path)
            return
        elif c == "{":
            self.inline_table(path)
            return
        else:
            pattern = _SCALAR
        m = pattern.match(self.s, self.i)
        if m is None or m.end() == self.i:
            raise _Stop
        self.i = m.end()

    def array(self, path: KeyPath) -> None:
        self.expect("[")
        index = 0
        while True:
            self.skip(_BLANK)
            if self.peek() == "]":
                self.i += 1
                return
            element = (*path, index)
            self.record(element, self.line(self.i))
            self.value(element)
            index += 1
            self.skip(_BLANK)
            if self.peek() == ",":
                self.i += 1
            elif self.peek() != "]":
                raise _Stop

    def inline_table(self, path: KeyPath) -> None:
        self.expect("{")
        while True:
            # TOML 1.0 keeps inline tables on one line; newlines are tolerated here (TOML 1.1).
            self.skip(_BLANK)
            if self.peek() == "}":
                self.i += 1
                return
            self.key_value(path)
            self.skip(_BLANK)
            if self.peek() == ",":
                self.i += 1
            elif self.peek() != "}":
                raise _Stop

    def key_value(self, table: KeyPath) -> None:
        line = self.line(self.i)
        keys = self.key()
        for n in range(1, len(keys)):  # dotted keys define their intermediate tables
            self.record((*table, *keys[:n]), line, explicit=False)
        path = (*table, *keys)
        self.record(path, line)
        self.skip(_WS)
        self.expect("=")
        self.skip(_WS)
        self.value(path)

    # --- headers and the document ----------------------------------------------------------

    def resolve(self, keys: list[str], line: int) -> KeyPath:
        """The path of a header's key, going into the last element of arrays of tables."""
        path: KeyPath = ()
        for key in keys:
            path = (*path, key)
            self.record(path, line, explicit=False)
            count = self.aot.get(path)
            if count is not None:
                path = (*path, count - 1)
        return path

    def header(self) -> KeyPath:
        line = self.line(self.i)
        array = self.peek(2) == "[["
        self.i += 2 if array else 1
        self.skip(_WS)
        keys = self.key()
        self.skip(_WS)
        self.expect("]]" if array else "]")
        if not array:
            path = self.resolve(keys, line)
            self.record(path, line)
            return path
        parent = self.resolve(keys[:-1], line)
        table = (*parent, keys[-1])
        count = self.aot.get(table, 0)
        self.aot[table] = count + 1
        self.record(table, line, explicit=False)
        element = (*table, count)
        self.record(element, line)
        return element

    def document(self) -> None:
        table: KeyPath = ()
        n = len(self.s)
        while True:
            self.skip(_BLANK)
            if self.i >= n:
                return
            if self.peek() == "[":
                table = self.header()
            else:
                self.key_value(table)


def scan(text: str) -> dict[KeyPath, int]:
    """Map every key path of the TOML ``text`` to the 1-based line it starts on."""
    scanner = _Scanner(text)
    with contextlib.suppress(_Stop, IndexError):
        scanner.document()
    return scanner.out


class LazyPositions(Mapping[KeyPath, Location]):
    """Positions computed on first use.

    Locations are needed only to report an error (or for ``config show -v``); a declaration
    that is fine, read at boot, never pays for the scan.
    """

    __slots__ = ("_compute", "_found")

    def __init__(self, compute: Callable[[], dict[KeyPath, Location]]) -> None:
        self._compute: Callable[[], dict[KeyPath, Location]] | None = compute
        self._found: dict[KeyPath, Location] = {}

    def _positions(self) -> dict[KeyPath, Location]:
        if self._compute is not None:
            self._found = self._compute()
            self._compute = None  # also drops what the closure held (texts, sources)
        return self._found

    def __getitem__(self, path: KeyPath) -> Location:
        return self._positions()[path]

    def __iter__(self) -> Iterator[KeyPath]:
        return iter(self._positions())

    def __len__(self) -> int:
        return len(self._positions())


def locate(text: str, file: str) -> LazyPositions:
    """The Location of every key path of ``text`` (read from ``file``), scanned when first needed."""
    return LazyPositions(lambda: {path: Location(file, line) for path, line in scan(text).items()})
