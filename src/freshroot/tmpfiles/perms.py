"""Adjusting an existing node: owner and mode (systemd's fd_set_perms), extended attributes
(fd_set_xattrs) and file attributes (fd_set_attribute). Each works on an O_PATH fd that the
caller obtained safely; none re-resolves a path."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

from freshroot.fs import attrs, ops, xattr
from freshroot.fs.walk import DirStack
from freshroot.tmpfiles.context import Context, Creation, ItemFailed, NoMatch
from freshroot.tmpfiles.model import Item

EXISTING, NORMAL = Creation.EXISTING, Creation.NORMAL  # read once, as executor.CREATE: set_perms runs per line

# An action on an entry's O_PATH fd: (context, item, fd, path, stat or None, creation mode).
FdAction = Callable[[Context, Item, int, str, os.stat_result | None, Creation], None]


def mask_perms(mode: int, current: int) -> int:
    """systemd's process_mask_perms: the '~' mode prefix."""
    if current & 0o111 == 0:
        mode &= ~0o111
    if current & 0o222 == 0:
        mode &= ~0o222
    if current & 0o444 == 0:
        mode &= ~0o444
    if not stat.S_ISDIR(current):
        mode &= ~0o7000
    return mode


def set_perms(
    ctx: Context, item: Item, fd: int, path: str, st: os.stat_result | None, creation: Creation
) -> None:
    if not item.mode_set and item.uid is None and item.gid is None:
        return
    if st is None:
        st = os.fstat(fd)
    if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode) and not _hardlinks_protected():
        raise ctx.error(f"Refusing to set permissions on hardlinked file {ctx.shown(path)} while the "
                        "fs.protected_hardlinks sysctl is turned off.")
    existing = creation is EXISTING
    uid = item.uid.id if item.uid is not None and not (existing and item.uid.only_create) else st.st_uid
    gid = item.gid.id if item.gid is not None and not (existing and item.gid.only_create) else st.st_gid
    do_chown = uid != st.st_uid or gid != st.st_gid
    if item.mode_set and not (existing and item.mode_only_create):
        new_mode = mask_perms(item.mode, st.st_mode) if item.mode_masked else item.mode
    else:
        new_mode = st.st_mode & 0o7777
    do_chmod = (new_mode ^ st.st_mode) & 0o7777 != 0
    is_link = stat.S_ISLNK(st.st_mode)
    # Messages are only built when shown (ctx.verbose): this runs for most lines.
    try:
        if do_chmod and do_chown and not is_link:
            # First reduce to the bits both modes share, so the node never has more access
            # under the old owner than before nor under the new one than intended.
            common = new_mode & st.st_mode
            if (common ^ st.st_mode) & 0o7777:
                if ctx.verbose:
                    ctx.action("Would temporarily change", "Temporarily changing",
                               f'"{ctx.shown(path)}" to mode {common:o}')
                if not ctx.dry_run:
                    ops.chmod_fd(fd, common & 0o7777, st)
        if do_chown:
            if ctx.verbose:
                ctx.action("Would change", "Changing", f'"{ctx.shown(path)}" to owner {uid}:{gid}')
            if not ctx.dry_run:
                if (stat.S_ISDIR(st.st_mode) or is_link) and creation is not NORMAL:
                    # A walk through it may now be judged differently. None can have gone
                    # through what this line made a moment ago: the remembered walks stay
                    # (a d line with an owner would otherwise send the next back to the root).
                    ctx.forget_dirs()
                ops.chown_fd(fd, uid if uid != st.st_uid else -1, gid if gid != st.st_gid else -1)
        if (do_chmod or do_chown) and not is_link:
            if ctx.verbose:
                ctx.action("Would change", "Changing", f'"{ctx.shown(path)}" to mode {new_mode:o}')
            if not ctx.dry_run:
                ops.chmod_fd(fd, new_mode, st)
    except OSError as e:
        raise ctx.os_failure(f"Failed to set owner or mode of {ctx.shown(path)}", e) from e


# systemd's ERRNO_IS_NOT_SUPPORTED().
_NOT_SUPPORTED = frozenset({errno.EOPNOTSUPP, errno.ENOTTY, errno.ENOSYS, errno.EAFNOSUPPORT, errno.EPFNOSUPPORT,
                            errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT, errno.ENOPROTOOPT})

_protected: list[bool] = []


def _hardlinks_protected() -> bool:
    if not _protected:
        try:
            with open("/proc/sys/fs/protected_hardlinks", "rb") as f:
                _protected.append(f.read().strip() == b"1")
        except OSError:
            _protected.append(True)
    return _protected[0]


def set_xattrs(
    ctx: Context, item: Item, fd: int, path: str, st: os.stat_result | None, creation: Creation
) -> None:
    del st, creation
    for name, value in item.xattrs:
        shown = ctx.shown(path)
        text = value.decode(errors="replace")
        ctx.action("Would set", "Setting", f"extended attribute '{name}={text}' on {shown}")
        if ctx.dry_run:
            continue
        try:
            xattr.set_fd(fd, name, value)
        except OSError as e:
            raise ctx.os_failure(f"Failed to set extended attribute {name}={text} on '{shown}'", e) from e


