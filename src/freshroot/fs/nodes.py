"""Small fd-based node operations tmpfiles needs beyond ops: fifos, extended attributes and
file attributes (chattr flags) on what an O_PATH fd refers to (btrfs subvolumes: freshroot.fs.btrfs).

Extended attributes go through the fd's /proc magic link, which names the very inode the fd
holds (never a re-resolved path). File attributes need a real fd: the ioctl is issued on a
reopened fd, and only for regular files and directories (on device nodes it would reach the
driver, not the file system).
"""

from __future__ import annotations

import array
import errno
import fcntl
import os
import struct

from freshroot.fs.ops import _check_name, fd_path, reopen

FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
O_NOATIME = getattr(os, "O_NOATIME", 0o1000000)


def mkfifo_at(dir_fd: int, name: str, mode: int) -> None:
    _check_name(name)
    os.mkfifo(name, mode, dir_fd=dir_fd)


def set_xattr_fd(fd: int, name: str, value: bytes) -> None:
    os.setxattr(fd_path(fd), name, value)


def list_xattrs_fd(fd: int) -> list[str]:
    return os.listxattr(fd_path(fd))


def get_xattr_fd(fd: int, name: str) -> bytes:
    return os.getxattr(fd_path(fd), name)


def _flags_fd(fd: int) -> int:
    """A readable fd for the flags ioctls (O_NOATIME where allowed, as systemd does)."""
    try:
        return reopen(fd, os.O_RDONLY | O_NOATIME)
    except PermissionError:
        return reopen(fd, os.O_RDONLY)


def _set(real: int, value: int) -> None:
    fcntl.ioctl(real, FS_IOC_SETFLAGS, struct.pack("=I", value & 0xFFFFFFFF))


def change_flags(fd: int, value: int, mask: int) -> tuple[int, int]:
    """systemd's chattr_full with CHATTR_FALLBACK_BITWISE: set the ``mask`` bits of the flags to
    ``value``; when the kernel refuses the combination (EINVAL), try one bit at a time.
    Returns (previous, final). Raises OSError for other failures."""
    real = _flags_fd(fd)
    try:
        buf = array.array("I", [0])
        fcntl.ioctl(real, FS_IOC_GETFLAGS, buf)  # fills buf in place
        old = int(buf[0])
        new = (old & ~mask) | (value & mask)
        if new == old:
            return old, old
        try:
            _set(real, new)
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            current = old
            for bit in range(32):
                one = 1 << bit
                if not mask & one:
                    continue
                attempt = (current | one) if value & one else (current & ~one)
                if attempt == current:
                    continue
                try:
                    _set(real, attempt)
                except OSError as e2:
                    if e2.errno != errno.EINVAL:
                        raise
                    continue
                fcntl.ioctl(real, FS_IOC_GETFLAGS, buf)  # fills buf in place
                current = int(buf[0])
        fcntl.ioctl(real, FS_IOC_GETFLAGS, buf)  # fills buf in place
        return old, int(buf[0])
    finally:
        os.close(real)
