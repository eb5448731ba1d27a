"""statx(2) on file descriptors: nanosecond timestamps, birth time, mount id, mount-root bit.

os.stat() cannot give the birth time, the mount id, or whether an entry is the root of a
mount (STATX_ATTR_MOUNT_ROOT), which tmpfiles' clean algorithm and the persistence audit
need. The call goes through glibc's statx() wrapper via ctypes (loaded on first use).
"""

from __future__ import annotations

import ctypes
import enum
import functools
import os
import stat
import struct
from _ctypes import FUNCFLAG_CDECL, FUNCFLAG_PYTHONAPI, CFuncPtr
from dataclasses import dataclass

from freshroot.fs import _libc


class Mask(enum.IntFlag):
    """STATX_* request/result mask bits (linux/stat.h); unknown bits are kept (IntFlag)."""

    TYPE = 0x1
    MODE = 0x2
    NLINK = 0x4
    UID = 0x8
    GID = 0x10
    ATIME = 0x20
    MTIME = 0x40
    CTIME = 0x80
    INO = 0x100
    SIZE = 0x200
    BLOCKS = 0x400
    BASIC_STATS = 0x7FF
    BTIME = 0x800
    MNT_ID = 0x1000


class Attr(enum.IntFlag):
    """STATX_ATTR_* bits of stx_attributes."""

    COMPRESSED = 0x4
    IMMUTABLE = 0x10
    APPEND = 0x20
    NODUMP = 0x40
    ENCRYPTED = 0x800
    AUTOMOUNT = 0x1000
    MOUNT_ROOT = 0x2000
    VERITY = 0x100000
    DAX = 0x200000


class _Timestamp(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_int64), ("tv_nsec", ctypes.c_uint32), ("_reserved", ctypes.c_int32))


class _Statx(ctypes.Structure):
    _fields_ = (
        ("stx_mask", ctypes.c_uint32),
        ("stx_blksize", ctypes.c_uint32),
        ("stx_attributes", ctypes.c_uint64),
        ("stx_nlink", ctypes.c_uint32),
        ("stx_uid", ctypes.c_uint32),
        ("stx_gid", ctypes.c_uint32),
        ("stx_mode", ctypes.c_uint16),
        ("_spare0", ctypes.c_uint16),
        ("stx_ino", ctypes.c_uint64),
        ("stx_size", ctypes.c_uint64),
        ("stx_blocks", ctypes.c_uint64),
        ("stx_attributes_mask", ctypes.c_uint64),
        ("stx_atime", _Timestamp),
        ("stx_btime", _Timestamp),
        ("stx_ctime", _Timestamp),
        ("stx_mtime", _Timestamp),
        ("stx_rdev_major", ctypes.c_uint32),
        ("stx_rdev_minor", ctypes.c_uint32),
        ("stx_dev_major", ctypes.c_uint32),
        ("stx_dev_minor", ctypes.c_uint32),
        ("stx_mnt_id", ctypes.c_uint64),
        # The kernel's struct is 256 bytes; newer kernels fill more of this tail.
        ("_spare", ctypes.c_uint64 * 13),
    )


assert ctypes.sizeof(_Statx) == 256


def _ns(ts: _Timestamp) -> int:
    return int(ts.tv_sec) * 1_000_000_000 + int(ts.tv_nsec)


@dataclass(frozen=True, slots=True)
class Statx:
    """What statx returned. Fields the file system did not provide are None."""

    mask: Mask
    mode: int
    nlink: int
    uid: int
    gid: int
    ino: int
    size: int
    blocks: int
    blksize: int
    dev: int
    rdev: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    btime_ns: int | None  # birth time; None where the file system does not record it
    mnt_id: int | None
    attributes: Attr
    attributes_mask: Attr  # which bits of ``attributes`` this file system supports

    @property
    def is_mount_root(self) -> bool | None:
        """True for the root of a mount (a bind mount included); None if the kernel cannot say."""
        if Attr.MOUNT_ROOT not in self.attributes_mask:
            return None
        return Attr.MOUNT_ROOT in self.attributes

    @property
    def type(self) -> int:
        return stat.S_IFMT(self.mode)

    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    def is_reg(self) -> bool:
        return stat.S_ISREG(self.mode)

    def is_lnk(self) -> bool:
        return stat.S_ISLNK(self.mode)


DEFAULT_MASK = Mask.BASIC_STATS | Mask.BTIME | Mask.MNT_ID


