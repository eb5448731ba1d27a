"""File operations on file descriptors.

Every function here takes a directory fd and a single name (never a path with '/'), or an
fd, and never follows a symlink in the name it is given. Paths are resolved only by
:func:`freshroot.fs.chase.chase`; everything after that works on what it returned.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Iterator

from freshroot.errors import UnsafePathError
from freshroot.fs.chase import Chased, ChaseFlags, chase, unsafe_transition

_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def _check_name(name: str) -> None:
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"not a single path component: {name!r}")


_FD_PREFIX = "/proc/self/fd/"


def fd_path(fd: int) -> str:
    """The /proc magic link of ``fd``: opening it reopens the same inode, never a re-resolved path."""
    return f"{_FD_PREFIX}{fd}"


def fd_name(fd: int) -> str:
    """What ``fd`` refers to, for a message (an OSError's file name): its path as the run's
    root sees it (freshroot.rootpaths: ``/var/lib/app``, not ``/mnt/var/lib/app`` nor
    ``/proc/self/fd/7``), as the kernel names it now, while the fd is open; the magic link
    when the kernel cannot say. For messages only: never reopened by this name."""
    from freshroot.rootpaths import in_root

    try:
        target = os.readlink(fd_path(fd))
    except OSError:
        return fd_path(fd)
    return in_root(target) if target.startswith("/") else fd_path(fd)


def shown(path: str) -> str:
    """``path`` for a message: a /proc/self/fd/N magic link (mount(2) is given those) as
    :func:`fd_name` names its fd; any other path as it is."""
    number = path.removeprefix(_FD_PREFIX)
    return fd_name(int(number)) if number != path and number.isdigit() else path


def open_root(path: str = "/") -> int:
    """An O_PATH fd for a root directory (the one path freshroot takes as given)."""
    return os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def reopen(fd: int, flags: int) -> int:
    """Turn an O_PATH fd into a real one (as systemd's fd_reopen), refusing symlinks."""
    st = os.fstat(fd)
    if stat.S_ISLNK(st.st_mode):
        raise OSError(errno.ELOOP, "is a symbolic link", fd_name(fd))
    if stat.S_ISDIR(st.st_mode) and flags & (os.O_WRONLY | os.O_RDWR) == 0:
        # O_DIRECTORY on "." of the fd is the cheapest way for directories.
        return os.open(".", flags | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
    return os.open(fd_path(fd), flags | os.O_CLOEXEC)


def scandir_fd(fd: int) -> Iterator[os.DirEntry[str]]:
    """os.scandir on a duplicate of a directory fd (O_PATH or not; scandir closes what it gets)."""
    dfd = reopen(fd, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with os.scandir(dfd) as it:
            yield from it
    finally:
        os.close(dfd)


def open_at(dir_fd: int, name: str, flags: int, mode: int = 0o644) -> int:
    _check_name(name)
    return os.open(name, flags | _NOFOLLOW, mode, dir_fd=dir_fd)


def open_path_at(dir_fd: int, name: str) -> int:
    return open_at(dir_fd, name, os.O_PATH)


def open_dir_at(dir_fd: int, name: str) -> int:
    """A readable directory fd for ``name`` (refuses a symlink there)."""
    return open_at(dir_fd, name, os.O_RDONLY | os.O_DIRECTORY)


def mkdir_at(dir_fd: int, name: str, mode: int = 0o755) -> bool:
    """mkdirat; True if created, False if a directory (not a symlink to one) was already there."""
    _check_name(name)
    try:
        os.mkdir(name, mode, dir_fd=dir_fd)
    except FileExistsError:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            raise
        return False
    return True


def create_at(dir_fd: int, name: str, mode: int = 0o644, *, exclusive: bool = True) -> int:
    """Create a regular file for writing; with ``exclusive``, only if nothing is there."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else 0)
    return open_at(dir_fd, name, flags, mode)


def symlink_at(target: str, dir_fd: int, name: str) -> None:
    _check_name(name)
    os.symlink(target, name, dir_fd=dir_fd)


def mknod_at(dir_fd: int, name: str, mode: int, device: int = 0) -> None:
    _check_name(name)
    os.mknod(name, mode, device, dir_fd=dir_fd)


def mkfifo_at(dir_fd: int, name: str, mode: int) -> None:
    _check_name(name)
    os.mkfifo(name, mode, dir_fd=dir_fd)


def unlink_at(dir_fd: int, name: str) -> None:
    _check_name(name)
    os.unlink(name, dir_fd=dir_fd)


def rmdir_at(dir_fd: int, name: str) -> None:
    _check_name(name)
    os.rmdir(name, dir_fd=dir_fd)


def rename_at(src_dir_fd: int, src: str, dst_dir_fd: int, dst: str) -> None:
    _check_name(src)
    _check_name(dst)
    os.rename(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)


def readlink_fd(fd: int) -> str:
    """The target of the symlink an O_PATH|O_NOFOLLOW fd refers to."""
    return os.readlink("", dir_fd=fd)


def lstat_at(dir_fd: int, name: str) -> os.stat_result:
    _check_name(name)
    return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)


def chown_fd(fd: int, uid: int, gid: int) -> None:
    """Change owner of what ``fd`` refers to (O_PATH fds and symlinks included); -1 keeps one."""
    from freshroot.fs import _libc  # ctypes costs start-up time; only chown needs it

    _libc.fchownat_empty(fd, uid, gid)


def chmod_fd(fd: int, mode: int, st: os.stat_result | None = None) -> None:
    """Change the mode of what ``fd`` refers to. Symlinks have no mode: refused with ELOOP.
    ``st``: the fd's stat, when the caller has it (the type of what an fd holds never changes)."""
    if st is None:
        st = os.fstat(fd)
    if stat.S_ISLNK(st.st_mode):
        raise OSError(errno.ELOOP, "cannot change the mode of a symbolic link", fd_name(fd))
    # chmod through the /proc magic link acts on the inode the fd holds (O_PATH has no fchmod).
    os.chmod(fd_path(fd), mode)


def listdir_fd(fd: int, *, sort: bool = True) -> list[str]:
    """Names in the directory ``fd`` (O_PATH or not), sorted (or, without ``sort``, in the order
    readdir(3) gives them), '.' and '..' left out."""
    dfd = reopen(fd, os.O_RDONLY | os.O_DIRECTORY)
    try:
        names = os.listdir(dfd)
        return sorted(names) if sort else names
    finally:
        os.close(dfd)


def mkdir_parents(
    root_fd: int, path: str, mode: int = 0o755, flags: ChaseFlags = ChaseFlags.SAFE
) -> Chased:
    """Make ``path`` (below ``root_fd``) and any missing parents; return the directory.

    Existing components are never changed. Each new directory is made with mkdirat in the
    fd of its parent, so a concurrent rename cannot redirect the creation.
    """
    found = chase(path, root_fd=root_fd, flags=flags | ChaseFlags.NONEXISTENT)
    rest = [c for c in found.rest.split("/") if c]
    with found:
        if not stat.S_ISDIR(os.fstat(found.fd).st_mode):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", found.path)
        fd = os.dup(found.fd)
        current = found.path
    try:
        for name in rest:
            if name == "..":
                raise OSError(errno.EINVAL, "'..' after a missing directory", path)
            created = mkdir_at(fd, name, mode)
            child = open_path_at(fd, name)
            child_st = os.fstat(child)
            current = current.rstrip("/") + "/" + name
            if not stat.S_ISDIR(child_st.st_mode):
                os.close(child)
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", current)
            # Someone else made it between chase() and here: vet it as chase() would have.
            if not created and ChaseFlags.SAFE in flags and unsafe_transition(os.fstat(fd), child_st):
                os.close(child)
                raise UnsafePathError(f"{current}: refusing to use it: it appeared while being created, "
                                      "owned by someone other than the owner of its parent")
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return Chased(fd, current, "", os.fstat(fd))


def mount_id(dir_fd: int, name: str = "") -> int:
    """The mount id (statx) of an entry: unlike st_dev it tells a bind mount from its source."""
    from freshroot.fs.statx import Mask, statx_at

    mnt_id = statx_at(dir_fd, name, Mask.TYPE | Mask.MNT_ID).mnt_id
    if mnt_id is None:  # kernels before 5.8; st_dev is the best left
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_dev if name else os.fstat(dir_fd).st_dev
    return mnt_id


def is_mount_point_at(dir_fd: int, name: str) -> bool:
    """Whether the entry ``name`` of ``dir_fd`` is the root of a mount (statx's
    STATX_ATTR_MOUNT_ROOT, else a mount id other than its directory's), as systemd's
    is_mount_point_at. Not st_dev: a btrfs subvolume has a device of its own, a bind mount
    of the same file system has the same."""
    from freshroot.fs.statx import Mask, statx_at

    known = statx_at(dir_fd, name, Mask.TYPE | Mask.MNT_ID).is_mount_root
    if known is not None:
        return known
    return mount_id(dir_fd, name) != mount_id(dir_fd)


def remove_tree_at(dir_fd: int, name: str, *, cross_mounts: bool = False) -> None:
    """Remove ``name`` and everything below it, as rm -rf would, but safely.

    Symlinks are removed, never followed. Directories are descended through fds opened
    with O_NOFOLLOW. Unless ``cross_mounts``, a mount point (bind mounts of the same file
    system included: they are told apart by mount id, not st_dev) and what is below it are
    left alone, everything else is removed, and OSError EBUSY names the first mount point
    at the end (its parent directories stay, since they are not empty).
    """
    _check_name(name)
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    kept: list[str] = []
    mount = None if cross_mounts else mount_id(dir_fd)
    if mount is not None and mount_id(dir_fd, name) != mount:
        raise OSError(errno.EBUSY, "is a mount point, not removing it", name)
    _remove_contents(dir_fd, name, mount, kept)
    if kept:
        raise OSError(errno.EBUSY, f"is a mount point, left in place with its parents ({len(kept)} in all)", kept[0])
    os.rmdir(name, dir_fd=dir_fd)


def _remove_contents(dir_fd: int, name: str, mount: int | None, kept: list[str]) -> None:
    """Empty directory ``name``, depth first on an explicit stack (never one Python frame or
    one held fd per level: freshroot.fs.walk). A directory below that is (or has become) a
    mount point is listed in ``kept`` with its parents left in place."""
    from freshroot.fs.walk import DirStack

    dirs = DirStack(dir_fd)
    todo: list[tuple[Iterator[str], int]] = []  # names left in each directory, len(kept) on entering it

    def enter(entry: str, est: os.stat_result | None) -> None:
        fd = dirs.push(entry, est)
        if mount is not None and mount_id(fd) != mount:
            kept.append(dirs.path())  # swapped for a mount point since we looked
            dirs.pop()
            return
        todo.append((iter(os.listdir(fd)), len(kept)))

    try:
        enter(name, None)
        while todo:
            names, before = todo[-1]
            entry = next(names, None)
            if entry is None:
                todo.pop()
                left = dirs.levels[-1].name
                dirs.pop()
                if todo and len(kept) == before:
                    os.rmdir(left, dir_fd=dirs.fd())
                continue
            fd = dirs.fd()
            est = os.stat(entry, dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISDIR(est.st_mode):
                os.unlink(entry, dir_fd=fd)
            elif mount is not None and mount_id(fd, entry) != mount:
                kept.append(dirs.path(entry))
            else:
                enter(entry, est)
    finally:
        dirs.close()


def remove_contents_one_device(dir_fd: int, name: str) -> None:
    """Empty the directory ``name`` as systemd's rm_rf_children with a root device does:
    directories on another device than ``name`` itself (a btrfs subvolume nested in it,
    another file system) and mount points are left alone without a word; everything else is
    removed, going on past failures. The first failure is raised at the end (ENOTEMPTY from
    a directory below that kept something). Iterative, within an fd budget (freshroot.fs.walk)."""
    from freshroot.fs.walk import DirStack

    _check_name(name)
    dev = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_dev
    dirs = DirStack(dir_fd)
    # Per directory being emptied: the names left, and the first failure inside it.
    todo: list[tuple[Iterator[str], list[OSError]]] = []
    try:
        todo.append((iter(os.listdir(dirs.push(name))), []))
        while todo:
            names, failed = todo[-1]
            entry = next(names, None)
            if entry is None:
                todo.pop()
                left = dirs.levels[-1].name
                dirs.pop()
                if not todo:
                    if failed:
                        raise failed[0]
                    return
                _done_with(dirs.fd(), left, failed, todo[-1][1])
                continue
            fd = dirs.fd()
            try:
                est = os.stat(entry, dir_fd=fd, follow_symlinks=False)
                if not stat.S_ISDIR(est.st_mode):
                    os.unlink(entry, dir_fd=fd)
                    continue
                if est.st_dev != dev or is_mount_point_at(fd, entry):
                    continue
            except FileNotFoundError:
                continue
            except OSError as e:
                failed[:] = failed or [e]
                continue
            try:
                todo.append((iter(os.listdir(dirs.push(entry))), []))
            except OSError as e:  # could not be opened: its failure, as if emptying it failed
                if not isinstance(e, FileNotFoundError):
                    failed[:] = failed or [e]
    finally:
        dirs.close()


def _done_with(parent_fd: int, name: str, inside: list[OSError], failed: list[OSError]) -> None:
    """A directory below has been emptied: remove it, or pass on its first failure."""
    if inside:
        if not isinstance(inside[0], FileNotFoundError):
            failed[:] = failed or inside
        return
    try:
        os.rmdir(name, dir_fd=parent_fd)
    except FileNotFoundError:
        pass
    except OSError as e:
        failed[:] = failed or [e]


def read_at(dir_fd: int, name: str, limit: int = 16 << 20) -> bytes:
    """Read a regular file (never through a symlink), at most ``limit`` bytes."""
    fd = open_at(dir_fd, name, os.O_RDONLY)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", name)
        return read_fd(fd, limit)
    finally:
        os.close(fd)


def read_host(path: str, limit: int = sys.maxsize) -> bytes:
    """Read a file the user named on the host (a command-line argument), opened as open(2) opens
    it: the kernel resolves the path, so /dev/stdin, /proc/self/fd/N and FIFOs work. Only for
    paths that are meant as the host's; anything below a target root goes through chase()."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return read_fd(fd, limit)
    finally:
        os.close(fd)


def read_opath(fd: int, st: os.stat_result, limit: int = sys.maxsize) -> bytes:
    """Read what an O_PATH fd (from chase(), or open_path_at()) refers to, ``st`` being its
    fstat, through that fd, never the path again. A directory fails with EISDIR, as read(2)
    does; anything but a regular file is opened O_NONBLOCK, so a FIFO swapped in cannot block
    the caller."""
    flags = os.O_RDONLY if stat.S_ISREG(st.st_mode) else os.O_RDONLY | os.O_NONBLOCK
    rfd = reopen(fd, flags)
    try:
        return read_fd(rfd, limit)
    finally:
        os.close(rfd)


def real_path_fd(fd: int) -> str:
    """The path the kernel names for ``fd`` (its /proc magic link): for messages only."""
    return os.readlink(fd_path(fd))


def read_fd(fd: int, limit: int = 16 << 20) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, min(1 << 20, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
