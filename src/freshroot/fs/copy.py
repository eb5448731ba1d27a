"""The one tree copy: copy_tree_at() and copy_fd_at(), between directory fds, never following
a symlink.

For migrating state into /persist (a faithful copy, the default CopyPolicy) and for tmpfiles'
``C`` lines (systemd's copy_tree_at, freshroot.tmpfiles.copy's policy). Every entry is opened
O_PATH|O_NOFOLLOW relative to its directory's fd and acted on through that fd, so a symlink
anywhere in the source is copied as a symlink and never followed, a file is read only if the
very inode looked at is a regular file (a FIFO swapped in by a user is never opened), and
nothing outside the two trees is read or written. The walk is iterative, with at most
freshroot.fs.walk's budget of fds per tree, whatever the depth.

File data is reflinked (FICLONE) where the file system can, else copied in the kernel
(copy_file_range). Modes, owners, extended attributes (ACLs are the ``system.posix_acl_*``
ones), timestamps (ns; directories after their contents), symlinks, FIFOs, sockets and device
nodes are copied. Files with several hard links become separate copies and are reported,
unless ``hardlinks`` asks for the links to be recreated inside the copy (only between copies:
never a link to a source file). A directory of the source that is the copy's top itself
(copying a tree into itself) is never descended into. ``snapshots`` (a mover's): each regular
file is copied under a read lease and its snapshot kept (fs.snapshot), so that the mover can
tell it unchanged later without reading it again.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from freshroot.fs import xattr
from freshroot.fs.moving import lease_intact, take_read_lease
from freshroot.fs.ops import _check_name, chmod_fd, chown_fd, fd_path, mount_id, reopen
from freshroot.fs.snapshot import Snapshots
from freshroot.fs.walk import DIR_FLAGS, DirStack

FICLONE = 0x40049409  # _IOW(0x94, 9, int)
_PATH = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
# Copying an xattr can fail for reasons that do not make the copy wrong (an SELinux label
# the destination refuses, user.* on a file system without them): reported, not fatal.
_XATTR_SOFT = (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EACCES, errno.EINVAL)
# Told of the work done, (entries, bytes), as it is done: freshroot.progress counts it.
# Entries are what is not a directory (fs.walk.usage's files), so a total can be known ahead.
Tick = Callable[[int, int], None]
_TICK_CHUNK = 64 << 20  # bytes copied between two ticks inside one big file
# FICLONE errors that say the two file systems cannot share extents at all (not: this file
# cannot): a copy stops asking after the first.
_NO_CLONE = (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.ENOSYS)
# Copies held open (O_PATH) for the hard links still to come: a file is dropped once all its
# links were seen, and the oldest when there are more (a later name of it becomes a copy).
_LINKS_OPEN = 256


@dataclass(frozen=True, slots=True)
class CopyPolicy:
    """What a copy keeps, and how it treats what is in its way.

    ``merge``: existing directories are copied into and existing non-directories left alone
    (listed in ``skipped``); else the destination must not exist. ``cross_mounts`` False: a
    mount point below the source (a bind mount of the same file system too: mount ids tell
    them apart, st_dev does not) is copied as an empty directory. ``hardlinks``: recreate hard
    links between copied files. ``uid``/``gid``: the owner of every copy (-1: the source's).
    ``xattr_prefix``: copy only the attributes whose name starts with it.

    ``systemd``: as systemd's copy_tree_at for tmpfiles' ``C`` line: a failure below the top
    does not stop the rest (the first is raised at the end; EEXIST unless merging), an
    existing empty directory at the top is filled, a symlink in the way counts as systemd 262
    counts it, attributes that cannot be copied are skipped in silence, and FIFOs, sockets and
    devices get owner, mode and times but no attributes.
    """

    merge: bool = False
    cross_mounts: bool = True
    hardlinks: bool = False
    uid: int = -1
    gid: int = -1
    xattr_prefix: str = ""
    systemd: bool = False


@dataclass
class CopyReport:
    """What a copy did that the caller may want to tell someone about."""

    copied: int = 0
    hardlinks: list[str] = field(default_factory=list)  # copied as separate files (or relinked)
    skipped: list[str] = field(default_factory=list)  # already at the destination (merge)
    xattr_failures: list[str] = field(default_factory=list)  # "path: name: reason"


@dataclass(slots=True)
class _Frame:
    """A directory being copied: the names left, what its metadata comes from, the first failure."""

    names: Iterator[str]
    st: os.stat_result
    created: bool
    rel: str
    error: OSError | None = None
    aborted: bool = False  # a child could not even be opened: no metadata (as systemd)


class _Copier:
    def __init__(self, policy: CopyPolicy, root_mount: int, tick: Tick | None = None,
                 snapshots: Snapshots | None = None) -> None:
        self.p = policy
        self.tick = tick
        self.snapshots = snapshots
        self.report = CopyReport()
        self.root_mount = root_mount  # the mount id of the source's top
        self.links: dict[tuple[int, int], tuple[int, int]] = {}  # (dev, ino) -> O_PATH fd of the copy, links to come
        self.skip = (-1, -1)  # (dev, ino) of the destination's top: never copied into itself
        self.clone = True  # False once a reflink was refused for a reason of the file systems

    def close(self) -> None:
        for fd, _ in self.links.values():
            os.close(fd)
        self.links.clear()

    def owner(self, st: os.stat_result) -> tuple[int, int]:
        return (self.p.uid if self.p.uid != -1 else st.st_uid, self.p.gid if self.p.gid != -1 else st.st_gid)

    # --- the tree --------------------------------------------------------------------------

    def run(self, src: int, st: os.stat_result, ddir: int, dname: str) -> None:
        """Copy what the O_PATH fd ``src`` is to ``dname`` in ``ddir``: depth first, on an
        explicit stack (never one Python frame or one held fd per level: freshroot.fs.walk)."""
        if not stat.S_ISDIR(st.st_mode):
            if self.p.merge and _exists(ddir, dname):
                self.report.skipped.append(dname)
                return
            self.leaf(src, st, ddir, dname, dname)
            return
        created = self.make_dir(ddir, dname, top=True)
        top = reopen(src, os.O_RDONLY | os.O_DIRECTORY)
        try:
            sdirs, ddirs = DirStack(top), DirStack(ddir)
            try:
                ddirs.push(dname)
                self.skip = ddirs.levels[-1].key
                frames = [self.frame(top, st, created, dname)]
                self.walk(sdirs, ddirs, frames)
            finally:
                sdirs.close()
                ddirs.close()
        finally:
            os.close(top)

    def frame(self, sfd: int, st: os.stat_result, created: bool, rel: str) -> _Frame:
        names: list[str] = []
        if self.p.cross_mounts or mount_id(sfd) == self.root_mount:
            names = sorted(os.listdir(sfd))
        return _Frame(iter(names), st, created, rel)

    def walk(self, sdirs: DirStack, ddirs: DirStack, frames: list[_Frame]) -> None:
        while frames:
            frame = frames[-1]
            child = None if frame.aborted else next(frame.names, None)
            if child is None:
                frames.pop()
                if frame.created and not frame.aborted:  # a directory merged into keeps its metadata
                    self.metadata(sdirs.fd(), frame.st, ddirs.fd(), frame.rel, special=False)
                    self.report.copied += 1
                if frames:  # the top's fds are the caller's
                    sdirs.pop()
                    ddirs.pop()
                if frame.error is not None:
                    if not frames:
                        raise frame.error
                    self.failed(frames[-1], frame.error, frame.rel)
                continue
            rel = f"{frame.rel}/{child}"
            try:
                cfd = os.open(child, _PATH, dir_fd=sdirs.fd())
            except OSError as e:
                if not self.p.systemd:
                    raise
                frame.error, frame.aborted = frame.error or e, True
                continue
            try:
                cst = os.fstat(cfd)
                if (cst.st_dev, cst.st_ino) == self.skip:
                    continue
                if stat.S_ISDIR(cst.st_mode):
                    created = self.make_dir(ddirs.fd(), child, top=False)
                    sfd = sdirs.push(child, cst)  # EAGAIN if no longer the directory opened
                    try:
                        ddirs.push(child)
                    except BaseException:
                        sdirs.pop()
                        raise
                    frames.append(self.frame(sfd, cst, created, rel))
                elif self.p.merge and _exists(ddirs.fd(), child):
                    self.report.skipped.append(rel)
                else:
                    self.leaf(cfd, cst, ddirs.fd(), child, rel)
            except OSError as e:
                if not self.p.systemd:
                    raise
                self.failed(frame, e, child)
            finally:
                os.close(cfd)

    def failed(self, frame: _Frame, e: OSError, name: str) -> None:
        """systemd's policy: remember the first failure in a directory, and go on."""
        if isinstance(e, FileExistsError):
            if not self.p.merge:
                frame.error = frame.error or OSError(errno.EEXIST, "exists", name)
            return
        frame.error = frame.error or e

    def make_dir(self, ddir: int, name: str, *, top: bool) -> bool:
        """Make the copy of a directory (0700 until its metadata is set); False: merge into
        the one there. Raises what is in the way, as the policy says."""
        try:
            os.mkdir(name, 0o700, dir_fd=ddir)
        except FileExistsError:
            existing = os.stat(name, dir_fd=ddir, follow_symlinks=False)
            if not self.p.systemd:
                if not self.p.merge or not stat.S_ISDIR(existing.st_mode):
                    raise
                return False
            if stat.S_ISLNK(existing.st_mode):
                # What systemd 262's copy_tree_at does with a symlink in the way, as observed: a
                # dangling one or (without '+') one to a non-empty directory counts as
                # "exists", anything else is "not a directory".
                try:
                    followed = os.stat(name, dir_fd=ddir)
                except FileNotFoundError:
                    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), name) from None
                if stat.S_ISDIR(followed.st_mode) and not self.p.merge and not _is_empty_dir(ddir, name, follow=True):
                    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), name) from None
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), name) from None
            if not stat.S_ISDIR(existing.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), name) from None
            if not self.p.merge and not (top and _is_empty_dir(ddir, name, follow=False)):
                raise
            return False
        return True

    # --- one entry ---------------------------------------------------------------------------

    def leaf(self, src: int, st: os.stat_result, ddir: int, dname: str, rel: str) -> None:
        """Copy what the O_PATH fd ``src`` is, anything but a directory."""
        if stat.S_ISREG(st.st_mode):
            self.regular(src, st, ddir, dname, rel)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink("", dir_fd=src), dname, dir_fd=ddir)
            os.chown(dname, *self.owner(st), dir_fd=ddir, follow_symlinks=False)
            os.utime(dname, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=ddir, follow_symlinks=False)
        else:  # FIFO, socket, character or block device: a new node of the same kind, never opened
            os.mknod(dname, stat.S_IFMT(st.st_mode) | 0o600, st.st_rdev, dir_fd=ddir)
            dfd = os.open(dname, _PATH, dir_fd=ddir)
            try:
                if stat.S_IFMT(os.fstat(dfd).st_mode) != stat.S_IFMT(st.st_mode):
                    raise OSError(errno.EAGAIN, "changed while being copied", rel)
                self.metadata(src, st, dfd, rel, special=True)
            finally:
                os.close(dfd)
        self.report.copied += 1
        if self.tick is not None:
            self.tick(1, 0)

    def regular(self, src: int, st: os.stat_result, ddir: int, dname: str, rel: str) -> None:
        if st.st_nlink > 1 and not self.p.systemd:
            self.report.hardlinks.append(rel)
            key = (st.st_dev, st.st_ino)
            first = self.links.get(key)
            if first is not None:
                # linkat through the magic link of an O_PATH fd links that very inode: the
                # copy made a moment ago, never the source's inode.
                os.link(fd_path(first[0]), dname, dst_dir_fd=ddir, follow_symlinks=True)
                if first[1] > 1:
                    self.links[key] = first[0], first[1] - 1
                else:  # every link seen
                    del self.links[key]
                    os.close(first[0])
                return
        # The inode the O_PATH fd holds is a regular file (st is its fstat, and an inode never
        # changes type): reopening it through its magic link cannot block or open anything else.
        rfd = os.open(fd_path(src), os.O_RDONLY | os.O_NOCTTY | os.O_CLOEXEC)
        try:
            # A mover's snapshot: the lease, granted only while nobody has the file open for
            # writing, is taken after ``st`` and checked after the copy (fs.snapshot).
            leased = (self.snapshots is not None and self.snapshots.worth_taking(rfd, st)
                      and take_read_lease(rfd) is True)
            dst = os.open(dname, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                          dir_fd=ddir)
            try:
                self.clone = copy_data(rfd, dst, None if self.tick is None else self.tick_bytes,
                                       st=st, clone=self.clone)
                if leased and self.snapshots is not None:
                    after, copied = os.fstat(rfd), os.fstat(dst)
                    if lease_intact(rfd):
                        self.snapshots.take(st, after, copied)
                # Both fds are real ones here: f*() calls, not the /proc path lookups an O_PATH
                # fd needs (a third of a small file's copy cost). Same order as metadata().
                os.fchown(dst, *self.owner(st))
                os.fchmod(dst, stat.S_IMODE(st.st_mode))
                self.xattrs(rfd, dst, rel, opened=True)
                os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(dst)
        finally:
            os.close(rfd)
        if st.st_nlink > 1 and self.p.hardlinks and not self.p.systemd:
            if len(self.links) >= _LINKS_OPEN:
                oldest = next(iter(self.links))
                os.close(self.links.pop(oldest)[0])
            self.links[(st.st_dev, st.st_ino)] = os.open(dname, _PATH, dir_fd=ddir), st.st_nlink - 1

    def tick_bytes(self, n: int) -> None:
        assert self.tick is not None
        self.tick(0, n)

    def metadata(self, src: int, st: os.stat_result, dst: int, rel: str, *, special: bool) -> None:
        """Owner, then mode (chown clears set-id bits), then xattrs and ACLs, then times; on
        the destination's fd (O_PATH or not), from the source's."""
        chown_fd(dst, *self.owner(st))
        chmod_fd(dst, stat.S_IMODE(st.st_mode))
        if not (special and self.p.systemd):
            self.xattrs(src, dst, rel)
        os.utime(fd_path(dst), ns=(st.st_atime_ns, st.st_mtime_ns))

    def xattrs(self, src: int, dst: int, rel: str, *, opened: bool = False) -> None:
        """Copy the extended attributes; ``opened``: both fds are real ones, not O_PATH."""
        try:
            values = xattr.get_all_fd(src, opened=opened)
        except OSError:
            if self.p.systemd:
                return  # systemd's copy_xattr copies what it can read
            raise
        for key, value in values.items():
            if not key.startswith(self.p.xattr_prefix):
                continue
            try:
                xattr.set_fd(dst, key, value, opened=opened)
            except OSError as e:
                if self.p.systemd:
                    continue
                if e.errno not in _XATTR_SOFT:
                    raise
                self.report.xattr_failures.append(f"{rel}: {key}: {e.strerror}")


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _is_empty_dir(dir_fd: int, name: str, *, follow: bool) -> bool:
    fd = os.open(name, DIR_FLAGS & ~os.O_NOFOLLOW if follow else DIR_FLAGS, dir_fd=dir_fd)
    try:
        return not os.listdir(fd)
    finally:
        os.close(fd)


