"""The clean phase (age-based cleanup), and the remove and purge phases that share its walk,
exactly as systemd-tmpfiles 262 does them.

For every line with an age (d D v q Q C by their path; e x X r R by each path their glob
matches), entries below the path whose timestamps (those its age-by letters name) are all
older than now - age are removed, except:

- mount points and anything on another mount; a root-owned lost+found on a mount root, and
  root-owned .journal/aquota.user/aquota.group there;
- paths that have a line of their own, or match a glob line (x/X lines exclude this way);
- files with the sticky bit, live AF_UNIX sockets (/proc/net/unix), device nodes;
- the first level below the path when the age starts with '~';
- a directory or file someone holds a BSD lock on (flock, LOCK_EX|LOCK_NB fails): skipped
  with its subtree;
- directories are removed only when empty, after their contents were cleaned; the parent's
  atime/mtime are restored after removing from it; the walk enters 256 levels of directories
  below the path: a directory one level deeper is not entered, but still removed if it is old
  (which succeeds when it is empty), as in systemd.

r and R lines honour their age under --clean (newest systemd): the matched path is removed if
old; R first cleans below it. X lines without an age take the age of the closest d/D/v/q/Q
line above them (done when the configuration is read, see tmpfiles.config).

A big clean walk (past PARALLEL_AFTER entries, in a quiet real run) hands the directories
left below its starting path to worker processes (freshroot.tmpfiles.cleanworkers; the
difference clean-workers): the same entries go, faster where there are CPUs to spare.

A deliberate difference (freshroot.tmpfiles.differences: safe-start-clean, safe-start-e,
safe-start-r, safe-start-R, safe-start-D, safe-start-purge): systemd opens the starting path
of the walk by name, so a symlink planted by a user in the middle of it is followed. Here the
starting path is resolved with chase(SAFE) below the root, so no such symlink is followed.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from freshroot.errors import UnsafePathError
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.fs.ops import reopen
from freshroot.fs.statx import (
    F_AGES,
    F_MODE_BYTE,
    F_MOUNT_BYTE,
    PLAIN_FILE_BYTES,
    R_ATIME,
    R_ATTRS,
    R_ATTRS_MASK,
    R_BTIME,
    R_CTIME,
    R_DEV_MAJOR,
    R_DEV_MINOR,
    R_MODE,
    R_MTIME,
    R_UID,
    RawFields,
    RawStatx,
    first_look,
    raw_ns,
)
from freshroot.rootpaths import on_host
from freshroot.tmpfiles import cleanworkers
from freshroot.tmpfiles.globs import GlobIndex, byte_chars, is_glob
from freshroot.tmpfiles.globwalk import expand
from freshroot.tmpfiles.model import USEC_INFINITY, Age, AgeBy, Config, Item, ItemGroup, ItemType

MAX_DEPTH = 256
# Entries a clean walk meets before it hands the directories left below its starting path to
# worker processes (freshroot.tmpfiles.cleanworkers): a small tree is never split.
PARALLEL_AFTER = 20_000
_FAILED, _REMOVED = 1, 2  # what a worker's task reports (its exit status bits)
NSEC_INFINITY = (1 << 64) - 1
STATX_ATTR_MOUNT_ROOT = 0x2000
# Plain constants for the hot loop (a module attribute lookup per entry adds up).
_S_IFMT, _S_IFDIR, _S_IFREG = 0o170000, stat.S_IFDIR, stat.S_IFREG
_S_IFMT_STICKY = _S_IFMT | stat.S_ISVTX  # a plain file without the sticky bit: == _S_IFREG
_NO_NAMES: frozenset[str] = frozenset()
_DIR_OPEN = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_OPEN = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
_O_NOATIME = getattr(os, "O_NOATIME", 0)
# In the order systemd's needs_cleanup() checks them: (flag, RawFields index, word).
_AGE_CHECKS = ((AgeBy.MTIME, R_MTIME, "modify"), (AgeBy.ATIME, R_ATIME, "access"),
               (AgeBy.CTIME, R_CTIME, "change"), (AgeBy.BTIME, R_BTIME, "birth"))


def _decoded(bname: bytes) -> str:
    """A name of the walk's as os.listdir gave it (the inverse of the walk's encoding)."""
    return bname.decode("utf-8", "surrogateescape")


def _checks(by: AgeBy) -> tuple[int, ...]:
    """The RawFields indexes of the timestamps ``by`` names, in systemd's order."""
    return tuple(index for flag, index, _ in _AGE_CHECKS if by & flag)


_CLEAN_BY_PATH = frozenset({
    ItemType.CREATE_DIRECTORY, ItemType.TRUNCATE_DIRECTORY, ItemType.CREATE_SUBVOLUME,
    ItemType.CREATE_SUBVOLUME_INHERIT_QUOTA, ItemType.CREATE_SUBVOLUME_NEW_QUOTA, ItemType.COPY_FILES,
})
_CLEAN_BY_GLOB = frozenset({ItemType.EMPTY_DIRECTORY, ItemType.IGNORE_PATH, ItemType.IGNORE_DIRECTORY_PATH})
_CLEAN_REMOVE = frozenset({ItemType.REMOVE_PATH, ItemType.RECURSIVE_REMOVE_PATH})


class _OpenFailedError(Exception):
    """The starting directory exists but could not be opened (already logged)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What the walk decided for one path, for --explain."""

    path: str
    action: str  # "remove", "keep", "skip"
    reason: str
    item: Item | None


Log = Callable[[str], None]


