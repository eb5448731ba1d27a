"""What ``render --units DIR`` wrote last time, so that the next render removes what it no
longer writes (a unit of an entry taken out of the declaration) and nothing else.

The manifest, ``DIR/.freshroot-units.json`` (a dot file: systemd loads no unit from it), lists
each path written, relative to DIR, with what was written there: ``sha256:HEX`` of a unit
file or drop-in, ``link:TARGET`` of a dependency symlink. A path the new render does not
write is removed only when it still holds exactly that (a file edited, replaced or made by
someone else since is left, and named); directories (``X.wants``, ``X.d``) left empty by a
removal go too. Without a manifest (the first render, or an older freshroot's) nothing is
removed. Every look and removal is relative to DIR's fd, never following a symlink.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat

from freshroot.digest import content
from freshroot.fs import ops
from freshroot.fs.atomic import replace_at

NAME = ".freshroot-units.json"
VERSION = 1


def file_mark(data: bytes) -> str:
    return content(data)


def link_mark(target: str) -> str:
    return "link:" + target


def load(dir_fd: int) -> dict[str, str]:
    """The paths the last render wrote and their marks; empty when there is no manifest or
    it cannot be read as one (then nothing is removed)."""
    try:
        if not stat.S_ISREG(ops.lstat_at(dir_fd, NAME).st_mode):  # never open a FIFO planted there
            return {}
        data = json.loads(ops.read_at(dir_fd, NAME, 1 << 20))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return {}
    return {k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, str) and _relative(k)}


def _relative(path: str) -> bool:
    """A path render can have written: one or two plain components (UNIT, X.wants/UNIT)."""
    parts = path.split("/")
    return 1 <= len(parts) <= 2 and all(p not in ("", ".", "..") for p in parts) and NAME not in parts


def save(dir_fd: int, written: dict[str, str], *, durable: bool = False) -> None:
    text = json.dumps({"version": VERSION, "files": dict(sorted(written.items()))}, indent=1) + "\n"
    replace_at(dir_fd, NAME, text.encode(), mode=0o644, durable=durable)


def _mark_of(dir_fd: int, path: str) -> str | None:
    """What is at ``path`` now, as a mark; None if missing or neither a file nor a symlink."""
    parent, _, name = path.rpartition("/")
    try:
        fd = ops.open_dir_at(dir_fd, parent) if parent else os.dup(dir_fd)
    except OSError:
        return None
    try:
        st = ops.lstat_at(fd, name)
        if stat.S_ISLNK(st.st_mode):
            return link_mark(os.readlink(name, dir_fd=fd))
        if not stat.S_ISREG(st.st_mode):
            return None
        return file_mark(ops.read_at(fd, name, 1 << 20))
    except OSError:
        return None
    finally:
        os.close(fd)


def prune(dir_fd: int, before: dict[str, str], now: dict[str, str]) -> tuple[list[str], list[str]]:
    """Remove what ``before`` lists and ``now`` does not, where it is still what was written.
    Returns (removed, kept because changed since)."""
    removed: list[str] = []
    kept: list[str] = []
    for path, mark in sorted(before.items()):
        if path in now:
            continue
        found = _mark_of(dir_fd, path)
        if found is None:
            continue  # gone already
        if found != mark:
            kept.append(path)
            continue
        parent, _, name = path.rpartition("/")
        fd = ops.open_dir_at(dir_fd, parent) if parent else os.dup(dir_fd)
        try:
            ops.unlink_at(fd, name)
        finally:
            os.close(fd)
        removed.append(path)
        if parent:
            with contextlib.suppress(OSError):  # ENOTEMPTY: something else is in it
                try:
                    ops.rmdir_at(dir_fd, parent)
                except OSError as e:
                    if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                        raise
    return removed, kept
