"""The create phase: systemd's create_item for every line type.

Each function mirrors the systemd function of the same name (src/tmpfiles/tmpfiles.c): the
parent is opened with a SAFE chase, the node is made with *at() calls in that fd, then
opened O_PATH|O_NOFOLLOW and adjusted through the fd. Where systemd only warns and goes on
("already exists and is not a FIFO"), so do we; where it fails, ItemFailed is raised.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Callable

from freshroot.errors import UnsafePathError
from freshroot.fs import ops
from freshroot.tmpfiles import parents
from freshroot.tmpfiles.context import Context, Creation, ItemFailed, NoMatch, base_name
from freshroot.tmpfiles.globs import is_glob
from freshroot.tmpfiles.globwalk import expand
from freshroot.tmpfiles.model import Item, ItemType
from freshroot.tmpfiles.perms import (
    FdAction,
    path_action,
    recursive_action,
    refuse_dotdot,
    set_attribute,
    set_perms,
    set_xattrs,
)

# An action on one glob match: (context, item, root-relative path, creation mode).
PathAction = Callable[[Context, Item, str, Creation], None]

O_FLAGS = os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


def _content(item: Item) -> bytes:
    return item.content or b""


def _write(ctx: Context, item: Item, fd: int, path: str) -> None:
    data = _content(item)
    if not data:
        return
    if ctx.verbose:  # no message built unless it is shown
        ctx.action("Would write", "Writing", f'to "{ctx.shown(path)}"')
    if ctx.dry_run:
        return
    try:
        ops.write_all(fd, data)
    except OSError as e:
        raise ctx.os_failure(f'Failed to write file "{ctx.shown(path)}"', e) from e


def _opath(ctx: Context, dir_fd: int, name: str, failed: str) -> int:
    """An O_PATH fd of ``name``; ``failed`` is systemd's message when that fails."""
    try:
        return ops.open_path_at(dir_fd, name)
    except OSError as e:
        raise ctx.os_failure(failed, e) from e


def create_file(ctx: Context, item: Item, path: str) -> None:
    name = base_name(path)
    if ctx.dry_run:
        ctx.info(f"Would create file {ctx.shown(path)}")
        return
    with ctx.open_parent(item, path) as parent:
        try:
            fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY | O_FLAGS,
                         item.mode, dir_fd=parent.fd)
        except FileExistsError:
            fd = _opath(ctx, parent.fd, name, f"Failed to reopen file {ctx.shown(path)}")
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    raise ctx.error(f"{ctx.shown(path)} exists and is not a regular file.")
                set_perms(ctx, item, fd, path, st, Creation.EXISTING)
            finally:
                os.close(fd)
            return
        except OSError as e:
            raise ctx.os_failure(f"Failed to create file {ctx.shown(path)}", e) from e
        try:
            _write(ctx, item, fd, path)
            set_perms(ctx, item, fd, path, None, Creation.NORMAL)
        finally:
            os.close(fd)


def truncate_file(ctx: Context, item: Item, path: str) -> None:
    name = base_name(path)
    with ctx.open_parent(item, path) as parent:
        if ctx.dry_run:
            ctx.info(f"Would truncate {ctx.shown(path)}")
            return
        creation = Creation.EXISTING
        flags = os.O_NOFOLLOW | os.O_WRONLY | O_FLAGS
        erofs = False
        try:
            try:
                fd = os.open(name, flags, item.mode, dir_fd=parent.fd)
            except FileNotFoundError:
                creation = Creation.NORMAL
                fd = os.open(name, flags | os.O_CREAT, item.mode, dir_fd=parent.fd)
        except OSError as e:
            if e.errno != errno.EROFS:
                raise ctx.os_failure(f"Failed to open/create file {ctx.shown(path)}", e) from e
            # On a read-only file system an empty file with the right mode is fine: go on
            # with an O_PATH fd and let anything that would change it fail with EROFS.
            try:
                fd = ops.open_path_at(parent.fd, name)
            except FileNotFoundError:
                raise ctx.error(f"Cannot create file {ctx.shown(path)} on a read-only file system.") from e
            except OSError as e2:
                raise ctx.os_failure(f"Failed to reopen file {ctx.shown(path)}", e2) from e2
            erofs = True
            creation = Creation.EXISTING
        try:
            st: os.stat_result | None = os.fstat(fd)
            assert st is not None
            if not stat.S_ISREG(st.st_mode):
                raise ctx.error(f"{ctx.shown(path)} exists and is not a regular file.")
            if st.st_size > 0:
                try:
                    if erofs:
                        raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
                    os.ftruncate(fd, 0)
                except OSError as e:
                    raise ctx.os_failure(f"Failed to truncate file {ctx.shown(path)}", e) from e
                st = None
            if erofs and _content(item):
                raise ctx.os_failure(f'Failed to write file "{ctx.shown(path)}"',
                                     OSError(errno.EROFS, os.strerror(errno.EROFS)))
            _write(ctx, item, fd, path)
            set_perms(ctx, item, fd, path, st, creation)
        finally:
            os.close(fd)


