"""Reading a file only root could have written: what freshroot keeps below /usr/lib/freshroot
(the generator's units, compiled dataclass methods) is data it then runs or installs, so it is
trusted exactly when no one but root could have put it there.

Imports nothing but ``os`` and ``stat``: its readers run before the rest of freshroot loads.
"""

from __future__ import annotations

import os
import stat

_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


class UntrustedError(Exception):
    """A component of the path is not a real directory or file owned by root and writable by
    root alone."""


def _owned_by_root(st: os.stat_result) -> bool:
    return st.st_uid == 0 and not st.st_mode & 0o022


def open_trusted_dir(root_fd: int, path: str) -> int:
    """An fd of ``path``'s directory below the root, every component a real directory (never a
    symlink) owned by root and writable by nobody else."""
    fd = os.dup(root_fd)
    try:
        for name in path.strip("/").split("/")[:-1]:
            new = os.open(name, os.O_PATH | os.O_DIRECTORY | _NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = new
            if not _owned_by_root(os.fstat(fd)):
                raise UntrustedError(name)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_trusted(root_fd: int, path: str, max_size: int) -> bytes | None:
    """The bytes of ``path`` below the root when it and every directory above it are root's
    alone (:func:`open_trusted_dir`), it is a regular file and at most ``max_size`` bytes;
    else None (absent, unreadable, not trusted). Never blocks on a FIFO."""
    try:
        dir_fd = open_trusted_dir(root_fd, path)
        try:
            fd = os.open(os.path.basename(path), os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or not _owned_by_root(st) or st.st_size > max_size:
                return None
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
        finally:
            os.close(fd)
    except (UntrustedError, OSError):
        return None
    data = b"".join(chunks)
    return data if len(data) <= max_size else None
