"""The ``specialfs`` step: /proc, /sys, /dev and /run mounted in the root when they are not.

On the live root they always are, and the step changes nothing. When activating an offline
root (``--root /mnt``), snippets and tools that look at $FRESHROOT_ROOT/proc or /dev need
them (a root "needs" them when it has the directories: a scratch tree without /proc gets
no mounts): proc and sysfs are mounted fresh, /dev is a recursive bind of the host's /dev (as
nixos-enter does), /run a fresh tmpfs (mode 0755, nosuid, nodev), as NixOS's specialfs and
nixos-enter give it (only in a root that has /proc as well: freshroot itself makes /run in
every root, for its lock and journal). The mounts stay after the run (an installer runs more in the root), and
each is recorded in the journal.

freshroot's own lock and journal live in /run/freshroot of the root, and this run holds
them open already: the old /run/freshroot is bound into the new tmpfs at the same path, so
this run, the next one and ``undo`` all keep seeing the same lock and journal.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from freshroot.fs.chase import ChaseFlags, chase
from freshroot.plan.action import Action, Context, Step
from freshroot.plan.records import Record, UndoReport, record_type

# (path in the root, file system type, source); "bind" binds the host's path.
SPECIAL = (("/proc", "proc", "proc"), ("/sys", "sysfs", "sysfs"), ("/dev", "bind", "/dev"),
           ("/run", "tmpfs", "tmpfs"))
# What a fresh /run must keep showing: freshroot's lock and journal (plan.journal.DIRECTORY).
CARRIED = "freshroot"


def _is_mount_point(ctx: Context, path: str) -> bool | None:
    """None: the directory does not exist."""
    from freshroot.fs.statx import statx_fd

    try:
        with chase(path, root_fd=ctx.root_fd, flags=ChaseFlags.SAFE) as found:
            return bool(statx_fd(found.fd).is_mount_root)
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class MountSpecial(Action):
    """Mount one of /proc, /sys, /dev and /run in an offline root that lacks it."""
    path: str
    fstype: str
    source: str

    def describe(self) -> str:
        what = f"bind {self.source}" if self.fstype == "bind" else self.fstype
        return f"mount {what} on {self.path}"

    def apply(self, ctx: Context) -> None:
        from freshroot.fs import mount
        from freshroot.fs.ops import fd_path

        with chase(self.path, root_fd=ctx.root_fd, flags=ChaseFlags.SAFE) as target:
            if self.fstype == "bind":
                source = os.open(self.source, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    mount.bind_fd(source, target.fd, recursive=True)
                finally:
                    os.close(source)
            elif self.fstype == "tmpfs":
                self._fresh_run(ctx, target.fd)
            else:
                mount.mount(self.source, fd_path(target.fd), self.fstype,
                            mount.MS.NOSUID | mount.MS.NODEV | mount.MS.NOEXEC)

    def _fresh_run(self, ctx: Context, target_fd: int) -> None:
        """A tmpfs on /run, with the /run/freshroot it hides bound back in at the same path."""
        from freshroot.fs import mount
        from freshroot.fs.ops import fd_path

        try:
            carried: int | None = os.open(CARRIED, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                          dir_fd=target_fd)
        except FileNotFoundError:
            carried = None
        try:
            mount.mount(self.source, fd_path(target_fd), self.fstype, mount.MS.NOSUID | mount.MS.NODEV,
                        data="mode=0755")
            if carried is None:
                return
            # The tmpfs is reached through the path again: target_fd is the directory under it.
            with chase(f"{self.path}/{CARRIED}", root_fd=ctx.root_fd,
                       flags=ChaseFlags.SAFE | ChaseFlags.PARENT) as fresh:
                os.mkdir(fresh.rest, 0o755, dir_fd=fresh.fd)
            with chase(f"{self.path}/{CARRIED}", root_fd=ctx.root_fd,
                       flags=ChaseFlags.SAFE | ChaseFlags.NOFOLLOW) as spot:
                mount.bind_fd(carried, spot.fd)
        finally:
            if carried is not None:
                os.close(carried)

    def records(self, ctx: Context) -> Sequence[Record]:
        return (SpecialMounted(self.path, self.fstype),)


@record_type
@dataclass(frozen=True)
class SpecialMounted(Record):
    """proc, sysfs, the host's /dev or a tmpfs mounted on ``path`` of an offline root: unmounted
    (with what is mounted below it) while that is still what is mounted there."""

    TYPE: ClassVar[str] = "specialfs.mount"
    FIRST: ClassVar[bool] = True
    path: str
    fstype: str  # proc, sysfs, bind (the host's /dev) or tmpfs

    def describe(self) -> str:
        return f"unmount {self.path} ({self.fstype})"

    def revert(self, ctx: Context, report: UndoReport) -> None:
        from freshroot.fs import mount

        with chase(self.path, root_fd=ctx.root_fd, flags=ChaseFlags.SAFE) as found:
            if not _is_mount_point(ctx, self.path):
                return
            have = mount.find_by_fd(found.fd).fstype
            want = "devtmpfs" if self.fstype == "bind" else self.fstype
            if have != want and not (self.fstype == "bind" and have == "tmpfs"):
                report.kept.append(f"{ctx.display(self.path)}: {have} is mounted there now, not freshroot's "
                                   f"{self.fstype}; left mounted")
                return
            mount.umount_fd(found.fd, mount.MNT.DETACH)
        report.done.append(f"unmounted {ctx.display(self.path)}")


def _plan(ctx: Context) -> Iterable[Action]:
    if ctx.root in ("", "/"):
        return ()  # the running system mounted them long before us
    found = {path: _is_mount_point(ctx, path) for path, _, _ in SPECIAL}
    out = []
    for path, fstype, source in SPECIAL:
        if found[path] is not False:  # a root without the directory does not need it
            continue
        if path == "/run" and found["/proc"] is None:
            # /run alone is no sign of an OS tree: freshroot makes /run/freshroot (its lock and
            # journal) in every root it applies to. Only a root with /proc gets a fresh /run.
            continue
        out.append(MountSpecial(path, fstype, source))
    return out


def specialfs_step() -> Step:
    return Step("specialfs", _plan, (), description="/proc, /sys and /dev in an offline root")
