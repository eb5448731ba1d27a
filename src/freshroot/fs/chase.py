"""chase(): resolve a path one component at a time, from a root directory fd.

This is freshroot's version of systemd's chase(). Every component is opened with
openat(O_PATH|O_NOFOLLOW) relative to the fd of the directory before it, so:

- the walk never re-resolves a path string, and a rename or symlink swap between two calls
  cannot redirect an operation done on the returned fd;
- absolute symlink targets restart at the *root fd*, and ``..`` at the root stays there, so
  with ``--root`` nothing resolves outside the root;
- with ``SAFE``, a transition from an entry owned by an unprivileged user to an entry owned
  by someone else is refused (systemd's unsafe_transition rule): a user can plant symlinks
  only in places they own, and this makes sure we never follow one out of them.

``..`` is resolved against the walked components, not by opening "..": it goes back to
the directory the walk came through, which is what path resolution means and is immune to
a directory being moved during the walk.
"""

from __future__ import annotations

import enum
import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from freshroot.errors import UnsafePathError

MAX_SYMLINKS = 32  # as the kernel's and systemd's chase's limit
# chase()'s observer: (canonical path, stat, symlink target or None) of each step.
Seen = Callable[[str, os.stat_result, "str | None"], None]
O_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


class ChaseFlags(enum.Flag):
    NONE = 0
    SAFE = enum.auto()  # refuse unsafe ownership transitions (see module doc)
    NOFOLLOW = enum.auto()  # do not follow a symlink in the last component
    NONEXISTENT = enum.auto()  # a missing tail is fine: return the existing prefix and the rest
    PARENT = enum.auto()  # resolve everything but the last component; Chased.rest is its name
    # With SAFE: accept a regular file root made in a user's directory (root_made_file). For
    # persistence, where such a file is the user's state; tmpfiles keeps systemd's rule.
    ROOT_FILES = enum.auto()


@dataclass
class Chased:
    """The result of a chase. Owns ``fd``: use as a context manager or call close()."""

    fd: int  # O_PATH fd of the resolved path (or of the deepest existing directory)
    path: str  # canonical path of ``fd`` relative to the root, "/" for the root itself
    rest: str = ""  # with NONEXISTENT: the components that do not exist; with PARENT: the name
    st: os.stat_result = field(default_factory=lambda: os.stat_result((0,) * 10))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def detach(self) -> int:
        """Take ownership of the fd away from this object."""
        fd, self.fd = self.fd, -1
        return fd

    def __enter__(self) -> Chased:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def unsafe_transition(a: os.stat_result, b: os.stat_result) -> bool:
    """systemd's rule: leaving an entry owned by a non-root user for one owned by another uid."""
    return a.st_uid not in (0, b.st_uid)


def root_made_file(st: os.stat_result) -> bool:
    """A regular file owned by root with a single link: the one entry SAFE accepts after a
    user's directory (a regular file is always the last component of a walk).

    A user cannot plant such a file: what they create is theirs, a symlink is never this, and a
    hard link to someone else's file has two links. It is what root wrote there (through the
    symlink a first boot made into a persisted home, say), and refusing it would block the
    user's own state (docs/fs.md)."""
    return stat.S_ISREG(st.st_mode) and st.st_uid == 0 and st.st_nlink == 1


def _split(path: str) -> list[str]:
    return [c for c in path.split("/") if c and c != "."]


def _refuse(path: str, at: str, before: os.stat_result, after: os.stat_result) -> UnsafePathError:
    """The refusal of the step to ``at``: the entry before it (``before``: a directory or a
    symlink) is a user's, ``at`` (``after``) someone else's."""
    return UnsafePathError(
        f"{path}: refusing to follow {at}: the entry before it is owned by an unprivileged user "
        f"(uid {before.st_uid}) and it by someone else (uid {after.st_uid}); that user could have "
        "planted a symlink there"
    )


def _must_be_dir(path: str) -> bool:
    """A trailing '/', '/.' or '..' demands a directory, as in the kernel and systemd."""
    return path.endswith(("/", "/.", "/..")) or path in (".", "..")


# (SAFE, NOFOLLOW, NONEXISTENT, PARENT) per combination of flags, worked out once: enum.Flag's
# "in" is Python code, and a run chases once or twice per line.
_DECODED: dict[ChaseFlags, tuple[bool, bool, bool, bool]] = {}


def _decode(flags: ChaseFlags) -> tuple[bool, bool, bool, bool]:
    bits = _DECODED.get(flags)
    if bits is None:
        bits = _DECODED[flags] = (ChaseFlags.SAFE in flags, ChaseFlags.NOFOLLOW in flags,
                                  ChaseFlags.NONEXISTENT in flags, ChaseFlags.PARENT in flags)
    return bits


