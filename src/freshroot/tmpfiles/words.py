"""Word splitting and C unescaping, as systemd's extract_first_word() and cunescape() do them.

Lines are handled as ``str`` decoded with ``surrogateescape``, so a byte that is not UTF-8 (or one
produced by ``\\xNN`` / octal escapes, which systemd copies as a raw byte) is a lone surrogate
U+DC80..U+DCFF and comes back as the same byte when encoded with ``surrogateescape``.
"""

from __future__ import annotations

import re

WHITESPACE = " \t\n\r"
_SIMPLE = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", '"': '"', "'": "'", "s": " ",
}
_HEX = "0123456789abcdefABCDEF"


class EscapeError(ValueError):
    """An invalid escape sequence or unbalanced quoting (systemd's -EINVAL). ``pos`` is where
    extract_first_word() leaves its cursor on failure (systemd prints the rest from there)."""

    def __init__(self, message: str, pos: int | None = None) -> None:
        super().__init__(message)
        self.pos = pos


def raw_byte(value: int) -> str:
    """The character that stands for one raw byte (as systemd copies ``\\xNN`` into the word)."""
    if value < 0x80:
        return chr(value)
    return chr(0xDC00 + value)


def _hex(s: str, n: int) -> int | None:
    if len(s) < n or any(c not in _HEX for c in s[:n]):
        return None
    return int(s[:n], 16)


def unescape_one(s: str) -> tuple[str, int]:
    """Unescape the sequence at the start of ``s`` (just after a backslash).

    Returns the characters it stands for and how many input characters it used. NUL is refused,
    as systemd refuses it (accept_nul is false everywhere tmpfiles unescapes).
    """
    if not s:
        raise EscapeError("trailing backslash")
    c = s[0]
    if c in _SIMPLE:
        return _SIMPLE[c], 1
    if c == "x":
        v = _hex(s[1:], 2)
        if v is None or v == 0:
            raise EscapeError(f"bad escape \\{s[:3]}")
        return raw_byte(v), 3
    if c in "uU":
        n = 4 if c == "u" else 8
        v = _hex(s[1:], n)
        if v is None or v == 0:
            raise EscapeError(f"bad escape \\{s[:n + 1]}")
        if v > 0x10FFFF or 0xD800 <= v <= 0xDFFF:
            raise EscapeError(f"bad escape \\{s[:n + 1]}")  # not a valid code point
        return chr(v), n + 1
    if c in "01234567":
        if len(s) < 3 or s[1] not in "01234567" or s[2] not in "01234567":
            raise EscapeError(f"bad escape \\{s[:3]}")
        v = int(s[:3], 8)
        if v == 0 or v > 255:
            raise EscapeError(f"bad escape \\{s[:3]}")
        return raw_byte(v), 3
    raise EscapeError(f"bad escape \\{c}")


def cunescape(s: str, *, relax: bool = False) -> str:
    """systemd's cunescape(): resolve every backslash escape in ``s``."""
    if "\\" not in s:
        return s
    out: list[str] = []
    i = 0
    n = len(s)
    while True:
        j = s.find("\\", i)  # copy the text up to the next escape in one piece
        if j < 0:
            out.append(s[i:])
            break
        out.append(s[i:j])
        if j + 1 == n:
            if relax:
                out.append("\\")
                break
            raise EscapeError("trailing backslash")
        try:
            text, used = unescape_one(s[j + 1:])
        except EscapeError:
            if not relax:
                raise
            out.append("\\")
            i = j + 1
            continue
        out.append(text)
        i = j + 1 + used
    return "".join(out)


def extract_first_word(s: str, pos: int) -> tuple[str | None, int | None]:
    """One word of ``s`` from ``pos``, with EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE.

    Returns (word, next position). The next position is None at the end of the string; when
    the word was ended by whitespace, it points past all following whitespace. The word is None
    when only whitespace was left. Quotes may start anywhere in a word and do not end it.
    """
    n = len(s)
    while pos < n and s[pos] in WHITESPACE:
        pos += 1
    if pos >= n:
        return None, None
    out: list[str] = []
    quote = ""
    while pos < n:
        c = s[pos]
        if c == "\\":
            try:
                text, used = unescape_one(s[pos + 1:])
            except EscapeError as e:
                raise EscapeError(str(e), pos + 1) from None
            out.append(text)
            pos += 1 + used
        elif quote:
            if c == quote:
                quote = ""
            else:
                out.append(c)
            pos += 1
        elif c in "'\"":
            quote = c
            pos += 1
        elif c in WHITESPACE:
            while pos < n and s[pos] in WHITESPACE:
                pos += 1
            return "".join(out), (pos if pos < n else None)
        else:
            out.append(c)
            pos += 1
    if quote:
        raise EscapeError("unbalanced quoting", n)
    return "".join(out), None


_PLAIN_SPLIT = re.compile(r"[ \t\n\r]+")


def split_fields(line: str, count: int) -> tuple[list[str], str | None]:
    """Up to ``count`` words, and the rest of the line after them (None when nothing is left)."""
    stripped = line.lstrip(WHITESPACE)
    if stripped.isascii() and stripped.isprintable():
        # Its only whitespace is " ": str.split (which would also split at other whitespace
        # than systemd's " \t\n\r") cuts the same words, faster than the regex.
        parts = stripped.split(None, count)
    else:
        parts = _PLAIN_SPLIT.split(stripped, maxsplit=count)
        if parts and parts[-1] == "":
            parts.pop()  # trailing whitespace
    rest = parts.pop() if len(parts) > count else None
    # The rest is returned as written, so only the words decide: with nothing to unquote or
    # unescape in them, plain splitting gives the same words, much faster.
    words = stripped if rest is None else stripped[:len(stripped) - len(rest)]
    if "\\" not in words and '"' not in words and "'" not in words:
        return parts, rest
    return _extract_fields(line, count)


def _extract_fields(line: str, count: int) -> tuple[list[str], str | None]:
    words: list[str] = []
    pos: int | None = 0
    while len(words) < count and pos is not None:
        word, pos = extract_first_word(line, pos)
        if word is None:
            break
        words.append(word)
    rest = None if pos is None else line[pos:]
    return words, rest
