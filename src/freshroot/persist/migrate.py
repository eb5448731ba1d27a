"""Moving data that sits on the root into storage, so that no byte is lost at any moment.

Callers hold the apply lock (``freshroot migrate`` and ``apply`` both take it), so one
migration at a time touches a root and its storage.

1. When storage holds nothing yet, the root's entry is copied to a temporary name of its
   own (``.freshroot-migrate.NAME.<random>``) beside its place in storage, made durable
   with one syncfs of storage's file system, and renamed into place (atomic; it replaces an
   empty directory or file), then the storage directory is fsynced: from here the data is
   durable in storage.
2. Only then, for ``move``, the root's entry is emptied entry by entry, never by removing a
   whole tree: an entry is removed only once storage is known to hold the same entry (same
   type; for a file the same bytes, through the very fd that was checked for identity, with
   no change to its size, mtime or ctime meanwhile, and held under a read lease so that
   nobody had it open for writing: on ext4, XFS and btrfs from the snapshot the copy took
   (fs.snapshot), elsewhere compared byte for byte; a symlink the same text). The entry is first
   renamed away without replacing anything and looked at under its new name, so a file a
   program renames over the name at the last moment is put back, not removed. What is in
   storage but not on the root stays; what appeared on the root after the copy is copied in
   (each new entry under a temporary name, fsynced, renamed into place) and then removed
   the same way, by further passes. A directory is removed with rmdir, so only when empty.
3. Whatever is still on the root afterwards (an entry held open for writing, changed in a
   way storage cannot take, or still appearing after the last pass) stays there and is
   reported; the migration then fails, so apply does not hide it under the mount.

A kill at any moment leaves either no storage copy (plus a stale temporary, removed by the
next run), or storage holding everything the root held at the copy. The next run compares
the two: entries only on the root are copied in, entries in both must be the same, or it
stops ("both hold data, and they differ"). A file renamed away at the moment of the kill is
renamed back by the next run. The top-level file of a declared file is swapped for an
empty one (the mount point) with RENAME_EXCHANGE.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass

from freshroot.errors import OperationError
from freshroot.fs import bindmount, ops
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.fs.copy import copy_tree_at
from freshroot.fs.moving import Closer, closes_wait, syncfs
from freshroot.fs.snapshot import Snapshots
from freshroot.fs.walk import usage
from freshroot.persist.facts import kind_name
from freshroot.persist.migrate_walk import (
    MOVING,
    TMP_PREFIX,
    Mode,
    Walk,
    fsync_dir,
    is_temp,
    lstat_or_none,
    prune_root_only,
    token,
)
from freshroot.persist.model import Kind, Migrate, own_state
from freshroot.plan.action import Context
from freshroot.progress import OFF, Progress
from freshroot.progress import Mode as Shown

SAFE = ChaseFlags.SAFE
PASSES = 8  # passes over the root's tree while entries keep appearing there
SHOWN = 5  # entries named in a message; the rest are counted
COPY_ATTEMPTS = 3  # whole-tree copies tried before storage starts from the directory alone
__all__ = ["TMP_PREFIX", "Comparison", "compare", "migrate"]


def _has_data(dir_fd: int, name: str) -> bool | None:
    """None: missing; False: an empty file or directory; True: anything else."""
    st = lstat_or_none(dir_fd, name)
    if st is None:
        return None
    if stat.S_ISDIR(st.st_mode):
        fd = ops.open_dir_at(dir_fd, name)
        try:
            return bool(os.listdir(fd))
        finally:
            os.close(fd)
    return not (stat.S_ISREG(st.st_mode) and st.st_size == 0)


def _listed(items: list[str]) -> str:
    shown = "; ".join(items[:SHOWN])
    return shown + (f"; and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


@dataclass(frozen=True)
class Comparison:
    """The root's entry against storage's, as the planner needs it."""

    conflicts: tuple[str, ...]  # in both, and different: nothing may choose between them
    missing: tuple[str, ...]  # on the root only: a migration copies them in

    @property
    def contained(self) -> bool:
        """Storage holds everything the root holds: hiding the root's copy loses nothing."""
        return not self.conflicts and not self.missing


