"""The changes persistence makes, each beside the record that reverts it.

An action re-resolves its paths with chase at apply time and works on the fds chase returns.
Its ``records()`` are kept in the state store before it acts (plan/journal.py); each record's
``revert`` checks that what is there is still what persistence made before it undoes it: a
directory is removed only if empty, a file only if still empty, a symlink only if it still
points where freshroot pointed it, a mount only if it still shows the storage it was made
from. Migrations are not reverted: the data stays in storage, and undo says so.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from freshroot.errors import OperationError
from freshroot.fs import bindmount, ops, utab
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.persist import useropts
from freshroot.persist.dircache import DirCache
from freshroot.persist.model import Kind, Migrate
from freshroot.plan.action import Action, Context
from freshroot.plan.records import MadeDirectory, Record, UndoReport, record_type

# A plain file root made in a user's storage directory is that user's state (docs/fs.md).
SAFE = ChaseFlags.SAFE | ChaseFlags.ROOT_FILES


def _owner(uid: int, gid: int, mode: int) -> str:
    return f"{mode:04o} {uid}:{gid}"


@contextlib.contextmanager
def _at(ctx: Context, path: str, dirs: DirCache | None) -> Iterator[tuple[int, str]]:
    """(parent directory fd, name) of ``path``: from the plan's cache, else by chase."""
    if dirs is not None:
        yield dirs.parent(path)
        return
    with chase(path, root_fd=ctx.root_fd, flags=SAFE | ChaseFlags.PARENT) as parent:
        yield parent.fd, parent.rest


def _open(ctx: Context, path: str, dirs: DirCache | None) -> tuple[int, os.stat_result]:
    """An O_PATH fd (the caller's) of ``path``, its last component not followed."""
    if dirs is not None:
        return dirs.open(path)
    with chase(path, root_fd=ctx.root_fd, flags=SAFE | ChaseFlags.NOFOLLOW) as found:
        return found.detach(), found.st


@dataclass(frozen=True)
class MakeDirectory(Action):
    """Create one directory whose parent exists (or is made by an earlier action)."""

    path: str
    uid: int
    gid: int
    mode: int
    why: str = "directory"
    dirs: DirCache | None = field(default=None, compare=False, repr=False)

    def touches(self) -> tuple[str, ...]:
        return (self.path,)

    def describe(self) -> str:
        return f"create {self.why} {self.path} ({_owner(self.uid, self.gid, self.mode)})"

    def records(self, ctx: Context) -> Sequence[Record]:
        return (MadeDirectory(self.path),)

    def apply(self, ctx: Context) -> None:
        with _at(ctx, self.path, self.dirs) as (dfd, name):
            # 0700 until owner and mode are right: no window where others can get in.
            if not ops.mkdir_at(dfd, name, 0o700):
                return  # appeared meanwhile: never change what we did not make
            fd = ops.open_dir_at(dfd, name)
            try:
                os.fchown(fd, self.uid, self.gid)
                os.fchmod(fd, self.mode)  # after chown, which may clear set-id bits
            finally:
                os.close(fd)


@dataclass(frozen=True)
class MakeFile(Action):
    """Create an empty regular file (a mount point for a bound file, or its storage)."""

    path: str
    uid: int
    gid: int
    mode: int
    why: str = "file"
    dirs: DirCache | None = field(default=None, compare=False, repr=False)

    def touches(self) -> tuple[str, ...]:
        return (self.path,)

    def describe(self) -> str:
        return f"create empty {self.why} {self.path} ({_owner(self.uid, self.gid, self.mode)})"

    def records(self, ctx: Context) -> Sequence[Record]:
        return (MadeEmptyFile(self.path),)

    def apply(self, ctx: Context) -> None:
        with _at(ctx, self.path, self.dirs) as (dfd, name):
            try:
                fd = ops.create_at(dfd, name, 0o600, exclusive=True)
            except FileExistsError:
                return
            try:
                os.fchown(fd, self.uid, self.gid)
                os.fchmod(fd, self.mode)
            finally:
                os.close(fd)


