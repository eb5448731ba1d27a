"""Shell globs with the meaning systemd-tmpfiles gives them.

Paths in glob lines are matched with fnmatch(FNM_PATHNAME|FNM_PERIOD): '*', '?' and '[...]'
never match '/', and a '.' at the start of a name must be written out. Expansion against the
file system (glob(3) with GLOB_BRACE) also expands '{a,b}'.

A GlobIndex answers "does any glob line match this path" in time that does not grow with
the number of glob lines for the directories no glob can reach: patterns are filed by their
directory part, which is matched once per directory, not once per entry.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# What makes glob(3) look at a path component with fnmatch instead of taking it as written:
# '*', '?', '[' (even unclosed), and a backslash (an escape: "a\b" matches "ab").
_MAGIC = re.compile(r"[*?\[\\]")
_NEVER = "(?!)"  # a component fnmatch() can match nothing with
# POSIX character classes in the C locale (systemd-tmpfiles does not set a locale).
_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "0-9a-zA-Z", "upper": "A-Z", "lower": "a-z",
    "space": " \t\n\r\f\v", "blank": " \t", "xdigit": "0-9a-fA-F", "cntrl": "\x00-\x1f\x7f",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"), "print": " -~", "graph": "!-~",
}


def byte_chars(text: str) -> str:
    """``text``'s bytes, one character each (latin-1). systemd-tmpfiles runs in the C locale,
    where fnmatch() matches bytes: '?' is one byte of a UTF-8 character, ranges compare byte
    values, and a name decoded from bytes that happen to be UTF-8 still matches the pattern
    that wrote them as escapes. Patterns and names are matched in this form."""
    return text if text.isascii() else text.encode("utf-8", "surrogateescape").decode("latin-1")


def is_glob(path: str) -> bool:
    """Whether glob(3) would match ``path`` against directory entries rather than take it
    literally (a backslash counts: it escapes the next character)."""
    return _MAGIC.search(path) is not None


def has_magic(component: str) -> bool:
    """glibc's __glob_pattern_p(): an unescaped '*' or '?', or a '[' with a ']' after it. A
    directory part without any is taken literally by glob(3), backslashes removed."""
    bracket = False
    i, n = 0, len(component)
    while i < n:
        c = component[i]
        if c in "*?":
            return True
        if c == "\\":
            i += 1
        elif c == "[":
            bracket = True
        elif c == "]" and bracket:
            return True
        i += 1
    return False


def unescape_literal(component: str) -> str:
    """How glob(3) unescapes a directory part without magic: each backslash is dropped and the
    character after it kept (a backslash at the end is dropped too)."""
    return re.sub(r"\\(.?)", r"\1", component, flags=re.DOTALL)


def _bracket(pattern: str, i: int) -> tuple[str | None, int]:
    """The bracket expression whose '[' is at ``pattern[i - 1]``, as glibc's fnmatch() reads it:
    (regex, index after it); (None, i) when it is unclosed and the '[' is a literal character;
    (_NEVER, len) when glibc's matcher fails on it whatever the name (a range or an escape cut
    off by the end of the pattern, an unknown class)."""
    n = len(pattern)
    j = i
    negate = j < n and pattern[j] in "!^"
    if negate:
        j += 1
    members: list[str] = []
    first = True
    while True:
        if j >= n:
            return None, i  # unclosed: the '[' is an ordinary character
        c = pattern[j]
        j += 1
        if c == "]" and not first:
            break
        first = False
        if c == "\\":
            if j >= n:
                return _NEVER, n
            c = pattern[j]
            j += 1
        elif c == "[" and j < n and pattern[j] == ":":
            end = pattern.find(":]", j + 1)
            if end != -1:
                cls = _CLASSES.get(pattern[j + 1:end])
                if cls is None:
                    return _NEVER, n  # an invalid class name: FNM_NOMATCH
                members.append(cls)
                j = end + 2
                continue
        elif c == "[" and j < n and pattern[j] in ".=":
            # A collating symbol [.x.] or an equivalence class [=x=]: in the C locale, the
            # one character x (and it may start a range, as any member).
            end = pattern.find(pattern[j] + "]", j + 1)
            if end == -1 and pattern[j] == ".":
                return _NEVER, n  # an unclosed collating symbol: FNM_NOMATCH
            if end != -1:
                if end - j - 1 != 1:
                    return _NEVER, n
                c = pattern[j + 1]
                j = end + 2
        if j < n and pattern[j] == "-" and (j + 1 >= n or pattern[j + 1] != "]"):
            if j + 1 >= n:
                return _NEVER, n  # "[a-" : the range's end is the end of the pattern
            end_c = pattern[j + 1]
            k = j + 2
            if end_c == "\\":
                if k >= n:
                    return _NEVER, n
                end_c = pattern[k]
                k += 1
            if ord(c) <= ord(end_c):  # an empty range matches nothing
                members.append(f"{re.escape(c)}-{re.escape(end_c)}")
            j = k
            continue
        members.append(re.escape(c))
    body = "".join(members)
    if not body:
        return ("[^/]" if negate else _NEVER), j
    return (f"[^/{body}]" if negate else f"(?!/)[{body}]"), j


def _component_regex(pattern: str) -> str:
    """One path component of an fnmatch(FNM_PATHNAME|FNM_PERIOD) pattern as a regex (no '/'
    inside), with glibc's reading of escapes and of unclosed or cut-off brackets. The regex
    matches names in their byte_chars() form."""
    pattern = byte_chars(pattern)
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            regex, i = _bracket(pattern, i)
            if regex == _NEVER:
                return _NEVER
            out.append(re.escape("[") if regex is None else regex)
        elif c == "\\":
            if i >= n:
                return _NEVER  # "Trailing \\ loses."
            out.append(re.escape(pattern[i]))
            i += 1
        else:
            out.append(re.escape(c))
    regex = "".join(out)
    # FNM_PERIOD: a leading '.' matches only a literal '.'.
    if not pattern.startswith(".") and not pattern.startswith("\\."):
        regex = r"(?!\.)" + regex
    return regex


@functools.lru_cache(maxsize=4096)
def compile_path(pattern: str) -> re.Pattern[str]:
    """The regex that fnmatch(pattern, path, FNM_PATHNAME|FNM_PERIOD) is, for a whole path
    (in its byte_chars() form)."""
    parts = pattern.split("/")
    return re.compile("/".join(_component_regex(p) if p else "" for p in parts) + r"\Z", re.DOTALL)


def fnmatch_path(pattern: str, path: str) -> bool:
    return compile_path(pattern).match(byte_chars(path)) is not None


def expand_braces(pattern: str) -> list[str]:
    """GLOB_BRACE: 'a{b,c}d' -> ['abd', 'acd'], nested braces too. As glibc, a balanced brace
    expands whatever it holds, one alternative or none ('{a}' -> 'a', '{}a' -> 'a'); an
    unbalanced one stays literal, and a backslash-escaped brace is no brace."""
    depth = 0
    start = -1
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            i += 2
            continue
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                options = _split_top_level(pattern[start + 1 : i])
                head, tail = pattern[:start], pattern[i + 1 :]
                return [x for o in options for x in expand_braces(head + o + tail)]
        i += 1
    return [pattern]


def _split_top_level(inner: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    i = 0
    while i < len(inner):
        c = inner[i]
        if c == "\\" and i + 1 < len(inner):
            cur.append(inner[i:i + 2])
            i += 2
            continue
        i += 1
        if c == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        depth += c == "{"
        depth -= c == "}" and depth > 0
        cur.append(c)
    parts.append("".join(cur))
    return parts


@dataclass(frozen=True)
class _Filed:
    """One glob pattern split into its directory part and its last component."""
    directory: re.Pattern[str]  # the pattern's directory part
    name: str  # the last component's regex source


class GlobIndex:
    """Which of a set of glob patterns match a path, cheaply, directory by directory."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self._filed: list[_Filed] = []
        for pattern in patterns:
            directory, _, name = pattern.rpartition("/")
            self._filed.append(_Filed(compile_path(directory or "/"), _component_regex(name)))
        self._cache: dict[str, re.Pattern[str] | None] = {}

    def __bool__(self) -> bool:
        return bool(self._filed)

    def for_directory(self, directory: str) -> re.Pattern[str] | None:
        """One regex matching the names in ``directory`` that some pattern matches, or None
        (names in their byte_chars() form)."""
        if directory in self._cache:
            return self._cache[directory]
        names = [f.name for f in self._filed if f.directory.match(byte_chars(directory))]
        found = re.compile("|".join(f"(?:{n})" for n in names) + r"\Z" if len(names) > 1 else
                           (names[0] + r"\Z")) if names else None
        if len(self._cache) < 65536:
            self._cache[directory] = found
        return found

    def matches(self, path: str) -> bool:
        directory, _, name = path.rpartition("/")
        regex = self.for_directory(directory or "/")
        return regex is not None and regex.match(byte_chars(name)) is not None


def split_components(pattern: str) -> Sequence[str]:
    return [c for c in pattern.split("/") if c]
