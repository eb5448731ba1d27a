"""Bind mounts for persistence, on top of freshroot.fs.mount.

Both ends of a bind are O_PATH fds found by chase(); mount(2) is handed their
/proc/self/fd magic links, so a path swapped between the walk and the mount cannot
redirect it. Per-mount flags need a second, remounting call, which must name the *new*
mount: the target's name is looked up again in its parent's fd and now lands on it.
"""

from __future__ import annotations

import os

from freshroot.fs import mount, statx
from freshroot.fs.mount import MS
from freshroot.fs.ops import open_path_at

# Options of fstab's vocabulary that map onto per-mount flags of a bind mount.
OPTION_FLAGS: dict[str, MS] = {
    "ro": MS.RDONLY,
    "nosuid": MS.NOSUID,
    "nodev": MS.NODEV,
    "noexec": MS.NOEXEC,
    "noatime": MS.NOATIME,
    "nodiratime": MS.NODIRATIME,
    "relatime": MS.RELATIME,
}
# Valid, but nothing to do on a bind mount made here: defaults, and userspace hints for
# file managers and systemd (x-gvfs-hide, x-gvfs-trash, x-systemd.*).
NEUTRAL_OPTIONS = frozenset({"rw", "bind", "suid", "dev", "exec", "atime", "diratime", "defaults"})


def parse_options(options: tuple[str, ...]) -> MS:
    """The mount flags of ``options``; x-* and neutral options add none; unknown: ValueError."""
    flags = MS.NONE
    for option in options:
        if option in OPTION_FLAGS:
            flags |= OPTION_FLAGS[option]
        elif option not in NEUTRAL_OPTIONS and not option.startswith("x-"):
            raise ValueError(option)
    return flags


def bind_at(source_fd: int, dir_fd: int, name: str, flags: MS = MS.NONE) -> None:
    """Bind-mount what ``source_fd`` is onto ``name`` in directory ``dir_fd`` (not followed)."""
    target = open_path_at(dir_fd, name)
    try:
        mount.bind_fd(source_fd, target)
    finally:
        os.close(target)
    if flags:
        top = open_path_at(dir_fd, name)
        try:
            mount.remount_bind(top, read_only=MS.RDONLY in flags, extra=flags & ~MS.RDONLY)
        finally:
            os.close(top)


def umount_fd(fd: int) -> None:
    mount.umount_fd(fd)


def is_mount_root(fd: int, parent_fd: int) -> bool:
    """Whether ``fd`` (an entry of directory ``parent_fd``) is the root of a mount.

    By mount ids, never st_dev: a bind mount from the same file system keeps st_dev.
    """
    sx = statx.statx_fd(fd, statx.Mask.MNT_ID)
    known = sx.is_mount_root
    if known is not None:
        return known
    return sx.mnt_id != statx.statx_fd(parent_fd, statx.Mask.MNT_ID).mnt_id


def unshare_mounts() -> None:
    mount.unshare_mounts()
