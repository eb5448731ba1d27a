"""Undo: revert what the journal says persistence made, newest first.

Each record is checked against what is there before anything is removed: a directory is
removed only if empty, a file only if still empty, a symlink only if it still points where
freshroot pointed it, a mount only if it still shows the storage it was made from. So undo
never removes data, and records of changes that never happened (a run killed between
journalling and acting) are harmless. Migrations are not reverted: the data stays in
storage, and undo says so.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from freshroot.fs import bindmount, ops
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.persist import journal
from freshroot.plan.action import Context

SAFE = ChaseFlags.SAFE


@dataclass
class UndoReport:
    done: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # what undo left alone, and why

    def to_json(self) -> dict[str, list[str]]:
        return {"undone": self.done, "kept": self.kept}


def _parent(ctx: Context, path: str) -> Any:
    return chase(path, root_fd=ctx.root_fd, flags=SAFE | ChaseFlags.PARENT)


def _unmount(ctx: Context, r: Mapping[str, Any], report: UndoReport) -> None:
    target, source = str(r["target"]), str(r["source"])
    with chase(source, root_fd=ctx.root_fd, flags=SAFE | ChaseFlags.NOFOLLOW) as src:
        want = (src.st.st_dev, src.st.st_ino)
    while True:  # a mount made twice (two racing runs) is stacked: remove each
        with _parent(ctx, target) as parent:
            fd = ops.open_path_at(parent.fd, parent.rest)
            try:
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) != want or not bindmount.is_mount_root(fd, parent.fd):
                    return
                bindmount.umount_fd(fd)
                report.done.append(f"unmounted {ctx.display(target)}")
            finally:
                os.close(fd)


def _undo_one(ctx: Context, r: Mapping[str, Any], report: UndoReport) -> None:
    op = r.get("op")
    path = str(r.get("path", r.get("target", "")))
    shown = ctx.display(path)
    match op:
        case "bind":
            _unmount(ctx, r, report)
        case "mkdir":
            with _parent(ctx, path) as parent:
                try:
                    ops.rmdir_at(parent.fd, parent.rest)
                    report.done.append(f"removed directory {shown}")
                except OSError as e:
                    if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                        report.kept.append(f"{shown}: not empty, kept")
                    elif e.errno not in (errno.ENOENT, errno.ENOTDIR):
                        raise
        case "mkfile":
            with _parent(ctx, path) as parent:
                st = ops.lstat_at(parent.fd, parent.rest)
                if stat.S_ISREG(st.st_mode) and st.st_size == 0:
                    ops.unlink_at(parent.fd, parent.rest)
                    report.done.append(f"removed empty file {shown}")
                else:
                    report.kept.append(f"{shown}: holds data now, kept")
        case "symlink":
            with _parent(ctx, path) as parent:
                fd = ops.open_path_at(parent.fd, parent.rest)
                try:
                    ours = stat.S_ISLNK(os.fstat(fd).st_mode) and ops.readlink_fd(fd) == r.get("text")
                finally:
                    os.close(fd)
                if ours:
                    ops.unlink_at(parent.fd, parent.rest)
                    report.done.append(f"removed symlink {shown}")
                    empty = r.get("replaced_empty")
                    if isinstance(empty, list):
                        uid, gid, mode = (int(v) for v in empty)
                        fd = ops.create_at(parent.fd, parent.rest, 0o600)
                        try:
                            os.fchown(fd, uid, gid)
                            os.fchmod(fd, mode)
                        finally:
                            os.close(fd)
        case "unlink-symlink":
            with _parent(ctx, path) as parent:
                try:
                    ops.symlink_at(str(r["text"]), parent.fd, parent.rest)
                    report.done.append(f"restored symlink {shown}")
                except FileExistsError:
                    report.kept.append(f"{shown}: something is there again, symlink not restored")
        case "perms":
            uid, gid, mode = (int(v) for v in r["old"])
            with chase(path, root_fd=ctx.root_fd, flags=SAFE | ChaseFlags.NOFOLLOW) as found:
                ops.chown_fd(found.fd, uid, gid)
                ops.chmod_fd(found.fd, mode)
            report.done.append(f"restored owner and mode of {shown}")
        case "migrate":
            report.kept.append(f"{shown}: its data was migrated to {ctx.display(str(r['source']))} and stays there")
        case _:
            pass


def undo(ctx: Context) -> UndoReport:
    """Revert everything journalled; a dry run only lists the records."""
    records = journal.read(ctx.root_fd)
    report = UndoReport()
    if ctx.dry_run:
        report.done = [f"would revert: {r.get('op')} {r.get('path', r.get('target', ''))}" for r in reversed(records)
                       if r.get("op") != "journal-dir"]
        return report
    revert(ctx, records, report)
    journal.remove(ctx.root_fd)
    return report


def revert(ctx: Context, records: list[dict[str, Any]], report: UndoReport) -> None:
    """Revert ``records`` (journal records, oldest first), newest first. Also used by the
    boot-time files service, whose stop reverts exactly the records of its start."""
    # Unmount first (newest first), then remove: a mount point is removable only once bare.
    for r in reversed(records):
        if r.get("op") == "bind":
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                _undo_one(ctx, r, report)
    for r in reversed(records):
        if r.get("op") not in ("bind", "journal-dir"):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                _undo_one(ctx, r, report)
