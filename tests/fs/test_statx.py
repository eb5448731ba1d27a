"""statx through ctypes: agrees with os.stat, adds btime, mnt_id and the mount-root bit."""

from __future__ import annotations

import os
import stat

import pytest

from freshroot.fs import mount
from freshroot.fs.statx import Attr, statx_at, statx_fd
from tests.fs.helpers import Root, in_child


def test_statx_agrees_with_stat(root: Root) -> None:
    root.p("f").write_bytes(b"12345")
    os.utime(root.p("f"), ns=(1_000_000_123, 2_000_000_456))
    os.symlink("f", root.p("l"))
    os.mkfifo(root.p("p"))
    for name in ("f", "l", "p"):
        sx = statx_at(root.fd, name)
        st = os.stat(root.p(name), follow_symlinks=False)
        assert (sx.mode, sx.ino, sx.dev, sx.nlink, sx.uid, sx.gid, sx.size) == (
            st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, st.st_size), name
        assert (sx.mtime_ns, sx.ctime_ns) == (st.st_mtime_ns, st.st_ctime_ns)
    f = statx_at(root.fd, "f")
    assert (f.atime_ns, f.mtime_ns) == (1_000_000_123, 2_000_000_456)
    assert f.is_reg()
    assert statx_at(root.fd, "l").is_lnk()  # never follows unless asked
    assert statx_at(root.fd, "l", follow=True).ino == f.ino


def test_btime_and_mount_id(root: Root) -> None:
    root.p("f").write_text("")
    sx = statx_at(root.fd, "f")
    # Every file system this runs on (ext4, btrfs, tmpfs, xfs) records a birth time.
    assert sx.btime_ns is not None
    assert sx.btime_ns <= sx.ctime_ns
    assert sx.mnt_id is not None
    assert sx.mnt_id == mount.find_by_fd(root.fd).mount_id


def test_statx_fd_on_o_path_symlink(root: Root) -> None:
    os.symlink("nowhere", root.p("dangling"))
    fd = os.open(root.p("dangling"), os.O_PATH | os.O_NOFOLLOW)
    try:
        assert stat.S_ISLNK(statx_fd(fd).mode)
    finally:
        os.close(fd)


def test_missing_entry_raises(root: Root) -> None:
    with pytest.raises(FileNotFoundError):
        statx_at(root.fd, "missing")


@pytest.mark.root
@pytest.mark.netns
def test_mount_root_attribute_sees_bind_mounts(root: Root) -> None:
    root.p("src").mkdir()
    root.p("dst").mkdir()

    def child() -> None:
        mount.unshare_mounts()
        fd = os.open(root.path, os.O_PATH)
        assert statx_at(fd, "dst").is_mount_root is False
        mount.bind_fd(os.open(root.p("src"), os.O_PATH), os.open(root.p("dst"), os.O_PATH))
        dst = statx_at(fd, "dst")
        assert dst.is_mount_root is True
        assert Attr.MOUNT_ROOT in dst.attributes
        assert dst.dev == statx_at(fd, "src").dev  # same st_dev: only the mount id tells
        assert dst.mnt_id != statx_at(fd, "src").mnt_id

    in_child(child)