def set_attribute(
    ctx: Context, item: Item, fd: int, path: str, st: os.stat_result | None, creation: Creation
) -> None:
    del creation
    if item.attribute_mask == 0:
        return
    if st is None:
        st = os.fstat(fd)
    shown = ctx.shown(path)
    if not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
        raise ctx.error("Setting file flags is only supported on regular files and directories, "
                        f"cannot set on '{shown}'.")
    value = item.attribute_value & item.attribute_mask
    if not stat.S_ISDIR(st.st_mode):
        value &= ~attrs.DIRSYNC
    ctx.action("Would try to set", "Trying to set", f"file attributes 0x{value:08x} on {shown}")
    if ctx.dry_run:
        return
    try:
        previous, current = attrs.change_flags(fd, value, item.attribute_mask)
    except OSError as e:
        # systemd only warns: file attributes are best effort. That the file system does not
        # support them (ERRNO_IS_NOT_SUPPORTED) is not even a warning.
        text = (f"Cannot set file attributes for '{shown}', value=0x{item.attribute_value:08x}, "
                f"mask=0x{item.attribute_mask:08x}, ignoring: {e.strerror}")
        if e.errno in _NOT_SUPPORTED:
            ctx.debug(text)
        else:
            ctx.warn(text)
        return
    expected = (previous & ~item.attribute_mask) | (value & item.attribute_mask)
    if current != expected:
        ctx.warn(f"Cannot set file attributes for '{shown}', maybe due to incompatibility in specified "
                 f"attributes, previous=0x{previous:08x}, current=0x{current:08x}, "
                 f"expected=0x{expected:08x}, ignoring.")


def refuse_dotdot(ctx: Context, path: str) -> None:
    """path_open_safe(): a path of a line that adjusts existing entries (z Z m t T h H a A k
    K), or a glob match of one, with a '..' component is refused, nothing changed; systemd
    checks path_is_normalized() before opening (the other forms were simplified when read)."""
    if ".." in path.split("/"):
        if ctx.literal_glob and not ctx.exists(path):
            raise NoMatch(path)  # glob(3) matched nothing: nothing to refuse
        raise ctx.error(f"Failed to open invalid path '{ctx.shown(path)}'.")


def path_action(ctx: Context, item: Item, path: str, action: FdAction, creation: Creation) -> None:
    """systemd's path_set_*: open the entry safely (not following it) and act on the fd."""
    refuse_dotdot(ctx, path)
    with ctx.open_safe(path) as c:
        action(ctx, item, c.fd, path, None, creation)


def recursive_action(ctx: Context, item: Item, fd: int, path: str, action: FdAction) -> bool:
    """systemd's item_do: act on ``fd``, then on everything below it (never following
    symlinks), depth first in name order. Returns False when something failed (after trying
    everything). Iterative, within freshroot.fs.walk's fd budget: a user's tree of any depth
    (a Z line over a home) neither ends in RecursionError nor runs out of fds."""
    ok = True

    def visit(entry: int, at: str) -> tuple[list[str], os.stat_result] | None:
        """Act on one entry; for a directory, return its names (and stat) to go into."""
        nonlocal ok
        try:
            st = os.fstat(entry)
        except OSError as e:
            ctx.error(f"fstat() on file failed: {e.strerror}")
            ok = False
            return None
        try:
            action(ctx, item, entry, at, st, Creation.EXISTING)
        except ItemFailed:
            ok = False
        if not stat.S_ISDIR(st.st_mode):
            return None
        try:
            return ops.listdir_fd(entry), st
        except OSError as e:
            ctx.error(f"Failed to opendir() '{ctx.shown(at)}': {e.strerror}")
            ok = False
            return None

    top = visit(fd, path)
    if top is None:
        return ok
    dirs = DirStack(fd)
    frames = [(iter(top[0]), path)]
    try:
        while frames:
            names, here = frames[-1]
            name = next(names, None)
            if name is None:
                frames.pop()
                if frames:
                    try:
                        dirs.pop()
                    except OSError as e:  # moved meanwhile: where the walk is, is unknown
                        ctx.error(f"Failed to go back up to '{ctx.shown(frames[-1][1])}': {e.strerror}")
                        return False
                continue
            try:
                child = ops.open_path_at(dirs.fd(), name)
            except FileNotFoundError:
                continue
            except OSError as e:
                ctx.error(f"Failed to open file '{name}': {e.strerror}")
                ok = False
                continue
            at = here.rstrip("/") + "/" + name
            try:
                below = visit(child, at)
                if below is not None:
                    try:
                        dirs.push(name, below[1])  # the very directory acted on, or EAGAIN
                    except OSError as e:
                        ctx.error(f"Failed to opendir() '{ctx.shown(at)}': {e.strerror}")
                        ok = False
                    else:
                        frames.append((iter(below[0]), at))
            finally:
                os.close(child)
    finally:
        dirs.close()
    return ok
