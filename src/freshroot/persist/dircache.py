"""The directories one plan works in, each resolved once.

A plan of a hundred entries touches the same few parents (/var, /var/lib, /persist/var/lib)
hundreds of times; chasing each from the root every time costs a walk per call. A
DirCache resolves a directory from its cached parent with one openat(O_PATH|O_NOFOLLOW),
applying chase's SAFE rule itself, and hands anything unusual (a symlink) to chase. It
lives as long as one plan and its apply: the fds it holds are the directories as resolved
then, and a bind mount made on one of them invalidates it and what is below (the mount
now covers the cached inode).
"""

from __future__ import annotations

import errno
import os
import stat

from freshroot.fs.chase import ChaseFlags, chase, unsafe_transition

_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


class DirCache:
    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd
        fd = os.dup(root_fd)
        self.fds: dict[str, tuple[int, os.stat_result]] = {"/": (fd, os.fstat(fd))}
        self.children: dict[str, set[str]] = {}

    def get(self, path: str) -> int:
        """An O_PATH fd of directory ``path`` (owned by the cache). Raises OSError.

        Iterative: from the deepest cached ancestor down, one openat per missing level (a
        declared path of 1,200 components is no deeper a call stack than one of two)."""
        hit = self.fds.get(path)
        if hit is not None:
            return hit[0]
        missing: list[str] = []  # the uncached directories from ``path`` up
        at = path
        while at not in self.fds:
            missing.append(at)
            at = at.rpartition("/")[0] or "/"
        fd = self.fds[at][0]
        for child in reversed(missing):
            fd = self._open_dir(child)
        return fd

    def _open_dir(self, path: str) -> int:
        """Resolve and cache directory ``path``, whose parent is cached."""
        parent, _, name = path.rpartition("/")
        parent = parent or "/"
        pfd, pst = self.fds[parent]
        fd = os.open(name, _FLAGS, dir_fd=pfd)
        st = os.fstat(fd)
        if stat.S_ISLNK(st.st_mode) or unsafe_transition(pst, st):
            os.close(fd)  # let chase follow it inside the root, or refuse it
            with chase(path, root_fd=self.root_fd, flags=ChaseFlags.SAFE) as found:
                fd, st = found.detach(), found.st
        if not stat.S_ISDIR(st.st_mode):
            os.close(fd)
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        self.fds[path] = (fd, st)
        self.children.setdefault(parent, set()).add(path)
        return fd

    def open(self, path: str) -> tuple[int, os.stat_result]:
        """An O_PATH fd (the caller's to close) of ``path`` itself, never followed if a
        symlink, under the SAFE rule."""
        pfd, name = self.parent(path)
        pst = self.fds[path.rpartition("/")[0] or "/"][1]
        fd = os.open(name, _FLAGS, dir_fd=pfd)
        st = os.fstat(fd)
        if unsafe_transition(pst, st):
            os.close(fd)
            with chase(path, root_fd=self.root_fd,
                       flags=ChaseFlags.SAFE | ChaseFlags.ROOT_FILES | ChaseFlags.NOFOLLOW) as found:
                return found.detach(), found.st  # (chase raises the proper error)
        return fd, st

    def parent(self, path: str) -> tuple[int, str]:
        """(fd of the parent directory, last component) of ``path``."""
        parent, _, name = path.rpartition("/")
        return self.get(parent or "/"), name

    def invalidate(self, path: str) -> None:
        """Forget ``path`` and everything below it (after mounting on it)."""
        if path == "/":
            return
        todo = [path]  # an explicit stack: cached paths can be any number of levels deep
        while todo:
            at = todo.pop()
            todo.extend(self.children.pop(at, ()))
            hit = self.fds.pop(at, None)
            if hit is not None:
                os.close(hit[0])

    def close(self) -> None:
        for fd, _ in self.fds.values():
            os.close(fd)
        self.fds.clear()
        self.children.clear()

    def __del__(self) -> None:
        self.close()
