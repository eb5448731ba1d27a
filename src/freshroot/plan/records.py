"""Typed records of the changes freshroot makes, and how each is reverted.

Every change an action makes is described, *before* it is made, by one or more records: frozen
dataclasses, one class per kind of change, kept in the state store (:mod:`.journal`) with a
type tag and a version (``{"type": "persist.bind", "v": 1, ...fields}``). A record class sits
beside the action that makes the change (persist/actions.py, activation/etc.py, ...) and holds
the inverse: ``revert(ctx, report)``. The generic ones used by several features (a directory
made, a file or symlink written or removed) are here.

A record may describe a change that never happened (written, then the process was killed), or
one that was undone by hand since: every revert checks that what is there is still what
freshroot made before it touches anything, never removes data (a directory only when empty, a
file only when it still holds what freshroot wrote), and says in the report what it kept and
why. ``undo`` reverts the records newest first (:func:`revert_all`).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import importlib
import os
import posixpath
import stat
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from freshroot.digest import content
from freshroot.features import FEATURES
from freshroot.fs.atomic import replace_at, temp_name
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.fs.ops import lstat_at, read_at, readlink_fd, rename_at, rmdir_at, symlink_at, unlink_at

if typing.TYPE_CHECKING:
    from freshroot.plan.context import Context

SAFE = ChaseFlags.SAFE
# The modules whose record types the store may hold (each feature's row names them): imported
# before the store is decoded.
RECORD_MODULES = tuple(module for feature in FEATURES for module in feature.records)
INLINE_LIMIT = 4 << 20  # previous content kept in a record, at most (an /etc file, an account file)


@dataclass
class UndoReport:
    """What `freshroot undo` did, and what it left alone."""
    done: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # what undo left alone, and why

    def to_json(self) -> dict[str, list[str]]:
        return {"undone": self.done, "kept": self.kept}


@dataclass(frozen=True)
class Record:
    """One change, as the store keeps it. Subclasses: frozen dataclasses with fields of str,
    int, bool, bytes, tuples of those, or None; registered with :func:`record_type`."""

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    # Reverted in a first pass, before every other record (mounts: what they cover can only
    # be removed once they are gone).
    FIRST: ClassVar[bool] = False

    def describe(self) -> str:
        """What it would revert, for ``undo --dry-run``."""
        return f"{self.TYPE} {getattr(self, 'path', '')}".rstrip()

    def revert(self, ctx: Context, report: UndoReport) -> None:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.TYPE, "v": self.VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bytes):
                value = {"b64": base64.b64encode(value).decode("ascii")}
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


R = TypeVar("R", bound=type[Record])
_TYPES: dict[str, type[Record]] = {}


def record_type(cls: R) -> R:
    """Register a Record class under its TYPE, so the store can read it back."""
    assert cls.TYPE, cls
    assert cls.TYPE not in _TYPES, cls
    _TYPES[cls.TYPE] = cls
    return cls


@dataclass(frozen=True)
class Unknown(Record):
    """A record this freshroot cannot read (another version wrote it, or it is damaged)."""

    TYPE: ClassVar[str] = "unknown"
    data: str = ""

    def describe(self) -> str:
        return f"unknown record {self.data[:80]}"

    def revert(self, ctx: Context, report: UndoReport) -> None:
        report.kept.append(f"cannot revert a record this version does not know: {self.data[:200]}")


@record_type
@dataclass(frozen=True)
class NotReverted(Record):
    """A change freshroot made but cannot revert (its effects are not known: a snippet that
    declares no ``files``, the tmpfiles.d phases): kept so that undo says so."""

    TYPE: ClassVar[str] = "not-reverted"
    description: str

    def describe(self) -> str:
        return f"say it cannot revert: {self.description}"

    def revert(self, ctx: Context, report: UndoReport) -> None:
        report.kept.append(f"cannot revert: {self.description}")


def _decode(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            with contextlib.suppress(TypeError, ValueError):
                return _decode(option, value)
        raise TypeError(value)
    if hint is type(None):
        if value is not None:
            raise TypeError(value)
        return None
    if hint is bytes:
        if not isinstance(value, dict) or not isinstance(value.get("b64"), str):
            raise TypeError(value)
        return base64.b64decode(value["b64"], validate=True)
    if origin is tuple:
        if not isinstance(value, list):
            raise TypeError(value)
        args = typing.get_args(hint)
        kinds = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
        if len(kinds) != len(value):
            raise TypeError(value)
        return tuple(_decode(k, v) for k, v in zip(kinds, value, strict=True))
    if hint is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise TypeError(value)
    if hint in (str, bool) and not isinstance(value, hint):
        raise TypeError(value)
    return value


def from_json(data: Any) -> Record:
    """The record ``data`` describes; :class:`Unknown` for anything this version cannot read."""
    for module in RECORD_MODULES:
        importlib.import_module(module)  # registers its record types (once: imports are cached)
    cls = _TYPES.get(str(data.get("type"))) if isinstance(data, dict) else None
    if cls is None or data.get("v") != cls.VERSION:
        return Unknown(repr(data))
    hints = typing.get_type_hints(cls)
    try:
        kwargs = {f.name: _decode(hints[f.name], data[f.name]) for f in dataclasses.fields(cls) if f.name in data}
        return cls(**kwargs)
    except (TypeError, ValueError, KeyError):
        return Unknown(repr(data))


def revert_all(ctx: Context, records: Sequence[Record], report: UndoReport,
               on_error: Callable[[Record, OSError], None] | None = None) -> None:
    """Revert ``records`` (oldest first), newest first: FIRST ones (mounts) in a pass of their own."""
    for first in (True, False):
        for r in reversed(records):
            if r.FIRST is not first:
                continue
            try:
                r.revert(ctx, report)
            except (FileNotFoundError, NotADirectoryError):
                pass  # its parent is gone: nothing of it is left to revert
            except OSError as e:
                if on_error is None:
                    raise
                on_error(r, e)


# --- generic records ---------------------------------------------------------------------------


def digest(data: bytes) -> str:
    return content(data)


def missing_dirs(root_fd: int, path: str) -> list[str]:
    """The directories of ``path`` (itself included) that do not exist, outermost first: what
    mkdir_parents would make."""
    out: list[str] = []
    current = posixpath.normpath(path)
    while current not in ("/", ""):
        try:
            with chase(current, root_fd=root_fd, flags=SAFE):
                break
        except FileNotFoundError:
            out.append(current)
        except (OSError, ValueError):
            break  # not ours to predict: mkdir_parents will say what is wrong
        current = posixpath.dirname(current)
    return out[::-1]


@record_type
@dataclass(frozen=True)
class MadeDirectory(Record):
    """freshroot created the directory ``path``: removed if it is still empty."""

    TYPE: ClassVar[str] = "dir.made"
    path: str

    def describe(self) -> str:
        return f"remove directory {self.path} (if empty)"

    def revert(self, ctx: Context, report: UndoReport) -> None:
        import errno

        with chase(self.path, root_fd=ctx.root_fd, flags=SAFE | ChaseFlags.PARENT) as parent:
            try:
                rmdir_at(parent.fd, parent.rest)
                report.done.append(f"removed directory {ctx.display(self.path)}")
            except OSError as e:
                if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    report.kept.append(f"{ctx.display(self.path)}: not empty, kept")
                elif e.errno not in (errno.ENOENT, errno.ENOTDIR):
                    raise


def made_directories(root_fd: int, path: str) -> list[Record]:
    return [MadeDirectory(p) for p in missing_dirs(root_fd, path)]


@dataclass(frozen=True)
class Seen:
    """What is at a path: its kind ("missing", "file", "symlink", "other"), content or target,
    owner and mode."""

    kind: str
    content: bytes = b""
    text: str = ""
    uid: int = 0
    gid: int = 0
    mode: int = 0

    @property
    def digest(self) -> str:
        return {"file": digest(self.content), "symlink": "symlink:" + self.text}.get(self.kind, self.kind)


def look(root_fd: int, path: str) -> Seen:
    """What is at ``path`` now (never following its last component)."""
    try:
        with chase(path, root_fd=root_fd, flags=SAFE | ChaseFlags.PARENT) as parent:
            st = lstat_at(parent.fd, parent.rest)
            if stat.S_ISLNK(st.st_mode):
                fd = os.open(parent.rest, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent.fd)
                try:
                    return Seen("symlink", text=readlink_fd(fd), uid=st.st_uid, gid=st.st_gid)
                finally:
                    os.close(fd)
            if stat.S_ISREG(st.st_mode) and st.st_size <= INLINE_LIMIT:
                return Seen("file", read_at(parent.fd, parent.rest, INLINE_LIMIT + 1), "", st.st_uid, st.st_gid,
                            stat.S_IMODE(st.st_mode))
            return Seen("other", uid=st.st_uid, gid=st.st_gid, mode=stat.S_IMODE(st.st_mode))
    except (FileNotFoundError, NotADirectoryError):
        return Seen("missing")


@record_type
@dataclass(frozen=True)
class WroteFile(Record):
    """freshroot changed ``path`` from what it was (``before_*``: a missing entry, a file with
    that content, owner and mode, or a symlink) to what ``after`` digests to (a file's content
    ``sha256:...``, ``symlink:TARGET``, or ``missing`` when it removed it). Reverted only while
    the path still holds ``after``: what someone changed since is kept."""

    TYPE: ClassVar[str] = "file.written"
    path: str
    after: str
    before_kind: str = "missing"  # missing | file | symlink | other (cannot be put back)
    before_content: bytes = b""
    before_text: str = ""
    before_owner: tuple[int, int, int] = (0, 0, 0o644)  # uid, gid, mode

    @classmethod
    def change(cls, root_fd: int, path: str, after: str) -> WroteFile:
        seen = look(root_fd, path)
        return cls(path, after, seen.kind, seen.content, seen.text, (seen.uid, seen.gid, seen.mode))

    def describe(self) -> str:
        what = {"missing": "remove", "file": "restore the old content of",
                "symlink": f"restore the symlink {self.before_text} at"}.get(self.before_kind, "keep")
        return f"{what} {self.path}"

    def revert(self, ctx: Context, report: UndoReport) -> None:
        self.revert_checked(ctx, report, look(ctx.root_fd, self.path))

    def revert_checked(self, ctx: Context, report: UndoReport, now: Seen) -> None:
        """Revert, ``now`` being what is at the path."""
        shown = ctx.display(self.path)
        if now.digest != self.after:
            if now.kind == self.before_kind and now.digest == Seen(self.before_kind, self.before_content,
                                                                   self.before_text).digest:
                return  # already as it was
            report.kept.append(f"{shown}: changed since freshroot wrote it, kept")
            return
        if self.before_kind == "other":
            report.kept.append(f"{shown}: what was there before freshroot replaced it (not a file or "
                               "symlink) cannot be put back")
            return
        directory, name = posixpath.split(self.path)
        with chase(directory, root_fd=ctx.root_fd, flags=SAFE) as d:
            if self.before_kind == "missing":
                unlink_at(d.fd, name)
                report.done.append(f"removed {shown}")
            elif self.before_kind == "file":
                uid, gid, mode = self.before_owner
                replace_at(d.fd, name, self.before_content, mode=mode, uid=uid, gid=gid)
                report.done.append(f"restored {shown}")
            else:
                replace_symlink(d.fd, name, self.before_text)
                report.done.append(f"restored symlink {shown} -> {self.before_text}")


def replace_symlink(dir_fd: int, name: str, target: str) -> None:
    """Make ``name`` a symlink to ``target`` atomically (a temporary link renamed over it)."""
    tmp = temp_name(name)
    symlink_at(target, dir_fd, tmp)
    try:
        rename_at(dir_fd, tmp, dir_fd, name)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def wrote_files(root_fd: int, changes: Iterable[tuple[str, str]]) -> list[Record]:
    """For each (path, after): the directories mkdir_parents will make for it, then the file."""
    out: list[Record] = []
    seen: set[str] = set()
    for path, after in changes:
        for made in missing_dirs(root_fd, posixpath.dirname(path)):
            if made not in seen:
                seen.add(made)
                out.append(MadeDirectory(made))
        out.append(WroteFile.change(root_fd, path, after))
    return out