def write_one_file(ctx: Context, item: Item, path: str, creation: Creation) -> None:
    name = base_name(path)
    with ctx.open_parent(item, path) as parent:
        # 'w' follows a symlink in the last component, as systemd does: it may write into
        # any kind of file. The chase above already confined the parent to the root.
        flags = os.O_WRONLY | O_FLAGS | (os.O_APPEND if item.plus else 0) | (os.O_PATH if ctx.dry_run else 0)
        try:
            fd = _open_following(ctx, parent.fd, name, flags, item.mode)
        except UnsafePathError as e:
            raise ctx.error(str(e)) from e
        except FileNotFoundError:
            ctx.debug(f'Not writing missing file "{ctx.shown(path)}"')
            return
        except OSError as e:
            if ctx.literal_glob and e.errno == errno.ENOTDIR:
                raise NoMatch(path) from e  # the "parent" is a file: glob(3) matches nothing
            if item.allow_failure:
                ctx.debug(f'Failed to open file "{ctx.shown(path)}", ignoring: {e.strerror}')
                raise ItemFailed(str(e)) from e
            raise ctx.os_failure(f'Failed to open file "{ctx.shown(path)}"', e) from e
        try:
            _write(ctx, item, fd, path)
            set_perms(ctx, item, fd, path, None, creation)
        finally:
            os.close(fd)


def _open_following(ctx: Context, dir_fd: int, name: str, flags: int, mode: int) -> int:
    """openat() of ``name`` following symlinks, but resolving them inside the root."""
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        return os.open(name, flags | os.O_NOFOLLOW, mode, dir_fd=dir_fd)
    from freshroot.fs.chase import ChaseFlags, chase

    # The symlink is followed with the SAFE rule (freshroot.fs.chase judges a symlink by its
    # owner): one an unprivileged user planted, leading to someone else's file, is refused
    # (differences.py, w-last-component-safe). Its target resolves inside the root.
    with chase(_dir_path_of(ctx, dir_fd) + "/" + name, root_fd=ctx.root_fd, flags=ChaseFlags.SAFE) as c:
        if flags & os.O_PATH:
            return os.dup(c.fd)
        return ops.reopen(c.fd, flags & ~os.O_NOFOLLOW)


def _dir_path_of(ctx: Context, dir_fd: int) -> str:
    """The root-relative path of a directory fd (for resolving a relative symlink target)."""
    here = os.readlink(ops.fd_path(dir_fd))
    root = os.readlink(ops.fd_path(ctx.root_fd))
    rel = here[len(root):] if here.startswith(root) else here
    return rel.rstrip("/") if rel not in ("", "/") else ""


