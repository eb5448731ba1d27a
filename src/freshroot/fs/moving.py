"""Taking an entry out from under other writers: renameat2 without replacing (or exchanging),
read leases, and a Closer for the fds of the files removed.

A migration removes an entry only once it knows storage holds the same bytes. Removing by
name races with a program that renames a new file over that name, so the entry is first
renamed away (RENAME_NOREPLACE, which never clobbers) and looked at under its new name. A
read lease (fcntl F_SETLEASE) is granted only while no process has the file open for
writing, and an open for writing while it is held starts a lease break that F_GETLEASE
shows: together they say that nobody wrote to the file while it was compared and removed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import os
import queue
import signal
import threading
import time
from collections.abc import Callable

from freshroot.fs._libc import check, libc, statfs_type

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
F_SETLEASE = 1024  # linux/fcntl.h (F_LINUX_SPECIFIC_BASE + 0); not in every Python's fcntl
F_GETLEASE = 1025
F_SETSIG = getattr(fcntl, "F_SETSIG", 10)  # linux/fcntl.h (__F_SETSIG)
IN_MEMORY = (0x01021994, 0x858458F6)  # tmpfs, ramfs: an eviction frees pages, it never waits


@functools.cache
def _renameat2() -> Callable[..., int]:
    fn = libc().renameat2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


def _rename(src_dir_fd: int, src: str, dst_dir_fd: int, dst: str, flags: int) -> None:
    check(_renameat2()(src_dir_fd, os.fsencode(src), dst_dir_fd, os.fsencode(dst), flags), "renameat2", src)


def rename_noreplace(src_dir_fd: int, src: str, dst_dir_fd: int, dst: str) -> None:
    """Rename, failing with FileExistsError instead of replacing what is at ``dst``."""
    _rename(src_dir_fd, src, dst_dir_fd, dst, RENAME_NOREPLACE)


def rename_exchange(a_dir_fd: int, a: str, b_dir_fd: int, b: str) -> None:
    """Swap two entries atomically (both must exist)."""
    _rename(a_dir_fd, a, b_dir_fd, b, RENAME_EXCHANGE)


def take_read_lease(fd: int) -> bool | None:
    """Take a read lease on ``fd`` (a regular file opened O_RDONLY). True: held; False: some
    process has the file open for writing; None: leases are not available here (disabled,
    or a file system without them), so the caller must do without."""
    # F_SETLEASE makes us the fd's owner: a lease break sends the owner SIGIO, whose default
    # action ends the process, and a user may open their file for writing at any moment. The
    # break's signal is SIGWINCH instead (ignored by default) from before the lease is taken,
    # and the owner is cleared right after; F_GETLEASE shows the break either way.
    fcntl.fcntl(fd, F_SETSIG, signal.SIGWINCH)
    try:
        fcntl.fcntl(fd, F_SETLEASE, fcntl.F_RDLCK)
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EBUSY):
            return False
        if e.errno in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM, errno.EACCES):
            return None
        raise
    fcntl.fcntl(fd, fcntl.F_SETOWN, 0)
    return True


def lease_intact(fd: int) -> bool:
    """Whether the read lease taken on ``fd`` is still held and nobody has begun to break it
    (an open for writing shows as the type it is being broken to)."""
    return fcntl.fcntl(fd, F_GETLEASE) == fcntl.F_RDLCK


@functools.cache
def _syncfs() -> Callable[..., int]:
    fn = libc().syncfs
    fn.argtypes = [ctypes.c_int]
    return fn


def syncfs(fd: int) -> None:
    """Flush the whole file system ``fd`` is on: one call makes many new files durable,
    where an fsync of each would cost a flush apiece."""
    check(_syncfs()(fd), "syncfs")


def closes_wait(fd: int) -> bool:
    """Whether the last close of an unlinked file on ``fd``'s file system can wait for I/O
    (a Closer's threads are then worth their hand-offs: on a tmpfs, under load, they cost
    more CPU and time than closing inline, bench/migrate.py)."""
    try:
        return statfs_type(fd) not in IN_MEMORY
    except OSError:
        return True


class Closer:
    """Closes the fds of files just unlinked: inline while closes are quick, on a few threads
    of its own once they are not.

    The last close of an unlinked file frees its blocks (the inode's eviction). On ext4
    mounted with ``discard`` and no journal that waits for the disk: 5 ms a file, so removing
    23,000 files one after the other waits two minutes, where 8 threads take a tenth of that
    (bench/migrate.py). Elsewhere (ext4 with a journal, XFS, btrfs) a close takes
    microseconds, and threads only cost: each close they make hands the GIL back and forth
    with the walk, which made removing those 23,000 files take twice as long. So the fds are
    closed inline, timed, until ``SLOW_CLOSES`` closes have waited ``slow_ns`` or more off the
    CPU; from then on threads close them.

    The fds go to the threads in batches (a thread's wake-up per fd costs more than a close),
    and at most ``pending`` are open and not yet closed: a caller faster than the closes waits
    instead of running out of fds. Threads start as batches come; the fds are closed in any
    order; leaving the ``with`` block waits for all of them. ``mark()`` and ``closed(mark)``
    tell when the fds given so far are all closed: a directory is removed only then, since
    rmdir busy-waits (shrink_dcache_parent walks the children again and again) while one of
    its files is still being evicted on another thread (a fifth of migrate's CPU on ext4)."""

    BATCH = 16
    SLOW_NS = 1_000_000  # a close that waited this long off the CPU waited for the disk
    SLOW_CLOSES = 3  # slow closes before the threads take over

    def __init__(self, threads: int = 8, pending: int = 256, *, slow_ns: int = SLOW_NS) -> None:
        """``slow_ns`` 0: threads from the first fd on."""
        self._queue: queue.SimpleQueue[list[int] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._most = threads
        self._batch: list[int] = []
        self._room = threading.Semaphore(max(pending, 2 * self.BATCH))  # never less than a batch
        self._given = 0  # fds given to close()
        self._done = 0  # of them closed
        self._progress = threading.Condition()
        self._slow_ns = slow_ns
        self._slow = 0 if slow_ns else self.SLOW_CLOSES  # slow closes seen inline
        self._suspect = False  # a close took long: the next ones are timed on the CPU too

    @property
    def threaded(self) -> bool:
        """Whether the fds now go to the threads."""
        return self._slow >= self.SLOW_CLOSES

    def close(self, fd: int) -> None:
        """Close ``fd`` now or soon, on another thread: the caller never uses it again."""
        if not self.threaded:
            # Time off the CPU: freeing a big file's extents is work that threads would not
            # save, waiting for the disk is what they overlap. The thread's CPU time is a
            # system call, the clock is not: it is asked for only once a close took long.
            start = time.monotonic_ns()
            cpu = time.thread_time_ns() if self._suspect else 0
            with contextlib.suppress(OSError):  # a read-only fd: nothing to report on close
                os.close(fd)
            took = time.monotonic_ns() - start
            if took >= self._slow_ns:
                if self._suspect and took - (time.thread_time_ns() - cpu) >= self._slow_ns:
                    self._slow += 1
                self._suspect = True
            self._given += 1
            with self._progress:
                self._done += 1
            return
        self._room.acquire()
        self._batch.append(fd)
        self._given += 1
        if len(self._batch) >= self.BATCH:
            self._send()

    def _send(self) -> None:
        if len(self._threads) < self._most:
            thread = threading.Thread(target=self._run, name="freshroot-closer", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._queue.put(self._batch)
        self._batch = []

    def mark(self) -> int:
        """The fds given so far (the batch being filled is sent), for closed() and wait()."""
        if self._batch:
            self._send()
        return self._given

    def closed(self, mark: int) -> bool:
        """Whether the fds given before ``mark`` are all closed."""
        with self._progress:
            return self._done >= mark

    def wait(self, mark: int) -> None:
        """Until the fds given before ``mark`` are all closed."""
        with self._progress:
            self._progress.wait_for(lambda: self._done >= mark)

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            for fd in batch:
                with contextlib.suppress(OSError):  # a read-only fd: nothing to report on close
                    os.close(fd)
                self._room.release()
            with self._progress:
                self._done += len(batch)
                self._progress.notify_all()

    def __enter__(self) -> Closer:
        return self

    def __exit__(self, *_: object) -> None:
        if self._batch:
            self._send()
        for _thread in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._threads.clear()
