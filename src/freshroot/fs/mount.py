"""mount(2) and umount2(2) through ctypes, bind mounts by fd, and /proc/self/mountinfo.

Bind mounts take fds, not paths: source and target are given to mount(2) as their
/proc/self/fd/N magic links (as systemd does), so what gets mounted, and where, is exactly
what chase() resolved, whatever happens to the path strings meanwhile.
"""

from __future__ import annotations

import ctypes
import enum
import errno
import os
import re
from dataclasses import dataclass

from freshroot.fs import _libc
from freshroot.fs.ops import fd_name, fd_path, shown


class MS(enum.IntFlag):
    """mount(2) flags (linux/mount.h)."""

    NONE = 0
    RDONLY = 1
    NOSUID = 2
    NODEV = 4
    NOEXEC = 8
    SYNCHRONOUS = 16
    REMOUNT = 32
    MANDLOCK = 64
    DIRSYNC = 128
    NOSYMFOLLOW = 256
    NOATIME = 1024
    NODIRATIME = 2048
    BIND = 4096
    MOVE = 8192
    REC = 16384
    SILENT = 32768
    UNBINDABLE = 1 << 17
    PRIVATE = 1 << 18
    SLAVE = 1 << 19
    SHARED = 1 << 20
    RELATIME = 1 << 21
    STRICTATIME = 1 << 24
    LAZYTIME = 1 << 25


class MNT(enum.IntFlag):
    """umount2(2) flags."""

    NONE = 0
    FORCE = 1
    DETACH = 2
    EXPIRE = 4
    NOFOLLOW = 8


def mount(source: str | None, target: str, fstype: str | None = None, flags: MS = MS.NONE,
          data: str | None = None) -> None:
    fn = _libc.libc().mount
    fn.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
    fn.restype = ctypes.c_int

    def enc(s: str | None) -> bytes | None:
        return None if s is None else os.fsencode(s)

    result = fn(enc(source), enc(target), enc(fstype), int(flags), enc(data))
    # a failure names the target as the root sees it, not as the /proc/self/fd/N it was given
    _libc.check(result, "mount", shown(target) if result < 0 else None)


def umount(target: str, flags: MNT = MNT.NONE) -> None:
    fn = _libc.libc().umount2
    fn.argtypes = (ctypes.c_char_p, ctypes.c_int)
    fn.restype = ctypes.c_int
    result = fn(os.fsencode(target), int(flags))
    _libc.check(result, "umount", shown(target) if result < 0 else None)


def bind_fd(source_fd: int, target_fd: int, *, recursive: bool = False) -> None:
    """Bind-mount what ``source_fd`` refers to over what ``target_fd`` refers to."""
    flags = MS.BIND | (MS.REC if recursive else MS.NONE)
    mount(fd_path(source_fd), fd_path(target_fd), None, flags)


# statvfs f_flag bits that a bind remount must carry over (the kernel refuses to clear
# locked ones, and dropping nosuid/nodev/noexec by accident would weaken the mount).
_KEEP = ((os.ST_NOSUID, MS.NOSUID), (os.ST_NODEV, MS.NODEV), (os.ST_NOEXEC, MS.NOEXEC),
         (os.ST_NOATIME, MS.NOATIME), (os.ST_NODIRATIME, MS.NODIRATIME), (os.ST_RELATIME, MS.RELATIME))


def remount_bind(fd: int, *, read_only: bool = True, extra: MS = MS.NONE) -> None:
    """Change the per-mount flags of the mount whose root ``fd`` refers to, keeping the others."""
    target = fd_path(fd)
    current = os.statvfs(target).f_flag
    flags = MS.REMOUNT | MS.BIND | extra
    for st_bit, ms_bit in _KEEP:
        if current & st_bit:
            flags |= ms_bit
    if read_only:
        flags |= MS.RDONLY
    mount(None, target, None, flags)


def make_rprivate(target: str = "/") -> None:
    """Stop mount events propagating in or out of ``target`` and below (after unshare(CLONE_NEWNS))."""
    mount(None, target, None, MS.REC | MS.PRIVATE)