def copy_data(src: int, dst: int, tick: Callable[[int], None] | None = None, *,
              st: os.stat_result | None = None, clone: bool = True) -> bool:
    """Copy the data of the readable fd ``src`` to the writable fd ``dst``, from their offsets:
    a reflink where the file system can, else in the kernel, else through a buffer. ``tick``
    is told the bytes copied as they are (every 64 MiB at most), for a progress line.

    ``st``: the source's stat, when both fds are at offset 0 of a new file: a file with fewer
    blocks than its size (sparse) is copied range by range of data, its holes left holes (as
    ``cp --sparse=auto``). ``clone`` False: no reflink is tried. Returns whether one is worth
    trying for the next file between the same file systems (False once refused for a reason
    of the file systems, not of this file)."""
    if clone:
        try:
            fcntl.ioctl(dst, FICLONE, src)
        except OSError as e:
            if e.errno in _NO_CLONE:
                clone = False
            elif e.errno not in (errno.EINVAL, errno.EPERM):
                raise
        else:
            if tick is not None:
                tick(os.fstat(dst).st_size)
            return True
    if st is not None and st.st_blocks * 512 < st.st_size and _copy_sparse(src, dst, tick):
        return clone
    # copy_file_range copies in the kernel (server-side, or reflinked, where it can); both
    # fds' offsets advance, so the plain fallback below continues from where it stopped.
    chunk_size = 1 << 30 if tick is None else _TICK_CHUNK
    try:
        while (n := os.copy_file_range(src, dst, chunk_size)) > 0:
            if tick is not None:
                tick(n)
    except OSError:  # EXDEV, EOPNOTSUPP...: the fallback handles the rest
        pass
    else:
        return clone  # at the end of the source: nothing left for the fallback
    while chunk := os.read(src, 1 << 20):  # the plain fallback, from wherever the kernel stopped
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view):]
        if tick is not None:
            tick(len(chunk))
    return clone


