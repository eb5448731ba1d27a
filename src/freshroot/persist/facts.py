"""What is at a declared path, on the root and in storage: the facts the planner compares.

Each look is one chase (parent followed, last component not) and one fstat, plus a mount
id comparison for directories and files that could be mount points.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from enum import StrEnum

from freshroot.fs import bindmount, ops
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.persist.dircache import DirCache
from freshroot.persist.model import Entry, Kind


class State(StrEnum):
    MISSING = "missing"
    EMPTY = "empty"  # an empty directory, or an empty regular file
    DATA = "data"  # a non-empty directory or file
    OURS_MOUNT = "bound"  # a mount point showing the entry's storage
    OURS_LINK = "linked"  # a symlink whose text is the entry's storage path
    MOUNT_OTHER = "mount"  # a mount point showing something else
    LINK_DANGLING = "dangling-symlink"
    LINK_ELSEWHERE = "symlink"
    WRONG_TYPE = "wrong-type"  # e.g. a file where a directory is declared
    BLOCKED = "blocked"  # a parent is not a directory


@dataclass(frozen=True, slots=True)
class Fact:
    """What is at one path on the root or in storage: its state, stat and link text, and the path
    as found (a parent may have been a symlink)."""
    state: State
    st: os.stat_result | None = None
    link: str | None = None  # a symlink's text
    path: str = ""  # canonical path found (a parent may have been a symlink)

    @property
    def exists(self) -> bool:
        return self.state not in (State.MISSING, State.BLOCKED)

    def perms(self) -> tuple[int, int, int] | None:
        if self.st is None or stat.S_ISLNK(self.st.st_mode):
            return None
        return self.st.st_uid, self.st.st_gid, stat.S_IMODE(self.st.st_mode)


def _type_ok(kind: Kind, mode: int) -> bool:
    return stat.S_ISDIR(mode) if kind is Kind.DIRECTORY else stat.S_ISREG(mode)


def _content(fd: int, st: os.stat_result) -> State:
    if stat.S_ISDIR(st.st_mode):
        return State.DATA if ops.listdir_fd(fd) else State.EMPTY
    return State.DATA if st.st_size > 0 else State.EMPTY


def look(root_fd: int, path: str, kind: Kind, *, source: Fact | None = None,
         source_path: str = "", mounts: bool = True, dirs: DirCache | None = None) -> Fact:
    """The state of ``path``. ``source`` (the storage fact) tells our mount from another."""
    if dirs is not None:
        try:
            pfd, name = dirs.parent(path)
        except FileNotFoundError:
            return Fact(State.MISSING, path=path)
        except NotADirectoryError:
            return Fact(State.BLOCKED, path=path)
        return _look_at(root_fd, pfd, name, path, kind=kind, source=source, source_path=source_path, mounts=mounts)
    try:
        parent = chase(path, root_fd=root_fd, flags=ChaseFlags.SAFE | ChaseFlags.ROOT_FILES | ChaseFlags.PARENT)
    except FileNotFoundError:
        return Fact(State.MISSING, path=path)
    except NotADirectoryError:
        return Fact(State.BLOCKED, path=path)
    with parent:
        if not stat.S_ISDIR(parent.st.st_mode):
            return Fact(State.BLOCKED, path=path)
        full = parent.path.rstrip("/") + "/" + parent.rest
        return _look_at(root_fd, parent.fd, parent.rest, full, kind=kind, source=source, source_path=source_path,
                        mounts=mounts)


def _look_at(root_fd: int, pfd: int, name: str, full: str, *, kind: Kind, source: Fact | None,
             source_path: str, mounts: bool) -> Fact:
    try:
        fd = ops.open_path_at(pfd, name)
    except FileNotFoundError:
        return Fact(State.MISSING, path=full)
    try:
        st = os.fstat(fd)
        if stat.S_ISLNK(st.st_mode):
            text = ops.readlink_fd(fd)
            if source_path and text == source_path:
                return Fact(State.OURS_LINK, st, text, full)
            return Fact(_link_state(root_fd, full), st, text, full)
        if mounts and bindmount.is_mount_root(fd, pfd):
            src = source.st if source is not None else None
            same = src is not None and (src.st_dev, src.st_ino) == (st.st_dev, st.st_ino)
            return Fact(State.OURS_MOUNT if same else State.MOUNT_OTHER, st, None, full)
        if not _type_ok(kind, st.st_mode):
            return Fact(State.WRONG_TYPE, st, None, full)
        return Fact(_content(fd, st), st, None, full)
    finally:
        os.close(fd)


def _link_state(root_fd: int, path: str) -> State:
    try:
        with chase(path, root_fd=root_fd):
            return State.LINK_ELSEWHERE
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return State.LINK_DANGLING
        raise


def look_entry(root_fd: int, entry: Entry, dirs: DirCache | None = None) -> tuple[Fact, Fact]:
    """(storage fact, root fact) of one entry."""
    source = look(root_fd, entry.source, entry.kind, mounts=False, dirs=dirs)
    if source.state in (State.LINK_DANGLING, State.LINK_ELSEWHERE, State.OURS_LINK):
        source = Fact(State.WRONG_TYPE, source.st, source.link, source.path)
    target = look(root_fd, entry.path, entry.kind, source=source, source_path=entry.source, dirs=dirs)
    return source, target


def kind_name(st: os.stat_result | None) -> str:
    if st is None:
        return "nothing"
    mode = st.st_mode
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISREG, "a file"), (stat.S_ISLNK, "a symlink"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a fifo"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "something unknown"
