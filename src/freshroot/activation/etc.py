"""The ``etc`` step: files declared under ``[etc."path"]`` written or linked into /etc.

```toml
[etc."ssh/sshd_config.d/10-freshroot.conf"]
text = "PasswordAuthentication no\n"
mode = "0600"          # or "symlink" (with source), default "0644"
user = "root"
group = "root"

[etc."localtime"]
source = "/usr/share/zoneinfo/Europe/Paris"
mode = "symlink"
```

What freshroot wrote is kept in a manifest, /etc/.freshroot-manifest.json, with each file's
content hash (a symlink: its target). It lives in /etc so it shares /etc's fate: persisted
with it, or wiped with it. With it:

- a file declared before and dropped from the declaration is removed, if it is still what
  freshroot wrote;
- a file changed by hand since freshroot wrote it is reported and left alone, unless the
  entry says ``force = true`` or the run is ``apply --fix``;
- a file that was there before freshroot ever managed it (the distribution's /etc/hosts) is
  kept as ``<name>.freshroot-orig`` before it is replaced, so nothing is lost.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import posixpath
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from freshroot.config import fields
from freshroot.config.table import Table
from freshroot.errors import ConfigError, Location, OperationError, Problems, UnsafePathError
from freshroot.fs.accounts import Accounts
from freshroot.fs.atomic import replace_at, replace_symlink_at
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.fs.ops import (
    fd_path,
    lstat_at,
    mkdir_parents,
    read_at,
    read_fd,
    readlink_fd,
    unlink_at,
)
from freshroot.plan.action import Action, Context, Step, step_output
from freshroot.plan.records import Record, WroteFile, digest, look, wrote_files

MANIFEST = ".freshroot-manifest.json"
KEYS = frozenset({"text", "source", "mode", "user", "group", "force"})
BACKUP_SUFFIX = ".freshroot-orig"
ROOT = fields.Owner("root")
SOURCE_LIMIT = 16 << 20  # a copied source is read whole: /etc is for configuration, not data


@dataclass(frozen=True)
class EtcFile:
    """One declared [etc] file: its text or the file it copies or links to, with its owner and mode."""
    path: str  # "/etc/..." canonical
    text: bytes | None = None  # content (for a copied source: read at plan time), None for a symlink
    source: str | None = None  # what the symlink points to (link), else where text comes from
    mode: int = 0o644
    user: str = "root"
    group: str = "root"
    force: bool = False
    location: Location | None = None
    link: bool = False  # mode = "symlink": a link to source; without it source's content is copied

    @property
    def symlink(self) -> bool:
        return self.link

    def digest(self) -> str:
        return digest(self.text) if self.text is not None else "symlink:" + (self.source or "")




def _canonical(table: Table, key: str) -> str:
    rel = key.removeprefix("/etc/").lstrip("/")
    norm = posixpath.normpath(rel)
    if not rel or norm != rel.rstrip("/") or norm.startswith("..") or norm in (".", MANIFEST):
        raise table.error(f'etc."{key}": not a canonical path below /etc', key,
                          hint='write it as [etc."dir/name"], without "..", "." or a trailing "/"')
    problem = fields.path_problem("/etc/" + norm)
    if problem is not None:
        raise table.error(f"{table.name(key)}: {key!r} {problem}", key)
    return "/etc/" + norm


def parse_etc(section: Table, root_fd: int | None = None) -> list[EtcFile]:
    """``[etc."path"]`` entries. ``source`` of a copied file is read from the root at plan time."""
    out = []
    problems = Problems()
    for key, table in section.tables():
        with problems:
            out.append(_etc_file(section, key, table))
    problems.raise_all()
    return out


def _etc_file(section: Table, key: str, table: Table) -> EtcFile:
    path = _canonical(section, key)
    table.reject_unknown(KEYS)
    text = table.get_str("text")
    source = fields.opt_path(table, "source")
    where = section.location(key)
    if (text is None) == (source is None):
        raise table.error(f'etc."{key}": give exactly one of text and source',
                          hint="text = '...' or source = '/path'")
    symlink = "mode" in table and table.raw("mode") == "symlink"
    if symlink and source is None:
        raise table.error(f'etc."{key}": mode = "symlink" needs source', "mode")
    mode = 0 if symlink else fields.mode(table, "mode", 0o644)
    assert mode is not None
    return EtcFile(
        path,
        None if symlink else (text.encode() if text is not None else None),
        source, mode, str(fields.owner(table, "user", ROOT)), str(fields.owner(table, "group", ROOT)),
        table.get_bool("force", default=False), where, link=symlink,
    )


# --- reading the root -----------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """What a path in /etc is now: its kind, its content's digest and its stat."""
    kind: str  # "missing", "file", "symlink", "other"
    digest: str = ""
    st: os.stat_result | None = None


