"""/run/freshroot below the target root: the one directory freshroot keeps its lock and its
state store in, and the checks that let it trust what it finds there.

Everything in it steers root: the lock decides who may change the root, the store decides what
``undo`` unmounts, removes and rewrites. So the directory is root's alone (0700, owned by the
user freshroot runs as, normally root), and every file in it is opened without following a
symlink (O_NOFOLLOW), without blocking on a FIFO (O_NONBLOCK), and checked *on the fd* before
it is trusted or truncated: a regular file, owned by us, one link (a hard link to /etc/shadow
planted while the directory was open to others must not be truncated), not accessible to group
or others. A directory freshroot made with looser permissions (0755, before these checks) is
tightened; one owned by another user is refused, as is a file in it that fails the checks and
that freshroot cannot safely replace.
"""

from __future__ import annotations

import errno
import os
import stat

from freshroot.errors import OperationError
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.fs.ops import mkdir_at, open_path_at

DIRECTORY = "/run/freshroot"
PARENTS = ("/run", DIRECTORY)
_OPEN = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class StateRefusedError(OperationError):
    """A lock or store file (or its directory) freshroot will not trust."""


def _refuse(path: str, why: str) -> StateRefusedError:
    """``path`` as the root sees it, as every message names paths (freshroot.rootpaths)."""
    return StateRefusedError(
        f"{path}: {why}; refusing to trust it",
        hint=f"only root may own and write {DIRECTORY}; check who made it, then remove it",
    )


def open_dir(root_fd: int, *, create: bool = True) -> tuple[int, list[str]] | None:
    """An O_RDONLY fd of /run/freshroot (checked and tightened as the module doc says), and the
    directories of PARENTS this call created. None when it is missing and ``create`` is false."""
    made: list[str] = []
    for path in PARENTS:
        mode = 0o755 if path == "/run" else 0o700
        try:
            with chase(path, root_fd=root_fd, flags=ChaseFlags.PARENT | ChaseFlags.SAFE) as parent:
                if create and mkdir_at(parent.fd, parent.rest, mode):
                    made.append(path)
                elif not create:
                    os.close(open_path_at(parent.fd, parent.rest))  # raises FileNotFoundError
        except FileNotFoundError:
            if create:
                raise
            return None
    with chase(DIRECTORY, root_fd=root_fd, flags=ChaseFlags.PARENT | ChaseFlags.SAFE) as parent:
        fd = os.open(parent.rest, os.O_RDONLY | os.O_DIRECTORY | _OPEN, dir_fd=parent.fd)
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            raise _refuse(DIRECTORY, f"owned by uid {st.st_uid}, not by uid {os.geteuid()} (freshroot)")
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.fchmod(fd, 0o700)  # ours, made before these checks: only ours from now on
    except BaseException:
        os.close(fd)
        raise
    return fd, made


def check_fd(fd: int, path: str, others: int = 0o022) -> os.stat_result:
    """Raise StateRefusedError unless ``fd`` is a regular file of ours with one link and none of
    the ``others`` permission bits (the lock: no access at all for group or others; the store:
    not writable by them)."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(path, "not a regular file")
    if st.st_uid != os.geteuid():
        raise _refuse(path, f"owned by uid {st.st_uid}, not by uid {os.geteuid()} (freshroot)")
    if st.st_nlink != 1:
        raise _refuse(path, f"has {st.st_nlink} hard links (a link to another file?)")
    if stat.S_IMODE(st.st_mode) & others:
        raise _refuse(path, f"mode {stat.S_IMODE(st.st_mode):04o} lets others in")
    return st


def open_file(dir_fd: int, name: str, flags: int, others: int = 0o022) -> int | None:
    """Open ``name`` in the state directory and check it (see :func:`check_fd`). With O_CREAT
    a missing file is made 0600. None when it is missing (without O_CREAT)."""
    path = f"{DIRECTORY}/{name}"
    try:
        fd = os.open(name, flags | _OPEN, 0o600, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EMLINK):
            raise _refuse(path, "not a regular file") from None
        raise
    try:
        check_fd(fd, path, others)
    except BaseException:
        os.close(fd)
        raise
    return fd


def replace_file(dir_fd: int, name: str, flags: int) -> int:
    """Like :func:`open_file` with O_CREAT, but a file that fails the checks is unlinked (it is
    in root's own directory: nobody else's data) and made afresh, exclusively."""
    try:
        fd = open_file(dir_fd, name, flags | os.O_CREAT, 0o077)
    except StateRefusedError:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise
        if st is not None:
            os.unlink(name, dir_fd=dir_fd)
        fd = open_file(dir_fd, name, flags | os.O_CREAT | os.O_EXCL, 0o077)
    assert fd is not None
    return fd


def chase_dir(root_fd: int, path: str) -> int:
    """An O_PATH fd of directory ``path`` below the root, under chase's SAFE rule."""
    with chase(path, root_fd=root_fd, flags=ChaseFlags.SAFE) as found:
        return found.detach()
