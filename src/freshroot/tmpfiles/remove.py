"""The remove phase: systemd's remove_item for r, R and D.

``r`` removes the matched entry (a file, or an empty directory). ``R`` and ``D`` empty a
directory the way systemd's dir_cleanup does with an infinite cutoff: entries that have a
line of their own or match a glob line are kept, and so are mount points, device nodes,
sticky files and live sockets, and locked directories with their subtree; directories are
removed only when they end up empty. ``R`` then removes the directory itself, ``D`` keeps it.

The walk itself is freshroot.tmpfiles.clean's Cleaner, shared by the clean, remove and purge
phases (one per run, in ``Context.cache``).

A deliberate difference (freshroot.tmpfiles.differences: safe-start-r, safe-start-R,
safe-start-D): the starting path of r, R and D is walked with the safe-transition rule, so a
symlink a user planted in the middle of it is not followed; systemd resolves it by name.
"""

from __future__ import annotations

import os
import stat

from freshroot.errors import UnsafePathError
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.log import logger
from freshroot.tmpfiles import cleanworkers
from freshroot.tmpfiles.clean import Cleaner
from freshroot.tmpfiles.context import Context, Creation, ItemFailed
from freshroot.tmpfiles.create import glob_item
from freshroot.tmpfiles.model import Item, ItemType


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
    """systemd's remove_recursive(): the clean walk with every age passed (one walk for clean,
    remove and purge: freshroot.tmpfiles.clean), then the path itself if asked."""
    if not sweeper(ctx).remove_recursive(item, path, remove_instance=remove_instance):
        raise ItemFailed(path)


def sweeper(ctx: Context) -> Cleaner:
    """The one Cleaner of this run (it caches the glob index and the live sockets)."""
    found = ctx.cache.get("sweeper")
    if isinstance(found, Cleaner):
        return found
    cleaner = Cleaner(
        ctx.config, ctx.root_fd, root=ctx.options.root, display_root=ctx.options.display_root,
        dry_run=ctx.dry_run, log=logger.error,
        verbose=ctx.verbose, note=logger.info if ctx.dry_run else logger.debug,
        workers=cleanworkers.default_workers(warn=ctx.warn),
    )
    ctx.cache["sweeper"] = cleaner
    return cleaner


def clean_item(ctx: Context, item: Item) -> None:
    ctx.debug(f"Running clean action for entry {item.type} {item.path}")
    if not sweeper(ctx).clean_item(item):
        raise ItemFailed(item.path)


def purge_item(ctx: Context, item: Item) -> None:
    if not sweeper(ctx).purge_item(item):
        raise ItemFailed(item.path)