def _copy_sparse(src: int, dst: int, tick: Callable[[int], None] | None) -> bool:
    """Copy the data ranges of ``src`` (SEEK_DATA/SEEK_HOLE) to the same offsets of the empty
    ``dst``, leaving the holes between them unwritten, then give ``dst`` the source's size.
    False: the file system cannot tell holes from data (nothing was copied)."""
    end = os.lseek(src, 0, os.SEEK_END)
    pos = 0
    while pos < end:
        try:
            data = os.lseek(src, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:
                break  # a hole from pos to the end
            if pos == 0 and e.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                os.lseek(src, 0, os.SEEK_SET)
                return False
            raise
        hole = min(os.lseek(src, data, os.SEEK_HOLE), end)
        _copy_range(src, dst, data, hole - data, tick)
        pos = hole
    os.ftruncate(dst, end)  # the hole at the end, if there is one
    return True


def _copy_range(src: int, dst: int, offset: int, length: int, tick: Callable[[int], None] | None) -> None:
    """``length`` bytes from ``offset`` of ``src`` to the same offset of ``dst``: in the
    kernel, else through a buffer (the fds' own offsets are not used)."""
    stop = offset + length
    with contextlib.suppress(OSError):  # EXDEV, EOPNOTSUPP...: the buffer copies the rest
        while offset < stop and (n := os.copy_file_range(src, dst, min(stop - offset, _TICK_CHUNK),
                                                         offset, offset)) > 0:
            offset += n
            if tick is not None:
                tick(n)
    while offset < stop and (chunk := os.pread(src, min(stop - offset, 1 << 20), offset)):
        view = memoryview(chunk)
        at = offset
        while view:
            written = os.pwrite(dst, view, at)
            view, at = view[written:], at + written
        offset += len(chunk)
        if tick is not None:
            tick(len(chunk))


def copy_fd_at(src_fd: int, dst_dir_fd: int, dst_name: str, policy: CopyPolicy = CopyPolicy(),
               tick: Tick | None = None, snapshots: Snapshots | None = None) -> CopyReport:
    """Copy what the O_PATH fd ``src_fd`` refers to (any file type; a symlink is copied as
    one) to ``dst_name`` in ``dst_dir_fd``, as ``policy`` says; ``tick`` is told (entries,
    bytes) as they are copied; ``snapshots`` gets the regular files' snapshots."""
    _check_name(dst_name)
    copier = _Copier(policy, mount_id(src_fd), tick, snapshots)
    try:
        copier.run(src_fd, os.fstat(src_fd), dst_dir_fd, dst_name)
    finally:
        copier.close()
    return copier.report


def copy_tree_at(
    src_dir_fd: int,
    src_name: str,
    dst_dir_fd: int,
    dst_name: str,
    *,
    merge: bool = False,
    cross_mounts: bool = True,
    hardlinks: bool = False,
    tick: Tick | None = None,
    snapshots: Snapshots | None = None,
) -> CopyReport:
    """Copy ``src_name`` in ``src_dir_fd`` (any file type) to ``dst_name`` in ``dst_dir_fd``:
    a faithful copy (see CopyPolicy for ``merge``, ``cross_mounts`` and ``hardlinks``;
    ``snapshots``: see the module's doc)."""
    _check_name(src_name)
    src = os.open(src_name, _PATH, dir_fd=src_dir_fd)
    try:
        return copy_fd_at(src, dst_dir_fd, dst_name,
                          CopyPolicy(merge=merge, cross_mounts=cross_mounts, hardlinks=hardlinks), tick, snapshots)
    finally:
        os.close(src)