@dataclass(frozen=True)
class BindMount(Action):
    """Bind-mount a persisted path from storage onto the root."""
    source: str
    target: str
    kind: Kind
    options: tuple[str, ...] = ()
    dirs: DirCache | None = field(default=None, compare=False, repr=False)

    def touches(self) -> tuple[str, ...]:
        return (self.source, self.target)

    def describe(self) -> str:
        opts = f" ({','.join(self.options)})" if self.options else ""
        return f"bind-mount {self.source} on {self.target}{opts}"

    def records(self, ctx: Context) -> Sequence[Record]:
        return (Mounted(self.source, self.target),)

    def apply(self, ctx: Context) -> None:
        flags = bindmount.parse_options(self.options)
        want = stat.S_ISDIR if self.kind is Kind.DIRECTORY else stat.S_ISREG
        user = useropts.wanted(ctx, self.options)  # x-gvfs-hide...: utab's, as mount(8) records them
        src, src_st = _open(ctx, self.source, self.dirs)
        try:
            if not want(src_st.st_mode):
                raise OperationError(f"{ctx.display(self.source)}: not a {self.kind.value} any more; not mounting")
            with _at(ctx, self.target, self.dirs) as (dfd, name):
                st = ops.lstat_at(dfd, name)
                if not want(st.st_mode):
                    raise OperationError(f"{ctx.display(self.target)}: not a {self.kind.value} any more; not mounting")
                if not user:
                    bindmount.bind_at(src, dfd, name, flags)
                else:
                    with utab.Utab.default().mounting():
                        bindmount.bind_at(src, dfd, name, flags)
                        top = ops.open_path_at(dfd, name)
                        try:
                            useropts.record(ctx, top, self.source, user)
                        finally:
                            os.close(top)
        finally:
            os.close(src)
        if self.dirs is not None:
            self.dirs.invalidate(self.target)  # the mount now covers what was cached there


@dataclass(frozen=True)
class Symlink(Action):
    """Point ``path`` at storage. ``replaces_empty`` holds (uid, gid, mode) of an empty
    regular file that is there now: it holds no data, and undo re-creates it."""

    path: str
    text: str
    replaces_empty: tuple[int, int, int] | None = None
    dirs: DirCache | None = field(default=None, compare=False, repr=False)

    def touches(self) -> tuple[str, ...]:
        return (self.path,)

    def describe(self) -> str:
        extra = " (replacing an empty file)" if self.replaces_empty else ""
        return f"symlink {self.path} -> {self.text}{extra}"

    def records(self, ctx: Context) -> Sequence[Record]:
        return (Linked(self.path, self.text, self.replaces_empty),)

    def apply(self, ctx: Context) -> None:
        with _at(ctx, self.path, self.dirs) as (dfd, name):
            if self.replaces_empty is not None:
                try:
                    st = ops.lstat_at(dfd, name)
                except FileNotFoundError:
                    pass
                else:
                    if not stat.S_ISREG(st.st_mode) or st.st_size != 0:
                        raise OperationError(f"{ctx.display(self.path)}: is no longer an empty file; not replacing it")
                    ops.unlink_at(dfd, name)
            ops.symlink_at(self.text, dfd, name)


@dataclass(frozen=True)
class RemoveOwnSymlink(Action):
    """Remove a symlink into storage (a file switched from symlink to bind)."""

    path: str
    text: str
    dirs: DirCache | None = field(default=None, compare=False, repr=False)

    def touches(self) -> tuple[str, ...]:
        return (self.path,)

    def describe(self) -> str:
        return f"remove symlink {self.path} -> {self.text} (the file is bound instead)"

    def records(self, ctx: Context) -> Sequence[Record]:
        return (Unlinked(self.path, self.text),)

    def apply(self, ctx: Context) -> None:
        with _at(ctx, self.path, self.dirs) as (dfd, name):
            fd = ops.open_path_at(dfd, name)
            try:
                if not stat.S_ISLNK(os.fstat(fd).st_mode) or ops.readlink_fd(fd) != self.text:
                    raise OperationError(f"{ctx.display(self.path)}: changed since it was planned; not removing it")
            finally:
                os.close(fd)
            ops.unlink_at(dfd, name)


