"""``freshroot audit``: what on the root is not persisted (lost at the next boot), and what
in storage is no longer declared.

One walk of the root, fd-relative (scandir on directory fds), never crossing into another
mount: mount points are known from /proc/self/mountinfo up front (bind mounts of the same file
system included), and a directory on another device is a mount point too. Files are grouped
by their directory cut to ``depth`` components and ranked by count. Ignore patterns (paths
and fnmatch globs) match directories (not entered) and files (not counted); see _Matcher for
how a file is tested only where a pattern can match it.

Sizes are asked for (``sizes=True``, ``audit --sizes``): each file then costs an fstatat,
which the walk otherwise never makes (file types come from the directory entries, as for
find). On the machines measured a stat costs about three times what find spends per entry,
so sizing is what du -sx costs, not what find costs (bench/audit.py measures both).
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from freshroot.errors import OperationError, os_error_message
from freshroot.fs import mount, ops
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.fs.walk import DirStack, usage
from freshroot.output import paint
from freshroot.persist.model import Persistence, is_below
from freshroot.plan.action import Context
from freshroot.progress import OFF

# Volatile by nature, or recreated at every boot: not worth listing.
DEFAULT_IGNORE: tuple[str, ...] = (
    "/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp", "/var/cache", "/var/run", "/var/lock",
    "/lost+found", "/nix", "/boot", "/mnt", "/media",
)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Group:
    """A directory of the audit report, with its files and their size."""
    path: str
    files: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "files": self.files, "bytes": self.bytes}


@dataclass
class AuditReport:
    """What `freshroot audit` found on the root and in storage."""
    unpersisted: list[Group] = field(default_factory=list)
    undeclared: list[Group] = field(default_factory=list)  # in storage, no longer declared
    entries: int = 0  # entries looked at on the root
    sized: bool = False  # True: sizes were measured (audit --sizes)
    unreadable: list[str] = field(default_factory=list)  # "path: why": not counted, report incomplete
    baseline: str = ""  # "the blank snapshot NAME": files as it has them were not counted

    @property
    def complete(self) -> bool:
        return not self.unreadable

    @property
    def files(self) -> int:
        return sum(g.files for g in self.unpersisted)

    @property
    def bytes(self) -> int:
        return sum(g.bytes for g in self.unpersisted)

    def to_json(self) -> dict[str, Any]:
        return {"entries_walked": self.entries, "unpersisted_files": self.files,
                "unpersisted_bytes": self.bytes if self.sized else None,
                "unpersisted": [g.to_json() if self.sized else {**g.to_json(), "bytes": None}
                                for g in self.unpersisted],
                "undeclared_in_storage": [g.to_json() for g in self.undeclared],
                "complete": self.complete, "unreadable": list(self.unreadable),
                "compared_with": self.baseline or None}

    def render(self, limit: int = 30, *, colour: bool = False) -> str:
        """The text of ``audit``; ``colour``: what is lost in yellow, what is incomplete in
        red (a terminal)."""
        heading = (f"not persisted and not as in {self.baseline} (what the next wipe removes)" if self.baseline
                   else "not persisted (lost at the next boot)")
        heading = paint(heading, "yellow+bold" if self.files else "green+bold", colour)
        if not self.sized:
            lines = [f"{heading}: {self.files} files"]
            lines += [f"  {g.files:>7} files  {g.path}" for g in self.unpersisted[:limit]]
            if self.unpersisted:
                lines.append("  (ranked by file count; --sizes measures bytes, one stat per file)")
        else:
            lines = [f"{heading}: {self.files} files, {human(self.bytes)}"]
            lines += [f"  {human(g.bytes):>9}  {g.files:>7} files  {g.path}" for g in self.unpersisted[:limit]]
        if len(self.unpersisted) > limit:
            lines.append(f"  ... and {len(self.unpersisted) - limit} more directories (--limit, --json)")
        if self.undeclared:
            lines.append(paint("in storage but no longer declared:", "yellow+bold", colour))
            lines += [f"  {human(g.bytes):>9}  {g.files:>7} files  {g.path}" for g in self.undeclared]
        if self.unreadable:
            lines.append(f"{paint('INCOMPLETE:', 'red+bold', colour)} {len(self.unreadable)} entries could not be "
                         "read, and what is in them is not counted above:")
            lines += [f"  {u}" for u in self.unreadable[:limit]]
            if len(self.unreadable) > limit:
                lines.append(f"  ... and {len(self.unreadable) - limit} more (--limit, --json)")
        return "\n".join(lines)


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _mount_points(root_fd: int) -> set[str]:
    """Mount points strictly below the root, as root-relative paths."""
    real = os.readlink(ops.fd_path(root_fd))
    prefix = "" if real == "/" else real.rstrip("/")
    out = set()
    for m in mount.mountinfo():
        p = m.mount_point
        if prefix and (p == prefix or not p.startswith(prefix + "/")):
            continue
        rel = p[len(prefix):] or "/"
        if rel != "/":
            out.add(rel)
    return out


_WILD = "*?["


class _Matcher:
    """The ignore patterns, compiled once: exact paths in a set (and by directory, for the
    files), globs in one regex. ``*`` matches across ``/`` as in fnmatch."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.exact = {p.rstrip("/") or "/" for p in patterns if not any(c in p for c in _WILD)}
        self.names: dict[str, set[str]] = {}  # directory -> names of exact paths in it
        for path in self.exact:
            parent, _, name = path.rpartition("/")
            self.names.setdefault(parent, set()).add(name)
        globs = [p for p in patterns if any(c in p for c in _WILD)]
        self.globs = [(_literal_prefix(p), _name_suffix(p), fnmatch.translate(p)) for p in globs]
        self.glob = re.compile("|".join(g for _, _, g in self.globs)) if self.globs else None
        self._for_files: dict[tuple[int, ...], tuple[re.Pattern[str], tuple[str, ...]]] = {}

    def __call__(self, path: str) -> bool:
        return path in self.exact or (self.glob is not None and self.glob.match(path) is not None)

    def files_in(self, path: str) -> tuple[re.Pattern[str], tuple[str, ...]] | None:
        """The globs that can match a file directly in directory ``path``: one regex, and the
        endings a name must have to match one of them (a cheap test before the regex); None
        when no glob can match there, so the walk tests no file name at all."""
        d = path + "/"
        which = tuple(i for i, (lit, _, _) in enumerate(self.globs)
                      if d.startswith(lit) or (lit.startswith(d) and "/" not in lit[len(d):]))
        if not which:
            return None
        found = self._for_files.get(which)
        if found is None:
            found = self._for_files[which] = (re.compile("|".join(self.globs[i][2] for i in which)),
                                              tuple({self.globs[i][1] for i in which}))
        return found


