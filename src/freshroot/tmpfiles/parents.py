"""Making the parents of a line's path, as systemd's mkdir_parents_item does.

Without '=', missing parents are made 0755 and any failure is ignored (the create that
follows reports it). With '=', every parent that is not a directory (after following
symlinks) is removed with everything below it and replaced by a directory, and the path
itself is removed when it exists with the wrong type, mount points excepted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import stat

from freshroot.errors import UnsafePathError
from freshroot.fs import ops
from freshroot.fs.chase import chase, unsafe_transition
from freshroot.tmpfiles.context import Context, is_normalized, parent_of
from freshroot.tmpfiles.model import Item


def mkdir_parents_item(ctx: Context, item: Item, child_mode: int) -> None:
    if item.try_replace:
        _mkdir_parents_rm_if_wrong_type(ctx, child_mode, item.path)
        return
    if ctx.dry_run or not is_normalized(item.path):
        return
    with contextlib.suppress(OSError, ValueError):
        _mkdir_parents(ctx, parent_of(item.path))


def _mkdir_parents(ctx: Context, parent: str) -> None:
    """mkdir -p of ``parent`` as systemd's mkdir_parents: existing symlinks to directories are
    followed (inside the root); a dangling symlink or a non-directory stops it (the caller's
    create then reports the missing parent)."""
    try:  # the common case: the parent is there already, one walk tells
        found = ctx.safe_dir(parent)
    except (OSError, UnsafePathError):
        pass
    else:
        if stat.S_ISDIR(found.st.st_mode):
            if ctx.parent_hint is not None:
                ctx.parent_hint[1].close()
            ctx.parent_hint = (parent, found)  # open_parent takes it from here
            return
        found.close()
    resolved = "/"
    for name in [c for c in parent.split("/") if c]:
        with chase(resolved, root_fd=ctx.root_fd) as here:
            try:
                st = os.stat(name, dir_fd=here.fd, follow_symlinks=False)
            except FileNotFoundError:
                os.mkdir(name, 0o755, dir_fd=here.fd)
                # Exactly 0755, as systemd's mkdir_parents leaves it: not the setgid bit a
                # setgid parent would pass on.
                made = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=here.fd)
                try:
                    ops.chmod_fd(made, 0o755)
                finally:
                    os.close(made)
                st = os.stat(name, dir_fd=here.fd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            with chase(f"{resolved.rstrip('/')}/{name}", root_fd=ctx.root_fd) as target:
                if not stat.S_ISDIR(target.st.st_mode):
                    return
                resolved = target.path
            continue
        if not stat.S_ISDIR(st.st_mode):
            return
        resolved = f"{resolved.rstrip('/')}/{name}"


def _is_mount_point(parent_fd: int, name: str) -> bool:
    """By mount ids (systemd's is_mount_point_at), never st_dev: a btrfs subvolume has a
    device of its own but is no mount point."""
    return ops.is_mount_point_at(parent_fd, name)


def _rm_if_wrong_type(ctx: Context, mode: int, parent_fd: int, name: str, path: str, *, follow: bool) -> bool:
    """systemd's rm_if_wrong_type_safe. Returns True when the entry is (now) missing."""
    if mode == 0:
        return False
    try:
        if follow:
            with chase(path, root_fd=ctx.root_fd) as c:
                st = c.st
        else:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return True
    except OSError as e:
        raise ctx.os_failure(f'Failed to stat "{ctx.shown(path)}"', e) from e
    if follow and unsafe_transition(os.fstat(parent_fd), st):
        # Checked before anything is removed, as systemd's rm_if_wrong_type_safe does.
        raise ctx.error(f'Unsafe transition from "{ctx.shown(posixpath.dirname(path) or "/")}" to "{name}".')
    if stat.S_IFMT(st.st_mode) == mode:
        return False
    # The message names the type that was found (a symlink's target's, when following, as
    # 262 says it); what is removed is the entry itself, never what a symlink points to.
    ctx.info(f'Wrong file type 0o{stat.S_IFMT(st.st_mode):o}; rm -rf "{ctx.shown(path)}"')
    if follow:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    if _is_mount_point(parent_fd, name):
        raise ctx.error(f'Not removing "{ctx.shown(path)}" because it is a mount point.')
    ctx.action("Would remove", "Removing", ctx.shown(path))
    if not ctx.dry_run:
        ctx.forget_dirs()
        if stat.S_ISDIR(st.st_mode):
            # Nested subvolumes and mount points stay, so the rmdir then fails, as systemd's.
            try:
                ops.remove_contents_one_device(parent_fd, name)
            except OSError as e:
                raise ctx.os_failure(f'Failed to remove contents of "{ctx.shown(path)}"', e) from e
        try:
            (ops.rmdir_at if stat.S_ISDIR(st.st_mode) else ops.unlink_at)(parent_fd, name)
        except OSError as e:
            raise ctx.os_failure(f'Failed to remove "{ctx.shown(path)}"', e) from e
    return True


def _mkdir_parents_rm_if_wrong_type(ctx: Context, child_mode: int, path: str) -> None:
    components = [c for c in path.split("/") if c]
    if not components:
        return
    fd = os.dup(ctx.root_fd)
    walked = ""
    try:
        for i, name in enumerate(components):
            current = f"{walked}/{name}"
            if i == len(components) - 1:
                _rm_if_wrong_type(ctx, child_mode, fd, name, current, follow=False)
                return
            missing = _rm_if_wrong_type(ctx, stat.S_IFDIR, fd, name, current, follow=True)
            if missing:
                # A dangling symlink counts as missing: remove it before making the directory.
                missing = _rm_if_wrong_type(ctx, stat.S_IFDIR, fd, name, current, follow=False)
            if missing and not ctx.dry_run:
                try:
                    os.mkdir(name, 0o755, dir_fd=fd)
                except OSError as e:
                    raise ctx.os_failure(f'Failed to mkdir "{name}" at "{ctx.shown(walked or "/")}"', e) from e
            try:
                # In a dry run nothing was removed or made: as in systemd, opening a parent that
                # is missing or not a directory then fails (and so does the line).
                with chase(current, root_fd=ctx.root_fd) as c:
                    if not stat.S_ISDIR(c.st.st_mode):
                        raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), current)
                    nxt = os.dup(c.fd)
                    walked = c.path.rstrip("/")
            except FileNotFoundError as e:
                # systemd logs it, but returns -ENOENT, which mkdir_parents_item ignores: the
                # line goes on (and reports the missing parent itself).
                ctx.error(f'Failed to open "{name}" at "{ctx.shown(walked or "/")}": {e.strerror}')
                return
            except OSError as e:
                raise ctx.os_failure(f'Failed to open "{name}" at "{ctx.shown(walked or "/")}"', e) from e
            os.close(fd)
            fd = nxt
    finally:
        os.close(fd)
