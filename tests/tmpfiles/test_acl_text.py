"""The ACL text of a/A lines, probe by probe against systemd-tmpfiles 262 (its parse_acl, then
libacl's acl_from_text): the same ACLs, exit status and messages, on a file and a directory.

Only numeric ids and 'root' are named: systemd resolves names with the host's NSS, freshroot in
the target root (differences.py, acl-names-in-root), and root is uid 0 in both."""

from __future__ import annotations

from pathlib import Path

import pytest

from freshroot.fs import acl
from freshroot.fs.accounts import Accounts
from tests.tmpfiles.harness import Case, D, F, compare

pytestmark = [pytest.mark.oracle, pytest.mark.root]

PROBES = (
    # blanks, empty parts, comments
    "u:root:rwx, g:root:r", "u:root:rwx,", "u:root:rwx,,g::r", ",u:0:r", "u :root:rwx", "user :0:r",
    "u:0:r ", "u: 0:r", "u:0 :r", "u:0: r", "u:root:rwx#c", "u:0:r #c,g:0:w", "u:0:r#x,g::r", "#c",
    "u:0:rw- ", " u:0:r",
    # qualifiers: strtol base 0, signs, negative ids modulo 65536, octal escapes
    "u:+0:rwx", "u:0x10:r", "u:010:r", "u:-2:r", "u:-1:r", "u:-65537:r", "u:0x:r", "u:4294967296:r",
    "u:ro\\157t:r", "u:\\060:r", "u:'root':r", 'u:"0":r', "g:+0:r", "g:-2:rx",
    # tags
    "user:0:r", "us:0:r", "usEr:0:r", "group::rx", "gr::r", "mask::r", "mas::r", "other::r", "o::r",
    "o:r", "m:r", "o: :r", "m::rw", "o:0:r", "x:0:r",
    # permissions: at most three of rwx-, no repeats
    "u:root:rr", "u:root:r-x-", "u:0:r--x", "u:0:rwx-", "u:0:", "u:0:-", "u:0:---", "u:0:--x", "u:0:-r",
    "u:0:w-x", "u:0:x-w", "u:0:r-", "u:0:rXx", "u:0:XX", "u:0:rw,g:0:",
    # entries named twice
    "u:0:r,u:0:w", "u:0:r,u:root:w", "u:0:w,u:0:r", "u:5:r,u:0:w,u:5:w", "g:0:r,g:0:x", "g::r,g::w",
    "u::r,u::w", "o::r,o::w", "u:0:r,u:0:w,m::r", "u:0:rX,u:0:w",
    # conditional execute, default entries, field counts, escapes and quotes
    "u:0:rX", "u:0:rX,g::X", "d:u:0:r", "default:u:0:rX", "d:u:0:r,d:u:0:w", "dd:u:0:r", "d:u:0:r:x",
    "u:0:r:", "u:0", "u:0:r\\x", "u:0:\\rw", "u:0:r\\", "'u:0:r'", "u:0:r'", "u:0:r;g::r", "u:0:r g::r",
    "u:root:rwx,g::rx,o::-,m::rwx", ",", ",,", "u::rwx,g::r-x,o::r-x,d:u::rwx,d:g::rx,d:o::0",
)


def test_enough_probes() -> None:
    assert len(PROBES) >= 80
    assert len(set(PROBES)) == len(PROBES)


@pytest.mark.parametrize("letter", ["a", "a+"])
@pytest.mark.parametrize("text", PROBES, ids=repr)
def test_acl_text_matches_262(text: str, letter: str, oracles: Path, scratch: Path) -> None:
    tree = (D("/t"), F("/t/f", "x"), D("/t/d"), F("/t/x", "x", mode=0o755))
    config = "".join(f"{letter} /t/{name} - - - - {text}\n" for name in ("f", "d", "x"))
    case = Case(f"{letter} {text}", config, tree)
    problems = compare(case, oracles / "systemd-tmpfiles-new", scratch)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("text", ["u:0:rX,u:0:w", "u:0:r,u:0:w", "d:u:0:rwX", "g::r,g::w"], ids=repr)
def test_recursive_acl_text_matches_262(text: str, oracles: Path, scratch: Path) -> None:
    tree = (D("/t"), F("/t/f", "x"), D("/t/d"), F("/t/d/x", "x", mode=0o755))
    case = Case(f"A {text}", f"A /t - - - - {text}\n", tree)
    problems = compare(case, oracles / "systemd-tmpfiles-new", scratch)
    assert not problems, "\n".join(problems)


def test_twice_named_entries_are_kept() -> None:
    spec = acl.parse("u:0:w,u:0:r", Accounts.parse("root:x:0:0::/root:/bin/sh\n", "root:x:0:\n"))
    assert spec.access is not None
    assert [e.perm for e in spec.access.entries if e.tag == acl.Tag.USER] == [acl.WRITE, acl.READ]
