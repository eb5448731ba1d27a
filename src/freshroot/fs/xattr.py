"""Extended attributes on file descriptors, O_PATH ones included: the one implementation.

f*xattr() refuses O_PATH fds (EBADF), so, as systemd does, the calls go through the fd's
/proc/self/fd/N magic link: the kernel resolves it to the very inode the fd holds, never to
a re-resolved path, and never follows it further: on an fd of a symlink, the calls act on
the link itself (which cannot hold ``user.*`` attributes: EPERM, as systemd-tmpfiles says),
never on its target (tests/fs/test_xattr_acl.py holds the kernel to that). With ``opened``
the fd is a real one (not O_PATH, never a symlink's): the f*xattr() calls take it directly,
without the /proc path lookup (a copy of many small files makes a few calls per file).
"""

from __future__ import annotations

import errno
import os

from freshroot.fs.ops import fd_path


def list_fd(fd: int) -> list[str]:
    """Names of the extended attributes of what ``fd`` refers to, sorted."""
    return sorted(os.listxattr(fd_path(fd)))


def get_fd(fd: int, name: str) -> bytes | None:
    """The value of attribute ``name``, or None if it is not set."""
    try:
        return os.getxattr(fd_path(fd), name)
    except OSError as e:
        if e.errno == errno.ENODATA:
            return None
        raise


def get_all_fd(fd: int, *, opened: bool = False) -> dict[str, bytes]:
    """All attributes and their values (one that vanishes meanwhile is left out)."""
    target: int | str = fd if opened else fd_path(fd)
    out: dict[str, bytes] = {}
    for name in sorted(os.listxattr(target)):
        try:
            out[name] = os.getxattr(target, name)
        except OSError as e:
            if e.errno != errno.ENODATA:
                raise
    return out


def set_fd(fd: int, name: str, value: bytes, *, create: bool = False, replace: bool = False,
           opened: bool = False) -> None:
    """Set attribute ``name``; ``create`` fails if it exists, ``replace`` if it does not."""
    flags = (os.XATTR_CREATE if create else 0) | (os.XATTR_REPLACE if replace else 0)
    os.setxattr(fd if opened else fd_path(fd), name, value, flags)


def remove_fd(fd: int, name: str, *, missing_ok: bool = True) -> bool:
    """Remove attribute ``name``; False if it was not there (and ``missing_ok``)."""
    try:
        os.removexattr(fd_path(fd), name)
    except OSError as e:
        if e.errno == errno.ENODATA and missing_ok:
            return False
        raise
    return True
