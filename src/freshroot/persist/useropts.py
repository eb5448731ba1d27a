"""The userspace options of persisted mounts (x-gvfs-hide, x-gvfs-trash) in libmount's utab.

A bind freshroot makes with mount(2) carries only kernel flags; its x-* options get the line
mount(8) would write in /run/mount/utab (fs/utab.py), so file managers and udisks see what
the boot units' mount units give them. Only on the running system's root: an offline
``--root`` has no /run of its own that its boot will see. Undo removes the line with the
mount.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from freshroot.errors import OperationError
from freshroot.fs import mount, statx, utab
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.persist.dircache import DirCache
from freshroot.persist.model import Entry
from freshroot.plan.action import Action, Context
from freshroot.plan.records import Record, UndoReport, record_type

SAFE = ChaseFlags.SAFE | ChaseFlags.ROOT_FILES


def wanted(ctx: Context, options: Sequence[str]) -> tuple[str, ...]:
    """The options of a mount that go to utab here: its x-* ones, on a live root only."""
    found = utab.user_options(options)
    return found if found and utab.is_live_root(ctx.root_fd) else ()


def mount_of(fd: int) -> mount.MountInfo | None:
    """The mount ``fd`` (an O_PATH fd of a mount point's root) is the root of."""
    mnt_id = statx.statx_fd(fd, statx.Mask.MNT_ID).mnt_id
    return None if mnt_id is None else mount.find(mnt_id)


def record(ctx: Context, target_fd: int, source: str, options: tuple[str, ...]) -> None:
    """Add the utab line of the mount now at ``target_fd`` (bound from ``source``)."""
    table = utab.Utab.default()
    m = None
    try:
        m = mount_of(target_fd)
        if m is None:
            raise OSError("the new mount is not in /proc/self/mountinfo")
        old = next((e for e in reversed(table.read()) if e.matches(m)), None)
        line = utab.entry_for(m, ctx.display(source), options)
        table.add(utab.merged(old, options) if old is not None else line)
    except OSError as e:
        raise OperationError(f"{m.mount_point if m else ctx.display(source)}: mounted, but its userspace options "
                             f"({','.join(options)}) could not be recorded in {table.path}: {e.strerror or e}",
                             hint="file managers list the mount meanwhile; apply again to record them") from None


def missing(ctx: Context, e: Entry) -> tuple[str, ...]:
    """The declared x-* options utab does not give the mount at ``e.path`` (freshroot's)."""
    want = wanted(ctx, e.options)
    if not want:
        return ()
    with chase(e.path, root_fd=ctx.root_fd, flags=SAFE | ChaseFlags.NOFOLLOW) as found:
        m = mount_of(found.fd)
    if m is None:
        return ()
    have = utab.Utab.default().options_of(m)
    return tuple(o for o in want if o not in have)


def recorded(ctx: Context, path: str) -> tuple[str, ...]:
    """The userspace options utab gives the mount at ``path`` (for status); () off a live root."""
    if not utab.is_live_root(ctx.root_fd):
        return ()
    try:
        with chase(path, root_fd=ctx.root_fd, flags=SAFE | ChaseFlags.NOFOLLOW) as found:
            m = mount_of(found.fd)
        return () if m is None else utab.Utab.default().options_of(m)
    except OSError:
        return ()


def forget(ctx: Context, target_fd: int) -> bool:
    """Before the mount at ``target_fd`` is unmounted: remove its utab line (live root)."""
    if not utab.is_live_root(ctx.root_fd):
        return False
    m = mount_of(target_fd)
    if m is None:
        return False
    return utab.Utab.default().remove(m.mount_point, m.mount_id)


@dataclass(frozen=True)
class RecordUserOptions(Action):
    """Record the x-* options of a persisted mount that is in place but lacks them in utab
    (made before freshroot wrote utab, or the options were declared since)."""

    path: str
    source: str
    options: tuple[str, ...]
    dirs: DirCache | None = field(default=None, compare=False, repr=False)

    def touches(self) -> tuple[str, ...]:
        return (self.path,)

    def describe(self) -> str:
        return f"record {','.join(self.options)} for {self.path} in {utab.utab_path()}"

    def records(self, ctx: Context) -> Sequence[Record]:
        return (RecordedUserOptions(self.path),)

    def apply(self, ctx: Context) -> None:
        with chase(self.path, root_fd=ctx.root_fd, flags=SAFE | ChaseFlags.NOFOLLOW) as found:
            fd = os.dup(found.fd)
        try:
            record(ctx, fd, self.source, self.options)
        finally:
            os.close(fd)


@record_type
@dataclass(frozen=True)
class RecordedUserOptions(Record):
    """Undo record: a line was added to libmount's utab."""
    TYPE: ClassVar[str] = "persist.utab"
    FIRST: ClassVar[bool] = True
    path: str

    def describe(self) -> str:
        return f"remove the utab line of {self.path}"

    def revert(self, ctx: Context, report: UndoReport) -> None:
        with chase(self.path, root_fd=ctx.root_fd, flags=SAFE | ChaseFlags.NOFOLLOW) as found:
            if forget(ctx, found.fd):
                report.done.append(f"removed the userspace options of {ctx.display(self.path)} from "
                                   f"{utab.utab_path()}")
