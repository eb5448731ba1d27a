"""Moving data that sits on the root into storage, so that no byte is lost at any moment.

Callers hold the apply lock (``freshroot migrate`` and ``apply`` both take it), so one
migration at a time touches a root and its storage.

1. When storage holds nothing yet, the root's entry is copied to a temporary name of its
   own (``.freshroot-migrate.NAME.<random>``) beside its place in storage, every file and
   directory fsynced, and renamed into place (atomic; it replaces an empty directory or
   file), then the storage directory is fsynced: from here the data is durable in storage.
2. Only then, for ``move``, the root's entry is emptied entry by entry, never by removing a
   whole tree: an entry is removed only once storage is known to hold the same entry (same
   type; for a file the same bytes, compared through the very fd that was checked for
   identity, with no change to its size, mtime or ctime meanwhile, and held under a read
   lease so that nobody had it open for writing; a symlink the same text). The entry is first
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
import errno
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum

from freshroot.errors import OperationError
from freshroot.fs import bindmount, durable, ops
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.fs.copy import copy_tree_at
from freshroot.fs.moving import lease_intact, rename_exchange, rename_noreplace, syncfs, take_read_lease
from freshroot.persist.facts import kind_name
from freshroot.persist.model import Kind, Migrate
from freshroot.plan.action import Context

TMP_PREFIX = ".freshroot-migrate."
SAFE = ChaseFlags.SAFE
PASSES = 8  # passes over the root's tree while entries keep appearing there
STAGED_DIRS = 64  # directories with staged copies before they are flushed mid-pass
SHOWN = 5  # entries named in a message; the rest are counted
_TOKEN = 12  # hex digits of a temporary name's random part
_FILE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20
_MOVING = (errno.ENOENT, errno.ENOTDIR, errno.EAGAIN, errno.ELOOP)  # an entry changed under a copy
COPY_ATTEMPTS = 3  # whole-tree copies tried before storage starts from the directory alone


class Mode(Enum):
    CHECK = "check"  # compare only (the planner's look): change nothing
    STAGE = "stage"  # copy what storage lacks to temporary names there, remove nothing
    MOVE = "move"  # remove from the root what storage holds


def _token() -> str:
    return os.urandom(_TOKEN // 2).hex()


def _is_temp(name: str) -> bool:
    """A temporary name this module makes in storage: the prefix and a random part."""
    rest = name.removeprefix(TMP_PREFIX)
    if rest == name:
        return False
    tail = rest.rpartition(".")[2]
    return len(tail) == _TOKEN and all(c in "0123456789abcdef" for c in tail)


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return ops.lstat_at(dir_fd, name)
    except FileNotFoundError:
        return None


def _has_data(dir_fd: int, name: str) -> bool | None:
    """None: missing; False: an empty file or directory; True: anything else."""
    st = _lstat(dir_fd, name)
    if st is None:
        return None
    if stat.S_ISDIR(st.st_mode):
        fd = ops.open_dir_at(dir_fd, name)
        try:
            return bool(os.listdir(fd))
        finally:
            os.close(fd)
    return not (stat.S_ISREG(st.st_mode) and st.st_size == 0)


def _fsync_dir(dir_fd: int) -> None:
    fd = ops.reopen(dir_fd, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_file(dir_fd: int, name: str) -> tuple[int, os.stat_result] | None:
    """A regular file opened for reading without blocking (a FIFO swapped in never blocks
    us); None if what is there now is not a regular file."""
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ELOOP, errno.ENXIO, errno.ENOTDIR):
            return None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    return fd, st


def _same_bytes(a: int, b: int) -> bool:
    """Whether two open regular files hold the same bytes (read with pread, from 0)."""
    if os.fstat(a).st_size != os.fstat(b).st_size:
        return False
    offset = 0
    while True:
        x, y = os.pread(a, _CHUNK, offset), os.pread(b, _CHUNK, offset)
        if x != y:
            return False
        if not x:
            return True
        offset += len(x)


def _unchanged(a: os.stat_result, b: os.stat_result) -> bool:
    return ((a.st_dev, a.st_ino, a.st_size, a.st_mtime_ns, a.st_ctime_ns)
            == (b.st_dev, b.st_ino, b.st_size, b.st_mtime_ns, b.st_ctime_ns))


@dataclass
class _Frame:
    """A directory pair being walked: the root's and storage's, and the names left to visit."""

    rfd: int
    sfd: int
    rel: str  # below the migrated path, for messages ("" at the top)
    names: Iterator[str]
    name: str  # its name in the parent frame's directory (to rmdir it once emptied)
    staged: int = -1  # a duplicate of sfd that the walk's staged copies refer to, once there are any

    def close(self) -> None:
        os.close(self.rfd)
        os.close(self.sfd)


@dataclass
class _Walk:
    """One pass over the root's tree against storage's."""

    mode: Mode
    fresh: bool  # storage held nothing before this run: every entry there is our own copy
    mount: int  # the mount id of the migrated directory: mount points below are not entered
    moved: int = 0  # entries removed from the root (storage holds them)
    kept: list[str] = field(default_factory=list)  # "rel: why", still on the root
    conflicts: list[str] = field(default_factory=list)  # "rel: why", in both and different
    missing: list[str] = field(default_factory=list)  # on the root, not in storage (CHECK, MOVE)
    staged: list[tuple[int, str, str]] = field(default_factory=list)  # (storage dir fd, temporary, name)
    staged_dirs: list[_Frame] = field(default_factory=list)  # frames whose ``staged`` fd is open

    def flush(self) -> None:
        """Make what STAGE copied durable and put it in place: one syncfs for all the copies,
        the renames (never over anything), one syncfs for the renames."""
        try:
            if self.staged:
                syncfs(self.staged[0][0])
                for sfd, tmp, name in self.staged:
                    try:
                        rename_noreplace(sfd, tmp, sfd, name)
                    except FileExistsError:  # appeared in storage meanwhile: compared, not replaced
                        ops.remove_tree_at(sfd, tmp)
                syncfs(self.staged[0][0])
                self.staged.clear()
        finally:
            self.discard()

    def discard(self) -> None:
        """Remove the copies STAGE made that were not placed (the pass failed)."""
        for sfd, tmp, _ in self.staged:
            with contextlib.suppress(OSError):
                ops.remove_tree_at(sfd, tmp)
        self.staged.clear()
        for f in self.staged_dirs:
            os.close(f.staged)
            f.staged = -1
        self.staged_dirs.clear()

    def stage(self, f: _Frame, name: str) -> None:
        if len(self.staged_dirs) >= STAGED_DIRS and f.staged < 0:
            self.flush()  # bounds the fds held for the renames to come
        if f.staged < 0:
            f.staged = os.dup(f.sfd)
            self.staged_dirs.append(f)
        tmp = TMP_PREFIX + _token()
        try:
            copy_tree_at(f.rfd, name, f.sfd, tmp, cross_mounts=False)
        except BaseException as e:
            with contextlib.suppress(OSError):
                ops.remove_tree_at(f.sfd, tmp)
            if isinstance(e, OSError) and e.errno in _MOVING:
                return  # removed, renamed or swapped meanwhile: the next pass sees what is there
            raise
        self.staged.append((f.staged, tmp, name))

    def run(self, rfd: int, sfd: int) -> None:
        stack = [_Frame(os.dup(rfd), os.dup(sfd), "", self._names(rfd, sfd), "")]
        try:
            while stack:
                top = stack[-1]
                name = next(top.names, None)
                if name is None:
                    stack.pop()
                    top.close()
                    if stack and self.mode is Mode.MOVE:
                        with contextlib.suppress(FileNotFoundError, OSError):
                            ops.rmdir_at(stack[-1].rfd, top.name)  # only if empty: the rest is reported
                    continue
                child = self.entry(top, name)
                if child is not None:
                    stack.append(child)
        finally:
            for f in stack:
                f.close()

    def _names(self, rfd: int, sfd: int) -> Iterator[str]:
        if self.mode is Mode.STAGE:  # under the lock, a temporary in storage is a crash's leftover
            for name in os.listdir(sfd):
                if _is_temp(name):
                    ops.remove_tree_at(sfd, name)
        return iter(sorted(os.listdir(rfd)))

    def entry(self, f: _Frame, name: str) -> _Frame | None:
        rel = f"{f.rel}/{name}"
        if name.startswith(TMP_PREFIX) and self.mode is not Mode.CHECK:
            name = self._put_back(f.rfd, name)
            rel = f"{f.rel}/{name}"
        rst = _lstat(f.rfd, name)
        if rst is None:
            return None  # gone meanwhile: the program removed it
        sst = _lstat(f.sfd, name)
        if stat.S_ISDIR(rst.st_mode):
            return self.directory(f, name, rel, rst, sst)
        if sst is None:
            self.absent(f, name, rel)
            return None
        if self.mode is Mode.STAGE:
            return None
        self.settle(f.rfd, name, f.sfd, name, rel, rst)
        return None

    def absent(self, f: _Frame, name: str, rel: str) -> None:
        """A root entry storage lacks: STAGE copies it; MOVE leaves it to the next pass."""
        if self.mode is Mode.STAGE:
            self.stage(f, name)
        else:
            self.missing.append(rel)

    def _put_back(self, rfd: int, name: str) -> str:
        """A root entry an interrupted run renamed away (``.freshroot-migrate.NAME``) goes
        back to its name, and is then treated as any other."""
        original = name[len(TMP_PREFIX):]
        if not original or original.startswith(TMP_PREFIX):
            return name
        try:
            rename_noreplace(rfd, name, rfd, original)
        except (FileExistsError, FileNotFoundError):
            return name
        return original

    def directory(self, f: _Frame, name: str, rel: str, rst: os.stat_result,
                  sst: os.stat_result | None) -> _Frame | None:
        try:
            rfd = os.open(name, _DIR_FLAGS, dir_fd=f.rfd)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                return None  # swapped meanwhile; the next pass sees what is there
            raise
        try:
            st = os.fstat(rfd)
            if (st.st_dev, st.st_ino) != (rst.st_dev, rst.st_ino):
                self.kept.append(f"{rel}: changed while being migrated")
                os.close(rfd)
                return None
            if ops.mount_id(rfd) != self.mount:  # another file system: it stays where it is
                os.close(rfd)
                return None
            if sst is None:
                os.close(rfd)
                self.absent(f, name, rel)
                return None
            if not stat.S_ISDIR(sst.st_mode):
                self.conflicts.append(f"{rel}: a directory on the root, {kind_name(sst)} in storage")
                os.close(rfd)
                return None
            sfd = os.open(name, _DIR_FLAGS, dir_fd=f.sfd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(rfd)
            raise
        try:
            names = self._names(rfd, sfd)
        except BaseException:
            os.close(rfd)
            os.close(sfd)
            raise
        return _Frame(rfd, sfd, rel, names, name)

    def replace(self, rdir: int, rname: str, sdir: int, sname: str) -> bool:
        """Copy one root entry over storage's (our own, older copy): to a temporary name,
        fsynced, renamed into place. False: it vanished or changed while being copied."""
        tmp = TMP_PREFIX + _token()
        try:
            copy_tree_at(rdir, rname, sdir, tmp, cross_mounts=False)
            durable.fsync_tree_at(sdir, tmp)
            ops.rename_at(sdir, tmp, sdir, sname)
        except BaseException as e:
            with contextlib.suppress(OSError):
                ops.remove_tree_at(sdir, tmp)
            if isinstance(e, OSError) and e.errno in _MOVING:
                return False
            raise
        _fsync_dir(sdir)
        return True

    def settle(self, rdir: int, rname: str, sdir: int, sname: str, rel: str, rst: os.stat_result,
               placeholder: os.stat_result | None = None) -> None:
        """Compare one non-directory root entry with storage's and, for MOVE, remove it from
        the root if they are the same. ``placeholder``: leave an empty file with that owner
        and mode in its place (the mount point of a declared file)."""
        if not stat.S_ISREG(rst.st_mode):
            self.settle_other(rdir, rname, sdir, sname, rel, rst)
            return
        opened = _open_file(rdir, rname)
        if opened is None:
            self.keep(rel, "changed while being migrated", sdir, sname)
            return
        fd, st0 = opened
        try:
            if (st0.st_dev, st0.st_ino) != (rst.st_dev, rst.st_ino):
                self.keep(rel, "changed while being migrated", sdir, sname)
                return
            lease = take_read_lease(fd) if self.mode is Mode.MOVE else None
            if lease is False:
                self.keep(rel, "open for writing by a program", sdir, sname)
                return
            if not self.same_file(fd, sdir, sname):
                if self.mode is Mode.CHECK:
                    self.conflicts.append(f"{rel}: different content")
                    return
                sst = _lstat(sdir, sname)
                if not self.fresh or sst is None or stat.S_ISDIR(sst.st_mode):
                    self.conflicts.append(f"{rel}: different content")
                    return
                # Storage holds our own, older copy: the root's file changed after it was
                # copied. Copy it again, and go on only if the new copy is what fd holds.
                if not self.replace(rdir, rname, sdir, sname) or not self.same_file(fd, sdir, sname):
                    self.keep(rel, "changed while being migrated", sdir, sname)
                    return
            if self.mode is not Mode.MOVE:
                return
            if not _unchanged(st0, os.fstat(fd)) or (lease and not lease_intact(fd)):
                self.keep(rel, "changed while being migrated", sdir, sname)
                return
            self.take_away(rdir, rname, rel, st0, lambda: not lease or lease_intact(fd), placeholder)
        finally:
            os.close(fd)  # and with it the lease

    def keep(self, rel: str, why: str, sdir: int, sname: str) -> None:
        """Leave a root entry where it is. In a run that found storage empty, storage's copy of
        it is our own and stale: it goes, so that migrating again copies the entry afresh
        instead of finding two that differ."""
        self.kept.append(f"{rel}: {why}")
        if self.fresh and self.mode is Mode.MOVE:
            st = _lstat(sdir, sname)
            if st is not None and not stat.S_ISDIR(st.st_mode):
                ops.unlink_at(sdir, sname)

    def same_file(self, fd: int, sdir: int, sname: str) -> bool:
        opened = _open_file(sdir, sname)
        if opened is None:
            return False
        sfd, _ = opened
        try:
            return _same_bytes(fd, sfd)
        finally:
            os.close(sfd)

    def settle_other(self, rdir: int, rname: str, sdir: int, sname: str, rel: str, rst: os.stat_result,
                     *, again: bool = True) -> None:
        """A symlink, FIFO, socket or device node: the same type and link text or device."""
        sst = _lstat(sdir, sname)
        same = sst is not None and stat.S_IFMT(sst.st_mode) == stat.S_IFMT(rst.st_mode)
        if same and stat.S_ISLNK(rst.st_mode):
            try:
                same = os.readlink(rname, dir_fd=rdir) == os.readlink(sname, dir_fd=sdir)
            except OSError:
                same = False
        elif same and sst is not None:
            same = sst.st_rdev == rst.st_rdev
        if not same:
            if again and self.mode is Mode.MOVE and self.fresh and sst is not None and not stat.S_ISDIR(sst.st_mode):
                if not self.replace(rdir, rname, sdir, sname):
                    self.kept.append(f"{rel}: changed while being migrated")
                    return
                self.settle_other(rdir, rname, sdir, sname, rel, rst, again=False)  # the new copy, once
                return
            self.conflicts.append(f"{rel}: {kind_name(rst)} on the root, {kind_name(sst)} in storage"
                                  if sst is None or stat.S_IFMT(sst.st_mode) != stat.S_IFMT(rst.st_mode)
                                  else f"{rel}: different {'link text' if stat.S_ISLNK(rst.st_mode) else 'device'}")
            return
        if self.mode is Mode.MOVE:
            self.take_away(rdir, rname, rel, rst, lambda: True, None)

    def take_away(self, rdir: int, rname: str, rel: str, want: os.stat_result,
                  intact: Callable[[], bool], placeholder: os.stat_result | None) -> None:
        """Remove ``rname`` if it is still the entry ``want`` that was compared: renamed away
        first (never over anything), checked under its new name, then unlinked; put back if
        it is something else (a program renamed a new file over the name at that moment)."""
        away = TMP_PREFIX + rname
        empty: tuple[int, int] | None = None
        if placeholder is not None:  # an empty file with the same owner and mode takes its place at once
            away = TMP_PREFIX + _token()
            fd = ops.create_at(rdir, away, 0o600, exclusive=True)
            try:
                os.fchown(fd, placeholder.st_uid, placeholder.st_gid)
                os.fchmod(fd, stat.S_IMODE(placeholder.st_mode))
                est = os.fstat(fd)
                empty = est.st_dev, est.st_ino
            finally:
                os.close(fd)
            try:
                rename_exchange(rdir, away, rdir, rname)
            except FileNotFoundError:  # the program removed it itself: the empty file is the mount point
                try:
                    rename_noreplace(rdir, away, rdir, rname)
                except FileExistsError:
                    ops.unlink_at(rdir, away)
                return
        else:
            try:
                if len(os.fsencode(away)) > 255:
                    raise FileExistsError
                rename_noreplace(rdir, rname, rdir, away)
            except FileExistsError:
                away = TMP_PREFIX + _token()
                try:
                    rename_noreplace(rdir, rname, rdir, away)
                except FileNotFoundError:
                    return
            except FileNotFoundError:
                return  # the program removed it itself
        got = ops.lstat_at(rdir, away)
        if ((got.st_dev, got.st_ino, got.st_size, got.st_mtime_ns)
                == (want.st_dev, want.st_ino, want.st_size, want.st_mtime_ns)) and intact():
            ops.unlink_at(rdir, away)
            self.moved += 1
            return
        # Not what was compared: it goes back where it was.
        if empty is not None:
            rename_exchange(rdir, away, rdir, rname)
            back = ops.lstat_at(rdir, away)
            if (back.st_dev, back.st_ino) != empty:  # a program replaced the placeholder meanwhile
                self.kept.append(f"{rel}: changed while being migrated; kept as {away}")
                return
            ops.unlink_at(rdir, away)
        else:
            try:
                rename_noreplace(rdir, away, rdir, rname)
            except FileExistsError:
                self.kept.append(f"{rel}: changed while being migrated; kept as {away}")
                return
        self.kept.append(f"{rel}: changed while being migrated")


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
        tst, sst = _lstat(t.fd, t.rest), _lstat(s.fd, s.rest)
        if tst is None:
            return Comparison((), ())
        if sst is None:
            return Comparison((), ("",))
        walk = _Walk(Mode.CHECK, fresh=False, mount=0)
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
        tst = _lstat(tparent.fd, tname)
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
                if stale == TMP_PREFIX + sname or (stale.startswith(TMP_PREFIX + sname + ".") and _is_temp(stale)):
                    ops.remove_tree_at(sparent.fd, stale)
            fresh = not _has_data(sparent.fd, sname)
            if fresh:
                _copy_fresh(tparent.fd, tname, sparent.fd, sname, tst)
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
                _passes(tparent.fd, tname, sparent.fd, sname, shown, how, fresh)
            elif how is Migrate.MOVE:
                walk = _Walk(Mode.MOVE, fresh=fresh, mount=0)
                walk.settle(tparent.fd, tname, sparent.fd, sname, "", tst, placeholder=tst)
                _report(shown, walk.kept, walk.conflicts)
    return True


def _copy_fresh(tdir: int, tname: str, sdir: int, sname: str, tst: os.stat_result) -> None:
    """The first copy into an empty storage: the whole entry to a temporary name, fsynced,
    renamed into place. A mount point inside is copied as an empty directory and left alone by
    the removal: what is on another file system stays where it is. When a directory keeps
    changing under the copy (an entry removed or swapped while being copied), storage starts
    from the directory alone, with its owner, mode and times, and the passes copy the rest
    entry by entry."""
    for attempt in range(COPY_ATTEMPTS + 1):
        tmp = f"{TMP_PREFIX}{sname}.{_token()}"
        try:
            if attempt < COPY_ATTEMPTS:
                copy_tree_at(tdir, tname, sdir, tmp, cross_mounts=False)
            else:
                ops.mkdir_at(sdir, tmp, 0o700)
                fd = ops.open_dir_at(sdir, tmp)
                try:
                    os.fchown(fd, tst.st_uid, tst.st_gid)
                    os.fchmod(fd, stat.S_IMODE(tst.st_mode))
                    os.utime(fd, ns=(tst.st_atime_ns, tst.st_mtime_ns))
                finally:
                    os.close(fd)
            durable.fsync_tree_at(sdir, tmp)
            ops.rename_at(sdir, tmp, sdir, sname)
        except BaseException as e:
            with contextlib.suppress(OSError):
                ops.remove_tree_at(sdir, tmp)
            if isinstance(e, OSError) and e.errno in _MOVING and stat.S_ISDIR(tst.st_mode):
                continue
            raise
        _fsync_dir(sdir)
        return


def _passes(tdir: int, tname: str, sdir: int, sname: str, shown: str, how: Migrate, fresh: bool) -> None:
    """Copy in what storage lacks and remove from the root what storage holds, pass after
    pass while entries keep appearing on the root (at most PASSES); report what stays."""
    rfd = ops.open_dir_at(tdir, tname)
    try:
        sfd = ops.open_dir_at(sdir, sname)
        try:
            mount = ops.mount_id(rfd)
            for n in range(PASSES):
                if n > 0 or not fresh:  # a fresh copy holds everything already
                    stage = _Walk(Mode.STAGE, fresh=fresh, mount=mount)
                    try:
                        stage.run(rfd, sfd)
                        stage.flush()
                    finally:
                        stage.discard()
                    if how is Migrate.COPY:
                        return
                walk = _Walk(Mode.MOVE, fresh=fresh, mount=mount)
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