def create_directory_or_subvolume(
    ctx: Context, item: Item, path: str, *, subvol: bool
) -> tuple[int, os.stat_result, Creation] | None:
    name = base_name(path)
    with ctx.open_parent(item, path) as parent:
        err: OSError | None = None
        made = False
        if subvol and _subvolumes_wanted(ctx):
            from freshroot.fs import btrfs

            ctx.action("Would create", "Creating", f"btrfs subvolume {ctx.shown(path)}")
            try:
                old = os.umask((~item.mode) & 0o777)
                try:
                    btrfs.make_subvolume(parent.fd, name)
                finally:
                    os.umask(old)
                made = True
            except OSError as e:
                if e.errno not in _NOT_SUPPORTED:
                    err = e
                    made = True  # do not fall back to mkdir for real failures
                else:
                    made = False
        if not made:
            if ctx.verbose:  # no message built unless it is shown
                ctx.action("Would create", "Creating", f'directory "{ctx.shown(path)}"')
            try:
                os.mkdir(name, item.mode, dir_fd=parent.fd)
            except OSError as e:
                err = e
        creation = Creation.NORMAL if err is None else Creation.EXISTING
        try:
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_DIRECTORY, dir_fd=parent.fd)
        except NotADirectoryError:
            ctx.error(f'"{ctx.shown(path)}" already exists and is not a directory.')
            return None  # systemd's -EEXIST, which its callers treat as success
        except OSError as e:
            if err is not None and err.errno != errno.EEXIST:
                if item.allow_failure:
                    ctx.info(f'Failed to create directory or subvolume "{ctx.shown(path)}", ignoring: {err.strerror}')
                    raise ItemFailed(str(err)) from err
                raise ctx.os_failure(f'Failed to create directory or subvolume "{ctx.shown(path)}"', err) from err
            raise ctx.os_failure(f"Failed to open directory/subvolume we just created '{ctx.shown(path)}'", e) from e
        return fd, os.fstat(fd), creation


# systemd's ERRNO_IS_NOT_SUPPORTED: the subvolume could not be made here, a directory is.
_NOT_SUPPORTED = frozenset({errno.EOPNOTSUPP, errno.ENOTTY, errno.ENOSYS, errno.EAFNOSUPPORT, errno.EPFNOSUPPORT,
                            errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT, errno.ENOPROTOOPT})
_TRUE = frozenset({"1", "yes", "y", "true", "t", "on"})
_FALSE = frozenset({"0", "no", "n", "false", "f", "off"})


def _subvolumes_wanted(ctx: Context) -> bool:
    """Whether v/q/Q lines make subvolumes: $SYSTEMD_TMPFILES_FORCE_SUBVOL when it is a
    boolean, else only when the root directory is itself a btrfs subvolume (systemd: a plain
    directory as root, a chroot say, is not split up into subvolumes)."""
    value = os.environ.get("SYSTEMD_TMPFILES_FORCE_SUBVOL")
    if value is not None:
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        ctx.warn("Cannot parse value of $SYSTEMD_TMPFILES_FORCE_SUBVOL, ignoring.")  # at every line, as systemd
    found = ctx.cache.get("root-is-subvolume")
    if isinstance(found, bool):
        return found
    from freshroot.fs import btrfs

    try:
        wanted = btrfs.is_subvolume(ctx.root_fd)
    except OSError:
        wanted = False
    ctx.cache["root-is-subvolume"] = wanted
    return wanted


def create_directory(ctx: Context, item: Item, path: str, *, subvol: bool = False) -> None:
    if ctx.dry_run:
        ctx.info(f"Would create {'subvolume' if subvol else 'directory'} {ctx.shown(path)}")
        return
    made = create_directory_or_subvolume(ctx, item, path, subvol=subvol)
    if made is None:
        return
    fd, st, creation = made
    try:
        failure = None
        if creation is Creation.NORMAL and item.type in _QUOTA_TYPES:
            failure = _adjust_quota(ctx, item, fd)
        set_perms(ctx, item, fd, path, st, creation)
        if failure is not None:  # systemd prefers the quota error to one of the permissions
            raise failure
    finally:
        os.close(fd)


_QUOTA_TYPES = frozenset({ItemType.CREATE_SUBVOLUME_INHERIT_QUOTA, ItemType.CREATE_SUBVOLUME_NEW_QUOTA})


