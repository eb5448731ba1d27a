"""Moving data that sits on the root into storage, so that no byte is lost at any moment.

1. copy the root's entry to ``.freshroot-migrate.NAME`` beside its place in storage,
   fsyncing every file and directory written;
2. rename the copy into place (atomic; it replaces an empty directory or empty file) and
   fsync the storage directory: from here the data is durable in storage;
3. only then, for ``move``, empty the root's entry (the directory stays, as the mount
   point; a file is replaced by an empty one with the same owner and mode).

A crash in 1 leaves a stale temporary copy, removed by the next run; a crash after 2 leaves
data in both places, and the next run sees that the root's copy is contained in storage
(same entries, same bytes) and carries on with 3. If the two differ it stops.
"""

from __future__ import annotations

import contextlib
import os
import stat

from freshroot.errors import OperationError
from freshroot.fs import bindmount, durable, ops
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.fs.copy import copy_tree_at
from freshroot.persist.model import Kind, Migrate
from freshroot.plan.action import Context

TMP_PREFIX = ".freshroot-migrate."
SAFE = ChaseFlags.SAFE


def _has_data(dir_fd: int, name: str) -> bool | None:
    """None: missing; False: an empty file or directory; True: anything else."""
    try:
        st = ops.lstat_at(dir_fd, name)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(st.st_mode):
        fd = ops.open_dir_at(dir_fd, name)
        try:
            return bool(os.listdir(fd))
        finally:
            os.close(fd)
    return not (stat.S_ISREG(st.st_mode) and st.st_size == 0)


def _fsync_dir(dir_fd: int) -> None:
    fd = ops.reopen(dir_fd, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _empty(dir_fd: int, name: str, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        fd = ops.open_dir_at(dir_fd, name)
        try:
            for child in os.listdir(fd):
                ops.remove_tree_at(fd, child)
        finally:
            os.close(fd)
        return
    # unlink, not truncate: a hard link elsewhere must keep its bytes
    ops.unlink_at(dir_fd, name)
    fd = ops.create_at(dir_fd, name, 0o600, exclusive=True)
    try:
        os.fchown(fd, st.st_uid, st.st_gid)
        os.fchmod(fd, stat.S_IMODE(st.st_mode))
    finally:
        os.close(fd)


def migrate(ctx: Context, path: str, source: str, kind: Kind, how: Migrate) -> bool:
    """Migrate ``path`` on the root into ``source`` in storage. False: nothing to migrate."""
    shown, shown_source = ctx.display(path), ctx.display(source)
    with chase(path, root_fd=ctx.root_fd, flags=SAFE | ChaseFlags.PARENT) as tparent:
        tname = tparent.rest
        try:
            tst = ops.lstat_at(tparent.fd, tname)
        except FileNotFoundError:
            return False
        want = stat.S_ISDIR if kind is Kind.DIRECTORY else stat.S_ISREG
        if not want(tst.st_mode):
            raise OperationError(f"{shown}: not a {kind.value}; nothing migrated")
        tfd = ops.open_path_at(tparent.fd, tname)
        try:
            if bindmount.is_mount_root(tfd, tparent.fd):
                return False  # already mounted: whatever shows there is storage or another mount
        finally:
            os.close(tfd)
        if not _has_data(tparent.fd, tname):
            return False
        with chase(source, root_fd=ctx.root_fd, flags=SAFE | ChaseFlags.PARENT) as sparent:
            sname = sparent.rest
            if _has_data(sparent.fd, sname):
                if not durable.contained_at(tparent.fd, tname, sparent.fd, sname):
                    raise OperationError(
                        f"{shown} and {shown_source} both hold data, and they differ; "
                        "freshroot will not choose between them",
                        hint="compare them, keep one (move or delete the other), then apply again")
                # An earlier, interrupted run made the copy: go on to remove the original.
            else:
                tmp = TMP_PREFIX + sname
                with contextlib.suppress(FileNotFoundError):
                    ops.remove_tree_at(sparent.fd, tmp)
                # A mount point inside is copied as an empty directory and left alone by
                # the removal below: what is on another file system stays where it is.
                copy_tree_at(tparent.fd, tname, sparent.fd, tmp, cross_mounts=False)
                durable.fsync_tree_at(sparent.fd, tmp)
                ops.rename_at(sparent.fd, tmp, sparent.fd, sname)
                _fsync_dir(sparent.fd)
        if how is Migrate.MOVE:
            _empty(tparent.fd, tname, tst)
    return True
