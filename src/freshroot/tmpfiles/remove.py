"""The remove phase: systemd's remove_item for r, R and D.

``r`` removes the matched entry (a file, or an empty directory). ``R`` and ``D`` empty a
directory the way systemd's dir_cleanup does with an infinite cutoff: entries that have a
line of their own or match a glob line are kept, and so are mount points, device nodes,
sticky files and live sockets, and locked directories with their subtree; directories are
removed only when they end up empty. ``R`` then removes the directory itself, ``D`` keeps it.

The walk (:func:`cleanup_dir`) takes a predicate for "old enough", so the clean phase can
reuse it with ages.

Beyond systemd (issue 4, docs/tmpfiles-clean.md): the starting path of r, R and D is walked
with the safe-transition rule, so a symlink a user planted in the middle of it is not
followed; systemd resolves it by name.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Callable

from freshroot.errors import UnsafePathError
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.tmpfiles.context import Context, Creation, ItemFailed
from freshroot.tmpfiles.create import glob_item
from freshroot.tmpfiles.model import Item, ItemType

MAX_DEPTH = 256
# Decides whether one entry is old enough to go: (stat of the entry, is it a directory).
NeedsCleanup = Callable[[os.stat_result, bool], bool]


def _always(_st: os.stat_result, _is_dir: bool) -> bool:
    return True


def _live_sockets() -> frozenset[str]:
    try:
        with open("/proc/net/unix", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return frozenset()
    out = set()
    for line in lines:
        parts = line.split()
        if len(parts) >= 8 and parts[7].startswith("/"):
            out.add(parts[7])
    return frozenset(out)


def remove_item(ctx: Context, item: Item) -> None:
    if ctx.verbose:  # no message built unless it is shown
        ctx.debug(f"Running remove action for entry {item.type} {item.path}")
    match item.type:
        case ItemType.TRUNCATE_DIRECTORY:
            remove_recursive(ctx, item, item.path, remove_instance=False)
        case ItemType.REMOVE_PATH | ItemType.RECURSIVE_REMOVE_PATH:
            glob_item(ctx, item, remove_item_instance)
        case _:
            return


def remove_item_instance(ctx: Context, item: Item, path: str, creation: Creation) -> None:
    del creation
    if item.type is ItemType.REMOVE_PATH:
        ctx.action("Would remove", "Removing", f'"{ctx.shown(path)}".')
        if not ctx.dry_run:
            _remove_one(ctx, path)
        return
    remove_recursive(ctx, item, path, remove_instance=True)


def _remove_one(ctx: Context, path: str) -> None:
    """remove(3): unlink, or rmdir for a directory. A missing entry is fine."""
    parent, _, name = path.rpartition("/")
    try:
        with chase(parent or "/", root_fd=ctx.root_fd, flags=ChaseFlags.SAFE) as c:
            try:
                os.unlink(name, dir_fd=c.fd)
            except IsADirectoryError:
                os.rmdir(name, dir_fd=c.fd)
            except PermissionError as e:
                st = os.stat(name, dir_fd=c.fd, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    raise
                del e
                os.rmdir(name, dir_fd=c.fd)
    except FileNotFoundError:
        return
    except UnsafePathError as e:
        raise ctx.error(str(e)) from e
    except OSError as e:
        raise ctx.os_failure(f"rm {ctx.shown(path)}", e) from e


def remove_recursive(ctx: Context, item: Item, path: str, *, remove_instance: bool) -> None:
    try:
        # systemd opens the instance with opendir(O_NOFOLLOW): a symlink there is an error.
        c = chase(path, root_fd=ctx.root_fd, flags=ChaseFlags.SAFE | ChaseFlags.NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError):
        c = None
    except UnsafePathError as e:
        raise ctx.error(str(e)) from e
    except OSError as e:
        raise ctx.os_failure(f"Failed to open directory {ctx.shown(path)}", e) from e
    # opendir(O_NOFOLLOW) fails with ELOOP on a symlink, which systemd treats like "not a
    # directory": R removes the symlink itself, D leaves it.
    if c is None or not stat.S_ISDIR(c.st.st_mode):
        if c is not None:
            c.close()
        if remove_instance:
            ctx.action("Would remove", "Removing", f'file "{ctx.shown(path)}".')
            if not ctx.dry_run:
                _remove_one(ctx, path)
        return
    with c:
        try:
            dfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=c.fd)
        except OSError as e:
            raise ctx.os_failure(f"Failed to open directory {ctx.shown(path)}", e) from e
        try:
            ok = cleanup_dir(ctx, item, path, dfd, os.fstat(dfd).st_dev, MAX_DEPTH, _always)
        finally:
            os.close(dfd)
    if not ok:
        raise ItemFailed(path)
    if remove_instance:
        ctx.debug(f'Removing directory "{ctx.shown(path)}".')
        if ctx.dry_run:
            return
        parent, _, name = path.rpartition("/")
        try:
            with chase(parent or "/", root_fd=ctx.root_fd, flags=ChaseFlags.SAFE) as p:
                os.rmdir(name, dir_fd=p.fd)
        except UnsafePathError as e:
            raise ctx.error(str(e)) from e
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOTEMPTY):
                raise ctx.os_failure(f"Failed to remove {ctx.shown(path)}", e) from e


def cleanup_dir(
    ctx: Context, item: Item, path: str, dfd: int, dev: int, depth: int, needs_cleanup: NeedsCleanup,
    sockets: frozenset[str] | None = None,
) -> bool:
    """systemd's dir_cleanup over the open directory ``dfd`` (``path`` names it, root-relative).
    Returns False when something failed (after going through everything)."""
    ok = True
    for name in sorted(os.listdir(dfd)):
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        except OSError as e:
            ctx.error(f"statx({ctx.shown(path)}/{name}) failed: {e.strerror}")
            continue
        sub = f"{path.rstrip('/')}/{name}"
        if st.st_dev != dev or (stat.S_ISDIR(st.st_mode) and _is_mount(dfd, name, st)):
            ctx.debug(f'Ignoring "{ctx.shown(sub)}": different mount points.')
            continue
        if sub in ctx.items_by_path:
            ctx.debug(f'Ignoring "{ctx.shown(sub)}": a separate entry exists.')
            continue
        if ctx.matches_glob(sub):
            ctx.debug(f'Ignoring "{ctx.shown(sub)}": a separate glob exists.')
            continue
        if stat.S_ISDIR(st.st_mode):
            if depth <= 0:
                ctx.warn(f'Reached max depth on "{ctx.shown(sub)}".')
            else:
                try:
                    sub_fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                except OSError as e:
                    if e.errno != errno.ENOENT:
                        ctx.warn(f'Opening directory "{ctx.shown(sub)}" failed, ignoring: {e.strerror}')
                        ok = False
                    continue
                try:
                    if not ctx.dry_run:
                        try:
                            fcntl.flock(sub_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        except OSError:
                            ctx.debug(f'Couldn\'t acquire lock on directory "{ctx.shown(sub)}", skipping.')
                            continue
                    ok = cleanup_dir(ctx, item, sub, sub_fd, dev, depth - 1, needs_cleanup, sockets) and ok
                finally:
                    os.close(sub_fd)
            if not needs_cleanup(st, stat.S_ISDIR(st.st_mode)):
                continue
            ctx.action("Would remove", "Removing", f'directory "{ctx.shown(sub)}"')
            if not ctx.dry_run:
                try:
                    os.rmdir(name, dir_fd=dfd)
                except OSError as e:
                    if e.errno not in (errno.ENOENT, errno.ENOTEMPTY):
                        ctx.warn(f'Failed to remove directory "{ctx.shown(sub)}", ignoring: {e.strerror}')
                        ok = False
            continue
        if st.st_mode & stat.S_ISVTX:
            ctx.debug(f'Skipping "{ctx.shown(sub)}": sticky bit set.')
            continue
        if stat.S_ISSOCK(st.st_mode):
            if sockets is None:
                sockets = _live_sockets()
            if ctx.shown(sub) in sockets:
                ctx.debug(f'Skipping "{ctx.shown(sub)}": live socket.')
                continue
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            ctx.debug(f'Skipping "{ctx.shown(sub)}": a device.')
            continue
        if not needs_cleanup(st, stat.S_ISDIR(st.st_mode)):
            continue
        ctx.action("Would remove", "Removing", f'"{ctx.shown(sub)}"')
        if ctx.dry_run:
            continue
        if not _unlink_locked(ctx, dfd, name, sub, st):
            ok = False
    return ok


def _is_mount(dfd: int, name: str, st: os.stat_result) -> bool:
    with contextlib.suppress(OSError):
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        try:
            return os.stat(os.path.join(f"/proc/self/fd/{fd}", "..")).st_dev != st.st_dev
        finally:
            os.close(fd)
    return False


def _unlink_locked(ctx: Context, dfd: int, name: str, sub: str, st: os.stat_result) -> bool:
    """Unlink a file unless someone holds a BSD lock on it (regular files only)."""
    fd = -1
    if stat.S_ISREG(st.st_mode):
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NOATIME | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dfd)
        except OSError:
            fd = -1
        if fd >= 0:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                ctx.debug(f'Couldn\'t acquire lock on "{ctx.shown(sub)}", skipping.')
                return True
    try:
        os.unlink(name, dir_fd=dfd)
    except FileNotFoundError:
        pass
    except OSError as e:
        ctx.warn(f'Failed to remove "{ctx.shown(sub)}", ignoring: {e.strerror}')
        return False
    finally:
        if fd >= 0:
            os.close(fd)
    return True
