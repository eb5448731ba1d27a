"""Atomic replacement of a file: write a temporary file beside it, fsync, rename over it.

Readers see the old content or the new, never a half-written file, and after a crash the
file is either old or new: the rename is durable because the directory is fsync'ed too.
"""

from __future__ import annotations

import contextlib
import os
import secrets

from freshroot.fs.ops import _check_name, write_all


def temp_name(name: str) -> str:
    """``.#NAME.RANDOM``, with NAME cut so the whole stays within NAME_MAX (255 bytes)."""
    suffix = f".{secrets.token_hex(6)}"
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
