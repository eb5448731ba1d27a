"""Differential cases for the grammar points of issue 18 that are not capability or ACL texts:
braces without a comma in globs, '..' in the path of a line that adjusts existing entries, the
major of a device number. Each runs systemd-tmpfiles 262 and freshroot on the same tree and
compares trees, status and messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tmpfiles.harness import Case, D, F, L, apply_both, compare

pytestmark = [pytest.mark.oracle, pytest.mark.root]

TREE = (D("/g"), F("/g/a"), F("/g/ab"), F("/g/b"), D("/g/dir"), F("/g/dir/f"), F("/g/{a}"), F("/g/xa"),
        F("/g/x{a,b}"))

BRACES = ("z /g/{a} 0600", "z /g/a{b} 0600", "z /g/{dir}/f 0600", "z /g/{}a 0600", "z /g/{a,b} 0600",
          "z /g/\\{a} 0600", "z /g/x\\{a,b} 0600", "z /g/x{a\\,b} 0600", "z /g/{a 0600", "z /g/{{a}} 0600",
          "Z /g/{dir} 0700", "t /g/{a} - - - - user.x=1", "d /g/{new}", "f /g/{q}")
DOTDOT = ("z /g/dir/../a 0600", "Z /g/dir/.. 0600", "m /g/dir/../a 0600", "t /g/dir/../a - - - - user.x=1",
          "T /g/dir/../dir - - - - user.x=1", "h /g/dir/../a - - - - +A", "H /g/dir/.. - - - - +A",
          "a /g/dir/../a - - - - u:0:r", "A /g/dir/.. - - - - u:0:r", "k /g/dir/../a - - - - cap_kill=p",
          "K /g/dir/.. - - - - cap_kill=p", "z /g/dir/../* 0600", "z /g/*/../a 0600", "z /g/dir/../nothere 0600",
          "Z /g/dir/../nothere 0600", "z /g/nodir/../a 0600", "w /g/dir/../a - - - - hi", "f /g/dir/../new",
          "d /g/dir/../nd", "e /g/dir/.. 0700", "z /g/../g/a 0600\nz /g/dir/f 0600")
DEVNUM = ("c /g/c 0600 - - - 0x1:3", "c /g/c 0600 - - - 0X1:3", "c /g/c 0600 - - - 01:3", "c /g/c 0600 - - - 1:0x3",
          "b /g/c 0600 - - - 010:010", "c /g/c 0600 - - - :3", "c /g/c 0600 - - - +1:3", "c /g/c 0600 - - - 1:-3")


@pytest.mark.parametrize("config", BRACES + DOTDOT + DEVNUM, ids=repr)
@pytest.mark.parametrize("args", [("--create",), ("--create", "--dry-run")], ids=" ".join)
def test_matches_262(config: str, args: tuple[str, ...], oracles: Path, scratch: Path) -> None:
    case = Case(config, config + "\n", TREE, args=args)
    problems = compare(case, oracles / "systemd-tmpfiles-new", scratch)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("config", ["r /g/{a}", "R /g/{dir}", "r /g/{}ab", "r /g/dir/../a"], ids=repr)
def test_remove_matches_262(config: str, oracles: Path, scratch: Path) -> None:
    case = Case(config, config + "\n", TREE, args=("--remove",))
    problems = compare(case, oracles / "systemd-tmpfiles-new", scratch)
    assert not problems, "\n".join(problems)


SPEC_DIR = "/freshroot-specifier-test"  # exists in the scratch roots and (checked) not on the host


@pytest.mark.parametrize("links", ["absolute", "relative"])
def test_specifiers_read_the_roots_files_through_its_symlinks(links: str, oracles: Path, scratch: Path) -> None:
    """%o %w %m come from the root's /etc/os-release and /etc/machine-id; symlinks there
    resolve inside the root (an absolute one too), as systemd 262's chase does."""
    assert not Path(SPEC_DIR).exists()
    target = SPEC_DIR if links == "absolute" else "../freshroot-specifier-test"
    tree = (D("/t"), D(SPEC_DIR), F(f"{SPEC_DIR}/os-release", "ID=inroot\nVERSION_ID=7\n"),
            F(f"{SPEC_DIR}/machine-id", "fedcba9876543210fedcba9876543210\n"),
            L("/etc/os-release", f"{target}/os-release"), L("/etc/machine-id", f"{target}/machine-id"))
    base = {"/etc/passwd": "root:x:0:0::/root:/bin/sh\n", "/etc/group": "root:x:0:\n"}
    case = Case("specifiers", "f /t/%o-%w-%m\n", tree, base=base)
    problems = compare(case, oracles / "systemd-tmpfiles-new", scratch)
    assert not problems, "\n".join(problems)
    theirs = set(apply_both(case, oracles / "systemd-tmpfiles-new", scratch / "again")[0].tree)
    assert "/t/inroot-7-fedcba9876543210fedcba9876543210" in theirs
