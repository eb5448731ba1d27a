"""The few libc calls the os module does not expose, through ctypes.

Loaded lazily (ctypes costs start-up time) and only by the fs modules that need them.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable

AT_EMPTY_PATH = 0x1000
AT_SYMLINK_NOFOLLOW = 0x100
AT_NO_AUTOMOUNT = 0x800


@functools.cache
def libc() -> ctypes.CDLL:
    # glibc's soname first: ctypes.util.find_library() runs ldconfig (a process, ~10 ms),
    # so it is only the fallback for other C libraries.
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        from ctypes.util import find_library

        return ctypes.CDLL(find_library("c") or "libc.so", use_errno=True)


def statfs_type(fd: int) -> int:
    """The file system type (statfs f_type, a magic number) of what the readable fd is on."""
    buf = ctypes.create_string_buffer(120)  # struct statfs; f_type comes first
    check(libc().fstatfs(fd, buf), "fstatfs")
    return int.from_bytes(buf.raw[:8], "little")


def check(result: int, what: str, filename: str | None = None) -> int:
    """Raise OSError from errno when a libc call returned -1."""
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", filename)
    return result


@functools.cache
def _fchownat() -> Callable[..., int]:  # set up once: a run may chown thousands of entries
    fn = libc().fchownat
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint, ctypes.c_uint, ctypes.c_int]
    return fn


def fchownat_empty(fd: int, uid: int, gid: int) -> None:
    """fchownat(fd, "", uid, gid, AT_EMPTY_PATH|AT_SYMLINK_NOFOLLOW): chown what an O_PATH fd is."""
    fn = _fchownat()
    check(fn(fd, b"", uid & 0xFFFFFFFF, gid & 0xFFFFFFFF, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW), "fchownat")
