"""Durability and containment checks for trees: what a crash-safe migration needs beyond
:func:`freshroot.fs.copy.copy_tree_at`.

- :func:`fsync_tree_at` fsyncs every file and directory of a tree, so a copy that has been
  fsynced and then renamed into place survives a crash;
- :func:`contained_at` says whether every entry of one tree is in another with the same
  type and bytes, so removing the first loses nothing.
"""

from __future__ import annotations

import os
import stat

from freshroot.fs.ops import open_at, open_dir_at

_CHUNK = 1 << 20


def fsync_tree_at(dir_fd: int, name: str) -> None:
    """fsync ``name`` and, for a directory, everything below it (symlinks need none)."""
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISREG(st.st_mode):
        fd = open_at(dir_fd, name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    elif stat.S_ISDIR(st.st_mode):
        fd = open_dir_at(dir_fd, name)
        try:
            for child in os.listdir(fd):
                fsync_tree_at(fd, child)
            os.fsync(fd)
        finally:
            os.close(fd)


def contained_at(a_dir: int, a_name: str, b_dir: int, b_name: str) -> bool:
    """Whether every entry of tree ``a`` is in tree ``b`` with the same type and content.

    So removing ``a`` loses nothing that ``b`` does not hold (b may hold more).
    """
    try:
        ast = os.stat(a_name, dir_fd=a_dir, follow_symlinks=False)
        bst = os.stat(b_name, dir_fd=b_dir, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_IFMT(ast.st_mode) != stat.S_IFMT(bst.st_mode):
        return False
    if stat.S_ISLNK(ast.st_mode):
        return os.readlink(a_name, dir_fd=a_dir) == os.readlink(b_name, dir_fd=b_dir)
    if stat.S_ISREG(ast.st_mode):
        return _same_content(a_dir, a_name, b_dir, b_name)
    if not stat.S_ISDIR(ast.st_mode):
        return ast.st_rdev == bst.st_rdev
    a = open_dir_at(a_dir, a_name)
    try:
        b = open_dir_at(b_dir, b_name)
        try:
            return all(contained_at(a, child, b, child) for child in os.listdir(a))
        finally:
            os.close(b)
    finally:
        os.close(a)


def _same_content(a_dir: int, a_name: str, b_dir: int, b_name: str) -> bool:
    a = open_at(a_dir, a_name, os.O_RDONLY)
    try:
        b = open_at(b_dir, b_name, os.O_RDONLY)
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
