"""DirStack: the directories from a walk's start down to where it is, with few fds open.

Every tree walk in freshroot is iterative (an explicit stack, never one Python frame per
level: a user's 3,000-deep tree must not end in RecursionError), and none holds one fd per
level or per queued directory: a deep or wide tree must not run the process out of fds
(EMFILE under ``ulimit -n 1024``). A DirStack keeps at most ``budget`` fds open. Going
down opens the child with O_DIRECTORY|O_NOFOLLOW relative to the current directory's fd;
when more than ``budget`` are open, the shallowest one is closed (its (st_dev, st_ino) is
kept). Going back up to a closed level reopens it as ``..`` of the level below and checks
it is the same directory: a directory moved meanwhile fails with ESTALE instead of walking
somewhere else. So the walk acts on the very directories it went through, at any depth, and
never follows a symlink.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
BUDGET = 64  # open fds per stack; a copy or a comparison walks two stacks at once


@dataclass(slots=True)
class _Level:
    """One open directory of a DirStack walk."""
    name: str
    key: tuple[int, int]  # (st_dev, st_ino), to recognise the directory when reopening it
    fd: int  # -1: closed to stay within the budget


def _key(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


class DirStack:
    """A path of directories below ``base_fd`` (borrowed: never closed here). ``fd()`` is the
    deepest one, always open; ``push(name)`` enters a child, ``pop()`` goes back up."""

    def __init__(self, base_fd: int, budget: int = BUDGET) -> None:
        self.budget = max(budget, 2)
        self.levels = [_Level("", _key(os.fstat(base_fd)), base_fd)]
        self._open = 0  # fds this stack owns

    def fd(self) -> int:
        return self.levels[-1].fd

    def __len__(self) -> int:
        """How deep below the base the walk is (0: at the base)."""
        return len(self.levels) - 1

    def path(self, *more: str) -> str:
        """The walked names joined with '/', for messages."""
        return "/".join([lvl.name for lvl in self.levels[1:]] + list(more))

    def push(self, name: str, st: os.stat_result | None = None) -> int:
        """Open directory ``name`` below the current one (never a symlink) and go into it.
        ``st``: what the caller saw there before; a different directory now fails with EAGAIN."""
        fd = os.open(name, DIR_FLAGS, dir_fd=self.fd())
        try:
            now = os.fstat(fd)
            if st is not None and _key(now) != _key(st):
                raise OSError(errno.EAGAIN, "changed while being walked", self.path(name))
        except BaseException:
            os.close(fd)
            raise
        self.levels.append(_Level(name, _key(now), fd))
        self._open += 1
        if self._open > self.budget:
            self._evict()
        return fd

    def _evict(self) -> None:
        for lvl in self.levels[1:-1]:  # the shallowest open one; never the base or the top
            if lvl.fd >= 0:
                os.close(lvl.fd)
                lvl.fd = -1
                self._open -= 1
                return

    def pop(self) -> None:
        """Leave the current directory for its parent (reopened as its '..' if it was closed)."""
        if len(self.levels) == 1:
            raise IndexError("pop from the base of a DirStack")
        lvl = self.levels.pop()
        try:
            parent = self.levels[-1]
            if parent.fd < 0:
                fd = os.open("..", DIR_FLAGS, dir_fd=lvl.fd)
                if _key(os.fstat(fd)) != parent.key:
                    os.close(fd)
                    raise OSError(errno.ESTALE, "moved while being walked", self.path())
                parent.fd = fd
                self._open += 1
        finally:
            os.close(lvl.fd)
            self._open -= 1

    def close(self) -> None:
        for lvl in self.levels[1:]:
            if lvl.fd >= 0:
                os.close(lvl.fd)
        del self.levels[1:]
        self._open = 0


def open_regular_at(dir_fd: int, name: str, st: os.stat_result | None = None) -> int:
    """A read-only fd of the regular file ``name``, opened so that nothing a user swaps in
    can block or redirect the caller: O_NONBLOCK (a FIFO does not wait for a writer),
    O_NOFOLLOW, O_NOCTTY; then the fd itself must be a regular file (and, given ``st``, the
    very inode seen before), else OSError EAGAIN. O_NONBLOCK is cleared before returning."""
    fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode):
            raise OSError(errno.EAGAIN, "no longer a regular file", name)
        if st is not None and _key(now) != _key(st):
            raise OSError(errno.EAGAIN, "changed while being read", name)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


@dataclass(frozen=True, slots=True)
class Usage:
    """What a tree holds: its files, their apparent size, and the blocks allocated (as du counts them)."""
    files: int  # entries that are not directories
    size: int  # their apparent sizes (st_size)
    allocated: int  # blocks allocated to everything below, directories included (du)


def usage(dir_fd: int, name: str, unreadable: Callable[[str, OSError], None]) -> Usage:
    """What ``name`` below ``dir_fd`` and everything below it holds, walked with a DirStack
    (no recursion, few fds). A directory that cannot be read is passed to ``unreadable`` with
    its path relative to ``dir_fd`` and left out; an entry that vanished meanwhile is skipped."""
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        return Usage(1, st.st_size, st.st_blocks * 512)
    files = size = 0
    allocated = st.st_blocks * 512
    dirs = DirStack(dir_fd)
    frames: list[Iterator[str]] = []
    try:
        frames.append(iter(os.listdir(dirs.push(name, st))))
        while frames:
            child = next(frames[-1], None)
            if child is None:
                frames.pop()
                dirs.pop()
                continue
            try:
                cst = os.stat(child, dir_fd=dirs.fd(), follow_symlinks=False)
                allocated += cst.st_blocks * 512
                if not stat.S_ISDIR(cst.st_mode):
                    files, size = files + 1, size + cst.st_size
                    continue
                frames.append(iter(os.listdir(dirs.push(child, cst))))
            except FileNotFoundError:
                continue
            except OSError as e:
                unreadable(dirs.path(child), e)
    finally:
        dirs.close()
    return Usage(files, size, allocated)
