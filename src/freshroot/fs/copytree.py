"""Copy a tree between directory fds durably, and compare two trees.

Used by persistence's migration: the copy keeps type, content, mode, owner and times of
every entry (symlinks copied as symlinks, device nodes and fifos re-made), fsyncs each file
and directory it wrote so the copy survives a crash once the call returns, and never
crosses into another mount (EXDEV) so "move" cannot silently skip data it did not see.
"""

from __future__ import annotations

import errno
import os
import stat

from freshroot.fs.ops import open_at, open_dir_at, write_all

_CHUNK = 1 << 20


def _times(fd_or_name: int | str, st: os.stat_result, dir_fd: int | None = None) -> None:
    times = (st.st_atime_ns, st.st_mtime_ns)
    if isinstance(fd_or_name, int):
        os.utime(fd_or_name, ns=times)
    else:
        os.utime(fd_or_name, ns=times, dir_fd=dir_fd, follow_symlinks=False)


def _copy_file(src_dir: int, name: str, st: os.stat_result, dst_dir: int, dst_name: str, fsync: bool) -> None:
    src = open_at(src_dir, name, os.O_RDONLY)
    try:
        dst = open_at(dst_dir, dst_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            while True:
                try:
                    n = os.copy_file_range(src, dst, _CHUNK)
                except OSError as e:
                    if e.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                        raise
                    n = -1
                if n < 0:  # fall back to read/write
                    while chunk := os.read(src, _CHUNK):
                        write_all(dst, chunk)
                    break
                if n == 0:
                    break
            os.fchown(dst, st.st_uid, st.st_gid)
            os.fchmod(dst, stat.S_IMODE(st.st_mode))  # after chown, which clears set-id bits
            _times(dst, st)
            if fsync:
                os.fsync(dst)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def copy_entry_at(src_dir: int, name: str, dst_dir: int, dst_name: str, *, fsync: bool = True) -> None:
    """Copy ``name`` in ``src_dir`` (and all below it) to ``dst_name`` in ``dst_dir``.

    ``dst_name`` must not exist. The source is never changed.
    """
    st = os.stat(name, dir_fd=src_dir, follow_symlinks=False)
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        _copy_dir(src_dir, name, st, dst_dir, dst_name, fsync, st.st_dev)
    elif stat.S_ISREG(mode):
        _copy_file(src_dir, name, st, dst_dir, dst_name, fsync)
    elif stat.S_ISLNK(mode):
        os.symlink(os.readlink(name, dir_fd=src_dir), dst_name, dir_fd=dst_dir)
        os.chown(dst_name, st.st_uid, st.st_gid, dir_fd=dst_dir, follow_symlinks=False)
        _times(dst_name, st, dst_dir)
    else:  # device, fifo, socket
        os.mknod(dst_name, mode, st.st_rdev, dir_fd=dst_dir)
        os.chown(dst_name, st.st_uid, st.st_gid, dir_fd=dst_dir, follow_symlinks=False)
        os.chmod(dst_name, stat.S_IMODE(mode), dir_fd=dst_dir)
        _times(dst_name, st, dst_dir)


def _copy_dir(src_dir: int, name: str, st: os.stat_result, dst_dir: int, dst_name: str, fsync: bool,
              dev: int) -> None:
    src = open_dir_at(src_dir, name)
    try:
        if os.fstat(src).st_dev != dev:
            raise OSError(errno.EXDEV, "a mount point inside the tree; unmount it first", name)
        os.mkdir(dst_name, 0o700, dir_fd=dst_dir)
        dst = open_dir_at(dst_dir, dst_name)
        try:
            for child in sorted(os.listdir(src)):
                cst = os.stat(child, dir_fd=src, follow_symlinks=False)
                if stat.S_ISDIR(cst.st_mode):
                    if cst.st_dev != dev:
                        raise OSError(errno.EXDEV, "a mount point inside the tree; unmount it first", child)
                    _copy_dir(src, child, cst, dst, child, fsync, dev)
                else:
                    copy_entry_at(src, child, dst, child, fsync=fsync)
            os.fchown(dst, st.st_uid, st.st_gid)
            os.fchmod(dst, stat.S_IMODE(st.st_mode))
            _times(dst, st)
            if fsync:
                os.fsync(dst)
        finally:
            os.close(dst)
    finally:
        os.close(src)


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