def chase(path: str, *, root_fd: int, flags: ChaseFlags = ChaseFlags.NONE, seen: Seen | None = None) -> Chased:
    """Resolve ``path`` below ``root_fd``; see the module doc. Raises OSError or UnsafePathError.

    ``path`` may be absolute or relative: both are taken relative to the root. With PARENT
    the returned fd is the parent directory and ``rest`` the last component (never "..");
    the last component itself is not looked at. ``seen(path, stat, target)`` is called for
    every entry the walk steps onto, in order: each symlink followed (with its target) and
    each entry entered (target None), by its canonical path (the image stage reproduces the
    host's links and directories with it).
    """
    safe, nofollow, nonexistent, parent = _decode(flags)
    root_files = safe and ChaseFlags.ROOT_FILES in flags
    todo = _split(path)
    must_be_dir = parent or _must_be_dir(path)
    # "link/" and "link/." name what the link points to: NOFOLLOW does not apply (kernel, systemd).
    nofollow = nofollow and not path.endswith(("/", "/."))
    last = ""
    if parent:
        if not todo or todo[-1] == "..":
            raise OSError(errno.EINVAL, "the path names no entry to create in a parent", path)
        last = todo.pop()
    walk = _Walk(root_fd)
    previous = walk.root_st  # the entry we came from, for the SAFE rule (symlinks included)
    links = 0
    try:
        while todo:
            name = todo.pop(0)
            # "x/.." and "x/y" both need x to be a directory (systemd: openat fails ENOTDIR).
            if not stat.S_ISDIR(walk.top_st.st_mode):
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), walk.path())
            if name == "..":
                walk.up()
                if safe and unsafe_transition(previous, walk.top_st):
                    raise _refuse(path, walk.path() + "/..", previous, walk.top_st)
                previous = walk.top_st
                continue
            try:
                child = os.open(name, O_PATH_FLAGS, dir_fd=walk.top_fd)
            except FileNotFoundError:
                # As systemd: a missing tail that climbs with ".." names nothing we could create.
                if not nonexistent or ".." in todo:
                    raise
                rest = "/".join([name, *todo, *([last] if last else [])])
                return walk.take(rest)
            try:
                child_st = os.fstat(child)
                if safe and unsafe_transition(previous, child_st) and not (root_files and root_made_file(child_st)):
                    raise _refuse(path, walk.path(name), previous, child_st)
                follow = not (nofollow and not todo and not last)
                if stat.S_ISLNK(child_st.st_mode) and follow:
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                    # readlinkat(fd, "") reads the very link we opened and vetted: no race.
                    target = os.readlink("", dir_fd=child)
            except BaseException:
                os.close(child)
                raise
            if stat.S_ISLNK(child_st.st_mode) and follow:
                os.close(child)
                if not target:
                    raise OSError(errno.EINVAL, "empty symbolic link", walk.path(name))
                if seen is not None:
                    seen(walk.path(name), child_st, target)
                # The symlink's owner, not the directory's, is what the next step is checked
                # against: stricter than systemd for relative links (see docs/fs.md).
                previous = child_st
                if target.startswith("/"):
                    walk.to_root()
                    if safe and unsafe_transition(previous, walk.root_st):
                        raise _refuse(path, f"{walk.path(name)} -> {target}", previous, walk.root_st)
                    previous = walk.root_st
                if target.endswith(("/", "/.", "/..")) or target in (".", ".."):
                    must_be_dir = must_be_dir or not todo
                todo[:0] = _split(target)
                continue
            previous = child_st
            walk.push(child, name, child_st)
            if seen is not None:
                seen(walk.path(), child_st, None)
        if must_be_dir and not stat.S_ISDIR(walk.top_st.st_mode):
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), walk.path())
        return walk.take(last)
    finally:
        walk.close()


def chase_child(dir_fd: int, dir_st: os.stat_result, dir_path: str, name: str, *, path: str) -> Chased:
    """One step of chase(path, SAFE), for a caller that has already walked to the directory
    (``dir_fd``, its stat and canonical path) without following any symlink, so that chase()
    would have come the same way and judged it the same: ``name`` opened O_PATH|O_NOFOLLOW
    below it and checked with the SAFE rule. That is all chase() does for the last name under
    NOFOLLOW, or for any name that is not a symlink; a symlink to follow is the caller's to
    hand back to chase().

    ``name`` is one plain component (not "", "." or ".."); ``path`` is for messages only.
    """
    child = os.open(name, O_PATH_FLAGS, dir_fd=dir_fd)
    at = f"{dir_path.rstrip('/')}/{name}"
    try:
        child_st = os.fstat(child)
        if unsafe_transition(dir_st, child_st):
            raise _refuse(path, at, dir_st, child_st)
    except BaseException:
        os.close(child)
        raise
    return Chased(child, at, "", child_st)


class _Walk:
    """The directories walked so far, root first; each holds an O_PATH fd. The root's is the
    caller's (borrowed, never closed here); the others are the walk's."""

    def __init__(self, root_fd: int) -> None:
        self.root_st = os.fstat(root_fd)
        self.fds = [root_fd]
        self.names: list[str] = []
        self.stats = [self.root_st]
        # The innermost directory (plain attributes: read once or twice per component).
        self.top_fd = root_fd
        self.top_st = self.root_st

    def path(self, *more: str) -> str:
        return "/" + "/".join([*self.names, *more])

    def push(self, fd: int, name: str, st: os.stat_result) -> None:
        self.fds.append(fd)
        self.names.append(name)
        self.stats.append(st)
        self.top_fd = fd
        self.top_st = st

    def up(self) -> None:
        if len(self.fds) > 1:  # ".." at the root stays at the root
            os.close(self.fds.pop())
            self.names.pop()
            self.stats.pop()
            self.top_fd = self.fds[-1]
            self.top_st = self.stats[-1]

    def to_root(self) -> None:
        while len(self.fds) > 1:
            self.up()

    def take(self, rest: str) -> Chased:
        """Hand the top entry over to a Chased (which then owns its fd; the root's is dup'ed)."""
        if len(self.fds) == 1:
            return Chased(os.dup(self.top_fd), "/", rest, self.top_st)
        return Chased(self.fds.pop(), self.path(), rest, self.top_st)

    def close(self) -> None:
        for fd in self.fds[1:]:
            os.close(fd)
        del self.fds[1:]
