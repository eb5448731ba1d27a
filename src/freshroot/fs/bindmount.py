"""Bind mounts on file descriptors, the few mount(2) calls persistence needs.

Both ends of a bind are O_PATH fds found by chase(); the kernel is handed their
/proc/self/fd magic links, which resolve to exactly the inode and mount the fd holds, so a
path swapped between the walk and the mount cannot redirect it. (The broader mount module
of freshroot.fs, with mountinfo parsing, is another helper's work; this module is kept
small and can delegate to it.)
"""

from __future__ import annotations

import ctypes
import enum
import os

from freshroot.fs import _libc
from freshroot.fs.ops import fd_path, open_path_at


class MountFlags(enum.IntFlag):
    NONE = 0
    RDONLY = 1
    NOSUID = 2
    NODEV = 4
    NOEXEC = 8
    REMOUNT = 32
    NOATIME = 1024
    NODIRATIME = 2048
    BIND = 4096
    REC = 16384
    PRIVATE = 1 << 18
    RELATIME = 1 << 21


MNT_DETACH = 2
CLONE_NEWNS = 0x00020000

# Options of fstab's vocabulary that map onto per-mount flags of a bind mount.
OPTION_FLAGS: dict[str, MountFlags] = {
    "ro": MountFlags.RDONLY,
    "nosuid": MountFlags.NOSUID,
    "nodev": MountFlags.NODEV,
    "noexec": MountFlags.NOEXEC,
    "noatime": MountFlags.NOATIME,
    "nodiratime": MountFlags.NODIRATIME,
    "relatime": MountFlags.RELATIME,
}
# Options that are valid but change nothing on a bind mount made here (userspace hints for
# file managers and systemd, or the defaults).
NEUTRAL_OPTIONS = frozenset({"rw", "bind", "suid", "dev", "exec", "atime", "diratime", "defaults"})


def _mount(source: str | None, target: str, fstype: str | None, flags: int) -> None:
    fn = _libc.libc().mount
    fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
    src = None if source is None else os.fsencode(source)
    typ = None if fstype is None else fstype.encode()
    _libc.check(fn(src, os.fsencode(target), typ, flags, None), "mount", target)


def bind_at(source_fd: int, dir_fd: int, name: str, flags: MountFlags = MountFlags.NONE) -> None:
    """Bind-mount what ``source_fd`` is (an O_PATH fd) onto ``name`` in directory ``dir_fd``.

    The target is opened with O_NOFOLLOW (a symlink there is refused, never followed).
    Per-mount ``flags`` (RDONLY, NOSUID, ...) need a second, remounting call, which must
    name the new mount: the name is looked up again in ``dir_fd`` and now lands on it.
    """
    target = open_path_at(dir_fd, name)
    try:
        _mount(fd_path(source_fd), fd_path(target), None, MountFlags.BIND)
    finally:
        os.close(target)
    if flags:
        top = open_path_at(dir_fd, name)
        try:
            _mount(None, fd_path(top), None, MountFlags.REMOUNT | MountFlags.BIND | flags)
        finally:
            os.close(top)


def umount_fd(fd: int) -> None:
    """Detach the mount whose root ``fd`` is (lazily: the fd itself keeps it busy)."""
    fn = _libc.libc().umount2
    fn.argtypes = [ctypes.c_char_p, ctypes.c_int]
    _libc.check(fn(os.fsencode(fd_path(fd)), MNT_DETACH), "umount2", fd_path(fd))


def mount_id(fd: int) -> int:
    """The id of the mount ``fd`` is on, from /proc/self/fdinfo (works on O_PATH fds)."""
    with open(f"/proc/self/fdinfo/{fd}", "rb") as f:
        for line in f:
            if line.startswith(b"mnt_id:"):
                return int(line.split()[1])
    raise OSError(0, "no mnt_id in fdinfo", f"/proc/self/fdinfo/{fd}")


def is_mount_root(fd: int, parent_fd: int) -> bool:
    """Whether ``fd`` (an entry of directory ``parent_fd``) is the root of a mount.

    Comparing mount ids, not st_dev: a bind mount from the same file system keeps st_dev.
    """
    return mount_id(fd) != mount_id(parent_fd)


def unshare_mounts() -> None:
    """Enter a private mount namespace and stop mount events propagating to the host."""
    fn = _libc.libc().unshare
    fn.argtypes = [ctypes.c_int]
    _libc.check(fn(CLONE_NEWNS), "unshare")
    _mount(None, "/", None, MountFlags.REC | MountFlags.PRIVATE)


def parse_options(options: tuple[str, ...]) -> MountFlags:
    """The mount flags of ``options``; x-* and neutral options add none; unknown: ValueError."""
    flags = MountFlags.NONE
    for option in options:
        if option in OPTION_FLAGS:
            flags |= OPTION_FLAGS[option]
        elif option not in NEUTRAL_OPTIONS and not option.startswith("x-"):
            raise ValueError(option)
    return flags
