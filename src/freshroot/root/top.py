"""The btrfs top level of a root: where the blank snapshot and the old roots live.

Only the root subvolume is mounted on a running system; the blank and the old roots sit
beside it at the top level (subvolid=5), which nothing mounts. freshroot mounts the top level
in a private mount namespace of its own process (so no other process sees it and nothing
outlives the command), on a fresh directory under /run, and works on fds from there.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from freshroot.errors import OperationError
from freshroot.fs import mount

SUBVOLUME_INODE = 256  # the top directory of every btrfs subvolume


@dataclass(frozen=True, slots=True)
class RootVolume:
    """Where a root lives: the btrfs device and the subvolume path mounted there."""

    device: str
    subvolume: str  # below the top level, no leading slash


def root_volume(root_fd: int, display: str) -> RootVolume:
    """The btrfs device and subvolume of the root at ``root_fd``; OperationError if it is not
    the top directory of a btrfs subvolume."""
    info = mount.find_by_fd(root_fd)
    st = os.fstat(root_fd)
    if info.fstype != "btrfs":
        raise OperationError(f"{display} is on {info.fstype}, not btrfs: [root] wipe = \"btrfs\" needs a btrfs "
                             "root subvolume (docs/root-wipe.md)")
    if st.st_ino != SUBVOLUME_INODE or not stat.S_ISDIR(st.st_mode):
        raise OperationError(f"{display} is a directory inside a btrfs subvolume, not a subvolume of its own")
    mounted = os.path.realpath(info.mount_point)
    here = os.path.realpath(f"/proc/self/fd/{root_fd}")
    below = os.path.relpath(here, mounted) if here != mounted else ""
    subvolume = "/".join(p for p in (info.root.strip("/"), below) if p and p != ".")
    if not subvolume:
        raise OperationError(f"{display} is the btrfs top level itself, not a subvolume below it: the wipe "
                             "replaces the root subvolume, so the root must be one (docs/root-wipe.md)")
    return RootVolume(info.source, subvolume)


_unshared = False


def private() -> None:
    """This process in a mount namespace of its own, once."""
    global _unshared  # noqa: PLW0603 - a second unshare would only make another namespace
    if not _unshared:
        mount.unshare_mounts()
        _unshared = True


@contextlib.contextmanager
def private_chroot(target: str) -> Iterator[None]:
    """/proc, /sys and /dev bound into ``target`` for a chroot, in this process's private
    mount namespace, and detached afterwards."""
    private()
    bound: list[str] = []
    try:
        for name in ("proc", "sys", "dev"):
            where = os.path.join(target, name)
            if os.path.isdir(where) and not os.path.islink(where):
                mount.mount(f"/{name}", where, None, mount.MS.BIND | mount.MS.REC)
                bound.append(where)
        yield
    finally:
        for where in reversed(bound):
            mount.umount(where, mount.MNT.DETACH)


@contextlib.contextmanager
def top_level(volume: RootVolume) -> Iterator[tuple[int, str]]:
    """An O_PATH fd of the top level of ``volume``'s file system, mounted privately, and where
    (a directory only this process's mount namespace has anything mounted on)."""
    import tempfile  # random, shutil...: only when a root is wiped, not at every apply and boot

    private()
    where = tempfile.mkdtemp(prefix="freshroot-top-", dir="/run" if os.path.isdir("/run") else None)
    try:
        try:
            mount.mount(volume.device, where, "btrfs", mount.MS.NOSUID | mount.MS.NODEV, "subvolid=5")
        except OSError as e:
            raise OperationError(f"cannot mount the btrfs top level of {volume.device}: {e.strerror or e}") from e
        try:
            fd = os.open(where, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                yield fd, where
            finally:
                os.close(fd)
        finally:
            mount.umount(where, mount.MNT.DETACH)
    finally:
        os.rmdir(where)