def _literal_prefix(pattern: str) -> str:
    """What every path a glob matches begins with: the text before its first wildcard."""
    return pattern[: min(i for i in (pattern.find(c) for c in _WILD) if i >= 0)]


def _name_suffix(pattern: str) -> str:
    """What the last component of every path a glob matches ends with: the literal text after
    its last wildcard (or class bracket), from its last ``/`` on if it has one."""
    tail = pattern[max(pattern.rfind(c) for c in "*?[]") + 1:]
    return tail.rpartition("/")[2]


Unchanged = Callable[[str], Callable[[os.DirEntry[str]], bool] | None]


def audit(p: Persistence, ctx: Context, *, ignore: tuple[str, ...] = (), depth: int = 3,
          sizes: bool = False, unchanged: Unchanged | None = None, baseline: str = "") -> AuditReport:
    """Walk the root once. Without ``sizes`` no file is stat'ed (directories only: the walk
    costs what ``find -xdev`` costs) and groups are ranked by file count; with it, by bytes.
    ``unchanged(directory)`` (freshroot.root.blank) tells which of its files are as the blank
    snapshot has them: those are not counted (the wipe brings them back)."""
    skip = _Matcher(DEFAULT_IGNORE + p.audit_ignore + ignore)
    declared = {e.path for e in p.entries()} | {s.path for s in p.storages}
    # Declared and ignored file paths, by directory, so the per-file loop tests a name only
    # where one is declared or ignored; globs only where one can match (skip.files_in).
    known_names: dict[str, set[str]] = {k: set(v) for k, v in skip.names.items()}
    for path in declared:
        parent, _, name = path.rpartition("/")
        known_names.setdefault(parent, set()).add(name)
    mounts = _mount_points(ctx.root_fd)
    report = AuditReport()
    groups: dict[str, list[int]] = {}
    root = ops.reopen(ctx.root_fd, _DIR_FLAGS)
    dev = os.fstat(root).st_dev
    # Depth first with the names of the subdirectories still to visit, not open fds: a
    # directory with 3,000 subdirectories costs no more fds than one with three, and a deep
    # tree no more than freshroot.fs.walk's budget.
    dirs = DirStack(root)
    frames: list[tuple[Iterator[str], str]] = []
    walked = 0

    def scan(fd: int, path: str) -> list[str]:
        """Count the files of one directory; return the subdirectories to walk."""
        nonlocal walked
        here: set[str] | frozenset[str] = known_names.get(path, frozenset())
        globbed = skip.files_in(path) if skip.glob is not None else None
        same = unchanged(path) if unchanged is not None else None
        if globbed is not None:
            glob_rx, endings = globbed
        files = size = 0
        subdirs: list[str] = []
        try:
            with os.scandir(fd) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        walked += 1
                        child = f"{path}/{entry.name}"
                        if child in declared or child in mounts or skip(child):
                            continue
                        subdirs.append(entry.name)
                    elif (here and entry.name in here) or (
                            globbed is not None and entry.name.endswith(endings)
                            and glob_rx.match(f"{path}/{entry.name}") is not None):
                        walked += 1  # declared, or ignored
                    elif same is not None and same(entry):
                        walked += 1  # as in the blank: the wipe brings it back
                    else:
                        files += 1
                        if sizes:
                            try:
                                size += entry.stat(follow_symlinks=False).st_size
                            except FileNotFoundError:
                                continue
                            except OSError as e:
                                report.unreadable.append(os_error_message(e, f"{path}/{entry.name}"))
        except OSError as e:
            report.unreadable.append(os_error_message(e, path or "/"))
        walked += files
        meter.advance(files, size)
        if files:
            parts = path.split("/")
            g = groups.setdefault("/".join(parts[: depth + 1]) or "/", [0, 0])
            g[0] += files
            g[1] += size
        return subdirs

    meter = ctx.progress or OFF
    try:
        used = os.fstatvfs(root)
        estimate: int | None = (used.f_blocks - used.f_bfree) * used.f_frsize  # the ETA's guess: all in use
    except OSError:
        estimate = None
    with meter.phase("audit /", nbytes=estimate if sizes else None):  # the root as it sees itself
        _walk_root(frames, dirs, scan, root, dev, report, ctx)
    report.entries = walked
    order = (lambda g: (-g.bytes, g.path)) if sizes else (lambda g: (-g.files, g.path))
    report.unpersisted = sorted((Group(k, f, b) for k, (f, b) in groups.items()), key=order)
    report.sized = sizes
    report.baseline = baseline
    report.undeclared = undeclared(p, ctx, report.unreadable)
    return report


