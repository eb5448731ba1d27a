"""File attributes (chattr/lsattr): FS_IOC_GETFLAGS / FS_IOC_SETFLAGS on a real fd.

The letters are the ones systemd-tmpfiles' ``h`` line accepts, with its ``+``/``-``/``=``
prefixes, and setting follows its chattr_full(): only regular files and directories are
touched (on a device node the ioctl would reach a driver, not the file system), a flag
set that the file system silently drops is noticed by reading the flags back, and when
a combination is refused the flags are tried one at a time.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct
from dataclasses import dataclass

from freshroot.errors import ConfigError, Location

FS_IOC_GETFLAGS = 0x80086601  # _IOR('f', 1, long); the kernel reads and writes an int
FS_IOC_SETFLAGS = 0x40086602  # _IOW('f', 2, long)

SECRM, UNRM, COMPR, SYNC, IMMUTABLE, APPEND, NODUMP, NOATIME = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40, 0x80
JOURNAL_DATA, NOTAIL, DIRSYNC, TOPDIR, EXTENT = 0x4000, 0x8000, 0x10000, 0x20000, 0x80000
NOCOW, PROJINHERIT = 0x800000, 0x20000000

# systemd-tmpfiles' table, letter -> FS_*_FL, in its order.
LETTERS: dict[str, int] = {
    "A": NOATIME, "S": SYNC, "D": DIRSYNC, "a": APPEND, "c": COMPR, "d": NODUMP, "e": EXTENT,
    "i": IMMUTABLE, "j": JOURNAL_DATA, "s": SECRM, "u": UNRM, "t": NOTAIL, "T": TOPDIR, "C": NOCOW,
    "P": PROJINHERIT,
}
ALL = 0
for _bit in LETTERS.values():
    ALL |= _bit

_NOT_SUPPORTED = (errno.EOPNOTSUPP, errno.ENOTTY, errno.ENOSYS, errno.EINVAL)


@dataclass(frozen=True, slots=True)
class AttrSpec:
    """A parsed ``h`` argument: set the bits of ``value`` that are in ``mask``."""

    value: int
    mask: int


def parse_spec(text: str, location: Location | None = None) -> AttrSpec:
    """``[+-=]LETTERS`` as tmpfiles' h line: + sets (default), - clears, = sets exactly these."""
    mode = text[:1] if text[:1] in ("+", "-", "=") else ""
    chars = text[len(mode):]
    if not chars and mode != "=":
        raise ConfigError(f"file attributes {text!r} name no attribute", location=location,
                          hint=f"use letters from {''.join(LETTERS)}, e.g. +i or =C")
    value = mask = 0
    for ch in chars:
        bit = LETTERS.get(ch)
        if bit is None:
            raise ConfigError(f"unknown file attribute {ch!r} in {text!r}", location=location,
                              hint=f"known attributes: {''.join(LETTERS)}")
        if mode != "-":
            value |= bit
        mask |= bit
    if mode == "=":
        mask |= ALL
    return AttrSpec(value, mask)


def letters(flags: int) -> str:
    """The letters of ``flags`` that the table knows, in table order."""
    return "".join(ch for ch, bit in LETTERS.items() if flags & bit)


def get_flags(fd: int) -> int:
    """The attribute flags of a regular file or directory (a real fd, not O_PATH)."""
    _check_type(fd)
    return _get(fd)


def _get(fd: int) -> int:
    buf = fcntl.ioctl(fd, FS_IOC_GETFLAGS, struct.pack("=I", 0))
    return int(struct.unpack("=I", buf[:4])[0])


def _set(fd: int, flags: int) -> None:
    fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("=I", flags & 0xFFFFFFFF))


def _check_type(fd: int) -> None:
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise OSError(errno.ENOTTY, "file attributes exist only on regular files and directories")


@dataclass(frozen=True, slots=True)
class ChattrResult:
    previous: int
    final: int
    wanted: int

    @property
    def changed(self) -> bool:
        return self.previous != self.final

    @property
    def complete(self) -> bool:
        """False when the file system refused some of the flags (they are left out of ``final``)."""
        return self.final == self.wanted


def set_flags(fd: int, value: int, mask: int) -> ChattrResult:
    """Set the bits of ``value`` selected by ``mask`` on a real (not O_PATH) fd.

    Raises OSError for real failures (EPERM, EROFS...); flags the file system does not
    support are skipped and show up as ``complete == False``.
    """
    _check_type(fd)
    old = _get(fd)
    new = (old & ~mask) | (value & mask)
    if new == old:
        return ChattrResult(old, old, new)
    try:
        _set(fd, new)
        if _get(fd) == new:
            return ChattrResult(old, new, new)
    except OSError as e:
        if e.errno not in _NOT_SUPPORTED:
            raise
    # A combination was refused (btrfs: c with C) or dropped: one flag at a time.
    current = old
    for i in range(32):
        bit = 1 << i
        if not mask & bit:
            continue
        one = (current & ~bit) | (value & bit)
        if one == current:
            continue
        try:
            _set(fd, one)
        except OSError as e:
            if e.errno not in _NOT_SUPPORTED:
                raise
            continue
        current = _get(fd)
    return ChattrResult(old, current, new)