@dataclass
class Cleaner:
    """Runs the clean phase for items of one Config below one root."""

    config: Config
    root_fd: int
    root: str = "/"  # the --root, for /proc/net/unix paths and for messages
    display_root: str | None = None  # for messages instead of ``root`` (apply shows "/")
    dry_run: bool = False
    now_ns: int = field(default_factory=time.time_ns)
    log: Log = field(default=lambda _m: None)
    explain: Callable[[Decision], None] | None = None
    verbose: bool = False  # note each removal (always in a dry run), as systemd does at info level
    note: Log = field(default=lambda _m: None)  # where those notes go; ``log`` gets the problems
    workers: int = 1  # processes for a big clean (freshroot.tmpfiles.cleanworkers); 1: never fork
    parallel_after: int = PARALLEL_AFTER
    _own_lines: dict[str, frozenset[str]] = field(init=False)  # directory -> names with a line
    _globs: GlobIndex = field(init=False)
    _sockets: frozenset[str] | None = field(init=False, default=None)
    _statx: RawStatx = field(init=False, default_factory=RawStatx)
    _mount_attr: bool = field(init=False)  # whether statx tells mount roots (see __post_init__)
    _visited: int = field(init=False, default=0)  # entries listed so far
    # In a worker: the lock the workers take turns on for files with more than one link.
    _link_lock: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.verbose = self.verbose or self.dry_run
        own: dict[str, set[str]] = {}
        for g in self.config.groups:
            parent, _, name = g.path.rpartition("/")
            own.setdefault(parent, set()).add(name)
        self._own_lines = {parent: frozenset(names) for parent, names in own.items()}
        self._globs = GlobIndex(g.path for g in self.config.globs)
        # systemd checks each entry's statx for the mount-root attribute, and compares devices
        # where the attributes mask lacks it. The kernel sets that mask bit for every file or
        # for none (every one from Linux 5.8), so the walk asks once, not once per entry.
        self._mount_attr = bool(self._statx(self.root_fd, b"")[R_ATTRS_MASK] & STATX_ATTR_MOUNT_ROOT)

    # --- entry points ----------------------------------------------------------------

    def clean_item(self, item: Item) -> bool:
        """Clean for one item. False if something failed that systemd counts as a failure."""
        age = item.age  # X lines have inherited their parent's age while the config was read
        if age is None:
            return True
        if item.type in _CLEAN_BY_PATH:
            return self._clean_instance(item, item.path, age)
        ok = True
        if item.type in _CLEAN_BY_GLOB:
            for p in self._instances(item):
                ok = self._clean_instance(item, p, age) and ok
        elif item.type in _CLEAN_REMOVE:
            for p in self._instances(item):
                ok = self._clean_remove(item, p, age) and ok
        return ok

    def _instances(self, item: Item) -> Iterable[str]:
        """The paths a glob-type line's pattern matches. A pattern without wildcards matches
        its path when glob(3) would: when the entry is there (a loop of symlinks on the way,
        say, is no match and no error, as in systemd)."""
        if not is_glob(item.path) and "{" not in item.path:
            try:
                with chase(item.path, root_fd=self.root_fd, flags=ChaseFlags.NOFOLLOW):
                    return [item.path]
            except OSError:
                return []
        return expand(self.root_fd, item.path)

    def _cutoff(self, age: Age) -> int | None:
        if age.usec == USEC_INFINITY:
            return None
        now_usec = self.now_ns // 1000
        if now_usec < age.usec:
            return None
        return (now_usec - age.usec) * 1000

    def _display(self, path: str) -> str:
        """``path`` (below the root) as messages show it: below --root, like systemd's
        prefixed paths, or below ``display_root``."""
        return on_host(path, self.root if self.display_root is None else self.display_root)

    def _decide(self, path: str, action: str, reason: str, item: Item | None) -> None:
        if self.explain is not None:
            self.explain(Decision(path, action, reason, item))

    # --- opening the starting directory (safely: differences.py, safe-start-*) --------

    def _open_instance(self, path: str) -> int | None:
        """A readable fd for the directory at ``path`` (O_NOATIME where allowed); None when there
        is no directory there; _OpenFailedError (logged) when there is one that cannot be opened.

        Resolved with chase(SAFE|NOFOLLOW) below the root: no symlink a user planted in the
        path is followed, and a symlink as the last component is not a directory to clean.
        """
        try:
            with chase(path, root_fd=self.root_fd, flags=ChaseFlags.SAFE | ChaseFlags.NOFOLLOW) as found:
                if not stat.S_ISDIR(found.st.st_mode):
                    return None
                try:
                    return reopen(found.fd, os.O_RDONLY | os.O_DIRECTORY | _O_NOATIME)
                except PermissionError:
                    return reopen(found.fd, os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except UnsafePathError as e:
            self.log(f"{e}; not cleaning it")
            raise _OpenFailedError from e
        except OSError as e:
            self.log(f"Failed to open directory {self._display(path)}: {e.strerror}")
            raise _OpenFailedError from e

    def _clean_instance(self, item: Item, path: str, age: Age) -> bool:
        cutoff = self._cutoff(age)
        if cutoff is None:
            return True
        try:
            dfd = self._open_instance(path)
        except _OpenFailedError:
            return False
        if dfd is None:
            return True
        try:
            sx = self._statx(dfd, b"")
            mountpoint = self._is_mount_root(dfd, sx)
            # Only the quiet, real run may share the walk out: what is printed stays in order.
            parallel = self.workers > 1 and not self.dry_run and not self.verbose and self.explain is None
            return self._dir_cleanup(
                item, path, dfd, raw_ns(sx, R_ATIME), raw_ns(sx, R_MTIME), cutoff,
                (sx[R_DEV_MAJOR], sx[R_DEV_MINOR]), mountpoint=mountpoint,
                maxdepth=MAX_DEPTH, keep_this_level=age.keep_first_level, by_file=age.by_file, by_dir=age.by_dir,
                parallel=parallel,
            )
        finally:
            os.close(dfd)

    def _is_mount_root(self, dfd: int, sx: RawFields) -> bool:
        if sx[R_ATTRS_MASK] & STATX_ATTR_MOUNT_ROOT:
            return bool(sx[R_ATTRS] & STATX_ATTR_MOUNT_ROOT)
        parent = self._statx(dfd, b"..")
        return (parent[R_DEV_MAJOR], parent[R_DEV_MINOR]) != (sx[R_DEV_MAJOR], sx[R_DEV_MINOR])

    # --- r and R under --clean ---------------------------------------------------------

    def _open_parent(self, path: str, what: str = "Failed to open directory", *,
                     remove: bool = False) -> tuple[int, str] | bool:
        """A readable fd of the directory holding ``path`` (walked with SAFE) and the name in
        it; True when there is nothing there (nothing to do), False when it failed (logged).
        With ``remove`` (the path itself is to be removed), a parent that is not a directory
        is the failure systemd's remove() meets there ("rm PATH: Not a directory")."""
        try:
            with chase(path, root_fd=self.root_fd, flags=ChaseFlags.SAFE | ChaseFlags.PARENT) as parent:
                return reopen(parent.fd, os.O_RDONLY | os.O_DIRECTORY), parent.rest
        except FileNotFoundError:
            return True
        except NotADirectoryError as e:
            if remove:
                self.log(f"rm {self._display(path)}: {e.strerror}")
                return False
            return True
        except UnsafePathError as e:
            self.log(str(e))
            return False
        except OSError as e:
            # systemd opens the whole path by name (opendir, remove()): the error is that one's.
            self.log(f"{what} {self._display(path)}: {e.strerror or e}")
            return False

    def _clean_remove(self, item: Item, path: str, age: Age) -> bool:
        cutoff = self._cutoff(age)
        if cutoff is None:
            return True
        opened = self._open_parent(path)
        if isinstance(opened, bool):
            return opened
        pfd, name = opened
        try:
            try:
                sx = self._statx(pfd, os.fsencode(name))
            except FileNotFoundError:
                return True
            is_dir = stat.S_ISDIR(sx[R_MODE])
            old = self._old(sx, cutoff, _checks(age.by_dir if is_dir else age.by_file), path, item)
            if not is_dir and not old:
                return True
            # Held open (and flocked, unless a dry run) from here to the removal: as in the walk,
            # a locked file, or a locked directory with everything below it, is left alone.
            fd = self._open_locked(pfd, name, path, item, is_dir=is_dir)
            if fd is None:
                return True
            try:
                return self._clean_remove_locked(item, path, pfd, name, fd, sx, cutoff, age,
                                                 is_dir=is_dir, old=old)
            finally:
                if fd >= 0:
                    os.close(fd)
        finally:
            os.close(pfd)

    def _open_locked(self, pfd: int, name: str, path: str, item: Item, *, is_dir: bool) -> int | None:
        """An fd of ``name`` (-1 if it cannot be opened: removed without a lock, as systemd
        does), flocked unless this is a dry run; None when someone holds a lock on it."""
        try:
            fd = os.open(name, (_DIR_OPEN if is_dir else _FILE_OPEN) | _O_NOATIME, dir_fd=pfd)
        except PermissionError:
            try:
                fd = os.open(name, _DIR_OPEN if is_dir else _FILE_OPEN, dir_fd=pfd)
            except OSError:
                return -1
        except OSError:
            return -1
        if not self.dry_run or self.explain is not None:  # --explain tries the lock, as the walk does
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                what = "directory" if is_dir else "file"
                self._decide(path, "skip", f"someone holds a lock on the {what}", item)
                return None
            except OSError:
                pass
            else:
                if self.dry_run:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        return fd

    def _clean_remove_locked(
        self, item: Item, path: str, pfd: int, name: str, fd: int, sx: RawFields, cutoff: int, age: Age,
        *, is_dir: bool, old: bool,
    ) -> bool:
        ok = True
        if is_dir and item.type is ItemType.RECURSIVE_REMOVE_PATH and fd >= 0:
            ok = self._dir_cleanup(
                item, path, fd, raw_ns(sx, R_ATIME), raw_ns(sx, R_MTIME), cutoff,
                (sx[R_DEV_MAJOR], sx[R_DEV_MINOR]),
                mountpoint=self._is_mount_root(fd, sx), maxdepth=MAX_DEPTH,
                keep_this_level=age.keep_first_level, by_file=age.by_file, by_dir=age.by_dir,
            )
        if not old:
            return ok
        if is_dir and item.type is not ItemType.RECURSIVE_REMOVE_PATH and fd >= 0 and os.listdir(fd):
            # r removes a directory only when it is empty (262 does not even say it would).
            self._decide(path, "keep", "an r line removes a directory only when it is empty", item)
            return ok
        self._decide(path, "remove", "its own age has passed", item)
        if is_dir:
            self._note(f'{"Would remove" if self.dry_run else "Removing"} directory "{self._display(path)}".')
            if not self.dry_run:
                try:
                    os.rmdir(name, dir_fd=pfd)
                except OSError as e:
                    if e.errno not in (errno.ENOENT, errno.ENOTEMPTY):
                        self.log(f"rm {self._display(path)}: {e.strerror}")
                        return False
        else:
            self._note(f'{"Would remove" if self.dry_run else "Removing"} "{self._display(path)}".')
            if not self.dry_run and not self._unlink(pfd, name, path):
                return False
        return ok

    def _unlink(self, pfd: int, name: str, path: str) -> bool:
        """unlinkat; a file already gone is fine, another failure is logged (False)."""
        try:
            os.unlink(name, dir_fd=pfd)
        except FileNotFoundError:
            pass
        except OSError as e:
            self.log(f"rm {self._display(path)}: {e.strerror}")
            return False
        return True

    # --- D and R under --remove, and --purge: the same walk with every age passed ---------

    def remove_recursive(self, item: Item, path: str, *, remove_instance: bool, named: bool = False) -> bool:
        """systemd's remove_recursive(): empty ``path`` as dir_cleanup does with an infinite
        cutoff, so x/X exclusions, lines of their own, mount points, locks, live sockets and
        devices are still spared; then remove ``path`` itself if asked (and if now empty).
        A symlink or file at ``path`` is removed, never followed. The path's parents are
        resolved with chase(SAFE): no planted symlink on the way is followed. ``named``: the
        path is the line's own (not a glob's match), so a parent that is not a directory is
        the failure systemd's remove() of it meets."""
        opened = self._open_parent(path, remove=remove_instance and named)
        if isinstance(opened, bool):
            return opened
        pfd, name = opened
        try:
            try:
                dfd = os.open(name, _DIR_OPEN | _O_NOATIME, dir_fd=pfd)
            except PermissionError:
                dfd = os.open(name, _DIR_OPEN, dir_fd=pfd)
        except FileNotFoundError:
            os.close(pfd)
            return True
        except OSError as e:
            try:
                if e.errno not in (errno.ENOTDIR, errno.ELOOP):
                    self.log(f"Failed to open directory {self._display(path)}: {e.strerror}")
                    return False
                if remove_instance:
                    self._say("remove", path, item)
                    if not self.dry_run and not self._unlink(pfd, name, path):
                        return False
                return True
            finally:
                os.close(pfd)
        try:
            sx = self._statx(dfd, b"")
            ok = self._dir_cleanup(
                item, path, dfd, NSEC_INFINITY, NSEC_INFINITY, NSEC_INFINITY,
                (sx[R_DEV_MAJOR], sx[R_DEV_MINOR]), mountpoint=self._is_mount_root(dfd, sx),
                maxdepth=MAX_DEPTH, keep_this_level=False, by_file=AgeBy(0), by_dir=AgeBy(0),
            )
            os.close(dfd)
            dfd = -1
            if remove_instance:
                self._say("remove directory", path, item)
                if not self.dry_run:
                    try:
                        os.rmdir(name, dir_fd=pfd)
                    except OSError as e:
                        if e.errno not in (errno.ENOENT, errno.ENOTEMPTY):
                            self.log(f"Failed to remove {self._display(path)}: {e.strerror}")
                            ok = False
            return ok
        finally:
            if dfd >= 0:
                os.close(dfd)
            os.close(pfd)

    def remove_item(self, item: Item) -> bool:
        """--remove: D empties its directory; r removes each match (a directory only if empty);
        R removes each match recursively. Exclusions are spared inside D and R trees."""
        if item.type is ItemType.TRUNCATE_DIRECTORY:
            return self.remove_recursive(item, item.path, remove_instance=False)
        if item.type is ItemType.RECURSIVE_REMOVE_PATH:
            ok = True
            for path in self._instances(item):
                ok = self.remove_recursive(item, path, remove_instance=True) and ok
            return ok
        if item.type is ItemType.REMOVE_PATH:
            ok = True
            for path in self._instances(item):
                ok = self._remove_one(item, path) and ok
            return ok
        return True

    def _remove_one(self, item: Item, path: str) -> bool:
        """remove(3) of one path: unlink, or rmdir for an empty directory; never follows."""
        opened = self._open_parent(path, what="rm")
        if isinstance(opened, bool):
            return opened
        pfd, name = opened
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            self._say("remove", path, item)
            if not self.dry_run:
                if stat.S_ISDIR(st.st_mode):
                    os.rmdir(name, dir_fd=pfd)
                else:
                    os.unlink(name, dir_fd=pfd)
        except FileNotFoundError:
            pass
        except OSError as e:
            self.log(f"rm {self._display(path)}: {e.strerror}")
            return False
        finally:
            os.close(pfd)
        return True

    def purge_item(self, item: Item) -> bool:
        """--purge: remove what a '$' line would create, recursively, exclusions spared."""
        if not (item.purge and item.type.purgeable):
            return True
        ok = True
        if not item.type.takes_glob:
            return self.remove_recursive(item, item.path, remove_instance=True, named=True)
        for path in self._instances(item):
            ok = self.remove_recursive(item, path, remove_instance=True) and ok
        return ok

    def _note(self, message: str) -> None:
        if self.verbose:
            self.note(message)

    def _say(self, what: str, path: str, item: Item | None) -> None:
        self._decide(path, "remove", f"{item.spec if item else 'a'} line removes it", item)
        if self.verbose:
            self.note(f'{"Would" if self.dry_run else "Will"} {what} "{self._display(path)}"')

    # --- the walk -----------------------------------------------------------------------

    def _old(self, sx: RawFields, cutoff: int, checks: tuple[int, ...], path: str, item: Item | None) -> bool:
        """systemd's needs_cleanup: every timestamp in ``checks`` is older than the cutoff."""
        for index in checks:
            if sx[index] * 1_000_000_000 + sx[index + 1] >= cutoff:
                if self.explain is not None:
                    word = next(w for _, i, w in _AGE_CHECKS if i == index)
                    self._decide(path, "keep", f"its {word} time is newer than the cutoff", item)
                return False
        return True

    def _sockets_alive(self) -> frozenset[str]:
        if self._sockets is None:
            found: set[str] = set()
            try:
                with open("/proc/net/unix", encoding="utf-8", errors="surrogateescape") as f:
                    next(f, None)
                    for line in f:
                        parts = line.split(None, 7)
                        if len(parts) == 8 and parts[7].startswith("/"):
                            found.add(parts[7].rstrip("\n"))
            except OSError:
                pass
            self._sockets = frozenset(found)
        return self._sockets

    def _spared(self, sub: str, name: str, sx: RawFields, kind: int, *, mountpoint: bool,
                item: Item) -> bool:
        """Whether a non-directory is never cleaned: sticky, a root-owned quota or journal
        file on a mount root, a live AF_UNIX socket, a device node."""
        if sx[R_MODE] & stat.S_ISVTX:
            self._decide(sub, "skip", "the sticky bit is set", item)
            return True
        if (mountpoint and kind == stat.S_IFREG and sx[R_UID] == 0
                and name in (".journal", "aquota.user", "aquota.group")):
            self._decide(sub, "skip", "root-owned quota or journal file on a mount root", item)
            return True
        if kind == stat.S_IFSOCK and on_host(sub, self.root) in self._sockets_alive():
            self._decide(sub, "skip", "a live AF_UNIX socket (listed in /proc/net/unix)", item)
            return True
        if kind in (stat.S_IFCHR, stat.S_IFBLK):
            self._decide(sub, "skip", "device nodes are never cleaned", item)
            return True
        return False

    def _subdir_cleanup(
        self, item: Item, sub: str, name: str, dfd: int, sx: RawFields, cutoff: int,
        rootdev: tuple[int, int], *, parent_is_mount: bool, maxdepth: int, keep: bool,
        by_file: AgeBy, by_dir: AgeBy, parallel: bool = False,
    ) -> tuple[bool, bool]:
        """The directory branch of dir_cleanup(): lock it, clean it, then remove it if it is
        old and empty. Returns (ok, removed): ok is False if something failed that systemd
        counts as a failure; removed (or would be, in a dry run) makes the caller restore its
        own times, as for a removed file (262: an emptied old directory keeps its mtime).

        At the maximum depth the directory is not entered (nor locked), but, as systemd does,
        it is still removed if it is old: rmdir succeeds when it is empty."""
        if parent_is_mount and name == "lost+found" and sx[R_UID] == 0:
            self._decide(sub, "skip", "root-owned lost+found on a mount root", item)
            return True, False
        if maxdepth <= 0:
            self.log(f'Reached max depth on "{self._display(sub)}".')
            self._decide(sub, "stop", f"the walk stops at depth {MAX_DEPTH} and does not enter it", item)
            return self._remove_subdir(item, sub, name, dfd, sx, cutoff, keep=keep, by_dir=by_dir)
        try:
            sub_fd = os.open(name, _DIR_OPEN | _O_NOATIME, dir_fd=dfd)
        except PermissionError:
            try:
                sub_fd = os.open(name, _DIR_OPEN, dir_fd=dfd)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    self.log(f'Opening directory "{self._display(sub)}" failed: {e.strerror}')
                    return False, False
                return True, False
        except OSError as e:
            if e.errno != errno.ENOENT:
                self.log(f'Opening directory "{self._display(sub)}" failed, ignoring: {e.strerror}')
                return False, False
            return True, False
        ok = True
        dry = self.dry_run
        try:  # the directory stays open (and locked) until it was removed, as in systemd
            if not dry or self.explain is not None:
                # A dry run takes no locks (as systemd's); --explain (a dry run too) tries the
                # lock and lets it go at once, so that it reports what a real run would skip.
                try:
                    fcntl.flock(sub_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    self._decide(sub, "skip", "someone holds a lock on the directory", item)
                    return True, False
                if dry:
                    fcntl.flock(sub_fd, fcntl.LOCK_UN)
            if not self._dir_cleanup(item, sub, sub_fd, raw_ns(sx, R_ATIME), raw_ns(sx, R_MTIME),
                                     cutoff, rootdev, mountpoint=False, maxdepth=maxdepth - 1,
                                     keep_this_level=False, by_file=by_file, by_dir=by_dir, parallel=parallel):
                ok = False
            sub_ok, removed = self._remove_subdir(item, sub, name, dfd, sx, cutoff, keep=keep, by_dir=by_dir)
            return ok and sub_ok, removed
        finally:
            os.close(sub_fd)

    def _remove_subdir(self, item: Item, sub: str, name: str, dfd: int, sx: RawFields, cutoff: int, *,
                       keep: bool, by_dir: AgeBy) -> tuple[bool, bool]:
        """rmdir a cleaned directory if it is old (and empty: ENOTEMPTY is no failure).
        Returns (ok, removed), removed also when a dry run would remove it."""
        if keep:
            self._decide(sub, "keep", "first level below a '~' age", item)
            return True, False
        if not self._old(sx, cutoff, _checks(by_dir), sub, item):
            return True, False
        self._decide(sub, "remove", "older than the age, if empty", item)
        dry = self.dry_run
        if self.verbose:
            self.note(f'{"Would remove" if dry else "Removing"} directory "{self._display(sub)}"')
        if dry:
            return True, True
        try:
            os.rmdir(name, dir_fd=dfd)
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOTEMPTY):
                self.log(f'Failed to remove directory "{self._display(sub)}": {e.strerror}')
                return False, False
            return True, False
        return True, True

    def _subdirs_in_workers(
        self, item: Item, prefix: str, dfd: int, subdirs: list[tuple[str, RawFields]], cutoff: int,
        rootdev: tuple[int, int], *, parent_is_mount: bool, maxdepth: int, keep: bool,
        by_file: AgeBy, by_dir: AgeBy,
    ) -> tuple[bool, bool]:
        """_subdir_cleanup for each of ``subdirs`` (names in ``dfd`` with their statx), shared
        out to worker processes; done here, one after the other, when no worker can be
        started. Returns (ok, removed) over all of them."""

        def work(index: int) -> int:
            name, sx = subdirs[index]
            sub_ok, removed = self._subdir_cleanup(
                item, prefix + "/" + name, name, dfd, sx, cutoff, rootdev, parent_is_mount=parent_is_mount,
                maxdepth=maxdepth, keep=keep, by_file=by_file, by_dir=by_dir)
            return (0 if sub_ok else _FAILED) | (_REMOVED if removed else 0)

        try:
            self._link_lock = os.memfd_create("freshroot-clean-links", os.MFD_CLOEXEC)
            try:
                result = cleanworkers.run_in_workers(self.workers, len(subdirs), work, self.log)
            finally:
                os.close(self._link_lock)
                self._link_lock = None
        except OSError:  # no memfd, no process to spare: the walk goes on in this one
            result = 0
            for index in range(len(subdirs)):
                result |= work(index)
        if result & cleanworkers.CRASHED:
            return False, True  # what it removed is not known: restore the times anyway
        return not result & _FAILED, bool(result & _REMOVED)

    def _lock_if_still_old(self, dfd: int, bname: bytes, cutoff: int, checks: tuple[int, ...]) -> bool:
        """Take the workers' link lock, look at the file again, and keep the lock (True) if it
        is still old; False (lock released) if it is young now or gone."""
        assert self._link_lock is not None
        fcntl.lockf(self._link_lock, fcntl.LOCK_EX)
        try:
            sx = self._statx(dfd, bname)
        except OSError:
            self._unlock_links()
            return False
        if not self._old(sx, cutoff, checks, "", None):  # never explains: no workers then
            self._unlock_links()
            return False
        return True

    def _unlock_links(self) -> None:
        assert self._link_lock is not None
        fcntl.lockf(self._link_lock, fcntl.LOCK_UN)

    def _statx_failed(self, dfd: int, bname: bytes, prefix: str) -> bool:
        """After the walk's statx of an entry failed: True if the call made again succeeded
        (the buffer holds it), False when it failed again (logged unless the entry is gone:
        vanished mid-walk, nothing to do)."""
        err = self._statx.again(dfd, bname)
        if err is None:
            return True
        if err.errno != errno.ENOENT:
            self.log(f"statx({self._display(prefix + '/' + _decoded(bname))}) failed: {err.strerror}")
        return False

    def _open_failed(self, dfd: int, bname: bytes, sub: str, e: OSError) -> int:
        """After opening an old file (to lock it) failed: an fd opened without O_NOATIME where
        that was what failed (EPERM: not the file's owner), else -1, logged as systemd 262 does
        (a socket, ENXIO, cannot be opened at all: it is removed without a lock)."""
        if e.errno == errno.EPERM and _O_NOATIME:
            try:
                return os.open(bname, _FILE_OPEN, dir_fd=dfd)
            except OSError as e2:
                e = e2
        if not self.dry_run and e.errno not in (errno.ENOENT, errno.ELOOP):
            self.log(f'Opening file "{self._display(sub)}" failed, proceeding without lock: {e.strerror}')
        return -1

    def _unlink_failed(self, sub: str, e: OSError) -> None:
        self.log(f'Failed to remove "{self._display(sub)}", ignoring: {e.strerror}')

    def _remove_file(self, item: Item, sub: str, dfd: int, bname: bytes, cutoff: int, checks: tuple[int, ...], *,
                     take_turns: bool, open_error: OSError | None = None) -> int:
        """An old file's removal in every other case than the one _dir_cleanup does inline (a
        quiet, real run that takes no turns): a dry run, notes, --explain, or a worker taking
        its turn on a file with other links (``take_turns``), and the rest of the inline case
        once its open failed (``open_error``). The same calls in the same order: the open and
        flock (--explain tries the lock too; a dry run takes none), the unlink, the close.
        Returns _REMOVED when it was removed (or would be), with _FAILED when the unlink
        failed; 0 when it stays."""
        if take_turns and not self._lock_if_still_old(dfd, bname, cutoff, checks):
            return 0
        explain = self.explain is not None
        dry = self.dry_run
        fd = -1
        try:
            if not dry or explain:  # explain's lock is released when fd is closed
                if open_error is None:
                    try:
                        fd = os.open(bname, _FILE_OPEN | _O_NOATIME, dir_fd=dfd)
                    except OSError as e:
                        open_error = e
                if open_error is not None:
                    fd = self._open_failed(dfd, bname, sub, open_error)
                if fd >= 0:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        self._decide(sub, "skip", "someone holds a lock on the file", item)
                        return 0
                    except OSError:
                        pass
            self._decide(sub, "remove", "older than the age", item)
            if self.verbose:
                self.note(f'{"Would remove" if dry else "Removing"} "{self._display(sub)}"')
            if dry:
                return _REMOVED
            try:
                os.unlink(bname, dir_fd=dfd)
            except FileNotFoundError:
                pass
            except OSError as e:
                self._unlink_failed(sub, e)
                return _REMOVED | _FAILED
            return _REMOVED
        finally:
            if fd >= 0:
                os.close(fd)
            if take_turns:
                self._unlock_links()

    def _dir_cleanup(
        self, item: Item, path: str, dfd: int, self_atime: int, self_mtime: int, cutoff: int,
        rootdev: tuple[int, int], *, mountpoint: bool, maxdepth: int, keep_this_level: bool,
        by_file: AgeBy, by_dir: AgeBy, parallel: bool = False,
    ) -> bool:
        # ``parallel``: once the walk has met parallel_after entries, the directories left
        # here go to worker processes (after this directory's own files); when only one is
        # left, it is entered here and shares out what it holds.
        # The signature mirrors systemd's dir_cleanup() so the two can be read side by side.
        # The loop below runs once per entry of the tree: a million times on a big /tmp, where
        # each Python operation shows (docs/tmpfiles-clean.md, Performance). Its common case,
        # a plain file in a directory without exceptions, costs little more than the calls
        # systemd makes: local names; the names encoded once per directory, and decoded only
        # where a message or a test needs them; statx without a Python call (see RawStatx); one
        # unpack of only what the first look needs (first_look: two bytes that tell a plain
        # file, small ints tested by ``in``, and the seconds of the timestamps compared); one
        # test that sends anything else (a directory, a device, a sticky file, a mount root, a
        # directory with lines or globs below it, a mount) to the full checks, which read the
        # full statx; the age decided on the seconds, compared one by one, the nanoseconds read
        # only when those tie with the cutoff's; the removal inline unless the run is a dry
        # run, verbose, explained or takes turns (_remove_file).
        ok = True
        deleted = False
        statx = self._statx
        statx_fn, statx_ref, statx_buf, statx_unpack = statx.fn, statx.ref, statx.buf, statx.unpack
        statx_flags, statx_mask = statx.flags, statx.mask
        file_checks = _checks(by_file)
        # --remove and --purge compare no timestamp (every file is old): the first look reads
        # the mtime all the same, against a cutoff past every 64-bit second.
        look = first_look(file_checks or (R_MTIME,)).unpack_from
        cut_s = cutoff // 1_000_000_000 if file_checks else 1 << 64
        # Where first_look() put the seconds of the (one to four) timestamps to compare: a1 and
        # a2, then a3 and a4 when there are more than two; an index stands twice for fewer.
        ages = tuple(range(F_AGES, F_AGES + len(file_checks))) or (F_AGES,)
        a1, a2, a3, a4 = ages[0], ages[min(1, len(ages) - 1)], ages[min(2, len(ages) - 1)], ages[-1]
        over_two = len(ages) > 2
        i_mount, i_mode, plain_file = F_MOUNT_BYTE, F_MODE_BYTE, PLAIN_FILE_BYTES
        mount_attr = self._mount_attr
        own_lines = self._own_lines.get("" if path == "/" else path, _NO_NAMES)
        glob_re = self._globs.for_directory(path) if self._globs else None
        explain = self.explain is not None
        dry = self.dry_run
        # Only a renewed ctime makes a file young: without 'c' in the age-by, no turns to take.
        link_lock = self._link_lock is not None and bool(by_file & AgeBy.CTIME)
        # Whether every entry needs the full checks, not only those that are not plain files.
        closer = bool(own_lines) or glob_re is not None or mountpoint or keep_this_level or not mount_attr
        # Whether an old file is removed inline: a quiet, real run that takes no turns.
        inline = not explain and not self.verbose and not dry and not link_lock
        prefix = "" if path == "/" else path
        os_open, os_close, os_unlink, flock = os.open, os.close, os.unlink, fcntl.flock
        open_flags, lock_flags = _FILE_OPEN | _O_NOATIME, fcntl.LOCK_EX | fcntl.LOCK_NB
        deferred: list[tuple[str, RawFields]] = []
        try:
            listed = os.listdir(dfd)
        except OSError as e:
            self.log(f"Failed to read directory {self._display(path)}: {e.strerror}")
            return False
        self._visited += len(listed)
        # The names as bytes for the calls, encoded in one go (a call per name costs more); a
        # name holds no '/'. Only the bytes are kept while the walk goes deeper.
        bnames = "/".join(listed).encode("utf-8", "surrogateescape").split(b"/") if listed else []
        del listed
        for bname in bnames:
            if statx_fn(dfd, bname, statx_flags, statx_mask, statx_ref) < 0 and not self._statx_failed(
                    dfd, bname, prefix):
                continue
            fx = look(statx_buf)  # the buffer holds this entry's statx until the next call
            if closer or fx[i_mount] or fx[i_mode] not in plain_file:
                # Anything but a plain file (regular, without the sticky, setuid or setgid bit,
                # not a mount root) in a plain directory: systemd's tests in its order, which a
                # plain file passes.
                name = _decoded(bname)
                sx = statx_unpack(statx_buf)
                if mount_attr:
                    if sx[R_ATTRS] & STATX_ATTR_MOUNT_ROOT:
                        self._decide(prefix + "/" + name, "skip", "it is a mount point", item)
                        continue
                elif statx.dev(statx_buf) != rootdev:
                    self._decide(prefix + "/" + name, "skip", "it is on another file system", item)
                    continue
                if name in own_lines:
                    self._decide(prefix + "/" + name, "skip", "it has a line of its own", item)
                    continue
                if glob_re is not None and glob_re.match(byte_chars(name)):
                    self._decide(prefix + "/" + name, "skip", "it matches a glob line (x, X or another)", item)
                    continue
                kind = sx[R_MODE] & _S_IFMT_STICKY  # the file type, and the sticky bit
                if kind != _S_IFREG or mountpoint:
                    if kind & _S_IFMT == _S_IFDIR:
                        if parallel and self._visited >= self.parallel_after:
                            deferred.append((name, sx))
                            continue
                        sub_ok, removed = self._subdir_cleanup(
                            item, prefix + "/" + name, name, dfd, sx, cutoff, rootdev,
                            parent_is_mount=mountpoint, maxdepth=maxdepth, keep=keep_this_level,
                            by_file=by_file, by_dir=by_dir)
                        ok = ok and sub_ok
                        deleted = deleted or removed
                        continue
                    if self._spared(prefix + "/" + name, name, sx, kind & _S_IFMT,
                                    mountpoint=mountpoint, item=item):
                        continue
                if keep_this_level:
                    self._decide(prefix + "/" + name, "keep", "first level below a '~' age", item)
                    continue
            # needs_cleanup(), inlined: old when every timestamp is older than the cutoff. The
            # seconds decide, unless they tie with the cutoff's (then the nanoseconds do, in
            # _old(), which also tells --explain why a file is young).
            if fx[a1] >= cut_s or fx[a2] >= cut_s or (over_two and (fx[a3] >= cut_s or fx[a4] >= cut_s)):
                if (fx[a1] > cut_s or fx[a2] > cut_s or (over_two and (fx[a3] > cut_s or fx[a4] > cut_s))) \
                        and not explain:
                    continue
                if not self._old(statx_unpack(statx_buf), cutoff, file_checks, prefix + "/" + _decoded(bname), item):
                    continue
            if not inline:
                removed_bits = self._remove_file(item, prefix + "/" + _decoded(bname), dfd, bname, cutoff,
                                                 file_checks, take_turns=link_lock and statx.nlink(statx_buf)[0] > 1)
                ok = ok and not removed_bits & _FAILED
                deleted = deleted or bool(removed_bits)
                continue
            # The removal of an old file as _remove_file does it, for a quiet real run: locked
            # (someone else's lock leaves it alone), unlinked, closed. Where the open fails
            # (a socket, a file of another owner: O_NOATIME), _remove_file goes on from there.
            try:
                fd = os_open(bname, open_flags, dir_fd=dfd)
            except OSError as e:  # the rest as _remove_file does it after an open that failed
                removed_bits = self._remove_file(item, prefix + "/" + _decoded(bname), dfd, bname, cutoff,
                                                 file_checks, take_turns=False, open_error=e)
                ok = ok and not removed_bits & _FAILED
                deleted = deleted or bool(removed_bits)
                continue
            try:
                flock(fd, lock_flags)
            except BlockingIOError:
                os_close(fd)
                continue
            except OSError:
                pass
            try:
                os_unlink(bname, dir_fd=dfd)
            except FileNotFoundError:
                pass
            except OSError as e:
                self._unlink_failed(prefix + "/" + _decoded(bname), e)
                ok = False
            deleted = True
            os_close(fd)
        if len(deferred) == 1:  # nothing to share here: the one directory may have more below
            name, sx = deferred[0]
            deferred = []
            sub_ok, removed = self._subdir_cleanup(
                item, prefix + "/" + name, name, dfd, sx, cutoff, rootdev, parent_is_mount=mountpoint,
                maxdepth=maxdepth, keep=keep_this_level, by_file=by_file, by_dir=by_dir, parallel=True)
            ok = ok and sub_ok
            deleted = deleted or removed
        if deferred:
            sub_ok, removed = self._subdirs_in_workers(
                item, prefix, dfd, deferred, cutoff, rootdev, parent_is_mount=mountpoint,
                maxdepth=maxdepth, keep=keep_this_level, by_file=by_file, by_dir=by_dir)
            ok = ok and sub_ok
            deleted = deleted or removed
        if deleted and (self_atime < NSEC_INFINITY or self_mtime < NSEC_INFINITY):
            if self.verbose:
                verb = "Would restore" if dry else "Restoring"
                self.note(f'{verb} access and modification time on "{self._display(path)}"')
            if not dry:
                try:
                    os.utime(dfd, ns=(self_atime, self_mtime))
                except OSError as e:
                    self.log(f"Failed to revert timestamps of '{self._display(path)}', ignoring: {e.strerror}")
        return ok


def children_first(config: Config) -> list[Item]:
    """Items in the order systemd cleans them: for each group (plain paths, then globs), its
    child groups first (process_item_array), each item once."""
    plain = {g.path: g for g in config.groups}
    globs = {g.path: g for g in config.globs}
    children: dict[str, list[ItemGroup]] = {}
    for group in config.all_groups():
        path = group.path
        while True:  # link_parent(): the closest proper prefix that has a group
            path = path.rsplit("/", 1)[0]
            if not path:
                break
            parent = plain.get(path) or globs.get(path)
            if parent is not None:
                children.setdefault(parent.path, []).append(group)
                break
    done: set[int] = set()
    order: list[Item] = []

    def visit(group: ItemGroup) -> None:
        if id(group) in done:
            return
        done.add(id(group))
        for child in children.get(group.path, ()):
            visit(child)
        order.extend(group.items)

    for group in config.all_groups():
        visit(group)
    return order


def sweep(
    config: Config, root_fd: int, *, clean: bool = False, remove: bool = False, purge: bool = False,
    root: str = "/", dry_run: bool = False, log: Log | None = None,
    explain: Callable[[Decision], None] | None = None, now_ns: int | None = None, verbose: bool = False,
    workers: int = 1, parallel_after: int = PARALLEL_AFTER,
) -> bool:
    """The purge phase, then the remove-and-clean phase, as systemd-tmpfiles runs them (each
    item removed, then cleaned, children before parents). False if any item failed: the
    caller exits 73. ``log`` gets the problems, and each removal with ``verbose``/``dry_run``.
    ``workers``/``parallel_after``: see Cleaner (the command line takes cleanworkers' default).
    """
    sweeper = Cleaner(config, root_fd, root=root, dry_run=dry_run, log=log or (lambda _m: None),
                      explain=explain, now_ns=now_ns if now_ns is not None else time.time_ns(),
                      verbose=verbose, note=log or (lambda _m: None), workers=workers,
                      parallel_after=parallel_after)
    order = children_first(config)
    ok = True
    if purge:
        for item in order:
            ok = sweeper.purge_item(item) and ok
    if clean or remove:
        for item in order:
            if remove:
                ok = sweeper.remove_item(item) and ok
            if clean:
                ok = sweeper.clean_item(item) and ok
    return ok
