"""Extended attributes on file descriptors, O_PATH ones included.

f*xattr() refuses O_PATH fds (EBADF), so, as systemd does, the calls go through the fd's
/proc/self/fd/N magic link: following it lands on the very inode the fd holds, never on a
re-resolved path. A symlink cannot be reached that way (following the magic link of an
O_PATH fd to a symlink is refused by the kernel), and user.* attributes cannot live on
symlinks anyway, so symlinks get a clear error instead.
"""

from __future__ import annotations

import errno
import os
import stat

from freshroot.fs.ops import fd_path


def _target(fd: int) -> str:
    if stat.S_ISLNK(os.fstat(fd).st_mode):
        raise OSError(errno.ELOOP, "extended attributes of a symbolic link are not supported", fd_path(fd))
    return fd_path(fd)


def list_fd(fd: int) -> list[str]:
    """Names of the extended attributes of what ``fd`` refers to, sorted."""
    return sorted(os.listxattr(_target(fd)))


def get_fd(fd: int, name: str) -> bytes | None:
    """The value of attribute ``name``, or None if it is not set."""
    try:
        return os.getxattr(_target(fd), name)
    except OSError as e:
        if e.errno == errno.ENODATA:
            return None
        raise


def get_all_fd(fd: int) -> dict[str, bytes]:
    """All attributes and their values (one that vanishes meanwhile is left out)."""
    target = _target(fd)
    out: dict[str, bytes] = {}
    for name in sorted(os.listxattr(target)):
        try:
            out[name] = os.getxattr(target, name)
        except OSError as e:
            if e.errno != errno.ENODATA:
                raise
    return out


def set_fd(fd: int, name: str, value: bytes, *, create: bool = False, replace: bool = False) -> None:
    """Set attribute ``name``; ``create`` fails if it exists, ``replace`` if it does not."""
    flags = (os.XATTR_CREATE if create else 0) | (os.XATTR_REPLACE if replace else 0)
    os.setxattr(_target(fd), name, value, flags)


def remove_fd(fd: int, name: str, *, missing_ok: bool = True) -> bool:
    """Remove attribute ``name``; False if it was not there (and ``missing_ok``)."""
    try:
        os.removexattr(_target(fd), name)
    except OSError as e:
        if e.errno == errno.ENODATA and missing_ok:
            return False
        raise
    return True