def statx_at(dir_fd: int, name: str, mask: Mask = DEFAULT_MASK, *, follow: bool = False) -> Statx:
    """statx of ``name`` in ``dir_fd``; never triggers an automount; follows a symlink only if asked."""
    flags = _libc.AT_NO_AUTOMOUNT | (0 if follow else _libc.AT_SYMLINK_NOFOLLOW)
    if not name:
        flags |= _libc.AT_EMPTY_PATH
    buf = _Statx()
    fn = _libc.libc().statx
    fn.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p)
    fn.restype = ctypes.c_int
    _libc.check(fn(dir_fd, os.fsencode(name), flags, int(mask), ctypes.byref(buf)), "statx", name or None)
    got = Mask(buf.stx_mask)
    return Statx(
        mask=got,
        mode=buf.stx_mode,
        nlink=buf.stx_nlink,
        uid=buf.stx_uid,
        gid=buf.stx_gid,
        ino=buf.stx_ino,
        size=buf.stx_size,
        blocks=buf.stx_blocks,
        blksize=buf.stx_blksize,
        dev=os.makedev(buf.stx_dev_major, buf.stx_dev_minor),
        rdev=os.makedev(buf.stx_rdev_major, buf.stx_rdev_minor),
        atime_ns=_ns(buf.stx_atime),
        mtime_ns=_ns(buf.stx_mtime),
        ctime_ns=_ns(buf.stx_ctime),
        btime_ns=_ns(buf.stx_btime) if Mask.BTIME in got else None,
        mnt_id=buf.stx_mnt_id if Mask.MNT_ID in got else None,
        attributes=Attr(buf.stx_attributes),
        attributes_mask=Attr(buf.stx_attributes_mask),
    )


def statx_fd(fd: int, mask: Mask = DEFAULT_MASK) -> Statx:
    """statx of what ``fd`` refers to (O_PATH fds and symlinks included)."""
    return statx_at(fd, "", mask)


# --- the hot path of the clean walk --------------------------------------------------------
# statx_at() builds a dataclass with enum flags: fine for a few calls, too slow for a walk of a
# million entries. RawStatx reuses one buffer and one prepared libc function and returns a
# plain tuple of the fields the clean algorithm reads.

# Only the fields the clean walk reads; 'x' skips the rest. The kernel zeroes what the file
# system does not provide (a missing btime reads as 0, as systemd's load also treats it).
_RAW = struct.Struct("<I4xQ4xI4xH2x24xQqI4xqI4xqI4xqI4x8xII")
RAW_MASK = Mask.TYPE | Mask.MODE | Mask.NLINK | Mask.UID | Mask.ATIME | Mask.MTIME | Mask.CTIME | Mask.BTIME

RawFields = tuple[int, int, int, int, int, int, int, int, int, int, int, int, int, int, int]
# Indexes into RawFields.
R_MASK, R_ATTRS, R_UID, R_MODE, R_ATTRS_MASK = 0, 1, 2, 3, 4
R_ATIME, R_BTIME, R_CTIME, R_MTIME = 5, 7, 9, 11  # seconds; the nanoseconds follow each
R_DEV_MAJOR, R_DEV_MINOR = 13, 14

# The offsets of what the walk's first look at each entry reads (struct statx, linux/stat.h):
# the byte of stx_attributes that holds STATX_ATTR_MOUNT_ROOT (0x2000), the high byte of
# stx_mode (the file type, the setuid, setgid and sticky bits, the owner's read bit).
_OFF_MOUNT_BYTE, _OFF_MODE_BYTE = 9, 29
_OFF_SECONDS = {R_ATIME: 64, R_BTIME: 80, R_CTIME: 96, R_MTIME: 112}  # each timestamp's tv_sec
_DEV = struct.Struct("<136xII")
_NLINK = struct.Struct("<16xI")
# Indexes into a first_look() tuple; the seconds of the timestamps asked for follow, from F_AGES.
F_MOUNT_BYTE, F_MODE_BYTE, F_AGES = 0, 1, 2
# The mode's high byte of a regular file without the setuid, setgid or sticky bit: with and
# without the owner's read bit (the most common first: the walk tests ``in`` this tuple).
PLAIN_FILE_BYTES = ((stat.S_IFREG | stat.S_IRUSR) >> 8, stat.S_IFREG >> 8)


