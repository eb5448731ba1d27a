"""``freshroot-tmpfiles --explain PATH``: which line keeps, cleans or would remove PATH, and why.

It runs the remove, clean (and, with files named, purge) phases as a dry run with a listener
on the walk, and prints what the walk decided about PATH: the line that reached it, and the
reason (the timestamp that is too new, a lock, an exclusion and the line that made it, a mount
point). Nothing is changed. A plain dry run takes no locks (neither does systemd's), so the walk
here tries each flock a real run would take (non-blocking) and releases it at once: a file or
directory someone holds a lock on is reported as skipped, as a real --clean skips it.
"""

from __future__ import annotations

import os
import posixpath
import sys

from freshroot.fs.ops import open_root
from freshroot.tmpfiles.clean import Decision, sweep
from freshroot.tmpfiles.globs import fnmatch_path
from freshroot.tmpfiles.model import Config, Item


def _line(item: Item) -> str:
    return f"{item.location}: {item.spec} {item.path}"


def _excluder(config: Config, path: str) -> Item | None:
    """The line that has ``path`` as its own, or the glob line that matches it."""
    for group in config.groups:
        if group.path == path:
            return group.items[0]
    for group in config.globs:
        if fnmatch_path(group.path, path):
            return group.items[0]
    return None


def explain(path: str, config: Config, root: str, *, purge: bool = False) -> int:
    target = posixpath.normpath("/" + path.lstrip("/"))
    if root not in ("", "/") and target.startswith(root.rstrip("/") + "/"):
        target = target[len(root.rstrip("/")):]  # accept the path as seen from the host too
    seen: list[Decision] = []
    above: list[Decision] = []  # decisions about the directories above PATH

    def listen(d: Decision) -> None:
        if d.path == target:
            seen.append(d)
        elif target.startswith(d.path.rstrip("/") + "/") and d.action in ("skip", "stop"):
            above.append(d)

    root_fd = open_root(root)
    try:
        sweep(config, root_fd, clean=True, remove=True, purge=purge, root=root, dry_run=True, explain=listen)
    finally:
        os.close(root_fd)
    out = sys.stdout
    if not seen and above:
        d = max(above, key=lambda d: len(d.path))
        excluder = _excluder(config, d.path)
        why = f": {_line(excluder)}" if excluder is not None and "line" in d.reason else ""
        out.write(f"{target}: keep: the walk does not enter {d.path}, because {d.reason}{why}\n")
        return 0
    if not seen:
        out.write(f"{target}: no clean, remove or purge line reaches it; it is left alone\n")
        return 0
    for d in seen:
        by = f" (walk of {_line(d.item)})" if d.item is not None else ""
        reason = d.reason
        if "line of its own" in reason or "glob line" in reason:
            excluder = _excluder(config, target)
            if excluder is not None:
                reason = f"{reason}: {_line(excluder)}"
        out.write(f"{target}: {d.action}: {reason}{by}\n")
    return 0
