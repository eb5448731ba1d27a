"""Small fd-based node operations tmpfiles needs beyond ops: fifos, extended attributes and
file attributes (chattr flags) on what an O_PATH fd refers to, and btrfs subvolumes.

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
import stat
import struct

from freshroot.fs.ops import _check_name, fd_path, reopen

FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
BTRFS_SUPER_MAGIC = 0x9123683E
BTRFS_IOC_SUBVOL_CREATE = 0x5000940E  # _IOW(0x94, 14, struct btrfs_ioctl_vol_args) (4096 bytes)
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


def is_btrfs_subvolume(fd: int) -> bool:
    """Whether the directory ``fd`` is the top of a btrfs subvolume (inode 256 on btrfs)."""
    st = os.fstat(fd)
    if not stat.S_ISDIR(st.st_mode) or st.st_ino != 256:
        return False
    real = reopen(fd, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return os.fstatvfs(real).f_fsid != 0 and _statfs_type(real) == BTRFS_SUPER_MAGIC
    finally:
        os.close(real)


def _statfs_type(fd: int) -> int:
    import ctypes

    from freshroot.fs import _libc

    buf = ctypes.create_string_buffer(120)
    fn = _libc.libc().fstatfs
    _libc.check(fn(fd, buf), "fstatfs")
    return int.from_bytes(buf.raw[:8], "little")


def make_btrfs_subvolume(dir_fd: int, name: str) -> None:
    """BTRFS_IOC_SUBVOL_CREATE of ``name`` in the directory ``dir_fd``."""
    _check_name(name)
    real = reopen(dir_fd, os.O_RDONLY | os.O_DIRECTORY)
    try:
        args = bytearray(4096)
        raw = os.fsencode(name)
        if len(raw) > 4087:
            raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), name)
        args[8 : 8 + len(raw)] = raw
        fcntl.ioctl(real, BTRFS_IOC_SUBVOL_CREATE, bytes(args))
    finally:
        os.close(real)
