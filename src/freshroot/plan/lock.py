"""The apply lock: one freshroot changing a root at a time.

A non-blocking flock on /run/freshroot/lock below the target root. The holder writes its pid
into the file, so a second apply can say who holds it. flock locks belong to the open file
description: the kernel drops the lock when the holder exits, however it exits (kill -9
included), so there is no stale lock to clean up. The fd is close-on-exec, so snippets and
other children never inherit the lock.
"""

from __future__ import annotations

import errno
import fcntl
import os
from types import TracebackType

from freshroot.errors import FreshrootError
from freshroot.fs.ops import mkdir_parents, open_at, read_fd, write_all

DIRECTORY = "/run/freshroot"
NAME = "lock"


class LockHeldError(FreshrootError):
    """Another process holds the apply lock of this root."""


class ApplyLock:
    """Held while an apply runs: ``with ApplyLock(root_fd, root): ...``."""

    def __init__(self, root_fd: int, root: str = "/") -> None:
        self.root_fd = root_fd
        self.root = root
        self.fd = -1

    def acquire(self) -> None:
        with mkdir_parents(self.root_fd, DIRECTORY, 0o755) as found:
            fd = open_at(found.fd, NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                os.close(fd)
                raise
            holder = read_fd(fd, 64).decode("ascii", "replace").strip()
            os.close(fd)
            where = self.root.rstrip("/") + DIRECTORY + "/" + NAME
            who = f"another freshroot (pid {holder})" if holder.isdigit() else "another freshroot"
            raise LockHeldError(
                f"{who} is applying to {self.root} (it holds {where})",
                hint="wait for it to finish and try again"
                + (f", or stop it with kill {holder}" if holder.isdigit() else ""),
            ) from None
        os.ftruncate(fd, 0)
        write_all(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the only description drops the flock
            self.fd = -1

    def __enter__(self) -> ApplyLock:
        self.acquire()
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