def compare(ctx: Context, path: str, source: str) -> Comparison:
    """Compare what the root holds at ``path`` with what storage holds at ``source``. Reads
    only; files are opened without blocking and compared byte for byte."""
    with chase(path, root_fd=ctx.root_fd, flags=SAFE | ChaseFlags.PARENT) as t, \
            chase(source, root_fd=ctx.root_fd, flags=SAFE | ChaseFlags.PARENT) as s:
        tst, sst = lstat_or_none(t.fd, t.rest), lstat_or_none(s.fd, s.rest)
        if tst is None:
            return Comparison((), ())
        if sst is None:
            return Comparison((), ("",))
        walk = Walk(Mode.CHECK, fresh=False, mount=0, own=own_state(path))
        if stat.S_ISDIR(tst.st_mode) and stat.S_ISDIR(sst.st_mode):
            rfd, sfd = ops.open_dir_at(t.fd, t.rest), ops.open_dir_at(s.fd, s.rest)
            try:
                walk.mount = ops.mount_id(rfd)
                walk.run(rfd, sfd)
            finally:
                os.close(rfd)
                os.close(sfd)
        elif stat.S_ISDIR(tst.st_mode) or stat.S_ISDIR(sst.st_mode):
            walk.conflicts.append(f": {kind_name(tst)} on the root, {kind_name(sst)} in storage")
        else:
            walk.settle(t.fd, t.rest, s.fd, s.rest, "", tst)
        return Comparison(tuple(walk.conflicts), tuple(walk.missing))


def migrate(ctx: Context, path: str, source: str, kind: Kind, how: Migrate) -> bool:
    """Migrate ``path`` on the root into ``source`` in storage. False: nothing to migrate."""
    shown, shown_source = ctx.display(path), ctx.display(source)
    with chase(path, root_fd=ctx.root_fd, flags=SAFE | ChaseFlags.PARENT) as tparent:
        tname = tparent.rest
        tst = lstat_or_none(tparent.fd, tname)
        if tst is None:
            return False
        want = stat.S_ISDIR if kind is Kind.DIRECTORY else stat.S_ISREG
        if not want(tst.st_mode):
            raise OperationError(f"{shown}: not a {kind.value}; nothing migrated")
        tfd = ops.open_path_at(tparent.fd, tname)
        try:
            if bindmount.is_mount_root(tfd, tparent.fd):
                return False  # already mounted: whatever shows there is storage or another mount
        finally:
            os.close(tfd)
        if not _has_data(tparent.fd, tname):
            return False
        with chase(source, root_fd=ctx.root_fd, flags=SAFE | ChaseFlags.PARENT) as sparent:
            sname = sparent.rest
            for stale in ops.listdir_fd(sparent.fd):  # under the lock: no other run is using one
                if stale == TMP_PREFIX + sname or (stale.startswith(TMP_PREFIX + sname + ".") and is_temp(stale)):
                    ops.remove_tree_at(sparent.fd, stale)
            fresh = not _has_data(sparent.fd, sname)
            meter = ctx.progress or OFF
            # The totals make a terminal's ETA; one line per phase shows only what was done.
            files, size = _totals(tparent.fd, tname) if meter.mode is Shown.TERMINAL else (None, None)
            snapshots = Snapshots() if how is Migrate.MOVE else None
            if fresh:
                _copy_fresh(tparent.fd, tname, sparent.fd, sname, tst, own_state(path), meter, (path, source),
                            (files, size), snapshots)
            else:
                found = compare(ctx, path, source)
                if found.conflicts:
                    raise OperationError(
                        f"{shown} and {shown_source} both hold data, and they differ "
                        f"({_listed(list(found.conflicts))}); freshroot will not choose between them",
                        hint="compare them, keep one (move or delete the other), then apply again")
                if found.contained and how is Migrate.COPY:
                    return True
                # An earlier, interrupted run made the copy: carry on from where it stopped.
            if kind is Kind.DIRECTORY:
                if fresh and how is Migrate.COPY:
                    return True
                with meter.phase(f"check and remove {path}" if how is Migrate.MOVE else f"copy {path}",
                                 entries=files, nbytes=size):
                    _passes(tparent.fd, tname, sparent.fd, sname, shown, how, fresh, own_state(path), meter.advance,
                            snapshots)
            elif how is Migrate.MOVE:
                walk = Walk(Mode.MOVE, fresh=fresh, mount=0, snapshots=snapshots)
                walk.settle(tparent.fd, tname, sparent.fd, sname, "", tst, placeholder=tst)
                _report(shown, walk.kept, walk.conflicts)
    return True


def _totals(dir_fd: int, name: str) -> tuple[int | None, int | None]:
    """Files and bytes below the root's entry, for a progress line's ETA (a metadata walk,
    a small part of a copy's cost); unknown when the walk cannot finish."""
    try:
        used = usage(dir_fd, name, lambda _path, _e: None)
    except OSError:
        return None, None
    return used.files, used.size