CLONE_NEWNS = 0x00020000


def unshare_mounts() -> None:
    """Give this process a private mount namespace (unshare(CLONE_NEWNS), then / rprivate),
    so nothing it mounts is seen by, or propagates to, the rest of the system.
    (os.unshare exists only from Python 3.12.)"""
    fn = _libc.libc().unshare
    fn.argtypes = (ctypes.c_int,)
    fn.restype = ctypes.c_int
    _libc.check(fn(CLONE_NEWNS), "unshare")
    make_rprivate("/")


def umount_fd(fd: int, flags: MNT = MNT.NONE) -> None:
    """Detach the mount whose root ``fd`` refers to.

    Always lazy (MNT_DETACH): the fd itself pins the mount, so a plain umount would be EBUSY;
    the mount is gone from the tree at once and freed when the last fd on it closes.
    """
    umount(fd_path(fd), flags | MNT.DETACH)


@dataclass(frozen=True, slots=True)
class MountInfo:
    """One line of /proc/PID/mountinfo (proc(5)); paths unescaped."""

    mount_id: int
    parent_id: int
    dev: int
    root: str  # the path inside its file system that is mounted here
    mount_point: str
    options: tuple[str, ...]  # per-mount options (ro, nosuid, ...)
    optional: tuple[str, ...]  # shared:N, master:N, propagate_from:N, unbindable
    fstype: str
    source: str
    super_options: tuple[str, ...]

    @property
    def read_only(self) -> bool:
        return "ro" in self.options

    @property
    def shared(self) -> bool:
        return any(o.startswith("shared:") for o in self.optional)


_OCTAL = re.compile(rb"\\([0-7]{3})")


def unescape(field: bytes) -> str:
    r"""Undo the kernel's octal escapes (\040 space, \011 tab, \012 newline, \134 backslash)."""
    return os.fsdecode(_OCTAL.sub(lambda m: bytes([int(m.group(1), 8) & 0xFF]), field))


def parse_mountinfo(data: bytes) -> tuple[MountInfo, ...]:
    out = []
    for line in data.split(b"\n"):  # not splitlines(): the kernel does not escape "\r"
        fields = line.split(b" ")
        if len(fields) < 10:
            continue
        sep = fields.index(b"-", 6)
        major, minor = fields[2].split(b":")
        out.append(MountInfo(
            mount_id=int(fields[0]),
            parent_id=int(fields[1]),
            dev=os.makedev(int(major), int(minor)),
            root=unescape(fields[3]),
            mount_point=unescape(fields[4]),
            options=tuple(os.fsdecode(o) for o in fields[5].split(b",")),
            optional=tuple(os.fsdecode(o) for o in fields[6:sep]),
            fstype=unescape(fields[sep + 1]),
            source=unescape(fields[sep + 2]),
            super_options=tuple(unescape(o) for o in fields[sep + 3].split(b",")) if len(fields) > sep + 3 else (),
        ))
    return tuple(out)


def mountinfo(pid: int | str = "self") -> tuple[MountInfo, ...]:
    with open(f"/proc/{pid}/mountinfo", "rb") as f:
        return parse_mountinfo(f.read())


def find_by_fd(fd: int) -> MountInfo:
    """The mount that ``fd`` (any fd, O_PATH included) is on."""
    from freshroot.fs.statx import Mask, statx_fd

    mnt_id = statx_fd(fd, Mask.TYPE | Mask.MNT_ID).mnt_id
    found = None if mnt_id is None else find(mnt_id)
    if found is None:
        raise OSError(errno.ENOENT, "no such mount in /proc/self/mountinfo", fd_name(fd))
    return found


def find(mount_id: int, mounts: tuple[MountInfo, ...] | None = None) -> MountInfo | None:
    """The mount with ``mount_id`` (statx's mnt_id), or None."""
    return next((m for m in (mountinfo() if mounts is None else mounts) if m.mount_id == mount_id), None)