@dataclass(frozen=True)
class MigrateData(Action):
    """Put what the root holds at ``path`` into storage, durably (see migrate.py)."""

    path: str
    source: str
    kind: Kind
    how: Migrate
    dirs: DirCache | None = field(default=None, compare=False, repr=False)

    def touches(self) -> tuple[str, ...]:
        return (self.path, self.source)

    def describe(self) -> str:
        verb = "move" if self.how is Migrate.MOVE else "copy"
        return f"{verb} the data of {self.path} into {self.source}"

    def records(self, ctx: Context) -> Sequence[Record]:
        return (Migrated(self.path, self.source),)

    def apply(self, ctx: Context) -> None:
        from freshroot.persist.migrate import migrate

        migrate(ctx, self.path, self.source, self.kind, self.how)


@dataclass(frozen=True)
class FixPerms(Action):
    """Bring an entry in storage to its declared owner and mode (apply --fix)."""

    path: str
    uid: int
    gid: int
    mode: int
    old: tuple[int, int, int]
    dirs: DirCache | None = field(default=None, compare=False, repr=False)

    def touches(self) -> tuple[str, ...]:
        return (self.path,)

    def describe(self) -> str:
        return f"change {self.path} from {_owner(*self.old)} to {_owner(self.uid, self.gid, self.mode)}"

    def records(self, ctx: Context) -> Sequence[Record]:
        return (PermsChanged(self.path, self.old),)

    def apply(self, ctx: Context) -> None:
        with chase(self.path, root_fd=ctx.root_fd, flags=SAFE | ChaseFlags.NOFOLLOW) as found:
            ops.chown_fd(found.fd, self.uid, self.gid)
            ops.chmod_fd(found.fd, self.mode)


@dataclass(frozen=True)
class Refuse(Action):
    """A declared path freshroot will not touch, and why: applying it fails the step."""

    path: str
    reason: str

    refusal: ClassVar[bool] = True

    def touches(self) -> tuple[str, ...]:
        return (self.path,)

    def describe(self) -> str:
        return f"refuse {self.path}: {self.reason}"

    def records(self, ctx: Context) -> Sequence[Record]:
        return ()  # changes nothing

    def apply(self, ctx: Context) -> None:
        raise OperationError(f"{ctx.display(self.path)}: {self.reason}")


# --- the records, and how each is reverted ------------------------------------------------------


def _parent(ctx: Context, path: str) -> Any:
    return chase(path, root_fd=ctx.root_fd, flags=SAFE | ChaseFlags.PARENT)


@record_type
@dataclass(frozen=True)
class MadeEmptyFile(Record):
    """Undo record: an empty file was made as a mount point."""
    TYPE: ClassVar[str] = "persist.file"
    path: str

    def describe(self) -> str:
        return f"remove empty file {self.path}"

    def revert(self, ctx: Context, report: UndoReport) -> None:
        shown = ctx.display(self.path)
        with _parent(ctx, self.path) as parent:
            st = ops.lstat_at(parent.fd, parent.rest)
            if stat.S_ISREG(st.st_mode) and st.st_size == 0:
                ops.unlink_at(parent.fd, parent.rest)
                report.done.append(f"removed empty file {shown}")
            else:
                report.kept.append(f"{shown}: holds data now, kept")