def _walk_root(frames: list[tuple[Iterator[str], str]], dirs: DirStack, scan: Callable[[int, str], list[str]],
               root: int, dev: int, report: AuditReport, ctx: Context) -> None:
    """Depth first from the root, calling ``scan`` on each directory on the root's file system."""
    try:
        frames.append((iter(scan(root, "")), ""))
        while frames:
            names, path = frames[-1]
            sub = next(names, None)
            if sub is None:
                frames.pop()
                if frames:
                    try:
                        dirs.pop()
                    except OSError as e:  # ESTALE: moved while walked, deeper than the fd budget
                        raise OperationError(f"{ctx.display(path or '/')}: {os_error_message(e)}; "
                                             "audit again when the tree holds still") from e
                continue
            child = f"{path}/{sub}"
            try:
                fd = dirs.push(sub)
            except FileNotFoundError:
                continue  # removed since it was listed: nothing there to lose
            except OSError as e:
                report.unreadable.append(os_error_message(e, child))
                continue
            if dirs.levels[-1].key[0] != dev:
                dirs.pop()  # another file system: a mount point
                continue
            frames.append((iter(scan(fd, child)), child))
    finally:
        dirs.close()
        os.close(root)


def _size(dir_fd: int, name: str, path: str, unreadable: list[str]) -> tuple[int, int]:
    """Files and bytes of ``name`` and what is below it (iterative, within an fd budget)."""
    used = usage(dir_fd, name, lambda below, e: unreadable.append(os_error_message(e, f"{path}/{below}")))
    return used.files, used.size


def undeclared(p: Persistence, ctx: Context, unreadable: list[str] | None = None) -> list[Group]:
    """Entries of each storage that are neither declared nor on the way to a declared one.
    What cannot be read is added to ``unreadable``."""
    out: list[Group] = []
    unreadable = [] if unreadable is None else unreadable
    for s in p.storages:
        sources = {e.source for e in s.entries}
        on_the_way = {a for src in sources for a in _ancestors(src) if is_below(a, s.path)}
        try:
            top = chase(s.path, root_fd=ctx.root_fd, flags=ChaseFlags.SAFE)
        except FileNotFoundError:
            continue  # no storage there: nothing in it to list
        except OSError as e:
            unreadable.append(os_error_message(e, s.path))
            continue
        with top:
            todo = [(ops.reopen(top.fd, _DIR_FLAGS), s.path.rstrip("/"))]
        while todo:
            fd, path = todo.pop()
            try:
                for name in sorted(os.listdir(fd)):
                    child = f"{path}/{name}"
                    if child in sources:
                        continue
                    try:
                        if child in on_the_way:  # as many as there are declared paths: fds are fine
                            todo.append((ops.open_dir_at(fd, name), child))
                        else:
                            out.append(Group(child, *_size(fd, name, child, unreadable)))
                    except FileNotFoundError:
                        continue
                    except OSError as e:
                        unreadable.append(os_error_message(e, child))
            finally:
                os.close(fd)
    return sorted(out, key=lambda g: g.path)


def _ancestors(path: str) -> list[str]:
    parts = path.strip("/").split("/")
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]
