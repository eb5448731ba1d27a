"""The apply lock: one freshroot changing a root at a time (apply, undo, the boot services).

A flock on /run/freshroot/lock below the target root. flock needs no more than a read-only
fd, so whoever can open the file can hold the lock and stop every apply: the file and its
directory are root's alone (0600 in a 0700 directory, both checked on the fd: see
:mod:`freshroot.plan.statedir`), and a lock file that fails the checks is replaced.

The holder writes its pid and its start time (from /proc/PID/stat) into the file, so a second
apply can say who holds it, and names the pid only while that process is still the one that
took the lock (a pid is reused once its process is gone). flock locks belong to the open file
description: the kernel drops the lock when the holder exits, however it exits (kill -9
included), so there is no stale lock to clean up. After locking, the file is checked to still
be the one at the path: ``undo`` removes the lock file with the rest of the state directory,
and a process that opened the old file meanwhile must not think it holds the lock. The fd is
close-on-exec, so snippets and other children never inherit the lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from types import TracebackType

from freshroot.errors import FreshrootError
from freshroot.fs.ops import read_fd, write_all
from freshroot.plan import statedir

DIRECTORY = statedir.DIRECTORY
NAME = "lock"


class LockHeldError(FreshrootError):
    """Another process holds the apply lock of this root."""


def start_time(pid: int) -> int | None:
    """A process's start time (clock ticks after boot): with the pid, it names one process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _holder(fd: int) -> int | None:
    """The pid written in the lock file, if that process is still the one that wrote it."""
    words = read_fd(fd, 64).decode("ascii", "replace").split()
    if len(words) != 2 or not all(w.isdigit() for w in words):
        return None
    pid, started = int(words[0]), int(words[1])
    return pid if start_time(pid) == started else None


class ApplyLock:
    """Held while an apply runs: ``with ApplyLock(root_fd, root): ...``. ``wait``: block until
    the holder is done instead of failing (the boot services, which must not fail for it)."""

    def __init__(self, root_fd: int, root: str = "/", *, wait: bool = False) -> None:
        self.root_fd = root_fd
        self.root = root
        self.wait = wait
        self.fd = -1
        self.made: list[str] = []  # directories of /run/freshroot's path this lock created

    def acquire(self) -> None:
        while True:
            dir_fd, made = statedir.open_dir(self.root_fd) or (-1, [])
            self.made += made
            try:
                fd = statedir.replace_file(dir_fd, NAME, os.O_RDWR)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
                except OSError as e:
                    busy = e.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
                    holder = _holder(fd) if busy else None
                    os.close(fd)
                    if not busy:
                        raise
                    raise self._held(holder) from None
                if self._still_linked(dir_fd, fd):
                    break
                os.close(fd)  # removed (by undo) while we waited: lock the new one
            finally:
                os.close(dir_fd)
        os.ftruncate(fd, 0)
        write_all(fd, f"{os.getpid()} {start_time(os.getpid())}\n".encode())
        self.fd = fd

    @staticmethod
    def _still_linked(dir_fd: int, fd: int) -> bool:
        try:
            st = os.stat(NAME, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        have = os.fstat(fd)
        return (st.st_dev, st.st_ino) == (have.st_dev, have.st_ino)

    def _held(self, holder: int | None) -> LockHeldError:
        # the lock's path as the root sees it; the root is named by the error's own note
        who = f"another freshroot (pid {holder})" if holder is not None else "another freshroot"
        return LockHeldError(
            f"{who} is applying to this root (it holds {DIRECTORY}/{NAME})",
            hint="wait for it to finish and try again" + (f", or stop it with kill {holder}" if holder else ""),
        )

    def release(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)  # no pid left behind to be misread later
            os.close(self.fd)  # closing the only description drops the flock
            self.fd = -1

    def __enter__(self) -> ApplyLock:
        self.acquire()
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
