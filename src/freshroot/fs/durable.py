"""Durability and containment checks for trees: what a crash-safe migration needs beyond
:func:`freshroot.fs.copy.copy_tree_at`.

- :func:`fsync_tree_at` fsyncs every file and directory of a tree, so a copy that has been
  fsynced and then renamed into place survives a crash;
- :func:`contained_at` says whether every entry of one tree is in another with the same
  type and bytes, so removing the first loses nothing.

Both walk iteratively with a bounded number of fds (freshroot.fs.walk), and open files
non-blocking and check their type on the fd: a FIFO a user swapped in never blocks them.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator

from freshroot.fs.ops import _check_name
from freshroot.fs.walk import DirStack, open_regular_at

_CHUNK = 1 << 20


def fsync_tree_at(dir_fd: int, name: str) -> None:
    """fsync ``name`` and, for a directory, everything below it (symlinks need none; nor
    FIFOs, sockets and devices, which are never opened)."""
    _check_name(name)
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISREG(st.st_mode):
        _fsync_file(dir_fd, name, st)
        return
    if not stat.S_ISDIR(st.st_mode):
        return
    dirs = DirStack(dir_fd)
    todo: list[Iterator[str]] = []
    try:
        todo.append(iter(os.listdir(dirs.push(name, st))))
        while todo:
            child = next(todo[-1], None)
            if child is None:
                os.fsync(dirs.fd())
                todo.pop()
                dirs.pop()
                continue
            cst = os.stat(child, dir_fd=dirs.fd(), follow_symlinks=False)
            if stat.S_ISREG(cst.st_mode):
                _fsync_file(dirs.fd(), child, cst)
            elif stat.S_ISDIR(cst.st_mode):
                todo.append(iter(os.listdir(dirs.push(child, cst))))
    finally:
        dirs.close()


def _fsync_file(dir_fd: int, name: str, st: os.stat_result) -> None:
    fd = open_regular_at(dir_fd, name, st)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def contained_at(a_dir: int, a_name: str, b_dir: int, b_name: str) -> bool:
    """Whether every entry of tree ``a`` is in tree ``b`` with the same type and content.

    So removing ``a`` loses nothing that ``b`` does not hold (b may hold more). An entry that
    vanishes or changes type while being compared counts as a difference.
    """
    try:
        same, descend = _same_entry(a_dir, a_name, b_dir, b_name)
        if not descend:
            return same
        a, b = DirStack(a_dir), DirStack(b_dir)
        todo: list[Iterator[str]] = []
        try:
            a.push(a_name, descend[0])
            b.push(b_name, descend[1])
            todo.append(iter(os.listdir(a.fd())))
            while todo:
                child = next(todo[-1], None)
                if child is None:
                    todo.pop()
                    a.pop()
                    b.pop()
                    continue
                same, descend = _same_entry(a.fd(), child, b.fd(), child)
                if not same:
                    return False
                if descend:
                    a.push(child, descend[0])
                    b.push(child, descend[1])
                    todo.append(iter(os.listdir(a.fd())))
            return True
        finally:
            a.close()
            b.close()
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.ESTALE):  # swapped while being compared: not the same
            return False
        raise



def _same_entry(a_dir: int, a_name: str, b_dir: int, b_name: str
                ) -> tuple[bool, tuple[os.stat_result, os.stat_result] | None]:
    """(whether the two entries match as far as one entry goes, their stats if both are
    directories to compare further)."""
    ast = os.stat(a_name, dir_fd=a_dir, follow_symlinks=False)
    bst = os.stat(b_name, dir_fd=b_dir, follow_symlinks=False)
    if stat.S_IFMT(ast.st_mode) != stat.S_IFMT(bst.st_mode):
        return False, None
    if stat.S_ISDIR(ast.st_mode):
        return True, (ast, bst)
    if stat.S_ISLNK(ast.st_mode):
        return os.readlink(a_name, dir_fd=a_dir) == os.readlink(b_name, dir_fd=b_dir), None
    if stat.S_ISREG(ast.st_mode):
        return _same_content(a_dir, a_name, ast, b_dir, b_name, bst), None
    return ast.st_rdev == bst.st_rdev, None


def _same_content(a_dir: int, a_name: str, ast: os.stat_result, b_dir: int, b_name: str,
                  bst: os.stat_result) -> bool:
    a = open_regular_at(a_dir, a_name, ast)
    try:
        b = open_regular_at(b_dir, b_name, bst)
        try:
            if os.fstat(a).st_size != os.fstat(b).st_size:
                return False
            while True:
                x, y = os.read(a, _CHUNK), os.read(b, _CHUNK)
                if x != y:
                    return False
                if not x:
                    return True
        finally:
            os.close(b)
    finally:
        os.close(a)