@functools.cache
def first_look(ages: tuple[int, ...]) -> struct.Struct:
    """The walk's first look at an entry: (the mount-root byte of the attributes, the high byte
    of the mode, then the seconds of the timestamps ``ages`` names (R_ATIME, R_BTIME, R_CTIME,
    R_MTIME), in the order of their offsets). Enough to tell a plain file (both bytes small
    ints, compared without arithmetic: F_MOUNT_BYTE 0, F_MODE_BYTE in PLAIN_FILE_BYTES) and its
    age by the second; anything else is read with the full unpack where it is needed. One
    unpack of only these fields costs less than a wider one and picking fields out of it (the
    call itself costs more than a field)."""
    fields = [(_OFF_MOUNT_BYTE, "B"), (_OFF_MODE_BYTE, "B")]
    fields += sorted((_OFF_SECONDS[index], "q") for index in set(ages))
    fmt, at = "<", 0
    for offset, code in fields:
        fmt += f"{offset - at}x{code}" if offset > at else code
        at = offset + struct.calcsize(code)
    return struct.Struct(fmt)


class _IntResult(CFuncPtr):
    """A C function called as a PyDLL one (the GIL kept: see RawStatx) that returns its C int
    as it is: without a restype, ctypes makes the int itself and skips the lookups a c_int
    restype costs at every call (its type's dictionary, the "O" field descriptor)."""

    _flags_ = FUNCFLAG_CDECL | FUNCFLAG_PYTHONAPI


class RawStatx:
    """statx(dir_fd, name, AT_SYMLINK_NOFOLLOW|AT_NO_AUTOMOUNT) as a flat tuple (RawFields).

    statx_at() builds a dataclass with enum flags: fine for a few calls, too slow for a walk of
    a million entries. This reuses one buffer and its own libc function object, called with
    arguments ctypes passes without conversion: C ints, a bytes (char *) and a reference to
    the buffer, no argtypes (a converter per argument cost more than the syscall itself). The
    buffer is a bytearray that C writes through a ctypes array made on its memory: struct
    reads a bytearray for less than a ctypes buffer (no ctypes type lookups). Raises OSError.

    The hot loop of the clean walk calls ``fn(dir_fd, name, flags, mask, ref)`` itself and
    reads ``buf`` with a first_look() struct or ``unpack``, saving a Python call per entry;
    ``__call__`` is the readable form. ``fn`` is the cheapest call ctypes makes:

    - it keeps the GIL (a PyDLL function): releasing and taking it back cost more than the
      call's own work. That is safe here because the walk runs no other thread: freshroot-
      tmpfiles has none, and its clean workers are processes. A statx that hangs (a dead
      FUSE or NFS server) hangs the walk whether or not the GIL is released, as it hangs
      systemd-tmpfiles; with the GIL kept, a Python thread of the same process would stall
      with it, so this is not a function for code that runs beside threads;
    - it does not save errno: after it failed, ``again`` makes the call once more, saving
      errno (an entry that vanished between the two calls is simply gone);
    - it has no restype (_IntResult).

    Measured with callgrind, these cut the call from about 3,600 to 2,950 instructions.
    """

    def __init__(self) -> None:
        self.buf = bytearray(256)
        # C writes the bytearray's own memory; the array (kept by the reference) holds the
        # bytearray's buffer, so it can never be resized away under the call.
        self.ref = ctypes.byref((ctypes.c_char * 256).from_buffer(self.buf))
        libc = _libc.libc()
        self.fn = _IntResult(("statx", ctypes.PyDLL(libc._name)))
        self._fn_errno = libc["statx"]  # a fresh function object: statx_at's argtypes never apply
        self._fn_errno.restype = ctypes.c_int
        self.flags = _libc.AT_NO_AUTOMOUNT | _libc.AT_SYMLINK_NOFOLLOW
        self.mask = int(RAW_MASK)
        self.unpack = _RAW.unpack_from
        self.dev = _DEV.unpack_from  # (dev_major, dev_minor)
        self.nlink = _NLINK.unpack_from  # (nlink,)

    def __call__(self, dir_fd: int, name: bytes) -> RawFields:
        if self.fn(dir_fd, name, self.flags if name else self.flags | _libc.AT_EMPTY_PATH, self.mask, self.ref) < 0:
            error = self.again(dir_fd, name)
            if error is not None:
                raise error
        return self.unpack(self.buf)

    def again(self, dir_fd: int, name: bytes) -> OSError | None:
        """After ``fn`` failed: the call made again, now saving errno. The OSError it fails
        with, or None when it succeeded this time (the buffer holds its result)."""
        flags = self.flags if name else self.flags | _libc.AT_EMPTY_PATH
        if self._fn_errno(dir_fd, name, flags, self.mask, self.ref) >= 0:
            return None
        err = ctypes.get_errno()
        return OSError(err, os.strerror(err), os.fsdecode(name))


def raw_ns(fields: RawFields, index: int) -> int:
    """A timestamp of RawFields in nanoseconds (index: R_ATIME, R_BTIME, R_CTIME, R_MTIME)."""
    return fields[index] * 1_000_000_000 + fields[index + 1]