def _adjust_quota(ctx: Context, item: Item, fd: int) -> ItemFailed | None:
    """q and Q on a subvolume just made: systemd's btrfs_subvol_auto_qgroup_fd (Q with a new
    intermediary qgroup). Not a subvolume, a read-only file system or quotas off are fine."""
    from freshroot.fs import btrfs

    shown = ctx.shown(item.path)
    try:
        changed = btrfs.auto_qgroup(fd, insert_intermediary=item.type is ItemType.CREATE_SUBVOLUME_NEW_QUOTA)
    except OSError as e:
        if e.errno == errno.ENOTTY:
            ctx.debug(f'Couldn\'t adjust quota for subvolume "{shown}" (unsupported fs or dir not a subvolume): '
                      f"{e.strerror}")
        elif e.errno == errno.EROFS:
            ctx.debug(f'Couldn\'t adjust quota for subvolume "{shown}" (fs is read-only).')
        elif e.errno == errno.ENOTCONN:
            ctx.debug(f'Couldn\'t adjust quota for subvolume "{shown}" (quota support is disabled).')
        else:
            return ctx.os_failure(f'Failed to adjust quota for subvolume "{shown}"', e)
        return None
    if changed:
        ctx.debug(f'Adjusted quota for subvolume "{shown}".')
    else:
        ctx.debug(f'Quota for subvolume "{shown}" already in place, no change made.')
    return None


def empty_directory(ctx: Context, item: Item, path: str, creation: Creation) -> None:
    from freshroot.fs.chase import ChaseFlags, chase

    try:
        c = chase(path, root_fd=ctx.root_fd, flags=ChaseFlags.SAFE)
    except UnsafePathError as e:
        raise ctx.error(str(e)) from e
    except FileNotFoundError:
        ctx.debug(f"Skipping missing directory: {ctx.shown(path)}")
        return
    except OSError as e:
        raise ctx.os_failure(f"Failed to open directory '{ctx.shown(path)}'", e) from e
    with c:
        if not stat.S_ISDIR(c.st.st_mode):
            ctx.warn(f"'{ctx.shown(path)}' already exists and is not a directory.")
            return
        set_perms(ctx, item, c.fd, path, c.st, creation)


def _make_node(item: Item, dir_fd: int, name: str, kind: int) -> None:
    if kind == stat.S_IFIFO:
        ops.mkfifo_at(dir_fd, name, item.mode)
    else:
        major, minor = item.device or (0, 0)
        ops.mknod_at(dir_fd, name, item.mode | kind, os.makedev(major, minor))


def create_node(ctx: Context, item: Item, path: str, kind: int) -> None:
    """create_fifo and create_device: p, c, b (with '+': replace what is there)."""
    what = {stat.S_IFIFO: "FIFO", stat.S_IFCHR: "device node", stat.S_IFBLK: "device node"}[kind]
    name = base_name(path)
    # systemd 262 quotes the path in the device node messages, not in the FIFO ones (but in
    # the FIFO one after a replacement).
    shown_q = f"'{ctx.shown(path)}'"
    shown = ctx.shown(path) if kind == stat.S_IFIFO else shown_q
    if ctx.dry_run:
        ctx.info(f"Would create {'fifo' if kind == stat.S_IFIFO else 'device node'} {ctx.shown(path)}")
        return
    with ctx.open_parent(item, path) as parent:
        err: OSError | None = None
        try:
            _make_node(item, parent.fd, name, kind)
        except OSError as e:
            err = e
        creation = Creation.NORMAL if err is None else Creation.EXISTING
        try:
            fd = ops.open_path_at(parent.fd, name)
        except OSError as e:
            if err is not None:
                if kind != stat.S_IFIFO and err.errno in (errno.EPERM, errno.EACCES):
                    ctx.debug(f"We lack permissions, skipping creation of device node '{ctx.shown(path)}'.")
                    return
                raise ctx.os_failure(f"Failed to create {what} {shown}", err) from err
            first_open = (f"Failed to open FIFO we just created {shown}" if kind == stat.S_IFIFO
                          else f"Failed to open device node {shown} we just created")
            raise ctx.os_failure(first_open, e) from e
        try:
            st = os.fstat(fd)
            if stat.S_IFMT(st.st_mode) != kind:
                if not item.plus:
                    ctx.warn(f'"{ctx.shown(path)}" already exists and is not a {what}.')
                    return
                os.close(fd)
                fd = -1
                _replace(ctx, parent.fd, name, path, lambda d, n: _make_node(item, d, n, kind),
                         failed=f"Failed to create {what} {shown}")
                try:
                    fd = ops.open_path_at(parent.fd, name)
                except OSError as e:
                    raise ctx.os_failure(f"Failed to open {what} we just created {shown_q}", e) from e
                st = os.fstat(fd)
                if stat.S_IFMT(st.st_mode) != kind:
                    raise ctx.error("FIFO inode we just created is not a FIFO, refusing." if kind == stat.S_IFIFO
                                    else "Device node we just created is not a device node, refusing.")
                creation = Creation.FORCE
            set_perms(ctx, item, fd, path, st, creation)
        finally:
            if fd >= 0:
                os.close(fd)


