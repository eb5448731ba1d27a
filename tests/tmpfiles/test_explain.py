"""freshroot-tmpfiles --explain PATH: the line and the reason, and nothing changed."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tmpfiles.cleantree import HOUR, Node, build, build_deep, snapshot

TOOL = str(Path(sys.executable).with_name("freshroot-tmpfiles"))
TREE = [Node("t/old", age=2 * HOUR), Node("t/new"), Node("t/sub/x", age=2 * HOUR), Node("t/sub", "d", age=2 * HOUR),
        Node("t/sticky", age=2 * HOUR, mode=0o1644), Node("t", "d", age=2 * HOUR)]
CONF = "d /t - - - am:1h\nx /t/sub\n"


@pytest.mark.parametrize(("path", "expected"), [
    ("/t/old", "/t/old: remove: older than the age (walk of {conf}:1: d /t)"),
    ("/t/new", "/t/new: keep: its modify time is newer than the cutoff (walk of {conf}:1: d /t)"),
    ("/t/sub", "/t/sub: skip: it matches a glob line (x, X or another): {conf}:2: x /t/sub (walk of {conf}:1: d /t)"),
    ("/t/sub/x", ("/t/sub/x: keep: the walk does not enter /t/sub, because it matches a glob line"
                  " (x, X or another): {conf}:2: x /t/sub")),
    ("/t/sticky", "/t/sticky: skip: the sticky bit is set (walk of {conf}:1: d /t)"),
    ("/etc", "/etc: no clean, remove or purge line reaches it; it is left alone"),
])
def test_explain(tmp_path: Path, path: str, expected: str) -> None:
    conf = tmp_path / "c.conf"
    conf.write_text(CONF)
    root = tmp_path / "root"
    build(root, TREE)
    before = snapshot(root)
    out = subprocess.run([TOOL, f"--root={root}", "--explain", path, str(conf)], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected.format(conf=conf)
    assert snapshot(root) == before


LOCK_TREE = [Node("t/locked", age=2 * HOUR), Node("t/ld/old", age=2 * HOUR), Node("t/ld", "d", age=2 * HOUR),
             Node("t/free", age=2 * HOUR), Node("t", "d", age=2 * HOUR)]


def _explain(root: Path, conf: Path, path: str) -> str:
    out = subprocess.run([TOOL, f"--root={root}", "--explain", path, str(conf)], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_explain_reports_a_held_lock(tmp_path: Path) -> None:
    """A real --clean skips a file or directory someone holds a flock on (test_clean.py checks
    that against systemd); --explain must say so, not "older than the age"."""
    conf = tmp_path / "c.conf"
    conf.write_text("d /t - - - amAM:1h\n")
    root = tmp_path / "root"
    build(root, LOCK_TREE)
    before = snapshot(root)
    f = os.open(root / "t/locked", os.O_RDONLY)
    d = os.open(root / "t/ld", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(f, fcntl.LOCK_EX)
        fcntl.flock(d, fcntl.LOCK_SH)  # any lock at all keeps it, as LOCK_EX|LOCK_NB fails
        walk = f"(walk of {conf}:1: d /t)"
        assert _explain(root, conf, "/t/locked") == f"/t/locked: skip: someone holds a lock on the file {walk}"
        assert _explain(root, conf, "/t/ld") == f"/t/ld: skip: someone holds a lock on the directory {walk}"
        assert _explain(root, conf, "/t/ld/old") == (
            "/t/ld/old: keep: the walk does not enter /t/ld, because someone holds a lock on the directory")
        assert _explain(root, conf, "/t/free") == f"/t/free: remove: older than the age {walk}"
    finally:
        os.close(f)
        os.close(d)
    assert snapshot(root) == before
    # The lock was only tried: once the holders let go, the same paths are cleaned again.
    assert _explain(root, conf, "/t/locked").startswith("/t/locked: remove: older than the age")
    assert _explain(root, conf, "/t/ld/old").startswith("/t/ld/old: remove: older than the age")


def test_explain_does_not_keep_the_lock(tmp_path: Path) -> None:
    """In process: after the explaining walk no lock it tried is still held."""
    from freshroot.fs.ops import open_root
    from freshroot.tmpfiles.clean import Decision, sweep
    from freshroot.tmpfiles.load import LoadOptions, load
    from freshroot.tmpfiles.messages import Level, stderr_reporter

    conf = tmp_path / "c.conf"
    conf.write_text("d /t - - - amAM:1h\n")
    root = tmp_path / "root"
    build(root, LOCK_TREE)
    config = load(LoadOptions(configs=(str(conf),), root=str(root)), stderr_reporter(Level.ERR))
    seen: list[Decision] = []
    fd = open_root(str(root))
    try:
        sweep(config, fd, clean=True, root=str(root), dry_run=True, explain=seen.append)
    finally:
        os.close(fd)
    assert {d.path for d in seen if d.action == "remove"} >= {"/t/locked", "/t/ld", "/t/ld/old", "/t/free"}
    for p in ("t/locked", "t/ld"):
        probe = os.open(root / p, os.O_RDONLY)
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if the walk left a lock behind
        finally:
            os.close(probe)


@pytest.mark.root
@pytest.mark.netns
def test_explain_reports_a_mount_point(tmp_path: Path) -> None:
    from freshroot.fs.mount import mount
    from tests.nsutil import in_mount_namespace

    conf = tmp_path / "c.conf"
    conf.write_text("d /t - - - amAM:1h\n")
    root = tmp_path / "root"

    def body() -> tuple[str, str, dict[str, str], dict[str, str]]:
        build(root, [Node("t/mnt", "d", age=2 * HOUR), Node("t", "d", age=2 * HOUR)])
        mount("tmpfs", str(root / "t/mnt"), "tmpfs")
        (root / "t/mnt/inside").write_text("x")
        for p in ("t/mnt/inside", "t/mnt", "t"):
            os.utime(root / p, (0, 0))
        before = snapshot(root)
        return (_explain(root, conf, "/t/mnt"), _explain(root, conf, "/t/mnt/inside"), before, snapshot(root))

    mnt, inside, before, after = in_mount_namespace(body)
    assert mnt == f"/t/mnt: skip: it is a mount point (walk of {conf}:1: d /t)"
    assert inside == "/t/mnt/inside: keep: the walk does not enter /t/mnt, because it is a mount point"
    assert before == after


def test_explain_beyond_the_depth_limit(tmp_path: Path) -> None:
    conf = tmp_path / "c.conf"
    conf.write_text("d /t - - - amAM:1h\n")
    root = tmp_path / "root"
    chain = "/" + build_deep(root, "t", 257, age=2 * HOUR, leaf=Node("f", age=2 * HOUR))
    walk = f"(walk of {conf}:1: d /t)"
    assert _explain(root, conf, chain + "/f") == (
        f"{chain}/f: keep: the walk does not enter {chain}, because the walk stops at depth 256 and does not enter it")
    assert _explain(root, conf, chain).splitlines() == [
        f"{chain}: stop: the walk stops at depth 256 and does not enter it {walk}",
        f"{chain}: remove: older than the age, if empty {walk}",
    ]
