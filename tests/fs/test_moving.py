"""fs.moving: renameat2 without replacing, exchange, read leases, and the Closer."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from freshroot.fs import moving
from freshroot.fs.moving import Closer, lease_intact, rename_exchange, rename_noreplace, syncfs, take_read_lease


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


BREAK_WHILE_OWNER = """
import fcntl, os, sys, time
sys.path.insert(0, {src!r})
from freshroot.fs.moving import lease_intact, take_read_lease
fd = os.open({path!r}, os.O_RDONLY)
assert take_read_lease(fd) is True
fcntl.fcntl(fd, fcntl.F_SETOWN, os.getpid())  # as between F_SETLEASE and clearing the owner
pid = os.fork()
if pid == 0:
    os.close(fd)
    os.close(os.open({path!r}, os.O_WRONLY))
    os._exit(0)
deadline = time.monotonic() + 10
while lease_intact(fd) and time.monotonic() < deadline:
    time.sleep(0.01)
os.close(fd)
os.waitpid(pid, 0)
print("alive")
"""


@pytest.mark.root
def test_a_lease_break_while_the_holder_owns_the_fd_does_not_kill_it(tmp_path: Path) -> None:
    """F_SETLEASE makes the holder the fd's owner until take_read_lease clears it: a user's
    open for writing in that instant must send a signal that does nothing (SIGWINCH), not
    SIGIO, whose default action would end the migration."""
    path = tmp_path / "f"
    path.write_text("x")
    src = str(Path(__file__).resolve().parents[2] / "src")
    proc = subprocess.run([sys.executable, "-c", BREAK_WHILE_OWNER.format(src=src, path=str(path))],
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert proc.stdout == "alive\n"


def test_closer_closes_every_fd_it_was_given_and_never_holds_more_than_it_may(tmp_path: Path) -> None:
    """600 unlinked files' fds, at most 40 open and not closed at any time: all closed on
    leaving the with block, its threads gone, and the blocks of the files freed."""
    before = threading.active_count()
    base = len(os.listdir("/proc/self/fd"))
    fds: list[int] = []
    most_open = 0
    with Closer(threads=3, pending=40, slow_ns=0) as closer:
        for i in range(600):
            path = tmp_path / str(i)
            path.write_bytes(b"x" * 4096)
            fd = os.open(path, os.O_RDONLY)
            path.unlink()
            fds.append(fd)
            closer.close(fd)
            most_open = max(most_open, len(os.listdir("/proc/self/fd")) - base)
    for fd in fds:
        with pytest.raises(OSError, match="Bad file descriptor") as e:
            os.fstat(fd)
        assert e.value.errno == errno.EBADF
    assert threading.active_count() == before
    assert 0 < most_open <= 40
    assert os.listdir(tmp_path) == []


def test_closer_without_fds_starts_no_thread() -> None:
    before = threading.active_count()
    with Closer():
        assert threading.active_count() == before


def test_closer_mark_says_when_the_fds_given_so_far_are_closed(tmp_path: Path) -> None:
    """A mark covers every fd given before it, the batch still being filled too (it is sent)."""
    (tmp_path / "f").write_text("x")
    with Closer(threads=2, slow_ns=0) as closer:
        first = [os.open(tmp_path / "f", os.O_RDONLY) for _ in range(Closer.BATCH + 3)]
        for fd in first:
            closer.close(fd)
        mark = closer.mark()
        assert mark == len(first)
        closer.wait(mark)
        assert closer.closed(mark)
        for fd in first:
            with pytest.raises(OSError, match="Bad file descriptor"):
                os.fstat(fd)
        later = os.open(tmp_path / "f", os.O_RDONLY)
        closer.close(later)  # in a batch not yet sent: not closed, the next mark not reached
        assert not closer.closed(closer._given)
        assert closer.closed(mark)


class _Waiting:
    """A clock under which every close waits 2 ms off the CPU (as on a disk with discard)."""

    def __init__(self) -> None:
        self.now = 0

    def monotonic_ns(self) -> int:
        self.now += 1_000_000
        return self.now

    def thread_time_ns(self) -> int:
        return 0


def test_closer_closes_inline_until_closes_are_slow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Quick closes stay inline (no thread, closed at once); after SLOW_CLOSES that waited off
    the CPU the threads take over, and what was closed inline counts for the marks."""
    before = threading.active_count()
    (tmp_path / "f").write_text("x")
    with Closer(threads=2, slow_ns=10**12) as quick:  # no close takes 1000 s
        fds = [os.open(tmp_path / "f", os.O_RDONLY) for _ in range(Closer.BATCH * 3)]
        for fd in fds:
            quick.close(fd)
            with pytest.raises(OSError, match="Bad file descriptor"):
                os.fstat(fd)
        assert not quick.threaded
        assert threading.active_count() == before
        assert quick.closed(quick.mark())
    with Closer(threads=2) as busy:  # a close that takes long on the CPU is no reason for threads
        cpu = _Waiting()
        monkeypatch.setattr(moving, "time", type("Busy", (), {"monotonic_ns": cpu.monotonic_ns,
                                                               "thread_time_ns": cpu.monotonic_ns})())
        for _ in range(Closer.SLOW_CLOSES * 2):
            busy.close(os.open(tmp_path / "f", os.O_RDONLY))
        assert not busy.threaded
    monkeypatch.setattr(moving, "time", _Waiting())
    with Closer(threads=2) as slow:
        for _ in range(Closer.SLOW_CLOSES + 1):  # the first makes it time the CPU too
            assert not slow.threaded
            slow.close(os.open(tmp_path / "f", os.O_RDONLY))
        assert slow.threaded
        assert slow.closed(Closer.SLOW_CLOSES + 1)
        later = [os.open(tmp_path / "f", os.O_RDONLY) for _ in range(Closer.BATCH)]
        for fd in later:
            slow.close(fd)
        assert threading.active_count() > before
        slow.wait(slow.mark())
        for fd in later:
            with pytest.raises(OSError, match="Bad file descriptor"):
                os.fstat(fd)
    assert threading.active_count() == before


def test_closes_wait_is_false_on_a_tmpfs() -> None:
    from freshroot.fs.moving import closes_wait

    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm")
    fd = os.open("/dev/shm", os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert closes_wait(fd) is False
    finally:
        os.close(fd)
