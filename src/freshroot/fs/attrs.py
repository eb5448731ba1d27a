"""File attributes (chattr/lsattr): FS_IOC_GETFLAGS / FS_IOC_SETFLAGS, the one implementation.

The letters are the ones systemd-tmpfiles' ``h`` line knows (linux/fs.h FS_*_FL, in
parse_attribute_from_arg()'s order); the line's ``+``/``-``/``=`` syntax and systemd's
messages are read in freshroot.tmpfiles.fields. Setting follows systemd's chattr_full()
with CHATTR_FALLBACK_BITWISE: when the kernel refuses a combination (EINVAL: btrfs's
``c`` with ``C``), the flags are tried one bit at a time, and the flags read back at the end
say what took. The ioctls need a real fd: the O_PATH fd given is reopened (O_NOATIME where
allowed, as systemd does), and only for a regular file or a directory, checked on the fd
first: on a device node the ioctl would reach a driver, and a FIFO would block the reopen.
"""

from __future__ import annotations

import array
import errno
import fcntl
import os
import stat

from freshroot.fs.ops import reopen

FS_IOC_GETFLAGS = 0x80086601  # _IOR('f', 1, long); the kernel reads and writes an int
FS_IOC_SETFLAGS = 0x40086602  # _IOW('f', 2, long)
O_NOATIME = getattr(os, "O_NOATIME", 0o1000000)

SECRM, UNRM, COMPR, SYNC, IMMUTABLE, APPEND, NODUMP, NOATIME = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40, 0x80
JOURNAL_DATA, NOTAIL, DIRSYNC, TOPDIR, EXTENT = 0x4000, 0x8000, 0x10000, 0x20000, 0x80000
NOCOW, PROJINHERIT = 0x800000, 0x20000000

# letter -> FS_*_FL, in systemd-tmpfiles' order.
LETTERS: dict[str, int] = {
    "A": NOATIME, "S": SYNC, "D": DIRSYNC, "a": APPEND, "c": COMPR, "d": NODUMP, "e": EXTENT,
    "i": IMMUTABLE, "j": JOURNAL_DATA, "s": SECRM, "u": UNRM, "t": NOTAIL, "T": TOPDIR, "C": NOCOW,
    "P": PROJINHERIT,
}
ALL = 0
for _bit in LETTERS.values():
    ALL |= _bit


def letters(flags: int) -> str:
    """The letters of ``flags`` that the table knows, in table order."""
    return "".join(ch for ch, bit in LETTERS.items() if flags & bit)


def _real_fd(fd: int) -> int:
    """A readable fd for the flags ioctls, of a regular file or directory only."""
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise OSError(errno.ENOTTY, "file attributes exist only on regular files and directories")
    try:
        return reopen(fd, os.O_RDONLY | os.O_NONBLOCK | O_NOATIME)
    except PermissionError:  # O_NOATIME needs ownership (or CAP_FOWNER)
        return reopen(fd, os.O_RDONLY | os.O_NONBLOCK)


def _get(real: int) -> int:
    buf = array.array("I", [0])
    fcntl.ioctl(real, FS_IOC_GETFLAGS, buf)  # fills buf in place
    return int(buf[0])


def _set(real: int, value: int) -> None:
    buf = array.array("I", [value & 0xFFFFFFFF])
    fcntl.ioctl(real, FS_IOC_SETFLAGS, buf)


def get_flags(fd: int) -> int:
    """The attribute flags of what ``fd`` (O_PATH or not) refers to."""
    real = _real_fd(fd)
    try:
        return _get(real)
    finally:
        os.close(real)


def change_flags(fd: int, value: int, mask: int) -> tuple[int, int]:
    """Set the ``mask`` bits of the flags of what ``fd`` (O_PATH or not) refers to to those of
    ``value``. Returns (previous, final): final differs from what was asked where the file
    system dropped or refused a flag. Raises OSError for other failures (EPERM, EROFS...).

    systemd's chattr_full with CHATTR_FALLBACK_BITWISE, call for call: all bits at once; when
    that fails with EINVAL, or succeeds but the file system kept other flags than asked (ext4
    keeps the extent flag of a directory), one bit at a time from the previous flags, lowest
    bit first, where EINVAL skips the bit and any other error is the result (so clearing ext4's
    extent flag bit by bit ends in EPERM, as in systemd)."""
    real = _real_fd(fd)
    try:
        old = _get(real)
        new = (old & ~mask) | (value & mask)
        if new == old:
            return old, old
        try:
            _set(real, new)
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
        else:
            current = _get(real)
            if current == new:
                return old, current
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
            current = _get(real)
        return old, current
    finally:
        os.close(real)
