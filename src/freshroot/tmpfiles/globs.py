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

_MAGIC = re.compile(r"[*?\[]")


def is_glob(path: str) -> bool:
    return _MAGIC.search(path) is not None


def _component_regex(pattern: str) -> str:
    """One path component of an fnmatch pattern as a regex (no '/' inside)."""
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
            j = i
            if j < n and pattern[j] in "!^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape("["))  # an unclosed '[' is a literal, as fnmatch(3) says
                continue
            body = pattern[i:j]
            i = j + 1
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            # Inside a regex class only '\\' and '[' need escaping ('[' would start a nested set).
            body = body.replace("\\", "\\\\").replace("[", "\\[")
            out.append(f"[^/{body}]" if negate else f"(?!/)[{body}]")
        elif c == "\\" and i < n:
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
    """The regex that fnmatch(pattern, path, FNM_PATHNAME|FNM_PERIOD) is, for a whole path."""
    parts = pattern.split("/")
    return re.compile("/".join(_component_regex(p) if p else "" for p in parts) + r"\Z", re.DOTALL)


def fnmatch_path(pattern: str, path: str) -> bool:
    return compile_path(pattern).match(path) is not None


def expand_braces(pattern: str) -> list[str]:
    """GLOB_BRACE: 'a{b,c}d' -> ['abd', 'acd'] (nested braces too; unbalanced stays literal)."""
    depth = 0
    start = -1
    for i, c in enumerate(pattern):
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                inner = pattern[start + 1 : i]
                options = _split_top_level(inner)
                if len(options) < 2 and "," not in inner:
                    return [pattern]
                head, tail = pattern[:start], pattern[i + 1 :]
                return [x for o in options for x in expand_braces(head + o + tail)]
    return [pattern]


def _split_top_level(inner: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for c in inner:
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
        """One regex matching the names in ``directory`` that some pattern matches, or None."""
        if directory in self._cache:
            return self._cache[directory]
        names = [f.name for f in self._filed if f.directory.match(directory)]
        found = re.compile("|".join(f"(?:{n})" for n in names) + r"\Z" if len(names) > 1 else
                           (names[0] + r"\Z")) if names else None
        if len(self._cache) < 65536:
            self._cache[directory] = found
        return found

    def matches(self, path: str) -> bool:
        directory, _, name = path.rpartition("/")
        regex = self.for_directory(directory or "/")
        return regex is not None and regex.match(name) is not None


def split_components(pattern: str) -> Sequence[str]:
    return [c for c in pattern.split("/") if c]
