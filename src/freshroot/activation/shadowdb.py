"""passwd, group, shadow and gshadow of a root: locked as shadow-utils locks them, replaced atomically.

shadow-utils (useradd, usermod, vipw, ... on Debian 12, shadow 4.13) takes two kinds of lock,
and a tool that changes these files must take both, in the same order, to be safe against
them:

1. ``lckpwdf()``: a whole-file fcntl write lock (F_SETLKW) on /etc/.pwd.lock. useradd takes it
   when it runs on the live system or chroots with ``--root``; ``--prefix`` skips it.
2. For each file, a lock file ``<file>.lock`` made by writing ``<pid>\\0`` into
   ``<file>.<pid>`` and hard-linking that to ``<file>.lock`` (link fails if the lock exists).
   A lock file whose pid is no longer running is stale and is removed. Taken in the order
   passwd, group, gshadow, shadow, by every mode of useradd.

While both are held we re-read the files, change them, and replace each one atomically
(temporary file, fsync, rename), keeping the previous content as ``<file>-`` as shadow does.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from dataclasses import dataclass, field
from types import TracebackType

from freshroot.errors import OperationError
from freshroot.fs.atomic import replace_at
from freshroot.fs.ops import read_at, write_all

FILES = ("passwd", "group", "gshadow", "shadow")
LOCK_TIMEOUT = 15.0  # as glibc's lckpwdf


def is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() is also true for '²', which int() then refuses."""
    return text.isascii() and text.isdigit()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ShadowLock:
    """Both shadow-utils locks on the /etc whose fd is ``etc_fd``."""

    def __init__(self, etc_fd: int, *, timeout: float = LOCK_TIMEOUT, display: str = "/etc") -> None:
        self.etc_fd = etc_fd
        self.timeout = timeout
        self.display = display
        self.pwd_fd = -1
        self.held: list[str] = []

    def _busy(self, what: str) -> OperationError:
        return OperationError(f"cannot lock {self.display}/{what}: another program is changing the "
                              f"account files", hint="try again when it has finished")

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout
        fd = os.open(".pwd.lock", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600,
                     dir_fd=self.etc_fd)
        self.pwd_fd = fd
        try:
            while True:
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                        raise self._busy(".pwd.lock") from e
                    time.sleep(0.005)
            for name in FILES:
                self._link_lock(name, deadline)
        except BaseException:
            self.release()
            raise

    def _link_lock(self, name: str, deadline: float) -> None:
        pid = os.getpid()
        tmp, lock = f"{name}.{pid}", f"{name}.lock"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600,
                     dir_fd=self.etc_fd)
        try:
            write_all(fd, f"{pid}\0".encode())
        finally:
            os.close(fd)
        try:
            while True:
                try:
                    os.link(tmp, lock, src_dir_fd=self.etc_fd, dst_dir_fd=self.etc_fd, follow_symlinks=False)
                except FileExistsError:
                    pass
                else:
                    self.held.append(lock)
                    return
                holder = self._holder(lock)
                if holder is not None and holder != pid and not _alive(holder):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(lock, dir_fd=self.etc_fd)  # stale: its owner died
                    continue
                if time.monotonic() > deadline:
                    raise self._busy(lock)
                time.sleep(0.005)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=self.etc_fd)

    def _holder(self, lock: str) -> int | None:
        try:
            text = read_at(self.etc_fd, lock, 64).split(b"\0")[0].strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None  # bytes: ASCII digits only

    def release(self) -> None:
        for lock in reversed(self.held):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock, dir_fd=self.etc_fd)
        self.held.clear()
        if self.pwd_fd >= 0:
            os.close(self.pwd_fd)  # drops the fcntl lock
            self.pwd_fd = -1

    def __enter__(self) -> ShadowLock:
        self.acquire()
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


# Mode and group of files that do not exist yet: Debian's (shadow files 0640 root:shadow,
# or root:root where there is no shadow group).
DEFAULT_MODES = {"passwd": 0o644, "group": 0o644, "shadow": 0o640, "gshadow": 0o640}


@dataclass
class DbFile:
    """One colon-separated file, kept line by line so what we do not manage is kept as it was."""

    name: str
    lines: list[str]
    exists: bool
    mode: int
    uid: int = 0
    gid: int = 0
    original: bytes = b""
    _index: dict[str, int] = field(default_factory=dict)

    @classmethod
    def read(cls, etc_fd: int, name: str) -> DbFile:
        try:
            data = read_at(etc_fd, name)
            st = os.stat(name, dir_fd=etc_fd, follow_symlinks=False)
        except FileNotFoundError:
            return cls(name, [], exists=False, mode=DEFAULT_MODES[name])
        text = data.decode("utf-8", "surrogateescape")
        db = cls(name, text.splitlines(), exists=True, mode=st.st_mode & 0o7777, uid=st.st_uid, gid=st.st_gid,
                 original=data)
        db.reindex()
        return db

    def reindex(self) -> None:
        self._index = {}
        for i, line in enumerate(self.lines):
            if line and line[0] not in "#+-":
                self._index.setdefault(line.split(":", 1)[0], i)

    def get(self, name: str) -> list[str] | None:
        i = self._index.get(name)
        return None if i is None else self.lines[i].split(":")

    def names(self) -> list[str]:
        return list(self._index)

    def put(self, name: str, fields: list[str]) -> bool:
        """Set the entry of ``name``; a new one goes before the NIS '+'/'-' lines. True if changed.

        A field that would split the line (':', a newline, NUL) is refused: the declaration's
        parser refuses such values already, this is the second line of defence against a
        value that reaches here some other way adding an account (a second root line).
        """
        for value in fields:
            if ":" in value or any(c in value for c in "\n\r\0"):
                raise OperationError(f"refusing to write {self.name}: the entry of {name!r} has a field "
                                     f"{value!r} with ':', a newline or NUL, which would split the line")
        if fields and fields[0] != name:
            raise OperationError(f"refusing to write {self.name}: the entry of {name!r} is named {fields[0]!r}")
        line = ":".join(fields)
        i = self._index.get(name)
        if i is not None:
            if self.lines[i] == line:
                return False
            self.lines[i] = line
            return True
        at = next((k for k, existing in enumerate(self.lines) if existing[:1] in ("+", "-")), len(self.lines))
        self.lines.insert(at, line)
        self.reindex()
        return True

    def remove(self, name: str) -> bool:
        i = self._index.get(name)
        if i is None:
            return False
        del self.lines[i]
        self.reindex()
        return True

    def data(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode("utf-8", "surrogateescape") if self.lines else b""

    def changed(self) -> bool:
        return self.data() != self.original

    def write(self, etc_fd: int) -> None:
        if not self.changed():
            return
        if self.exists:
            replace_at(etc_fd, f"{self.name}-", self.original, mode=self.mode, uid=self.uid, gid=self.gid,
                       durable=False)
        replace_at(etc_fd, self.name, self.data(), mode=self.mode, uid=self.uid, gid=self.gid)


def shadow_group_gid(group: DbFile) -> int:
    """The gid new shadow files get: Debian's 'shadow' group where there is one."""
    fields = group.get("shadow")
    return int(fields[2]) if fields and len(fields) > 2 and is_number(fields[2]) else 0
