"""The deliberate differences (freshroot.tmpfiles.differences): each has a test here that runs
both tools and shows systemd doing one thing and freshroot the documented other."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from freshroot.tmpfiles.differences import DIFFERENCES, by_name
from tests.tmpfiles.harness import Case, D, F, L, apply_both
from tests.tmpfiles.syntax_oracle import clean_env, make_root, our_created_paths, run_ours, run_reference, would_paths

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


def test_config_files_resolve_inside_root(oracles: Path, scratch: Path,
                                          capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    """An offline NixOS-style root: /etc/tmpfiles.d entries are absolute symlinks into the store."""
    _host_clean()
    by_name("conf-files-inside-root")  # raises KeyError if the table lost the entry
    from freshroot.tmpfiles.command import build_parser
    from freshroot.tmpfiles.load import run_cat

    root = make_root(scratch / "root")
    store = root / ABSENT_ON_HOST.lstrip("/")
    store.mkdir()
    (store / "nix.conf").write_text("d /from-the-root-store\n")
    etc, lib = root / "etc/tmpfiles.d", root / "usr/lib/tmpfiles.d"
    etc.mkdir()
    lib.mkdir(parents=True)
    os.symlink(f"{ABSENT_ON_HOST}/nix.conf", etc / "nix.conf")  # only in the root
    (lib / "nix.conf").write_text("d /lib-nix\n")
    os.symlink("../" * 20 + f"{ABSENT_ON_HOST.lstrip('/')}/nix.conf", etc / "climb.conf")  # '..' stops at /
    host = scratch / "both.conf"  # in the root and on the host, with different lines
    host.write_text("d /from-the-host\n")
    (root / str(scratch).lstrip("/")).mkdir(parents=True)
    (root / str(host).lstrip("/")).write_text("d /from-the-root\n")
    os.symlink(host, etc / "both.conf")

    ref = run_reference(oracles / "systemd-tmpfiles-new", root, ["--create"])
    ours, config = run_ours(root, [])
    # systemd lists nix.conf and climb.conf inside the root (nix.conf hides /usr/lib's), then
    # opens the root-joined path on the host: not there, silently skipped; both.conf is the host's.
    assert would_paths(ref, root) == {"/from-the-host"}
    assert our_created_paths(config) == {"/from-the-root-store", "/from-the-root"}
    assert ref.rc == ours.rc == 0

    theirs = subprocess.run([str(oracles / "systemd-tmpfiles-new"), f"--root={root}", "--cat-config"],
                            capture_output=True, env=clean_env(), check=False)
    rc = run_cat(build_parser().parse_args([f"--root={root}", "--cat-config"]))
    out = capfdbinary.readouterr()
    assert (theirs.returncode, rc) == (1, 0)
    assert f"Failed to chase '{root}/etc/tmpfiles.d/nix.conf': No such file or directory".encode() in theirs.stderr
    assert f"# {root}/etc/tmpfiles.d/nix.conf -> {store}/nix.conf\nd /from-the-root-store\n".encode() in out.out
    assert f"# {root}/etc/tmpfiles.d/both.conf -> {host}\nd /from-the-host\n".encode() in theirs.stdout
    assert f"# {root}/etc/tmpfiles.d/both.conf -> {root}{host}\nd /from-the-root\n".encode() in out.out
    assert out.err == b""