def _inspect(root_fd: int, path: str) -> Found:
    try:
        parent = chase(path, root_fd=root_fd, flags=ChaseFlags.PARENT | ChaseFlags.SAFE)
    except FileNotFoundError:
        return Found("missing")
    with parent:
        try:
            st = lstat_at(parent.fd, parent.rest)
        except FileNotFoundError:
            return Found("missing")
        if stat.S_ISLNK(st.st_mode):
            return Found("symlink", "symlink:" + os.readlink(parent.rest, dir_fd=parent.fd), st)
        if stat.S_ISREG(st.st_mode):
            return Found("file", digest(read_at(parent.fd, parent.rest)), st)
        return Found("other", "", st)


def _read_manifest(root_fd: int) -> dict[str, Any]:
    try:
        with chase("/etc", root_fd=root_fd) as etc:
            data = json.loads(read_at(etc.fd, MANIFEST))
    except (FileNotFoundError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return files if isinstance(files, dict) else {}


def _read_source(ctx: Context, entry: EtcFile) -> bytes:
    """The content of a copied ``source``: chased from the root with SAFE (no symlink a user
    planted is followed out of their files), opened without blocking (a FIFO never hangs
    apply), a regular file only."""
    assert entry.source is not None
    shown = ctx.display(entry.source)
    try:
        with chase(entry.source, root_fd=ctx.root_fd, flags=ChaseFlags.SAFE) as found:
            if not stat.S_ISREG(found.st.st_mode):
                raise ConfigError(f"etc: source {shown} is not a regular file", location=entry.location)
            fd = os.open(fd_path(found.fd), os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > SOURCE_LIMIT:
                raise ConfigError(f"etc: source {shown} is not a regular file of at most "
                                  f"{SOURCE_LIMIT >> 20} MiB", location=entry.location)
            return read_fd(fd, SOURCE_LIMIT)
        finally:
            os.close(fd)
    except UnsafePathError as e:
        raise ConfigError(f"etc: source {shown}: {e.message}", location=entry.location) from None
    except OSError as e:
        raise ConfigError(f"etc: cannot read source {shown}: {e.strerror}",
                          location=entry.location) from None


def _link_problem(root_fd: int, source: str) -> str | None:
    """Why a symlink from /etc to ``source`` could be turned against root-run readers, or
    None: every entry its resolution goes through (the root, each directory, each symlink and
    the paths they point to, the target itself) must be root's, and none writable by another
    user (by others, or by a group other than root's). Missing components are fine when the
    directory above them is safe: nobody else can create them."""
    todo, links = [source], 0
    while todo:
        parts = [c for c in todo.pop().split("/") if c and c != "."]
        for i in range(len(parts) + 1):
            try:
                found = chase("/" + "/".join(parts[:i]), root_fd=root_fd, flags=ChaseFlags.SAFE | ChaseFlags.NOFOLLOW)
            except (FileNotFoundError, NotADirectoryError):
                break
            except UnsafePathError as e:
                return e.message
            with found:
                st = found.st
                if st.st_uid != 0:
                    return f"{found.path} is owned by uid {st.st_uid}, not root"
                if stat.S_ISLNK(st.st_mode):
                    links += 1
                    if links > 32:
                        return "too many symlinks on the way"
                    target = readlink_fd(found.fd)
                    todo.append(target if target.startswith("/")
                                else posixpath.join(posixpath.dirname(found.path), target))
                elif st.st_mode & 0o002 or (st.st_mode & 0o020 and st.st_gid != 0):
                    return f"{found.path} is writable by users other than root ({stat.S_IMODE(st.st_mode):04o})"
    return None


def _owner(accounts: Accounts, entry: EtcFile) -> tuple[int, int] | None:
    user, group = accounts.user(entry.user), accounts.group(entry.group)
    if user is None or group is None:
        return None
    return user.uid, group.gid


# --- actions ------------------------------------------------------------------------------


def _parent_fd(ctx: Context, path: str) -> tuple[int, str]:
    directory, name = posixpath.split(path)
    with mkdir_parents(ctx.root_fd, directory, 0o755) as found:
        return found.detach(), name


@dataclass(frozen=True)
class WriteEtc(Action):
    """Write one declared /etc file (keeping what was there first when asked)."""
    entry: EtcFile
    backup: bool = False  # keep what is there as <name>.freshroot-orig first

    def touches(self) -> tuple[str, ...]:
        return (self.entry.path,)

    def describe(self) -> str:
        e = self.entry
        what = f"link {e.path} -> {e.source}" if e.symlink else f"write {e.path} ({e.mode:04o} {e.user}:{e.group})"
        return what + (f", keeping the old one as {e.path}{BACKUP_SUFFIX}" if self.backup else "")

    def apply(self, ctx: Context) -> None:
        e = self.entry
        dir_fd, name = _parent_fd(ctx, e.path)
        try:
            if self.backup:
                with contextlib.suppress(FileExistsError):
                    os.link(name, name + BACKUP_SUFFIX, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
            if e.symlink:
                assert e.source is not None
                replace_symlink_at(dir_fd, name, e.source)
                return
            owner = _owner(Accounts.load(ctx.root_fd), e)
            if owner is None:
                raise OperationError(f"{ctx.display(e.path)}: unknown user {e.user!r} or group {e.group!r}",
                                     location=e.location)
            assert e.text is not None
            replace_at(dir_fd, name, e.text, mode=e.mode, uid=owner[0], gid=owner[1])
        finally:
            os.close(dir_fd)

    def records(self, ctx: Context) -> Sequence[Record]:
        # The backup link first (undo removes it last), then the file itself with what it held
        # before: undo puts that back (or removes the file, if there was none) while the file
        # is still what freshroot wrote.
        e = self.entry
        changes = [(e.path + BACKUP_SUFFIX, look(ctx.root_fd, e.path).digest)] if self.backup else []
        return wrote_files(ctx.root_fd, [*changes, (e.path, e.digest())])


@dataclass(frozen=True)
class RemoveEtc(Action):
    """Remove an /etc file freshroot wrote that is no longer declared."""
    path: str

    def touches(self) -> tuple[str, ...]:
        return (self.path,)

    def describe(self) -> str:
        return f"remove {self.path} (no longer declared)"

    def records(self, ctx: Context) -> Sequence[Record]:
        return (WroteFile.change(ctx.root_fd, self.path, "missing"),)  # undo writes it back

    def apply(self, ctx: Context) -> None:
        with chase(self.path, root_fd=ctx.root_fd, flags=ChaseFlags.PARENT | ChaseFlags.SAFE) as parent, \
                contextlib.suppress(FileNotFoundError):
            unlink_at(parent.fd, parent.rest)


@dataclass(frozen=True)
class RefuseEtc(Action):
    """A declared /etc file freshroot will not replace: applying it fails that file alone."""

    path: str
    error: OperationError = field(compare=False)

    refusal: ClassVar[bool] = True

    def touches(self) -> tuple[str, ...]:
        return (self.path,)

    def describe(self) -> str:
        return f"refuse {self.path}: {self.error.message}"

    def records(self, ctx: Context) -> Sequence[Record]:
        return ()  # changes nothing

    def apply(self, ctx: Context) -> None:
        raise self.error


@dataclass(frozen=True)
class WriteManifest(Action):
    """Record which /etc files freshroot manages, and their digests, so a later run knows what it may
    remove."""
    files: Mapping[str, Any]

    def touches(self) -> tuple[str, ...]:
        return (*self.files, f"/etc/{MANIFEST}")

    def describe(self) -> str:
        return f"record {len(self.files)} managed file(s) in /etc/{MANIFEST}"

    def text(self) -> bytes:
        return (json.dumps({"version": 1, "files": dict(self.files)}, indent=1, sort_keys=True) + "\n").encode()

    def records(self, ctx: Context) -> Sequence[Record]:
        return wrote_files(ctx.root_fd, [(f"/etc/{MANIFEST}", digest(self.text()))])

    def apply(self, ctx: Context) -> None:
        with mkdir_parents(ctx.root_fd, "/etc", 0o755) as etc:
            replace_at(etc.fd, MANIFEST, self.text(), mode=0o644)


# --- planning -----------------------------------------------------------------------------


def _plan(ctx: Context, entries: list[EtcFile]) -> Iterator[Action]:
    warn = step_output(ctx)
    force_all = ctx.fix
    old = _read_manifest(ctx.root_fd)
    new: dict[str, Any] = {}
    accounts = Accounts.load(ctx.root_fd)
    for declared in entries:
        entry = declared
        if entry.source is not None and not entry.symlink:  # copied: content, declared mode and owner
            entry = dataclasses.replace(entry, text=_read_source(ctx, entry))
        elif entry.symlink and entry.source is not None:
            problem = _link_problem(ctx.root_fd, entry.source)
            if problem is not None:
                raise ConfigError(f'etc."{entry.path.removeprefix("/etc/")}": refusing mode = "symlink" to '
                                  f"{ctx.display(entry.source)}: {problem}", location=entry.location,
                                  hint="without mode = \"symlink\" the source's content is copied instead")
        want = entry.digest()
        have = _inspect(ctx.root_fd, entry.path)
        managed = old.get(entry.path)
        new[entry.path] = {"digest": want}
        if have.kind == "other":  # this file fails; the others are still written
            yield RefuseEtc(entry.path, OperationError(
                f"{ctx.display(entry.path)} is not a file or symlink; not replacing it",
                location=entry.location, hint="move it away, then apply again"))
            new.pop(entry.path)
            if entry.path in old:
                new[entry.path] = old[entry.path]
            continue
        if have.kind != "missing" and have.digest != want:
            written = isinstance(managed, dict) and managed.get("digest")
            if written and written != have.digest and not (entry.force or force_all):
                warn(f"warning: {ctx.display(entry.path)} was changed by hand since freshroot wrote it; "
                     "left as it is (apply --fix, or force = true, replaces it)")
                new[entry.path] = managed
                continue
            yield WriteEtc(entry, backup=not written and have.kind == "file")
            continue
        if have.kind == "missing" or (not entry.symlink and _drifted(have.st, entry, accounts)):
            yield WriteEtc(entry)
    for path, managed in sorted(old.items()):
        if path in new:
            continue
        have = _inspect(ctx.root_fd, path)
        if have.kind == "missing":
            continue
        if isinstance(managed, dict) and have.digest == managed.get("digest"):
            yield RemoveEtc(path)
        else:
            warn(f"warning: {ctx.display(path)} is no longer declared but was changed by hand; left in place")
    if new != old:
        yield WriteManifest(new)


def _drifted(st: os.stat_result | None, entry: EtcFile, accounts: Accounts) -> bool:
    assert st is not None
    owner = _owner(accounts, entry)
    return stat.S_IMODE(st.st_mode) != entry.mode or owner is None or (st.st_uid, st.st_gid) != owner


def etc_step(entries: Iterable[EtcFile], deps: tuple[str, ...] = ("users", "groups")) -> Step:
    listed = list(entries)

    def planner(ctx: Context) -> Iterable[Action]:
        return list(_plan(ctx, listed))

    # isolated: each /etc file is written or fails on its own (the manifest, touching them
    # all, waits for every one of them).
    return Step("etc", planner, deps, description="files declared under [etc]", isolated=True)


__all__ = ["EtcFile", "etc_step", "parse_etc", "readlink_fd"]
