"""Userspace mount options in libmount's utab (/run/mount/utab), the way mount(8) records them.

mount(2) carries no userspace options: ``x-gvfs-hide`` (file managers do not list the mount)
and ``x-gvfs-trash`` live only in util-linux's utab, which libmount merges into what it
reads from /proc/self/mountinfo (``findmnt -m``, ``mount``, GLib's gunixmounts behind
gio/GVfs and Nautilus, udisks). A mount made by mount(8), or by a systemd mount unit with
``Options=x-gvfs-hide``, gets a line there; a bind freshroot makes with mount(2) gets the
same line from here, so file managers see the same whether apply or the boot units made it.

Written as libmount (libmount/src/tab_update.c, lock.c, monitor_utab.c) writes it:

- the file: ``$LIBMOUNT_UTAB`` when set (libmount honours it too), else /run/mount/utab; its
  directory is made 0755 when missing;
- one line per mount: ``ID=<mount id> SRC=<source> TARGET=<mount point> ROOT=<root in its
  file system> BINDSRC=<bind source> OPTS=<x-* options>``, values with space, tab, newline
  and backslash escaped as ``\\ooo`` (libmount's mangle). SRC, TARGET and ROOT are the
  mount's own mountinfo fields, so libmount before 2.39 (which matches on those) and after
  (which matches on ID) both find it; unknown keys are skipped by every version;
- every change under ``<utab>.lock`` (flock LOCK_EX; libmount's "simple lock" for utab),
  with signals blocked meanwhile as libmount blocks them; the new table is written to a
  temporary file beside it, given mode 0644 and the old file's owner, and renamed over it;
- around a mount and its utab line, ``<utab>.act`` held LOCK_SH (so a libmount monitor
  ignores the kernel's event until the line is there), then ``<utab>.event`` closed after
  writing, which is what a libmount monitor (udisks, GLib) waits for.

Only for the running system's root: an offline ``--root`` has its own /run, gone by the time
it boots.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from freshroot.fs import mount
from freshroot.fs.atomic import replace_at
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.fs.ops import mkdir_parents, open_root

UTAB = "/run/mount/utab"
_LOCK_MODE = 0o600  # lock.c: S_IRUSR|S_IWUSR
_OCTAL = re.compile(r"\\([0-7]{3})")
_MANGLED = " \t\n\\"


def utab_path() -> str:
    """Where libmount keeps utab: ``$LIBMOUNT_UTAB``, else /run/mount/utab."""
    return os.environ.get("LIBMOUNT_UTAB") or UTAB


def user_options(options: Iterable[str]) -> tuple[str, ...]:
    """The options of ``options`` that only utab can carry: x-* (X-* are fstab comments that
    libmount never writes there; the rest are kernel flags)."""
    return tuple(o for o in options if o.startswith("x-"))


def mangle(value: str) -> str:
    """libmount's mangle(): space, tab, newline and backslash as \\ooo."""
    return "".join(f"\\{ord(c):03o}" if c in _MANGLED else c for c in value)


def unmangle(value: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), value)


@dataclass(frozen=True, slots=True)
class UtabEntry:
    """One line of utab."""

    target: str
    options: tuple[str, ...] = ()  # OPTS
    source: str | None = None  # SRC
    root: str | None = None  # ROOT
    bindsrc: str | None = None  # BINDSRC
    attrs: str | None = None  # ATTRS
    id: int | None = None  # ID: the mount id (mountinfo's first field), libmount >= 2.39
    uniq_id: int | None = None  # UNIQID: the 64-bit unique mount id, libmount >= 2.40

    def line(self) -> str:
        """As libmount's fprintf_utab_fs writes it."""
        parts = []
        if self.id:
            parts.append(f"ID={self.id}")
        if self.uniq_id:
            parts.append(f"UNIQID={self.uniq_id}")
        for key, value in (("SRC", self.source), ("TARGET", self.target), ("ROOT", self.root),
                           ("BINDSRC", self.bindsrc), ("ATTRS", self.attrs),
                           ("OPTS", ",".join(self.options) if self.options else None)):
            if value is not None:
                parts.append(f"{key}={mangle(value)}")
        return " ".join(parts) + "\n"

    def matches(self, m: mount.MountInfo) -> bool:
        """Whether this line is about mount ``m``, by libmount's rule
        (mnt_table_merge_user_fs): the mount id when the line has one, else the same root,
        target and source."""
        if self.id:
            return self.id == m.mount_id
        return (self.root, self.target, self.source) == (m.root, m.mount_point, m.source)


