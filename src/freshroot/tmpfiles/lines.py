"""Splitting a configuration file into lines as systemd's read_line() does.

A line ends at '\\n', '\\r' or NUL. Directly following end-of-line characters of a *different*
kind belong to the same line end ("\\r\\n" and "\\n\\r" are one end, "\\n\\n" is two), and NUL
always ends the line end. A line longer than LONG_LINE_MAX makes the whole file unreadable.
"""

from __future__ import annotations

from collections.abc import Iterator

LONG_LINE_MAX = 1024 * 1024
_EOL = {0x0A: 1, 0x0D: 2, 0x00: 4}


class LineTooLong(Exception):  # noqa: N818 - mirrors ENOBUFS
    pass


def split_lines(data: bytes) -> Iterator[bytes]:
    """Yield each line's content (without its end). Raises LineTooLong on an overlong line."""
    if b"\r" not in data and b"\0" not in data:
        # Only '\n' line ends (nearly every file): each '\n' ends exactly one line.
        parts = data.split(b"\n")
        if parts[-1] == b"":
            parts.pop()
        for part in parts:
            if len(part) >= LONG_LINE_MAX:
                raise LineTooLong
            yield part
        return
    n = len(data)
    i = 0
    while i < n:
        start = i
        while i < n and data[i] not in _EOL:
            i += 1
        if i - start >= LONG_LINE_MAX:
            raise LineTooLong
        line = data[start:i]
        seen = 0
        while i < n:
            kind = _EOL.get(data[i], 0)
            if kind == 0 or seen & 4 or kind & seen:
                break
            seen |= kind
            i += 1
        yield line


def config_lines(data: bytes) -> Iterator[tuple[int, str]]:
    """(line number, stripped text) for each line that is not empty and not a '#' comment."""
    for number, raw in enumerate(split_lines(data), start=1):
        text = raw.decode("utf-8", "surrogateescape").strip(" \t\n\r")
        if not text or text.startswith("#"):
            continue
        yield number, text


def tldr_lines(data: bytes) -> Iterator[str]:
    """The lines --tldr shows: neither empty nor a '#' or ';' comment (kept as written)."""
    for raw in split_lines(data):
        text = raw.decode("utf-8", "surrogateescape")
        stripped = text.strip(" \t\n\r")
        if stripped and not stripped.startswith(("#", ";")):
            yield text