def _replace(ctx: Context, dir_fd: int, name: str, path: str, make: object, *, failed: str) -> None:
    """The '+' replacement: make the node under a temporary name and rename it over the old
    one; when the old one is a directory, remove it (rm -rf) and make the node in place.
    ``failed``: systemd's message when making the node fails."""
    assert callable(make)
    ctx.forget_dirs()
    made: list[str] = []

    def make_temporary(d: int, n: str) -> None:
        make(d, n)
        made.append(n)

    try:
        # systemd's temporary name (tempfn_random): too long a name fails, as there.
        from freshroot.fs import atomic  # (secrets, hmac: not on the common path)

        atomic.replace_node_at(dir_fd, name, make_temporary, temp=f".#{name}{os.urandom(8).hex()}")
    except OSError as e:
        if not made:
            raise  # making the node failed: the caller's to report, as before the rename
        if e.errno not in (errno.EISDIR, errno.EEXIST, errno.ENOTEMPTY):
            raise ctx.os_failure(failed, e) from e
    else:
        return
    try:
        ops.remove_tree_at(dir_fd, name)
    except OSError as e:
        raise ctx.os_failure(f"rm -rf {ctx.shown(path)} failed", e) from e
    try:
        make(dir_fd, name)
    except OSError as e:
        raise ctx.os_failure(failed, e) from e


def create_symlink(ctx: Context, item: Item, path: str) -> None:
    name = base_name(path)
    target = item.argument or ""
    if item.if_exists and not _target_exists(ctx, path, target):
        ctx.debug(f"Symlink source path '{target}' does not exist, skipping line.")
        return
    if ctx.dry_run:
        ctx.info(f"Would create symlink {ctx.shown(path)} -> {target}")
        return
    with ctx.open_parent(item, path) as parent:
        err: OSError | None = None
        try:
            ops.symlink_at(target, parent.fd, name)
        except OSError as e:
            err = e
        creation = Creation.NORMAL if err is None else Creation.EXISTING
        try:
            fd = ops.open_path_at(parent.fd, name)
        except OSError as e:
            if err is not None:
                raise ctx.os_failure(f"Failed to create symlink '{ctx.shown(path)}'", err) from err
            raise ctx.os_failure(f"Failed to open symlink we just created '{ctx.shown(path)}'", e) from e
        try:
            st = os.fstat(fd)
            # Compared as bytes: a target given with raw bytes that happen to be UTF-8 reads back
            # as other characters.
            good = stat.S_ISLNK(st.st_mode) and os.fsencode(ops.readlink_fd(fd)) == os.fsencode(target)
            if not good:
                if not item.plus:
                    ctx.debug(f'"{ctx.shown(path)}" is not a symlink or does not point to the correct path.')
                    return
                os.close(fd)
                fd = -1
                _replace(ctx, parent.fd, name, path, lambda d, n: ops.symlink_at(target, d, n),
                         failed=f"symlink({target}, {ctx.shown(path)}) failed")
                fd = _opath(ctx, parent.fd, name, f"Failed to open symlink we just created '{ctx.shown(path)}'")
                st = os.fstat(fd)
                if not stat.S_ISLNK(st.st_mode):
                    raise ctx.error("Symlink we just created is not a symlink, refusing.")
                creation = Creation.FORCE
            set_perms(ctx, item, fd, path, st, creation)
        finally:
            if fd >= 0:
                os.close(fd)


def _target_exists(ctx: Context, path: str, target: str) -> bool:
    """L?: whether the link's target is there, as systemd 262 checks it before anything else:
    walked with SAFE (relative to the link's directory, inside the root), the last component
    not followed (a dangling symlink is there). Missing: False. Any other failure (a parent
    that is not a directory, an unsafe transition) fails the line."""
    from freshroot.fs.chase import ChaseFlags, chase

    where = target if target.startswith("/") else posixpath.join(posixpath.dirname(path), target)
    try:
        with chase(where, root_fd=ctx.root_fd, flags=ChaseFlags.SAFE | ChaseFlags.NOFOLLOW):
            return True
    except FileNotFoundError:
        return False
    except UnsafePathError as e:
        raise ctx.error(f"Failed to check if symlink source path '{target}' exists: "
                        f"{os.strerror(errno.ENOLINK)}") from e
    except OSError as e:
        raise ctx.os_failure(f"Failed to check if symlink source path '{target}' exists", e) from e