@record_type
@dataclass(frozen=True)
class Mounted(Record):
    """Undo record: a bind mount was made."""
    TYPE: ClassVar[str] = "persist.bind"
    FIRST: ClassVar[bool] = True
    source: str
    target: str

    def describe(self) -> str:
        return f"unmount {self.target} (bound from {self.source})"

    def revert(self, ctx: Context, report: UndoReport) -> None:
        with chase(self.source, root_fd=ctx.root_fd, flags=SAFE | ChaseFlags.NOFOLLOW) as src:
            want = (src.st.st_dev, src.st.st_ino)
        while True:  # a mount made twice (two racing runs) is stacked: remove each
            with _parent(ctx, self.target) as parent:
                fd = ops.open_path_at(parent.fd, parent.rest)
                try:
                    st = os.fstat(fd)
                    if (st.st_dev, st.st_ino) != want or not bindmount.is_mount_root(fd, parent.fd):
                        return
                    try:
                        useropts.forget(ctx, fd)  # its utab line, as umount(8) removes it
                    except OSError as e:  # never keeps the mount: the line only describes it
                        report.kept.append(f"{ctx.display(self.target)}: its line in {utab.utab_path()} "
                                           f"stays ({e.strerror or e})")
                    bindmount.umount_fd(fd)
                    report.done.append(f"unmounted {ctx.display(self.target)}")
                finally:
                    os.close(fd)


@record_type
@dataclass(frozen=True)
class Linked(Record):
    """A symlink into storage; ``replaced_empty``: (uid, gid, mode) of the empty file it replaced."""

    TYPE: ClassVar[str] = "persist.symlink"
    path: str
    text: str
    replaced_empty: tuple[int, int, int] | None = None

    def describe(self) -> str:
        return f"remove symlink {self.path} -> {self.text}"

    def revert(self, ctx: Context, report: UndoReport) -> None:
        shown = ctx.display(self.path)
        with _parent(ctx, self.path) as parent:
            fd = ops.open_path_at(parent.fd, parent.rest)
            try:
                ours = stat.S_ISLNK(os.fstat(fd).st_mode) and ops.readlink_fd(fd) == self.text
            finally:
                os.close(fd)
            if not ours:
                return
            ops.unlink_at(parent.fd, parent.rest)
            report.done.append(f"removed symlink {shown}")
            if self.replaced_empty is not None:
                uid, gid, mode = self.replaced_empty
                fd = ops.create_at(parent.fd, parent.rest, 0o600)
                try:
                    os.fchown(fd, uid, gid)
                    os.fchmod(fd, mode)
                finally:
                    os.close(fd)


@record_type
@dataclass(frozen=True)
class Unlinked(Record):
    """persistence removed its own symlink (a file switched to a bind mount)."""

    TYPE: ClassVar[str] = "persist.unlink-symlink"
    path: str
    text: str

    def describe(self) -> str:
        return f"restore symlink {self.path} -> {self.text}"

    def revert(self, ctx: Context, report: UndoReport) -> None:
        shown = ctx.display(self.path)
        with _parent(ctx, self.path) as parent:
            try:
                ops.symlink_at(self.text, parent.fd, parent.rest)
                report.done.append(f"restored symlink {shown}")
            except FileExistsError:
                report.kept.append(f"{shown}: something is there again, symlink not restored")


@record_type
@dataclass(frozen=True)
class PermsChanged(Record):
    """Undo record: owner and mode were changed, and what they were."""
    TYPE: ClassVar[str] = "persist.perms"
    path: str
    old: tuple[int, int, int]  # uid, gid, mode

    def describe(self) -> str:
        return f"restore owner and mode of {self.path}"

    def revert(self, ctx: Context, report: UndoReport) -> None:
        uid, gid, mode = self.old
        with chase(self.path, root_fd=ctx.root_fd, flags=SAFE | ChaseFlags.NOFOLLOW) as found:
            ops.chown_fd(found.fd, uid, gid)
            ops.chmod_fd(found.fd, mode)
        report.done.append(f"restored owner and mode of {ctx.display(self.path)}")


@record_type
@dataclass(frozen=True)
class Migrated(Record):
    """Data moved into storage: never reverted (it is data), and undo says where it is."""

    TYPE: ClassVar[str] = "persist.migrate"
    path: str
    source: str

    def describe(self) -> str:
        return f"keep the data of {self.path} in {self.source}"

    def revert(self, ctx: Context, report: UndoReport) -> None:
        report.kept.append(f"{ctx.display(self.path)}: its data was migrated to {ctx.display(self.source)} "
                           "and stays there")

