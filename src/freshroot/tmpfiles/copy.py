"""The C line: copy a tree into place, as systemd's copy_files / copy_tree_at do.

The source is looked up inside the root (systemd prefixes it with --root). A missing target
is made as a copy (contents, mode, owner or the line's user/group, xattrs, timestamps);
an existing empty directory is filled ('C'), an existing directory is merged into without
overwriting anything ('C+'); anything else that exists is left alone. Then owner and mode
of the top are adjusted as for any created node.
"""

from __future__ import annotations

import errno
import os
import stat

from freshroot.fs import nodes, ops
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.tmpfiles.context import Context, Creation, base_name
from freshroot.tmpfiles.model import Item
from freshroot.tmpfiles.perms import set_perms


def copy_files(ctx: Context, item: Item) -> None:
    source = item.argument or ""
    # systemd joins the source with --root when it reads the line: its messages show it so.
    ctx.action("Would copy", "Copying", f'tree "{ctx.shown(source)}" to "{ctx.shown(item.path)}"')
    if ctx.dry_run:
        return
    name = base_name(item.path)
    uid = item.uid.id if item.uid is not None else -1
    gid = item.gid.id if item.gid is not None else -1
    with ctx.open_parent(item, item.path) as parent:
        err: OSError | None = None
        try:
            with chase(source, root_fd=ctx.root_fd, flags=ChaseFlags.NOFOLLOW) as src:
                _copy(src.fd, parent.fd, name, uid, gid, merge=item.plus, top=True)
        except OSError as e:
            err = e
        if err is not None and err.errno != errno.EEXIST:
            raise ctx.os_failure(f"Failed to copy files to {ctx.shown(item.path)}", err) from err
        try:
            fd = ops.open_path_at(parent.fd, name)
        except OSError as e:
            if err is not None:
                raise ctx.os_failure(f"Failed to copy files to {ctx.shown(item.path)}", err) from err
            raise ctx.os_failure(f"Failed to openat({ctx.shown(item.path)})", e) from e
        try:
            st = os.fstat(fd)
            try:
                with chase(source, root_fd=ctx.root_fd, flags=ChaseFlags.NOFOLLOW) as src:
                    a = src.st
            except OSError as e:
                raise ctx.os_failure(f"Failed to stat({source})", e) from e
            if stat.S_IFMT(st.st_mode) != stat.S_IFMT(a.st_mode):
                ctx.debug(f"Can't copy to {ctx.shown(item.path)}, file exists already and is of different type")
                return
            set_perms(ctx, item, fd, item.path, st, Creation.COPIED)
        finally:
            os.close(fd)


def _copy(
    src_fd: int, dir_fd: int, name: str, uid: int, gid: int, *, merge: bool, top: bool,
    skip: tuple[int, int] = (-1, -1),
) -> None:
    """Copy what the O_PATH fd ``src_fd`` is to ``name`` in ``dir_fd``. EEXIST when a node is
    there (unless a directory may be merged into)."""
    st = os.fstat(src_fd)
    owner = (uid if uid != -1 else st.st_uid, gid if gid != -1 else st.st_gid)
    mode = stat.S_IFMT(st.st_mode)
    if mode == stat.S_IFDIR:
        _copy_dir(src_fd, st, dir_fd, name, (uid, gid), owner, merge=merge, top=top, skip=skip)
        return
    if mode == stat.S_IFREG:
        src = ops.reopen(src_fd, os.O_RDONLY)
        try:
            dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                          st.st_mode & 0o7777, dir_fd=dir_fd)
            try:
                while chunk := os.read(src, 1 << 20):
                    ops.write_all(dst, chunk)
                os.fchown(dst, *owner)
                os.fchmod(dst, st.st_mode & 0o7777)
                _copy_xattrs(src_fd, dst)
                os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(dst)
        finally:
            os.close(src)
        return
    if mode == stat.S_IFLNK:
        ops.symlink_at(ops.readlink_fd(src_fd), dir_fd, name)
        os.chown(name, *owner, dir_fd=dir_fd, follow_symlinks=False)
        return
    if mode == stat.S_IFIFO:
        nodes.mkfifo_at(dir_fd, name, st.st_mode & 0o7777)
    elif mode in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK):
        ops.mknod_at(dir_fd, name, st.st_mode, st.st_rdev)
    else:
        raise OSError(errno.EOPNOTSUPP, "cannot copy this kind of file", name)
    os.chown(name, *owner, dir_fd=dir_fd, follow_symlinks=False)
    os.chmod(name, st.st_mode & 0o7777, dir_fd=dir_fd)


def _copy_dir(
    src_fd: int, st: os.stat_result, dir_fd: int, name: str, override: tuple[int, int], owner: tuple[int, int],
    *, merge: bool, top: bool, skip: tuple[int, int],
) -> None:
    created = True
    try:
        os.mkdir(name, 0o777, dir_fd=dir_fd)
    except FileExistsError:
        existing = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISLNK(existing.st_mode):
            # What systemd 262's copy_tree_at does with a symlink in the way, as observed: a
            # dangling one or (without '+') one to a directory counts as "exists", anything
            # else is "not a directory".
            try:
                followed = os.stat(name, dir_fd=dir_fd)
            except FileNotFoundError:
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), name) from None
            if stat.S_ISDIR(followed.st_mode) and not merge and not _is_empty_dir(dir_fd, name, follow=True):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), name) from None
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), name) from None
        if not stat.S_ISDIR(existing.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), name) from None
        if not merge and not (top and _is_empty_dir(dir_fd, name)):
            raise
        created = False
    target = ops.open_path_at(dir_fd, name)
    tst = os.fstat(target)
    if top:
        skip = (tst.st_dev, tst.st_ino)
    try:
        error: OSError | None = None
        for child in ops.listdir_fd(src_fd):
            child_fd = ops.open_path_at(src_fd, child)
            cst = os.fstat(child_fd)
            if (cst.st_dev, cst.st_ino) == skip:
                os.close(child_fd)  # copying a tree into itself: never descend into the copy
                continue
            try:
                _copy(child_fd, target, child, *override, merge=merge, top=False, skip=skip)
            except FileExistsError:
                if not merge:
                    error = error or OSError(errno.EEXIST, "exists", child)
            except OSError as e:
                error = error or e
            finally:
                os.close(child_fd)
        if created:
            _copy_xattrs(src_fd, target)
            ops.chown_fd(target, *owner)
            ops.chmod_fd(target, st.st_mode & 0o7777)
            os.utime(ops.fd_path(target), ns=(st.st_atime_ns, st.st_mtime_ns))
        if error is not None:
            raise error
    finally:
        os.close(target)


def _is_empty_dir(dir_fd: int, name: str, *, follow: bool = False) -> bool:
    fd = os.open(name, os.O_PATH | os.O_CLOEXEC, dir_fd=dir_fd) if follow else ops.open_path_at(dir_fd, name)
    try:
        return not ops.listdir_fd(fd)
    finally:
        os.close(fd)


def _copy_xattrs(src_fd: int, dst_fd: int) -> None:
    try:
        names = nodes.list_xattrs_fd(src_fd)
    except OSError:
        return
    for n in names:
        if not n.startswith("user."):
            continue  # systemd's copy_xattr copies what it can read; user.* is what survives a copy
        try:
            nodes.set_xattr_fd(dst_fd, n, nodes.get_xattr_fd(src_fd, n))
        except OSError:
            continue
