"""fs.moving: renameat2 without replacing, exchange, and read leases."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from freshroot.fs.moving import lease_intact, rename_exchange, rename_noreplace, syncfs, take_read_lease


def test_rename_noreplace_never_clobbers_and_exchange_swaps(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(FileExistsError):
            rename_noreplace(fd, "a", fd, "b")
        rename_exchange(fd, "a", fd, "b")
        assert ((tmp_path / "a").read_text(), (tmp_path / "b").read_text()) == ("b", "a")
        rename_noreplace(fd, "a", fd, "c")
        assert (tmp_path / "c").read_text() == "b"
        assert not (tmp_path / "a").exists()
        syncfs(fd)
    finally:
        os.close(fd)


@pytest.mark.root
def test_a_lease_break_is_seen_and_does_not_kill_the_holder(tmp_path: Path) -> None:
    """A program opening the file for writing while the lease is held: the holder sees the
    break and lives (F_SETLEASE makes it the fd's owner, and SIGIO would end it), and the
    program's open goes on once the lease is given up."""
    path = tmp_path / "f"
    path.write_text("x")
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    got = take_read_lease(fd)
    if got is None:
        os.close(fd)
        pytest.skip("leases are not available on this file system")
    assert got is True
    assert lease_intact(fd)
    pid = os.fork()
    if pid == 0:
        os.close(fd)
        w = os.open(path, os.O_WRONLY)  # blocks until the lease is given up
        os.close(w)
        os._exit(0)
    try:
        deadline = time.monotonic() + 10
        while lease_intact(fd) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not lease_intact(fd)
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # Open for writing elsewhere: no lease.
    w = os.open(path, os.O_WRONLY)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert take_read_lease(fd) is False
    finally:
        os.close(fd)
        os.close(w)
