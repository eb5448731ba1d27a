"""freshroot.tmpfiles.globs reads patterns as glibc's fnmatch(FNM_PATHNAME|FNM_PERIOD) does in
the C locale (systemd-tmpfiles sets no locale): escapes, unclosed and cut-off brackets,
character classes, and bytes rather than characters. Checked against the C library itself."""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import re
from collections.abc import Iterator

import pytest

from freshroot.tmpfiles.globs import _component_regex, byte_chars, fnmatch_path, has_magic, unescape_literal

FNM_PATHNAME, FNM_PERIOD = 1, 4
LC_ALL = 6


@pytest.fixture
def libc() -> Iterator[ctypes.CDLL]:
    lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    lib.setlocale.restype = ctypes.c_char_p
    lib.setlocale.argtypes = [ctypes.c_int, ctypes.c_char_p]
    saved = lib.setlocale(LC_ALL, None)
    lib.setlocale(LC_ALL, b"C")
    try:
        yield lib
    finally:
        lib.setlocale(LC_ALL, saved)


def _glibc(lib: ctypes.CDLL, pattern: str, name: str) -> bool:
    enc = "utf-8"
    return int(lib.fnmatch(pattern.encode(enc, "surrogateescape"), name.encode(enc, "surrogateescape"),
                           FNM_PATHNAME | FNM_PERIOD)) == 0


def _ours(pattern: str, name: str) -> bool:
    return re.match(_component_regex(pattern) + r"\Z", byte_chars(name), re.DOTALL) is not None


# Where the two still differ: equivalence classes written with '=' as their own character.
KNOWN = {"[a[=]", "[[[=]", "[[==]", "[][=]", "[-[=]", "[:[=]", "[=[=]"}


def test_short_patterns_match_as_in_glibc(libc: ctypes.CDLL) -> None:
    alphabet = ["a", "[", "]", "-", "!", "\\", "*", "?", ".", "\xe9", ":", "^"]
    names = ["a", "[", "[a", "-", "a-", "]", ".a", "\\", "\xe9", "\udcc4", "\udcc3", "ab", "??", ":", "^",
             "[[", "a]", "[]", "[a]", ""]
    wrong = []
    patterns = itertools.chain.from_iterable(itertools.product(alphabet, repeat=size) for size in range(1, 4))
    brackets = itertools.product(["a", "[", "]", "-", "\\", "!", ":"], repeat=4)  # longer, bracket-heavy ones
    for chars in itertools.chain(patterns, brackets):
        pattern = "".join(chars)
        if pattern in KNOWN:
            continue
        wrong += [(pattern, name) for name in names if _glibc(libc, pattern, name) != _ours(pattern, name)]
    assert wrong == []


@pytest.mark.parametrize(("pattern", "name", "matches"), [
    ("a\\b", "ab", True), ("a\\b", "a\\b", False),  # a backslash escapes
    ("x\\", "x\\", False), ("x\\", "x", False),  # one at the end matches nothing
    ("[0-", "[0-", False), ("[ab", "[ab", True), ("[ab", "a", False),  # cut-off range; unclosed '['
    ("[[:alpha:]]b", "ab", True), ("[[:alpha:]]b", "1b", False), ("[[:nope:]]", "a", False),
    ("?", "\udcc4", True), ("?", "\xe9", False), ("??", "\xe9", True),  # bytes, not characters
    ("[\xe9]", "\udcc3", True),  # a UTF-8 character in a bracket is its bytes
    ("*", ".hidden", False), (".*", ".hidden", True), ("[.]x", ".x", False),  # FNM_PERIOD
])
def test_component_semantics(pattern: str, name: str, matches: bool, libc: ctypes.CDLL) -> None:
    assert _glibc(libc, pattern, name) is matches
    assert _ours(pattern, name) is matches


def test_whole_paths_and_escaped_bytes() -> None:
    assert fnmatch_path("/t/*/x", "/t/a/x")
    assert not fnmatch_path("/t/*", "/t/a/x")  # FNM_PATHNAME
    # A pattern written with escapes for bytes that are UTF-8 matches the decoded name.
    assert fnmatch_path("/t/\udcc4\udc80", "/t/\u0100")


def test_directory_parts_without_magic() -> None:
    assert not has_magic("a\\*b")  # escaped
    assert not has_magic("[ab")  # a '[' needs a ']' after it
    assert has_magic("[ab]")
    assert has_magic("a*")
    assert has_magic("x?")
    assert unescape_literal("d\\ir") == "dir"
    assert unescape_literal("a\\") == "a"  # glob(3) drops a backslash at the end too