# Lines whose action opens the path itself and can tell "not there" apart: for these a path
# without wildcards skips the glob walk (one path walk instead of two).
_LITERAL_OK = frozenset({ItemType.WRITE_FILE, ItemType.RELABEL_PATH, ItemType.ADJUST_MODE, ItemType.SET_XATTR,
                         ItemType.SET_ATTRIBUTE, ItemType.SET_ACL, ItemType.SET_CAPABILITY})


def glob_item(ctx: Context, item: Item, action: PathAction) -> None:
    if item.type in _LITERAL_OK and not is_glob(item.path) and "{" not in item.path:
        ctx.literal_glob = True
        try:
            action(ctx, item, item.path, Creation.EXISTING)
        except NoMatch:
            return
        finally:
            ctx.literal_glob = False
        return
    failed = False
    for path in expand(ctx.root_fd, item.path, safe=False):
        try:
            action(ctx, item, path, Creation.EXISTING)
        except ItemFailed:
            failed = True
    if failed:
        raise ItemFailed(item.path)


def glob_item_recursively(ctx: Context, item: Item, action: FdAction) -> None:
    """Z T A H (and recursive K): each match chased with SAFE|NOFOLLOW, then walked below.
    freshroot.fs.chase judges a symlink by its owner, so a user's symlink in a root-owned
    directory is not followed (differences.py: recursive-Z/T/A/H-user-symlink)."""
    ok = True
    for path in expand(ctx.root_fd, item.path, safe=False):
        from freshroot.fs.chase import ChaseFlags, chase

        try:
            refuse_dotdot(ctx, path)
        except ItemFailed:
            ok = False
            continue
        try:
            c = chase(path, root_fd=ctx.root_fd, flags=ChaseFlags.SAFE | ChaseFlags.NOFOLLOW)
        except UnsafePathError as e:
            ctx.error(str(e))
            ok = False
            continue
        except OSError as e:
            ctx.error(f"Failed to open '{ctx.shown(path)}': {e.strerror}")
            ok = False
            continue
        with c:
            ok = recursive_action(ctx, item, c.fd, path, action) and ok
    if not ok:
        raise ItemFailed(item.path)


def _perms(ctx: Context, item: Item, path: str, creation: Creation) -> None:
    path_action(ctx, item, path, set_perms, creation)


def _xattrs(ctx: Context, item: Item, path: str, creation: Creation) -> None:
    path_action(ctx, item, path, set_xattrs, creation)


def _attribute(ctx: Context, item: Item, path: str, creation: Creation) -> None:
    if item.attribute_mask:
        path_action(ctx, item, path, set_attribute, creation)


def create_item(ctx: Context, item: Item) -> None:
    if ctx.verbose:  # no message built unless it is shown
        ctx.debug(f"Running create action for entry {item.type} {item.path}")
    CREATE[item.type](ctx, item)


# What create_item does for each line type, as the cases of systemd's create_item switch.
# A table rather than a match statement: a match tries the cases in turn, and each reads an
# enum member off its class, which is slow in Python 3.11 (~100 ns, up to 15 per line).

def _nothing(ctx: Context, item: Item) -> None:
    del ctx, item


def _file(ctx: Context, item: Item) -> None:
    parents.mkdir_parents_item(ctx, item, stat.S_IFREG)
    if item.plus or item.type is ItemType.TRUNCATE_FILE:
        truncate_file(ctx, item, item.path)
    else:
        create_file(ctx, item, item.path)


def _copy(ctx: Context, item: Item) -> None:
    parents.mkdir_parents_item(ctx, item, 0)
    from freshroot.tmpfiles import copy  # only C lines need it

    copy.copy_files(ctx, item)


def _directory(ctx: Context, item: Item) -> None:
    parents.mkdir_parents_item(ctx, item, stat.S_IFDIR)
    create_directory(ctx, item, item.path)


