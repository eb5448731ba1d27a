"""The deliberate differences (freshroot.tmpfiles.differences): each has a test here that runs
both tools and shows systemd doing one thing and freshroot the documented other."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from freshroot.tmpfiles.differences import DIFFERENCES, by_name
from tests.tmpfiles.harness import Case, D, F, L, apply_both

pytestmark = [pytest.mark.oracle, pytest.mark.root]

# Absolute paths that exist inside the scratch roots and (checked) nowhere on the host.
ABSENT_ON_HOST = "/freshroot-difference-test-target"


def test_every_difference_has_its_test() -> None:
    here = sys.modules[__name__]
    for d in DIFFERENCES:
        assert callable(getattr(here, d.test, None)), f"{d.name}: no test named {d.test}"
    assert len({d.name for d in DIFFERENCES}) == len(DIFFERENCES)


def _host_clean() -> None:
    assert not Path(ABSENT_ON_HOST).exists(), f"{ABSENT_ON_HOST} exists on the host: the test cannot tell"


def test_glob_through_absolute_symlink_stays_in_root(oracles: Path, scratch: Path) -> None:
    _host_clean()
    by_name("glob-symlinks-inside-root")  # raises KeyError if the table lost the entry
    tree = (D("/g"), D(ABSENT_ON_HOST), D(f"{ABSENT_ON_HOST}/sub"), F(f"{ABSENT_ON_HOST}/sub/f", mode=0o644),
            L("/g/link", ABSENT_ON_HOST))
    case = Case("glob-abs-link", "z /g/link/sub/* 0600\n", tree)
    theirs, ours = apply_both(case, oracles / "systemd-tmpfiles-new", scratch)
    target = f"{ABSENT_ON_HOST}/sub/f"
    assert theirs.tree[target]["mode"] == "0644", "systemd looked for the pattern on the host and matched nothing"
    assert ours.tree[target]["mode"] == "0600", "freshroot resolved the symlink inside the root"
    assert theirs.status == ours.status == 0


def test_w_through_absolute_symlink_writes_inside_root(oracles: Path, scratch: Path) -> None:
    _host_clean()
    by_name("w-follows-inside-root")  # raises KeyError if the table lost the entry
    tree = (D("/t"), D(ABSENT_ON_HOST), F(f"{ABSENT_ON_HOST}/file", "old"), L("/t/x", f"{ABSENT_ON_HOST}/file"))
    case = Case("w-abs-link", "w /t/x - - - - new\n", tree)
    theirs, ours = apply_both(case, oracles / "systemd-tmpfiles-new", scratch)
    target = f"{ABSENT_ON_HOST}/file"
    assert theirs.tree[target]["size"] == 3
    assert ours.tree[target]["size"] == 3
    assert theirs.tree[target]["sha256"] != ours.tree[target]["sha256"], "freshroot wrote the root's file"
    assert not Path(ABSENT_ON_HOST).exists()


def test_acl_names_resolve_in_target_root(oracles: Path, scratch: Path) -> None:
    by_name("acl-names-in-root")  # raises KeyError if the table lost the entry
    import pwd

    with pytest.raises(KeyError):
        pwd.getpwnam("alice")  # the harness's alice exists only in the scratch roots
    case = Case("acl-name", "a /t/f - - - - u:alice:rwx\n", (D("/t"), F("/t/f")))
    theirs, ours = apply_both(case, oracles / "systemd-tmpfiles-new", scratch)
    assert "system.posix_acl_access" not in theirs.tree["/t/f"]["xattrs"]  # type: ignore[operator]
    acl = ours.tree["/t/f"]["xattrs"]["system.posix_acl_access"]  # type: ignore[index]
    assert "e8030000" in acl, "user:1000 (alice in the root's passwd) is in freshroot's ACL"
    assert theirs.status == ours.status == 0


def test_user_owned_symlink_is_not_followed(oracles: Path, scratch: Path) -> None:
    by_name("safe-symlink-owner")  # raises KeyError if the table lost the entry
    tree = (D("/h"), D("/h/a"), L("/h/b", "a", 1000, 1000))
    case = Case("user-link", "f /h/b/x - - - - data\n", tree)
    theirs, ours = apply_both(case, oracles / "systemd-tmpfiles-new", scratch)
    assert "/h/a/x" in theirs.tree, "systemd followed the user's symlink (the directory holding it is root's)"
    assert "/h/a/x" not in ours.tree, "freshroot refused it"
    assert (theirs.status, ours.status) == (0, 73)


def test_copy_into_itself_stops(scratch: Path) -> None:
    """Only freshroot runs here: systemd's side makes a tree thousands of levels deep."""
    by_name("copy-into-itself")  # raises KeyError if the table lost the entry
    from tests.tmpfiles.harness import materialize, run_freshroot

    root = scratch / "root"
    materialize(root, (D("/h"), D("/h/a"), F("/h/a/f", "x")))
    conf = scratch / "c.conf"
    conf.write_text("C /h/a/a - - - - /h/a\n")
    status, _ = run_freshroot(root, conf, Case("c", ""))
    assert status == 0
    assert (root / "h/a/a/f").read_text() == "x"
    assert not (root / "h/a/a/a").exists()
