"""copy_data's paths: reflink, copy_file_range, the buffer fallback, and sparse files' holes,
on the scratch file system (ext4 or whatever the tests run on) and on a tmpfs."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from freshroot.fs import copy, mount
from freshroot.fs.copy import copy_data, copy_tree_at
from tests.fs.helpers import Root, in_child

MiB = 1 << 20


def _sparse(path: Path) -> bytes:
    """A 48 MiB file: data at 0, a 20 MiB hole, data at 20 MiB + 3, a hole to the end; its bytes."""
    with open(path, "wb") as f:
        f.write(b"head" * 1024)
        f.seek(20 * MiB + 3)
        f.write(os.urandom(MiB))
        f.truncate(48 * MiB)
    return path.read_bytes()


def _on_both(scratch: Path, check: Callable[[Path], None]) -> None:
    """``check`` in a directory of the scratch file system, then in one of a fresh tmpfs (in a
    private mount namespace of a child process)."""
    here = scratch / "disk"
    here.mkdir()
    check(here)

    def child() -> None:
        mount.unshare_mounts()
        there = scratch / "tmpfs"
        there.mkdir()
        mount.mount("tmpfs", str(there), "tmpfs", data="mode=0700")
        check(there)

    in_child(child)


@pytest.mark.root
@pytest.mark.netns
def test_sparse_file_keeps_its_holes(scratch: Path) -> None:
    def check(d: Path) -> None:
        want = _sparse(d / "src")
        os.chmod(d / "src", 0o640)
        fd = os.open(d, os.O_PATH)
        try:
            copy_tree_at(fd, "src", fd, "dst")
        finally:
            os.close(fd)
        got = os.stat(d / "dst")
        assert got.st_size == 48 * MiB
        assert stat.S_IMODE(got.st_mode) == 0o640
        assert (d / "dst").read_bytes() == want
        # The 46 MiB of holes stay holes: about what the source has allocated, never 48 MiB.
        assert got.st_blocks * 512 <= os.stat(d / "src").st_blocks * 512 + MiB
        assert got.st_blocks * 512 < 4 * MiB

    _on_both(scratch, check)


def test_file_ending_in_a_hole_gets_its_size(root: Root) -> None:
    with open(root.p("tail"), "wb") as f:
        f.write(b"x")
        f.truncate(8 * MiB)
    copy_tree_at(root.fd, "tail", root.fd, "copy")
    assert root.p("copy").read_bytes() == b"x" + bytes(8 * MiB - 1)


def test_all_hole_file(root: Root) -> None:
    with open(root.p("holes"), "wb") as f:
        f.truncate(5 * MiB)
    copy_tree_at(root.fd, "holes", root.fd, "copy")
    st = os.stat(root.p("copy"))
    assert st.st_size == 5 * MiB
    assert root.p("copy").read_bytes() == bytes(5 * MiB)


def test_without_seek_data_a_sparse_file_is_copied_whole(root: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    want = _sparse(root.p("src"))
    real = os.lseek

    def lseek(fd: int, pos: int, how: int) -> int:
        if how in (os.SEEK_DATA, os.SEEK_HOLE):
            raise OSError(errno.EINVAL, "not here")
        return real(fd, pos, how)

    monkeypatch.setattr(os, "lseek", lseek)
    copy_tree_at(root.fd, "src", root.fd, "dst")
    assert root.p("dst").read_bytes() == want


@pytest.mark.parametrize("fails_after", [0, 1])
def test_copy_file_range_refused_falls_back_to_a_buffer(root: Root, monkeypatch: pytest.MonkeyPatch,
                                                        fails_after: int) -> None:
    """copy_file_range failing at once (EXDEV: another file system, an old kernel) or after a
    first piece: the buffer copies the rest, from where the kernel stopped."""
    data = os.urandom(3 * MiB + 5)
    root.p("src").write_bytes(data)
    os.setxattr(root.p("src"), "user.kept", b"yes")
    real = os.copy_file_range
    calls: list[int] = []

    def copy_file_range(src: int, dst: int, count: int, *offsets: int) -> int:
        calls.append(count)
        if len(calls) > fails_after:
            raise OSError(errno.EXDEV, "cross-device")
        return real(src, dst, min(count, MiB), *offsets)

    monkeypatch.setattr(os, "copy_file_range", copy_file_range)
    monkeypatch.setattr(copy, "FICLONE", 0)  # no reflink: an ioctl that no file system knows
    copy_tree_at(root.fd, "src", root.fd, "dst")
    assert len(calls) == fails_after + 1
    assert root.p("dst").read_bytes() == data
    assert os.getxattr(root.p("dst"), "user.kept") == b"yes"


def test_sparse_ranges_fall_back_to_a_buffer(root: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    want = _sparse(root.p("src"))

    def refused(*_: int) -> int:
        raise OSError(errno.EXDEV, "cross-device")

    monkeypatch.setattr(os, "copy_file_range", refused)
    copy_tree_at(root.fd, "src", root.fd, "dst")
    assert root.p("dst").read_bytes() == want
    assert os.stat(root.p("dst")).st_blocks * 512 < 4 * MiB


def test_reflink_is_not_asked_again_after_the_file_system_refused(root: Root,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    src = root.p("src")
    (src / "d").mkdir(parents=True)
    for i in range(5):
        (src / "d" / str(i)).write_bytes(os.urandom(100 + i))
    asked: list[int] = []
    real = fcntl.ioctl

    def ioctl(fd: int, request: int, arg: int = 0) -> object:
        if request == copy.FICLONE:
            asked.append(fd)
            raise OSError(errno.EOPNOTSUPP, "no reflinks here")
        return real(fd, request, arg)

    monkeypatch.setattr(fcntl, "ioctl", ioctl)
    copy_tree_at(root.fd, "src", root.fd, "dst")
    assert len(asked) == 1
    for i in range(5):
        assert (root.p("dst/d") / str(i)).read_bytes() == (src / "d" / str(i)).read_bytes()


def test_copy_data_between_open_files_from_their_offsets(root: Root) -> None:
    """As image staging calls it: plain fds, no stat, from wherever the offsets are."""
    root.p("a").write_bytes(b"0123456789")
    src = os.open(root.p("a"), os.O_RDONLY)
    dst = os.open(root.p("b"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.lseek(src, 4, os.SEEK_SET)
        copy_data(src, dst)
    finally:
        os.close(src)
        os.close(dst)
    assert root.p("b").read_bytes() == b"456789"