def parse_line(line: str) -> UtabEntry | None:
    """One utab line (libmount's mnt_parse_utab_line: KEY=value pairs, unknown keys skipped,
    the first of each key kept); None for a line without a TARGET."""
    found: dict[str, str] = {}
    for word in line.strip("\n").split(" "):
        key, sep, value = word.partition("=")
        if sep and key not in found:
            found[key] = value
    target = found.get("TARGET")
    if target is None:
        return None

    def number(key: str) -> int | None:
        value = found.get(key, "")
        return int(value) if value.isascii() and value.isdigit() else None

    def text(key: str) -> str | None:
        value = found.get(key)
        return None if value is None else unmangle(value)

    opts = text("OPTS")
    return UtabEntry(unmangle(target), tuple(o for o in (opts or "").split(",") if o), text("SRC"), text("ROOT"),
                     text("BINDSRC"), text("ATTRS"), number("ID"), number("UNIQID"))


def parse(data: str) -> tuple[UtabEntry, ...]:
    return tuple(e for e in (parse_line(line) for line in data.split("\n")) if e is not None)


@dataclass(frozen=True)
class Utab:
    """libmount's utab at ``path``."""

    path: str

    @classmethod
    def default(cls) -> Utab:
        return cls(utab_path())

    @property
    def _dir_and_name(self) -> tuple[str, str]:
        directory, _, name = self.path.rpartition("/")
        return directory or "/", name

    def read(self) -> tuple[UtabEntry, ...]:
        """The lines as they are (libmount reads without the lock: the file is only ever
        replaced by a rename)."""
        directory, name = self._dir_and_name
        root = open_root("/")
        try:
            with chase(directory, root_fd=root, flags=ChaseFlags.SAFE) as d:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=d.fd)
        except (FileNotFoundError, NotADirectoryError):
            return ()
        finally:
            os.close(root)
        try:
            with os.fdopen(fd, "rb", closefd=False) as f:
                return parse(os.fsdecode(f.read(16 << 20)))
        finally:
            os.close(fd)

    def options_of(self, m: mount.MountInfo, entries: tuple[UtabEntry, ...] | None = None) -> tuple[str, ...]:
        """The userspace options utab gives mount ``m`` (the last matching line, as libmount
        merges from the end)."""
        for e in reversed(self.read() if entries is None else entries):
            if e.matches(m):
                return e.options
        return ()

    @contextlib.contextmanager
    def _directory(self) -> Iterator[int]:
        directory, _ = self._dir_and_name
        root = open_root("/")
        try:
            with mkdir_parents(root, directory, 0o755) as d:  # libmount: mkdir /run/mount 0755
                real = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=d.fd)
        finally:
            os.close(root)
        try:
            yield real
        finally:
            os.close(real)

    @contextlib.contextmanager
    def _locked(self, dir_fd: int) -> Iterator[None]:
        """``<utab>.lock``, flock LOCK_EX, signals blocked: lock.c's simple lock."""
        name = self._dir_and_name[1] + ".lock"
        old = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            fd = os.open(name, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, _LOCK_MODE, dir_fd=dir_fd)
            try:
                if os.fstat(fd).st_mode & _LOCK_MODE != _LOCK_MODE:
                    os.fchmod(fd, _LOCK_MODE)
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # IN_CLOSE_NOWRITE: what libmount monitors before 2.40 wait for
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def _rewrite(self, dir_fd: int, entries: Iterable[UtabEntry]) -> None:
        name = self._dir_and_name[1]
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            uid, gid = st.st_uid, st.st_gid
        except FileNotFoundError:
            uid = gid = -1
        data = "".join(e.line() for e in entries)
        # /run is a tmpfs: like libmount, no fsync; the rename is what makes it atomic.
        replace_at(dir_fd, name, os.fsencode(data), mode=0o644, uid=uid, gid=gid, durable=False)

    def _emit_event(self, dir_fd: int) -> None:
        """Close ``<utab>.event`` after writing: a libmount monitor's signal (2.40 and later)."""
        fd = os.open(self._dir_and_name[1] + ".event", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o644, dir_fd=dir_fd)
        os.close(fd)

    def _read_at(self, dir_fd: int) -> list[UtabEntry]:
        try:
            fd = os.open(self._dir_and_name[1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                         dir_fd=dir_fd)
        except FileNotFoundError:
            return []
        try:
            with os.fdopen(fd, "rb", closefd=False) as f:
                return list(parse(os.fsdecode(f.read(16 << 20))))
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def mounting(self) -> Iterator[None]:
        """Around a mount and its utab line (mnt_update_start/end): ``<utab>.act`` held
        LOCK_SH meanwhile, so a monitor waits for the line instead of acting on the kernel's
        event alone; removed after, unless another process holds it too."""
        name = self._dir_and_name[1] + ".act"
        with self._directory() as dir_fd:
            with self._locked(dir_fd):
                old = os.umask(0o077)
                try:
                    act = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
                finally:
                    os.umask(old)
                fcntl.flock(act, fcntl.LOCK_SH)
            try:
                yield
            finally:
                with self._locked(dir_fd):
                    fcntl.flock(act, fcntl.LOCK_UN)
                    try:
                        fcntl.flock(act, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        pass  # another mount is under way: it removes the file
                    else:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(name, dir_fd=dir_fd)
                    os.close(act)

    def add(self, entry: UtabEntry) -> None:
        """Add ``entry`` (libmount's update_add_entry); a line left over for an earlier mount
        with the same id (that mount is gone: the id is this one's now) is dropped, so
        libmount >= 2.39 cannot give its options to this mount."""
        with self._directory() as dir_fd:
            with self._locked(dir_fd):
                kept = [e for e in self._read_at(dir_fd) if not (entry.id and e.id == entry.id)]
                self._rewrite(dir_fd, [*kept, entry])
            self._emit_event(dir_fd)

    def remove(self, target: str, mount_id: int | None) -> bool:
        """Remove the line of the mount at ``target`` (libmount's update_remove_entry: the
        last line with that target; with ``mount_id``, the one with that id when a line has
        ids). True if a line was removed."""
        with self._directory() as dir_fd:
            with self._locked(dir_fd):
                entries = self._read_at(dir_fd)
                index = next((i for i in reversed(range(len(entries)))
                              if entries[i].target == target and (entries[i].id is None or mount_id is None
                                                                  or entries[i].id == mount_id)), None)
                if index is None:
                    return False
                del entries[index]
                self._rewrite(dir_fd, entries)
            self._emit_event(dir_fd)
        return True


def entry_for(m: mount.MountInfo, bindsrc: str, options: tuple[str, ...]) -> UtabEntry:
    """The line mount(8) writes for a bind of ``bindsrc`` that became mount ``m``."""
    return UtabEntry(m.mount_point, options, m.source, m.root, bindsrc, id=m.mount_id)


def merged(entry: UtabEntry, options: tuple[str, ...]) -> UtabEntry:
    """``entry`` with ``options`` added to its own (in order, once each)."""
    return replace(entry, options=tuple(dict.fromkeys((*entry.options, *options))))


def is_live_root(root_fd: int) -> bool:
    """Whether ``root_fd`` is the running system's root (its /run is ours): utab is written
    only then."""
    st, ours = os.fstat(root_fd), os.stat("/")
    return (st.st_dev, st.st_ino) == (ours.st_dev, ours.st_ino)
