"""The clean walk in bad states: names that are not UTF-8, a read-only mount, an unreadable
directory, entries vanishing mid-walk. It goes on, reports each problem once, and exits as
systemd-tmpfiles 262 does (same survivors, same status)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from freshroot.fs.ops import open_root
from freshroot.tmpfiles.clean import Cleaner, sweep
from freshroot.tmpfiles.load import LoadOptions, load
from freshroot.tmpfiles.messages import Level, stderr_reporter
from tests.tmpfiles.cleantree import HOUR, Node, build, snapshot

pytestmark = [pytest.mark.oracle]
OURS = str(Path(sys.executable).with_name("freshroot-tmpfiles"))
OLD = 2 * HOUR


Result = dict[str, tuple[int, dict[str, str], str]]  # tool -> (exit status, tree, stderr)


def both(tmp_path: Path, conf_text: str, prepare, *, wrap: tuple[str, ...] = ()) -> Result:
    conf = tmp_path / "c.conf"
    conf.write_text(conf_text)
    os.chmod(tmp_path, 0o755)
    out = {}
    for who, tool in (("theirs", str(Path(os.environ.get("FRESHROOT_ORACLES", ".cache/oracles")).resolve()
                                      / "systemd-tmpfiles-new")), ("ours", OURS)):
        root = tmp_path / who
        prepare(root)
        proc = subprocess.run([*wrap, tool, f"--root={root}", "--clean", str(conf)], capture_output=True,
                              text=True, check=False)
        out[who] = (proc.returncode, snapshot(root), proc.stderr)
    return out


def test_names_that_are_not_utf8(tmp_path: Path) -> None:
    def prepare(root: Path) -> None:
        build(root, [Node("t", "d", age=OLD)])
        for raw in (b"old-\xff\xfe", b"new-\xc3\x28"):
            p = os.path.join(os.fsencode(root / "t"), raw)
            with open(p, "wb") as f:
                f.write(b"x")
            if raw.startswith(b"old"):
                os.utime(p, (0, 0))
        os.utime(root / "t", (0, 0))

    r = both(tmp_path, "d /t - - - amAM:1h\n", prepare)
    assert r["ours"][:2] == r["theirs"][:2]
    assert not any(k.startswith("t/old") for k in r["ours"][1])


@pytest.mark.root
@pytest.mark.netns
def test_read_only_mount(tmp_path: Path) -> None:
    from freshroot.fs.mount import MS, mount
    from tests.nsutil import in_mount_namespace

    def body() -> Result:
        def prepare(root: Path) -> None:
            build(root, [Node("t/ro/old", age=OLD), Node("t/ro", "d", age=OLD), Node("t/old", age=OLD),
                         Node("t", "d", age=OLD)])
            mount(str(root / "t/ro"), str(root / "t/ro"), None, MS.BIND)
            mount(None, str(root / "t/ro"), None, MS.BIND | MS.REMOUNT | MS.RDONLY)

        return both(tmp_path, "d /t - - - amAM:1h\n", prepare)

    r = in_mount_namespace(body)
    assert r["ours"][:2] == r["theirs"][:2]
    assert "t/old" not in r["ours"][1]


@pytest.fixture
def open_scratch() -> Iterator[Path]:
    """A scratch directory uid 1000 can reach (pytest's tmp_path sits below a 0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="freshroot-test-"))
    os.chmod(path, 0o755)
    yield path
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
    shutil.rmtree(path)


@pytest.mark.root
def test_unreadable_directory(open_scratch: Path) -> None:
    """Run both as uid 1000 (root reads everything): a mode-000 directory cannot be opened."""
    tmp_path = open_scratch

    def prepare(root: Path) -> None:
        build(root, [Node("t/locked/old", age=OLD), Node("t/locked", "d", age=OLD), Node("t/old", age=OLD),
                     Node("t", "d", age=OLD)])
        for dirpath, dirnames, filenames in os.walk(root):
            for n in [*dirnames, *filenames, ""]:
                os.lchown(os.path.join(dirpath, n), 1000, 1000)
        os.chmod(root / "t/locked", 0)

    setpriv = ("setpriv", "--reuid=1000", "--regid=1000", "--clear-groups")
    r = both(tmp_path, "d /t - - - amAM:1h\n", prepare, wrap=setpriv)
    assert r["ours"][:2] == r["theirs"][:2]
    assert "t/locked/old" in r["ours"][1]
    assert "t/old" not in r["ours"][1]
    assert r["ours"][2].count("locked") == 1  # reported once


def test_entries_vanishing_mid_walk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry removed between readdir and statx (by someone else) is simply not there."""
    root = tmp_path / "root"
    build(root, [Node("t/a", age=OLD), Node("t/b", age=OLD), Node("t/c", age=OLD), Node("t", "d", age=OLD)])
    conf = tmp_path / "c.conf"
    conf.write_text("d /t - - - amAM:1h\n")
    config = load(LoadOptions(configs=(str(conf),), root=str(root)), stderr_reporter(Level.ERR))
    problems: list[str] = []
    fd = open_root(str(root))
    try:
        cleaner = Cleaner(config, fd, root=str(root), log=problems.append)
        real = os.listdir

        def racing(dir_fd: int) -> list[str]:
            names = real(dir_fd)
            if "b" in names:  # someone removes b right after the directory was read
                os.unlink(root / "t/b")
            return names

        monkeypatch.setattr(os, "listdir", racing)
        assert all(cleaner.clean_item(i) for g in config.all_groups() for i in g.items)
    finally:
        os.close(fd)
    assert problems == []
    assert snapshot(root) == {"t": "d"}


def test_sweep_reports_failure_status(tmp_path: Path) -> None:
    """r on a non-empty directory fails (73 in systemd); the rest of the run still happens."""
    root = tmp_path / "root"
    build(root, [Node("t/d/x"), Node("t/f")])
    conf = tmp_path / "c.conf"
    conf.write_text("r /t/d\nr /t/f\n")
    config = load(LoadOptions(configs=(str(conf),), root=str(root)), stderr_reporter(Level.ERR))
    problems: list[str] = []
    fd = open_root(str(root))
    try:
        ok = sweep(config, fd, remove=True, root=str(root), log=problems.append)
    finally:
        os.close(fd)
    assert not ok
    assert len(problems) == 1
    assert "Directory not empty" in problems[0]
    assert "t/f" not in snapshot(root)
