"""Glob expansion of tmpfiles.d paths inside the target root, as glob(3) with GLOB_BRACE does.

systemd globs ``--root`` + pattern with glibc's glob(), which resolves symlinks in the
directories it walks against the host's root. freshroot walks the pattern from the root fd
instead, one component at a time, so a symlink met on the way resolves inside the root
(a deliberate difference, see differences.py). Everything else follows glob(3): no sorting,
wildcards never match a leading '.', a backslash quotes the next character, braces expand
first, and a pattern without wildcards matches when the entry exists (symlinks not followed).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import stat

from freshroot.fs.chase import ChaseFlags, chase

GLOB_CHARS = frozenset("*?[")


def is_glob(path: str) -> bool:
    """systemd's string_is_glob."""
    return any(c in GLOB_CHARS for c in path)


def non_glob_prefix(pattern: str) -> str:
    """The directory part before the first wildcard (systemd's glob_non_glob_prefix)."""
    cut = min((pattern.index(c) for c in GLOB_CHARS if c in pattern), default=len(pattern))
    head = pattern[:cut]
    return head[: head.rfind("/") + 1] or "/"


def expand_braces(pattern: str) -> list[str]:
    """GLOB_BRACE: ``a{b,c{d,e}}f`` -> abf, acdf, acef (in that order); unbalanced braces stay."""
    depth = 0
    start = -1
    escaped = False
    for i, ch in enumerate(pattern):
        if escaped:
            escaped = False
            continue
        if ch == "\\":
            escaped = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                alternatives = _split_top(pattern[start + 1 : i])
                out: list[str] = []
                for alt in alternatives:
                    out.extend(expand_braces(pattern[:start] + alt + pattern[i + 1 :]))
                return out
    return [pattern]


def _split_top(body: str) -> list[str]:
    parts, depth, current, escaped = [], 0, "", False
    for ch in body:
        if escaped:
            current += ch
            escaped = False
            continue
        if ch == "\\":
            escaped = True
            current += ch
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts


@functools.lru_cache(maxsize=1024)
def component_regex(pattern: str) -> re.Pattern[str]:
    """fnmatch(3) of one path component (no FNM_PERIOD handling: see match_component)."""
    out = []
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            j = i
            if j < n and pattern[j] in "!^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape("["))
                continue
            body = pattern[i:j]
            i = j + 1
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            body = body.replace("\\", "\\\\").replace("^", "\\^")
            out.append(f"[{'^' if negate else ''}{body}]")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def unescape(component: str) -> str:
    return re.sub(r"\\(.)", r"\1", component)


def match_component(pattern: str, name: str) -> bool:
    if name.startswith(".") and not pattern.startswith("."):
        return False  # wildcards never match a leading period (glob without GLOB_PERIOD)
    return component_regex(pattern).fullmatch(name) is not None


def glob(root_fd: int, pattern: str) -> list[str]:
    """The entries below ``root_fd`` that ``pattern`` matches, as root-relative paths."""
    results: list[str] = []
    for pat in expand_braces(pattern):
        components = [c for c in pat.split("/") if c]
        for found in _walk(root_fd, "", components):
            if found not in results:
                results.append(found)
    return results


def _walk(root_fd: int, base: str, components: list[str]) -> list[str]:
    if not components:
        return [base or "/"]
    head, rest = components[0], components[1:]
    if not is_glob(head):
        path = f"{base}/{unescape(head)}"
        if not rest:
            return [path] if _exists(root_fd, path) else []
        return _walk(root_fd, path, rest)
    names = _listdir(root_fd, base or "/")
    out: list[str] = []
    for name in names:
        if not match_component(head, name):
            continue
        path = f"{base}/{name}"
        if rest and not _is_dir(root_fd, path):
            continue
        out.extend(_walk(root_fd, path, rest) if rest else [path])
    return out


def _exists(root_fd: int, path: str) -> bool:
    try:
        with chase(path, root_fd=root_fd, flags=ChaseFlags.NOFOLLOW):
            return True
    except (OSError, ValueError):
        return False


def _is_dir(root_fd: int, path: str) -> bool:
    try:
        with chase(path, root_fd=root_fd) as c:
            return stat.S_ISDIR(c.st.st_mode)
    except (OSError, ValueError):
        return False


def _listdir(root_fd: int, path: str) -> list[str]:
    with contextlib.suppress(OSError, ValueError), chase(path, root_fd=root_fd) as c:
        if not stat.S_ISDIR(c.st.st_mode):
            return []
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=c.fd)
        try:
            return sorted(os.listdir(fd))
        finally:
            os.close(fd)
    return []
