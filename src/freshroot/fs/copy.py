"""copy_tree_at(): copy a tree between directory fds, safely and faithfully.

For tmpfiles' ``C`` lines and for migrating state into /persist. Every entry is opened with
O_NOFOLLOW relative to its parent's fd, so a symlink anywhere in the source is copied as a
symlink and never followed, and nothing outside the two trees is read or written. File data
is reflinked (FICLONE) where the file system can, else copied in the kernel
(copy_file_range). Modes, owners, extended attributes (ACLs are the
``system.posix_acl_*`` ones), timestamps (ns), symlinks, FIFOs, sockets and device nodes
are copied. Files with several hard links become separate copies and are reported, unless
``hardlinks`` asks for the links to be recreated inside the copy.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field

from freshroot.fs import xattr
from freshroot.fs.ops import _check_name, chmod_fd, chown_fd, fd_path, mount_id
from freshroot.fs.walk import DirStack, open_regular_at

FICLONE = 0x40049409  # _IOW(0x94, 9, int)
# Copying an xattr can fail for reasons that do not make the copy wrong (an SELinux label
# the destination refuses, user.* on a file system without them): reported, not fatal.
_XATTR_SOFT = (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EACCES, errno.EINVAL)


@dataclass
class CopyReport:
    """What copy_tree_at did that the caller may want to tell someone about."""

    copied: int = 0
    hardlinks: list[str] = field(default_factory=list)  # copied as separate files (or relinked)
    skipped: list[str] = field(default_factory=list)  # already at the destination (merge)
    xattr_failures: list[str] = field(default_factory=list)  # "path: name: reason"


@dataclass(frozen=True, slots=True)
class _At:
    """One entry being copied: its parent fds and names on both sides, and its report path."""

    sdir: int
    name: str
    ddir: int
    dname: str
    rel: str


@dataclass(slots=True)
class _Frame:
    """A directory being copied: the names left to copy, and what its metadata comes from."""

    names: Iterator[str]
    st: os.stat_result
    created: bool
    name: str
    dname: str
    rel: str


@dataclass
class _Copier:
    merge: bool
    cross_mounts: bool
    keep_hardlinks: bool
    report: CopyReport = field(default_factory=CopyReport)
    root_mount: int = 0  # the mount id (not st_dev: bind mounts share that) of the source
    links: dict[tuple[int, int], int] = field(default_factory=dict)  # (dev, ino) -> O_PATH fd of the copy

    def close(self) -> None:
        for fd in self.links.values():
            os.close(fd)
        self.links.clear()

    def run(self, sdir: int, sname: str, ddir: int, dname: str) -> None:
        """Copy ``sname`` and, for a directory, what is below it: depth first, on an explicit
        stack (never one Python frame or one held fd per level: see freshroot.fs.walk)."""
        st = os.stat(sname, dir_fd=sdir, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            self.leaf(_At(sdir, sname, ddir, dname, dname), st)
            return
        src, dst = DirStack(sdir), DirStack(ddir)
        frames: list[_Frame] = []
        try:
            self.enter(src, dst, frames, sname, dname, st, dname)
            while frames:
                frame = frames[-1]
                child = next(frame.names, None)
                if child is None:
                    frames.pop()
                    src.pop()
                    dst.pop()
                    if frame.created:  # an existing directory we merged into keeps its own owner and mode
                        self.metadata(_At(src.fd(), frame.name, dst.fd(), frame.dname, frame.rel), frame.st)
                        self.report.copied += 1
                    continue
                rel = f"{frame.rel}/{child}"
                cst = os.stat(child, dir_fd=src.fd(), follow_symlinks=False)
                if stat.S_ISDIR(cst.st_mode):
                    self.enter(src, dst, frames, child, child, cst, rel)
                else:
                    self.leaf(_At(src.fd(), child, dst.fd(), child, rel), cst)
        finally:
            src.close()
            dst.close()

    def enter(self, src: DirStack, dst: DirStack, frames: list[_Frame], name: str, dname: str,
              st: os.stat_result, rel: str) -> None:
        """Make the copy of directory ``name`` (0700 until its metadata is set) and go into both."""
        created = True
        try:
            os.mkdir(dname, 0o700, dir_fd=dst.fd())
        except FileExistsError:
            if not self.merge or not stat.S_ISDIR(os.stat(dname, dir_fd=dst.fd(), follow_symlinks=False).st_mode):
                raise
            created = False
        sfd = src.push(name, st)  # EAGAIN if it is no longer the directory stat'ed
        try:
            dst.push(dname)
        except BaseException:
            src.pop()
            raise
        names: list[str] = []
        if self.cross_mounts or mount_id(sfd) == self.root_mount:
            names = sorted(os.listdir(sfd))
        frames.append(_Frame(iter(names), st, created, name, dname, rel))

    def leaf(self, at: _At, st: os.stat_result) -> None:
        """Copy anything but a directory."""
        sdir, name, ddir, dname = at.sdir, at.name, at.ddir, at.dname
        if self.merge and _exists(ddir, dname):
            self.report.skipped.append(at.rel)
            return
        if stat.S_ISREG(st.st_mode):
            self.regular(at, st)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=sdir), dname, dir_fd=ddir)
            os.chown(dname, st.st_uid, st.st_gid, dir_fd=ddir, follow_symlinks=False)
            os.utime(dname, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=ddir, follow_symlinks=False)
        else:  # FIFO, socket, character or block device: a new node of the same kind, never opened
            os.mknod(dname, stat.S_IFMT(st.st_mode) | 0o600, st.st_rdev, dir_fd=ddir)
            self.metadata(at, st)
        self.report.copied += 1

    def regular(self, at: _At, st: os.stat_result) -> None:
        sdir, name, ddir, dname, rel = at.sdir, at.name, at.ddir, at.dname, at.rel
        if st.st_nlink > 1:
            self.report.hardlinks.append(rel)
            first = self.links.get((st.st_dev, st.st_ino))
            if first is not None:
                # linkat through the magic link of an O_PATH fd links that very inode: the
                # copy made a moment ago, never the source's inode.
                os.link(fd_path(first), dname, dst_dir_fd=ddir, follow_symlinks=True)
                return
        # Non-blocking, then checked on the fd: a FIFO swapped in for the file cannot hang us.
        src = open_regular_at(sdir, name, st)
        try:
            dst = os.open(dname, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                          dir_fd=ddir)
            try:
                _copy_data(src, dst)
            finally:
                os.close(dst)
        finally:
            os.close(src)
        self.metadata(at, st)
        if st.st_nlink > 1 and self.keep_hardlinks:
            self.links[(st.st_dev, st.st_ino)] = os.open(dname, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=ddir)

    def metadata(self, at: _At, st: os.stat_result) -> None:
        """Owner, then mode (chown clears set-id bits), then xattrs and ACLs, then times."""
        sdir, name, ddir, dname, rel = at.sdir, at.name, at.ddir, at.dname, at.rel
        sfd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=sdir)
        dfd = os.open(dname, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=ddir)
        try:
            if not _same(os.fstat(sfd), st):  # the xattrs must be those of what was copied
                raise OSError(errno.EAGAIN, "changed while being copied", rel)
            chown_fd(dfd, st.st_uid, st.st_gid)
            chmod_fd(dfd, stat.S_IMODE(st.st_mode))
            for key, value in xattr.get_all_fd(sfd).items():
                try:
                    xattr.set_fd(dfd, key, value)
                except OSError as e:
                    if e.errno not in _XATTR_SOFT:
                        raise
                    self.report.xattr_failures.append(f"{rel}: {key}: {e.strerror}")
        finally:
            os.close(sfd)
            os.close(dfd)
        os.utime(dname, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=ddir, follow_symlinks=False)


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _copy_data(src: int, dst: int) -> None:
    try:
        fcntl.ioctl(dst, FICLONE, src)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EPERM):
            raise
    else:
        return
    # copy_file_range copies in the kernel (server-side, or reflinked, where it can); both
    # fds' offsets advance, so the plain fallback below continues from where it stopped.
    with contextlib.suppress(OSError):  # EXDEV, EOPNOTSUPP...: the fallback handles the rest
        while os.copy_file_range(src, dst, 1 << 30) > 0:
            pass
    while chunk := os.read(src, 1 << 20):  # the plain fallback, from wherever the kernel stopped
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view):]


def copy_tree_at(
    src_dir_fd: int,
    src_name: str,
    dst_dir_fd: int,
    dst_name: str,
    *,
    merge: bool = False,
    cross_mounts: bool = True,
    hardlinks: bool = False,
) -> CopyReport:
    """Copy ``src_name`` in ``src_dir_fd`` (any file type) to ``dst_name`` in ``dst_dir_fd``.

    The destination must not exist, unless ``merge``: then existing directories are copied
    into and existing non-directories are left alone (listed in ``skipped``). With
    ``cross_mounts`` False, a mount point below the source (a bind mount of the same file system
    too: mount ids tell them apart, st_dev does not) is copied as an empty directory.
    ``hardlinks`` recreates hard links between copied files instead of copying each.
    """
    _check_name(src_name)
    _check_name(dst_name)
    copier = _Copier(merge=merge, cross_mounts=cross_mounts, keep_hardlinks=hardlinks,
                     root_mount=mount_id(src_dir_fd, src_name))
    try:
        copier.run(src_dir_fd, src_name, dst_dir_fd, dst_name)
    finally:
        copier.close()
    return copier.report
