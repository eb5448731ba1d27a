"""One pass of a migration over the root's tree against storage's (see persist.migrate).

A pass walks the root's directory and storage's side by side, iteratively (two
fs.walk.DirStacks within an fd budget, never a recursion per level), and for each root entry either copies it into
storage (STAGE: to a temporary name; the caller makes the copies durable with one syncfs and
renames them into place), removes it from the root once storage is known to hold the same
(MOVE), or only compares (CHECK, for the planner). Files are opened O_NONBLOCK and their type
is checked on the fd; what the pass could not settle is listed, never removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum

from freshroot.fs import durable, ops
from freshroot.fs.copy import copy_tree_at
from freshroot.fs.moving import Closer, lease_intact, rename_exchange, rename_noreplace, syncfs, take_read_lease
from freshroot.fs.snapshot import Snapshots
from freshroot.fs.walk import DirStack
from freshroot.persist.facts import kind_name

TMP_PREFIX = ".freshroot-migrate."
STAGED_DIRS = 64  # directories with staged copies before they are flushed mid-pass
RMDIRS_WAITING = 64  # emptied directories waiting for their files' closes (an fd each)
DIR_BUDGET = 32  # open fds per side of the walk (fs.walk.DirStack)
_TOKEN = 12  # hex digits of a temporary name's random part
_FILE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Bytes compared per read: 256 KiB of each file stay in the CPU's cache between the read and
# the comparison (1 MiB chunks compared at a third of the speed: bench/migrate.py).
_CHUNK = 256 << 10
MOVING = (errno.ENOENT, errno.ENOTDIR, errno.EAGAIN, errno.ELOOP)  # an entry changed under a copy


class Mode(Enum):
    CHECK = "check"  # compare only (the planner's look): change nothing
    STAGE = "stage"  # copy what storage lacks to temporary names there, remove nothing
    MOVE = "move"  # remove from the root what storage holds


def token() -> str:
    return os.urandom(_TOKEN // 2).hex()


def is_temp(name: str) -> bool:
    """A temporary name this module makes in storage: the prefix and a random part."""
    rest = name.removeprefix(TMP_PREFIX)
    if rest == name:
        return False
    tail = rest.rpartition(".")[2]
    return len(tail) == _TOKEN and all(c in "0123456789abcdef" for c in tail)


def prune_root_only(dir_fd: int, name: str, rel: str, own: dict[str, bool]) -> None:
    """Remove from a copy just made in storage (``name`` in ``dir_fd``, of the root's ``rel``)
    the own state files that stay on the root alone. The copy is ours and not yet in place;
    its directories are opened without following a symlink."""
    for path, root_only in own.items():
        if not root_only or not path.startswith(rel + "/"):
            continue
        *dirs, last = path[len(rel) + 1:].split("/")
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        try:
            for part in dirs:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
            st = lstat_or_none(fd, last)
            if st is not None and stat.S_ISREG(st.st_mode):
                ops.unlink_at(fd, last)
        except (FileNotFoundError, NotADirectoryError):
            pass  # not in this copy (or a symlink on the way, which is never entered)
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
        finally:
            os.close(fd)


def lstat_or_none(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return ops.lstat_at(dir_fd, name)
    except FileNotFoundError:
        return None


def fsync_dir(dir_fd: int) -> None:
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


def _same_bytes(a: int, b: int, size: int) -> bool:
    """Whether two open regular files, both ``size`` bytes long by their fstat, hold the same
    bytes (read with pread, from 0). A file that is shorter by now differs; one that grew is
    the caller's to notice (MOVE compares its stat before and after)."""
    offset = 0
    if size >= _CHUNK:
        # Whole chunks into two buffers read again and again: a new bytes object a chunk is a
        # fresh allocation whose pages fault in, a third of the comparison's time (tmpfs).
        x, y = bytearray(_CHUNK), bytearray(_CHUNK)
        while size - offset >= _CHUNK:
            if os.preadv(a, [x], offset) != _CHUNK or os.preadv(b, [y], offset) != _CHUNK or x != y:
                return False
            offset += _CHUNK
    if offset < size:
        n = size - offset
        tail = os.pread(a, n, offset)
        return len(tail) == n and tail == os.pread(b, n, offset)
    return True


def _unchanged(a: os.stat_result, b: os.stat_result) -> bool:
    return ((a.st_dev, a.st_ino, a.st_size, a.st_mtime_ns, a.st_ctime_ns)
            == (b.st_dev, b.st_ino, b.st_size, b.st_mtime_ns, b.st_ctime_ns))


@dataclass
class _Frame:
    """A directory pair being walked: the root's and storage's, and the names left to visit.
    Its fds are the tops of the walk's two DirStacks: valid while it is the deepest frame."""

    dirs: tuple[DirStack, DirStack]  # the root's side, storage's side
    rel: str  # below the migrated path, for messages ("" at the top)
    names: Iterator[str]
    name: str  # its name in the parent frame's directory (to rmdir it once emptied)
    staged: int = -1  # a duplicate of sfd that the walk's staged copies refer to, once there are any

    @property
    def rfd(self) -> int:
        return self.dirs[0].fd()

    @property
    def sfd(self) -> int:
        return self.dirs[1].fd()


@dataclass
class Walk:
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
    # freshroot's own state files below the migrated path (model.own_state): rel -> stays on
    # the root whatever storage holds (True), or only while storage has its own copy (False)
    own: dict[str, bool] = field(default_factory=dict)
    tick: Callable[[int, int], None] | None = None  # told (entries, bytes) of each non-directory looked at
    closer: Closer | None = None  # closes the fds of the files MOVE removed (their eviction waits on ext4)
    # What this run's copies saw of the root's files (fs.snapshot): STAGE adds to it, MOVE
    # removes a file whose snapshot still holds without reading it again. None: compare bytes.
    snapshots: Snapshots | None = None
    # MOVE: emptied directories to remove once the closer closed their files' fds:
    # (a dup of the parent's fd, the name, its (st_dev, st_ino), the closer's mark)
    rmdirs: deque[tuple[int, str, tuple[int, int], int]] = field(default_factory=deque)

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

    def stage(self, f: _Frame, name: str, rel: str) -> None:
        if len(self.staged_dirs) >= STAGED_DIRS and f.staged < 0:
            self.flush()  # bounds the fds held for the renames to come
        if f.staged < 0:
            f.staged = os.dup(f.sfd)
            self.staged_dirs.append(f)
        tmp = TMP_PREFIX + token()
        try:
            copy_tree_at(f.rfd, name, f.sfd, tmp, cross_mounts=False, hardlinks=True, snapshots=self.snapshots)
            prune_root_only(f.sfd, tmp, rel, self.own)
        except BaseException as e:
            with contextlib.suppress(OSError):
                ops.remove_tree_at(f.sfd, tmp)
            if isinstance(e, OSError) and e.errno in MOVING:
                return  # removed, renamed or swapped meanwhile: the next pass sees what is there
            raise
        self.staged.append((f.staged, tmp, name))

    def run(self, rfd: int, sfd: int) -> None:
        # Two DirStacks, not an fd pair per level: a user's 1,500-deep tree is walked within
        # the fd budget (a few dozen fds however deep), reopening a level as '..' when needed.
        dirs = (DirStack(rfd, budget=DIR_BUDGET), DirStack(sfd, budget=DIR_BUDGET))
        stack = [_Frame(dirs, "", self._names(rfd, sfd), "")]
        try:
            while stack:
                top = stack[-1]
                name = next(top.names, None)
                if name is None:
                    stack.pop()
                    if stack:
                        key = dirs[0].levels[-1].key
                        dirs[0].pop()
                        dirs[1].pop()
                        if self.mode is Mode.MOVE:
                            self.rmdir_later(stack[-1].rfd, top.name, key)
                    continue
                child = self.entry(top, name)
                if child is not None:
                    stack.append(child)
            self.rmdir_ready(everything=True)
        finally:
            for parent, _, _, _ in self.rmdirs:
                os.close(parent)
            self.rmdirs.clear()
            dirs[0].close()
            dirs[1].close()

    def rmdir_later(self, parent: int, name: str, key: tuple[int, int]) -> None:
        """Remove the directory ``name`` (only if empty: the rest is reported) once the fds of
        the files removed from it are closed (moving.Closer), if it is still the one walked."""
        if self.closer is None:
            self.rmdirs.append((os.dup(parent), name, key, 0))
            self.rmdir_ready(everything=True)
            return
        self.rmdirs.append((os.dup(parent), name, key, self.closer.mark()))
        self.rmdir_ready(everything=len(self.rmdirs) > RMDIRS_WAITING)

    def rmdir_ready(self, *, everything: bool) -> None:
        """Remove the waiting directories whose files are closed, oldest first; ``everything``:
        wait for the closes (the oldest only, when there are too many waiting)."""
        last = len(self.rmdirs) > RMDIRS_WAITING
        while self.rmdirs:
            parent, name, key, mark = self.rmdirs[0]
            if self.closer is not None and not self.closer.closed(mark):
                if not everything:
                    return
                self.closer.wait(mark)
            self.rmdirs.popleft()
            try:
                st = lstat_or_none(parent, name)
                if st is not None and (st.st_dev, st.st_ino) == key:
                    with contextlib.suppress(OSError):
                        ops.rmdir_at(parent, name)
            finally:
                os.close(parent)
            if last:
                return

    def _names(self, rfd: int, sfd: int) -> Iterator[str]:
        if self.mode is Mode.STAGE:  # under the lock, a temporary in storage is a crash's leftover
            for name in os.listdir(sfd):
                if is_temp(name):
                    ops.remove_tree_at(sfd, name)
        return iter(sorted(os.listdir(rfd)))

    def entry(self, f: _Frame, name: str) -> _Frame | None:
        rel = f"{f.rel}/{name}"
        if name.startswith(TMP_PREFIX) and self.mode is not Mode.CHECK:
            name = self._put_back(f.rfd, name)
            rel = f"{f.rel}/{name}"
        rst = lstat_or_none(f.rfd, name)
        if rst is None:
            return None  # gone meanwhile: the program removed it
        sst = lstat_or_none(f.sfd, name)
        root_only = self.own.get(rel)
        if root_only is not None and (root_only or sst is not None):
            return None  # freshroot's own state file, not the user's data: left where it is
        if stat.S_ISDIR(rst.st_mode):
            return self.directory(f, name, rel, rst, sst)
        if self.tick is not None:
            self.tick(1, rst.st_size if stat.S_ISREG(rst.st_mode) else 0)
        if sst is None:
            self.absent(f, name, rel)
            return None
        if self.mode is Mode.STAGE:
            return None
        self.settle(f.rfd, name, f.sfd, name, rel, rst, stored=sst)
        return None

    def absent(self, f: _Frame, name: str, rel: str) -> None:
        """A root entry storage lacks: STAGE copies it; MOVE leaves it to the next pass."""
        if self.mode is Mode.STAGE:
            self.stage(f, name, rel)
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
        rdirs, sdirs = f.dirs
        try:
            rfd = rdirs.push(name, rst)  # the very directory that was looked at, never a symlink
        except OSError as e:
            if e.errno == errno.EAGAIN:
                self.kept.append(f"{rel}: changed while being migrated")
                return None
            if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                return None  # swapped meanwhile; the next pass sees what is there
            raise
        try:
            if ops.mount_id(rfd) != self.mount:  # another file system: it stays where it is
                rdirs.pop()
                return None
            if sst is None:
                rdirs.pop()
                self.absent(f, name, rel)
                return None
            if not stat.S_ISDIR(sst.st_mode):
                self.conflicts.append(f"{rel}: a directory on the root, {kind_name(sst)} in storage")
                rdirs.pop()
                return None
            sfd = sdirs.push(name)
        except BaseException:
            if len(rdirs) > len(sdirs):
                with contextlib.suppress(OSError):
                    rdirs.pop()
            raise
        try:
            names = self._names(rfd, sfd)
        except BaseException:
            rdirs.pop()
            sdirs.pop()
            raise
        return _Frame(f.dirs, rel, names, name)

    def replace(self, rdir: int, rname: str, sdir: int, sname: str) -> bool:
        """Copy one root entry over storage's (our own, older copy): to a temporary name,
        fsynced, renamed into place. False: it vanished or changed while being copied."""
        tmp = TMP_PREFIX + token()
        try:
            copy_tree_at(rdir, rname, sdir, tmp, cross_mounts=False)
            durable.fsync_tree_at(sdir, tmp)
            ops.rename_at(sdir, tmp, sdir, sname)
        except BaseException as e:
            with contextlib.suppress(OSError):
                ops.remove_tree_at(sdir, tmp)
            if isinstance(e, OSError) and e.errno in MOVING:
                return False
            raise
        fsync_dir(sdir)
        return True

    def settle(self, rdir: int, rname: str, sdir: int, sname: str, rel: str, rst: os.stat_result,
               placeholder: os.stat_result | None = None, *, stored: os.stat_result | None = None) -> None:
        """Compare one non-directory root entry with storage's and, for MOVE, remove it from
        the root if they are the same. ``placeholder``: leave an empty file with that owner
        and mode in its place (the mount point of a declared file). ``stored``: storage's
        entry's lstat, when the caller just took it."""
        if not stat.S_ISREG(rst.st_mode):
            self.settle_other(rdir, rname, sdir, sname, rel, rst, stored=stored)
            return
        opened = _open_file(rdir, rname)
        if opened is None:
            self.keep(rel, "changed while being migrated", sdir, sname)
            return
        fd, st0 = opened
        moved = self.moved
        try:
            if (st0.st_dev, st0.st_ino) != (rst.st_dev, rst.st_ino):
                self.keep(rel, "changed while being migrated", sdir, sname)
                return
            lease = take_read_lease(fd) if self.mode is Mode.MOVE else None
            if lease is False:
                self.keep(rel, "open for writing by a program", sdir, sname)
                return
            # A snapshot says that nothing wrote to the file since it was copied, and that
            # storage's is still that copy; without one, the bytes are compared.
            if not (lease and self.snapshots is not None
                    and self.snapshots.unchanged(st0, stored or lstat_or_none(sdir, sname))) \
                    and not self.same_file(fd, st0.st_size, sdir, sname):
                if self.mode is Mode.CHECK:
                    self.conflicts.append(f"{rel}: different content")
                    return
                sst = lstat_or_none(sdir, sname)
                if not self.fresh or sst is None or stat.S_ISDIR(sst.st_mode):
                    self.conflicts.append(f"{rel}: different content")
                    return
                # Storage holds our own, older copy: the root's file changed after it was
                # copied. Copy it again, and go on only if the new copy is what fd holds.
                if not self.replace(rdir, rname, sdir, sname) or not self.same_file(fd, st0.st_size, sdir, sname):
                    self.keep(rel, "changed while being migrated", sdir, sname)
                    return
            if self.mode is not Mode.MOVE:
                return
            if not _unchanged(st0, os.fstat(fd)):
                self.keep(rel, "changed while being migrated", sdir, sname)
                return
            # The lease is checked once the file is renamed away, the latest moment before
            # the unlink: a break before that shows there too (and the file is put back).
            self.take_away(rdir, rname, rel, st0, lambda: not lease or lease_intact(fd), placeholder)
            if st0.st_nlink > 1 and self.snapshots is not None:
                self.snapshots.forget(st0)  # the unlink changed the ctime its other names show
        finally:
            # And with it the lease. The last close of a removed file frees its blocks: on
            # another thread, while this one goes on.
            if self.closer is not None and self.moved > moved:
                self.closer.close(fd)
            else:
                os.close(fd)

    def keep(self, rel: str, why: str, sdir: int, sname: str) -> None:
        """Leave a root entry where it is. In a run that found storage empty, storage's copy of
        it is our own and stale: it goes, so that migrating again copies the entry afresh
        instead of finding two that differ."""
        self.kept.append(f"{rel}: {why}")
        if self.fresh and self.mode is Mode.MOVE:
            st = lstat_or_none(sdir, sname)
            if st is not None and not stat.S_ISDIR(st.st_mode):
                ops.unlink_at(sdir, sname)

    def same_file(self, fd: int, size: int, sdir: int, sname: str) -> bool:
        """Whether storage's ``sname`` holds the bytes of ``fd`` (``size`` long by its fstat)."""
        opened = _open_file(sdir, sname)
        if opened is None:
            return False
        sfd, sst = opened
        try:
            return sst.st_size == size and _same_bytes(fd, sfd, size)
        finally:
            os.close(sfd)

    def settle_other(self, rdir: int, rname: str, sdir: int, sname: str, rel: str, rst: os.stat_result,
                     *, again: bool = True, stored: os.stat_result | None = None) -> None:
        """A symlink, FIFO, socket or device node: the same type and link text or device."""
        sst = stored or lstat_or_none(sdir, sname)
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
            away = TMP_PREFIX + token()
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
                away = TMP_PREFIX + token()
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