def _copy_fresh(tdir: int, tname: str, sdir: int, sname: str, tst: os.stat_result, own: dict[str, bool],
                meter: Progress = OFF, shown: tuple[str, str] = ("", ""),
                totals: tuple[int | None, int | None] = (None, None), snapshots: Snapshots | None = None) -> None:
    """The first copy into an empty storage: the whole entry to a temporary name, fsynced,
    renamed into place. A mount point inside is copied as an empty directory and left alone by
    the removal: what is on another file system stays where it is. When a directory keeps
    changing under the copy (an entry removed or swapped while being copied), storage starts
    from the directory alone, with its owner, mode and times, and the passes copy the rest
    entry by entry."""
    for attempt in range(COPY_ATTEMPTS + 1):
        tmp = f"{TMP_PREFIX}{sname}.{token()}"
        try:
            if attempt < COPY_ATTEMPTS:
                with meter.phase(f"copy {shown[0]}", entries=totals[0], nbytes=totals[1]):
                    copy_tree_at(tdir, tname, sdir, tmp, cross_mounts=False, hardlinks=True, tick=meter.advance,
                                 snapshots=snapshots)
                prune_root_only(sdir, tmp, "", own)
            else:
                ops.mkdir_at(sdir, tmp, 0o700)
                fd = ops.open_dir_at(sdir, tmp)
                try:
                    os.fchown(fd, tst.st_uid, tst.st_gid)
                    os.fchmod(fd, stat.S_IMODE(tst.st_mode))
                    os.utime(fd, ns=(tst.st_atime_ns, tst.st_mtime_ns))
                finally:
                    os.close(fd)
            with meter.phase(f"sync {shown[1]}"):
                # One syncfs for the whole copy, as a pass's staged copies are made durable
                # (migrate_walk.Walk.flush): an fsync per file costs a flush apiece, 8x what
                # `cp -a && sync` takes on ext4 for 6,000 files (bench/migrate.py). syncfs
                # reports writeback errors of the file system since Linux 5.8.
                fd = ops.reopen(sdir, os.O_RDONLY | os.O_DIRECTORY)  # syncfs takes no O_PATH fd
                try:
                    syncfs(fd)
                finally:
                    os.close(fd)
            ops.rename_at(sdir, tmp, sdir, sname)
        except BaseException as e:
            with contextlib.suppress(OSError):
                ops.remove_tree_at(sdir, tmp)
            if snapshots is not None:
                snapshots.clear()  # of copies just removed, whose inode numbers may come again
            if isinstance(e, OSError) and e.errno in MOVING and stat.S_ISDIR(tst.st_mode):
                continue
            raise
        fsync_dir(sdir)
        return


def _passes(tdir: int, tname: str, sdir: int, sname: str, shown: str, how: Migrate, fresh: bool,
            own: dict[str, bool], tick: Callable[[int, int], None] | None = None,
            snapshots: Snapshots | None = None) -> None:
    """Copy in what storage lacks and remove from the root what storage holds, pass after
    pass while entries keep appearing on the root (at most PASSES); report what stays."""
    rfd = ops.open_dir_at(tdir, tname)
    try:
        sfd = ops.open_dir_at(sdir, sname)
        try:
            mount = ops.mount_id(rfd)
            closer = Closer() if closes_wait(rfd) else None
            for n in range(PASSES):
                if n > 0 or not fresh:  # a fresh copy holds everything already
                    stage = Walk(Mode.STAGE, fresh=fresh, mount=mount, own=own, tick=tick if n == 0 else None,
                                 snapshots=snapshots)
                    try:
                        stage.run(rfd, sfd)
                        stage.flush()
                    finally:
                        stage.discard()
                    if how is Migrate.COPY:
                        return
                walk = Walk(Mode.MOVE, fresh=fresh, mount=mount, own=own,
                            tick=tick if n == 0 and fresh else None, closer=closer, snapshots=snapshots)
                with closer or contextlib.nullcontext():
                    walk.run(rfd, sfd)
                if not walk.missing and not walk.kept:
                    break
                if not walk.moved and n > 0:
                    break  # no progress: what is left will not settle now
            walk.kept += [f"{rel}: appeared during the last pass" for rel in walk.missing]
        finally:
            os.close(sfd)
    finally:
        os.close(rfd)
    _report(shown, walk.kept, walk.conflicts)


def _report(shown: str, kept: list[str], conflicts: list[str]) -> None:
    problems = conflicts + kept
    if not problems:
        return
    raise OperationError(
        f"{shown}: {len(problems)} entries stay on the root, storage holds the rest: "
        + _listed([shown + p for p in problems]),
        hint="what changed or appeared during the migration is never removed; stop the program writing "
             "there, compare, then migrate again")
