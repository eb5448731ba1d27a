"""Atomic replacement: a new node made under a temporary name beside the old one, then
renamed over it; the one implementation, for files (replace_at), symlinks
(replace_symlink_at) and any node a caller makes (replace_node_at).

Readers see the old content or the new, never a half-written file, and after a crash the
file is either old or new: the rename is durable because the directory is fsync'ed too. The
temporary name stays within NAME_MAX, and the temporary node is removed when anything fails.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from freshroot.fs.ops import _check_name, symlink_at, write_all


def temp_name(name: str) -> str:
    """``.#NAME.RANDOM``, with NAME cut so the whole stays within NAME_MAX (255 bytes)."""
    suffix = f".{os.urandom(6).hex()}"  # secrets.token_hex, without importing random, hmac, base64
    room = 255 - 2 - len(suffix)
    return ".#" + os.fsdecode(os.fsencode(name)[:room]) + suffix


def replace_at(
    dir_fd: int,
    name: str,
    data: bytes,
    *,
    mode: int = 0o644,
    uid: int = -1,
    gid: int = -1,
    durable: bool = True,
) -> None:
    """Atomically make ``name`` in ``dir_fd`` hold ``data`` with ``mode`` and owner.

    ``dir_fd`` must be a real (not O_PATH) directory fd or an O_PATH one; the temporary file
    is created with O_EXCL and a random name, so nothing planted can be written through.
    """
    _check_name(name)
    real_dir = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        tmp = temp_name(name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=real_dir)
        try:
            try:
                write_all(fd, data)
                if uid != -1 or gid != -1:
                    os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)  # after chown: chown clears set-id bits
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, name, src_dir_fd=real_dir, dst_dir_fd=real_dir)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=real_dir)
            raise
        if durable:
            os.fsync(real_dir)
    finally:
        os.close(real_dir)


def replace_node_at(dir_fd: int, name: str, make: Callable[[int, str], None], *, temp: str | None = None) -> None:
    """Atomically put a node made by ``make(dir_fd, temporary_name)`` at ``name`` in ``dir_fd``
    (what is there, unless a non-empty directory, is replaced; nothing is written through
    it). ``temp``: the temporary name, when a caller must use its own (tmpfiles: systemd's).
    Raises the OSError of ``make`` or of the rename; the temporary node never stays."""
    _check_name(name)
    tmp = temp if temp is not None else temp_name(name)
    make(dir_fd, tmp)
    try:
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def replace_symlink_at(dir_fd: int, name: str, target: str) -> None:
    """Atomically make ``name`` in ``dir_fd`` a symlink to ``target``."""
    replace_node_at(dir_fd, name, lambda d, n: symlink_at(target, d, n))