def _subvolume(ctx: Context, item: Item) -> None:
    parents.mkdir_parents_item(ctx, item, stat.S_IFDIR)
    create_directory(ctx, item, item.path, subvol=True)


def _fifo(ctx: Context, item: Item) -> None:
    parents.mkdir_parents_item(ctx, item, stat.S_IFIFO)
    create_node(ctx, item, item.path, stat.S_IFIFO)


def _symlink(ctx: Context, item: Item) -> None:
    parents.mkdir_parents_item(ctx, item, stat.S_IFLNK)
    create_symlink(ctx, item, item.path)


def _device(ctx: Context, item: Item) -> None:
    kind = stat.S_IFBLK if item.type is ItemType.CREATE_BLOCK_DEVICE else stat.S_IFCHR
    parents.mkdir_parents_item(ctx, item, kind)
    create_node(ctx, item, item.path, kind)


def _acls(ctx: Context, item: Item) -> None:
    from freshroot.tmpfiles import acls

    if item.type is ItemType.SET_ACL:
        glob_item(ctx, item, acls.path_set_acls)
    else:
        glob_item_recursively(ctx, item, acls.fd_set_acls)


def _recursive_attribute(ctx: Context, item: Item) -> None:
    if item.attribute_mask:
        glob_item_recursively(ctx, item, set_attribute)


def _caps(ctx: Context, item: Item) -> None:
    from freshroot.tmpfiles import caps

    if item.type is ItemType.SET_CAPABILITY:
        # As systemd: a `k` whose capability text did not parse (warned while reading) does
        # not even open its path, while `K` still walks its tree (and may fail on the way).
        try:
            caps.parse(item.argument or "")
        except caps.CapabilityTextError:
            return
        glob_item(ctx, item, caps.path_set_caps)
    else:
        glob_item_recursively(ctx, item, caps.fd_set_caps)


CREATE: dict[ItemType, Callable[[Context, Item], None]] = {
    ItemType.IGNORE_PATH: _nothing,
    ItemType.IGNORE_DIRECTORY_PATH: _nothing,
    ItemType.REMOVE_PATH: _nothing,
    ItemType.RECURSIVE_REMOVE_PATH: _nothing,
    ItemType.CREATE_FILE: _file,
    ItemType.TRUNCATE_FILE: _file,
    ItemType.COPY_FILES: _copy,
    ItemType.WRITE_FILE: lambda ctx, item: glob_item(ctx, item, write_one_file),
    ItemType.CREATE_DIRECTORY: _directory,
    ItemType.TRUNCATE_DIRECTORY: _directory,
    ItemType.CREATE_SUBVOLUME: _subvolume,
    ItemType.CREATE_SUBVOLUME_INHERIT_QUOTA: _subvolume,
    ItemType.CREATE_SUBVOLUME_NEW_QUOTA: _subvolume,
    ItemType.EMPTY_DIRECTORY: lambda ctx, item: glob_item(ctx, item, empty_directory),
    ItemType.CREATE_FIFO: _fifo,
    ItemType.CREATE_SYMLINK: _symlink,
    ItemType.CREATE_CHAR_DEVICE: _device,
    ItemType.CREATE_BLOCK_DEVICE: _device,
    ItemType.RELABEL_PATH: lambda ctx, item: glob_item(ctx, item, _perms),
    ItemType.ADJUST_MODE: lambda ctx, item: glob_item(ctx, item, _perms),
    ItemType.RECURSIVE_RELABEL_PATH: lambda ctx, item: glob_item_recursively(ctx, item, set_perms),
    ItemType.SET_XATTR: lambda ctx, item: glob_item(ctx, item, _xattrs),
    ItemType.RECURSIVE_SET_XATTR: lambda ctx, item: glob_item_recursively(ctx, item, set_xattrs),
    ItemType.SET_ACL: _acls,
    ItemType.RECURSIVE_SET_ACL: _acls,
    ItemType.SET_ATTRIBUTE: lambda ctx, item: glob_item(ctx, item, _attribute),
    ItemType.RECURSIVE_SET_ATTRIBUTE: _recursive_attribute,
    ItemType.SET_CAPABILITY: _caps,
    ItemType.RECURSIVE_SET_CAPABILITY: _caps,
}
