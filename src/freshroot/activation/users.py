"""The ``users`` step: declared users and groups in passwd, group, shadow and gshadow.

```toml
[users.alice]
uid = 1000                 # optional: allocated, and then remembered
group = "alice"            # primary group; default: a group of the user's own name
extra-groups = ["wheel"]
description = "Alice"
home = "/home/alice"       # default /home/<name>, or / for system users
shell = "/bin/bash"        # default /bin/bash, or /usr/sbin/nologin for system users
system = false             # system users get ids counting down from 999
create-home = true         # default: true for normal users
hashed-password = "$y$..." # default: locked ("!", or "!*" for system users)

[groups.wheel]
gid = 10
members = ["alice"]
system = true              # default true (as systemd-sysusers)
```

Ids are allocated as systemd-sysusers and NixOS's update-users-groups do: system ids from
999 down, others from 1000 up, an id free both as uid and as gid preferred so a user and its
own group share it. Every id given is recorded in /var/lib/freshroot/ids/ids.json (the
``ids`` persistence preset keeps it), and an id once given to a name is given to it again
and never to another name, so a wiped root gets the same ids back. Users and groups that
freshroot added and that are no longer declared are removed from the files (their homes
and their ids are kept). Existing entries that were never declared are never touched.

All the work happens in one transaction under shadow-utils' locks (:mod:`.shadowdb`): the
plan is computed once to describe it, and again under the locks to apply it, so a useradd
running meanwhile is never lost.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from freshroot.activation.accounts_plan import Allocation, plan_accounts
from freshroot.activation.shadowdb import FILES, DbFile, ShadowLock, is_number
from freshroot.config import fields
from freshroot.config.table import Table
from freshroot.errors import Location, OperationError, Problems
from freshroot.fs.atomic import replace_at
from freshroot.fs.chase import ChaseFlags, chase
from freshroot.fs.ops import chown_fd, mkdir_at, mkdir_parents, open_path_at, read_at
from freshroot.plan.action import Action, Context, Step
from freshroot.plan.records import Record, UndoReport, digest, look, made_directories, record_type, wrote_files

IDS_DIR = "/var/lib/freshroot/ids"
IDS_FILE = "ids.json"
USER_KEYS = frozenset({"uid", "group", "extra-groups", "description", "home", "shell", "system",
                       "create-home", "hashed-password"})
GROUP_KEYS = frozenset({"gid", "members", "system"})


@dataclass(frozen=True)
class UserDecl:
    """One declared [users] entry, as the declaration gives it (None: freshroot chooses)."""
    name: str
    uid: int | None = None
    group: str | None = None  # None: a group of the user's own name
    extra_groups: tuple[str, ...] = ()
    description: str | None = None
    home: str | None = None
    shell: str | None = None
    system: bool = False
    create_home: bool | None = None
    hashed_password: str | None = None
    location: Location | None = None


@dataclass(frozen=True)
class GroupDecl:
    """One declared [groups] entry, or a user's own group."""
    name: str
    gid: int | None = None
    members: tuple[str, ...] = ()
    system: bool = True
    location: Location | None = None


def _id(table: Table, key: str) -> int | None:
    value = table.get_int(key)
    if value is not None and (problem := fields.id_problem(value)) is not None:
        raise table.error(f"{table.name(key)}: {problem}", key)
    return value


def _account_path(table: Table, key: str) -> str | None:
    """home and shell: absolute, and one field of a passwd line (no ':', no control character)."""
    value = fields.text(table, key, ":")
    if value is not None and not value.startswith("/"):
        raise table.error(f"{table.name(key)}: {value!r} must be an absolute path", key)
    return value


# Every value written into passwd, group, shadow and gshadow is checked here, so that
# `config check` refuses it; shadowdb.DbFile.put checks each field again before writing.
def parse_users(section: Table) -> list[UserDecl]:
    out = []
    problems = Problems()
    for name, table in section.tables():
        with problems:
            out.append(_user(section, name, table))
    problems.raise_all()
    return out


def _user(section: Table, name: str, table: Table) -> UserDecl:
    fields.account_name(section, name, "user", name)
    table.reject_unknown(USER_KEYS)
    group = table.raw("group") if "group" in table else None
    return UserDecl(
        name, _id(table, "uid"), None if group is None else fields.account_name(table, group, "group", "group"),
        fields.account_names(table, "extra-groups", "group"),
        fields.text(table, "description", ":"), _account_path(table, "home"), _account_path(table, "shell"),
        table.get_bool("system", default=False),
        table.get_bool("create-home", default=False) if "create-home" in table else None,
        fields.text(table, "hashed-password", ":"), section.location(name),
    )


def parse_groups(section: Table) -> list[GroupDecl]:
    out = []
    problems = Problems()
    for name, table in section.tables():
        with problems:
            fields.account_name(section, name, "group", name)
            table.reject_unknown(GROUP_KEYS)
            out.append(GroupDecl(name, _id(table, "gid"), fields.account_names(table, "members", "user"),
                                 table.get_bool("system", default=True), section.location(name)))
    problems.raise_all()
    return out


# --- the recorded ids ---------------------------------------------------------------------


def ids_dir(declaration: Table) -> str:
    """Where the remembered ids are read and written.

    When the declaration persists /var/lib/freshroot/ids (the ``ids`` preset, or a directory
    at or above it), the users step works on the copy in storage itself: it is the same
    directory once persist has bound it, and before (on a freshly wiped root, users runs
    before persist, which may need the users it creates) it is the only copy that
    remembers anything.
    """
    from freshroot.persist.parse import storage_tables

    for storage, table in storage_tables(declaration.get_table("persist")):
        if "ids" in table.get_str_list("include"):
            return storage.rstrip("/") + IDS_DIR
        for entry in table.get_list("directories"):
            path = entry if isinstance(entry, str) else entry.get("path") if isinstance(entry, dict) else None
            if isinstance(path, str) and (IDS_DIR + "/").startswith(path.rstrip("/") + "/"):
                return storage.rstrip("/") + IDS_DIR
    return IDS_DIR


def read_ids(root_fd: int, directory: str = IDS_DIR) -> dict[str, Any]:
    """The remembered ids in ``directory``; when it is the copy in storage and storage has
    none yet, the root's (a machine where apply ran before the ids were persisted: its
    users keep their ids)."""
    try:
        with chase(directory, root_fd=root_fd, flags=ChaseFlags.SAFE) as d:
            data = json.loads(read_at(d.fd, IDS_FILE))
    except (FileNotFoundError, NotADirectoryError):
        return read_ids(root_fd) if directory != IDS_DIR else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _ids_text(data: Mapping[str, Any]) -> bytes:
    return (json.dumps(dict(data), indent=1, sort_keys=True) + "\n").encode()


def write_ids(root_fd: int, data: Mapping[str, Any], directory: str = IDS_DIR) -> None:
    with mkdir_parents(root_fd, directory, 0o755) as d:
        replace_at(d.fd, IDS_FILE, _ids_text(data), mode=0o644)


# --- the step ---------------------------------------------------------------------------------


def _load(etc_fd: int) -> dict[str, DbFile]:
    return {name: DbFile.read(etc_fd, name) for name in FILES}


def _days() -> int:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    return int(epoch if epoch and is_number(epoch) else time.time()) // 86400


def _make_home(ctx: Context, path: str, uid: int, gid: int) -> None:
    parent, _, name = path.rstrip("/").rpartition("/")
    if not name:
        return
    with mkdir_parents(ctx.root_fd, parent or "/", 0o755) as d:
        if mkdir_at(d.fd, name, 0o700):
            fd = open_path_at(d.fd, name)
            try:
                chown_fd(fd, uid, gid)
            finally:
                os.close(fd)


def _home_missing(ctx: Context, path: str) -> bool:
    try:
        with chase(path, root_fd=ctx.root_fd, flags=ChaseFlags.SAFE):
            return False
    except FileNotFoundError:
        return True


@dataclass(frozen=True)
class UpdateAccounts(Action):
    """Add or change the declared users and groups in passwd, shadow, group and gshadow, under their
    locks."""
    users: tuple[UserDecl, ...]
    groups: tuple[GroupDecl, ...]
    changes: tuple[str, ...]  # what the plan found to do (re-planned under the locks)
    ids: str = IDS_DIR

    def describe(self) -> str:
        return "update the account files:\n" + "\n".join(f"  {c}" for c in self.changes)

    def apply(self, ctx: Context) -> None:
        with mkdir_parents(ctx.root_fd, "/etc", 0o755) as etc:
            etc_fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=etc.fd)
        try:
            with ShadowLock(etc_fd, display=ctx.display("/etc")):
                files = _load(etc_fd)
                result = plan_accounts(self.users, self.groups, files, read_ids(ctx.root_fd, self.ids), _days())
                if result.errors:
                    raise OperationError("; ".join(result.errors))
                write_ids(ctx.root_fd, result.ids, self.ids)  # first: an id handed out is never handed out again
                for db in files.values():
                    db.write(etc_fd)
        finally:
            os.close(etc_fd)
        for home, uid, gid in result.homes:
            if _home_missing(ctx, home):
                _make_home(ctx, home, uid, gid)

    def records(self, ctx: Context) -> Sequence[Record]:
        """The files as apply() will write them (the same plan, on the same files, under the
        apply lock), each with what it holds now; then the homes it will make. undo restores
        each file while it still holds what freshroot wrote: a useradd since then keeps it
        (and undo says so)."""
        files = _files(ctx)
        result = plan_accounts(self.users, self.groups, files, read_ids(ctx.root_fd, self.ids), _days())
        if result.errors:
            return ()  # apply() fails before writing anything
        lock = look(ctx.root_fd, "/etc/.pwd.lock")  # lckpwdf's file, made if missing, never written
        writes = [("/etc/.pwd.lock", lock.digest if lock.kind != "missing" else digest(b""))]
        for db in files.values():  # in DbFile.write's order: the backup, then the file
            if db.changed():
                if db.exists:
                    writes.append((f"/etc/{db.name}-", digest(db.original)))
                writes.append((f"/etc/{db.name}", digest(db.data())))
        out = [*made_directories(ctx.root_fd, "/etc"), IdsRemembered(f"{self.ids}/{IDS_FILE}"),
               *wrote_files(ctx.root_fd, writes)]
        for home, _uid, _gid in result.homes:
            out += made_directories(ctx.root_fd, home)
        return out


def _files(ctx: Context) -> dict[str, DbFile]:
    """The account files as they are (without shadow-utils' locks: for planning)."""
    try:
        with chase("/etc", root_fd=ctx.root_fd, flags=ChaseFlags.SAFE) as etc:
            etc_fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=etc.fd)
    except FileNotFoundError:
        return {name: DbFile(name, [], exists=False, mode=0o644) for name in FILES}
    try:
        return _load(etc_fd)
    finally:
        os.close(etc_fd)


@record_type
@dataclass(frozen=True)
class IdsRemembered(Record):
    """The ids handed out, written to ``path``: never reverted, so an id once given to a name is
    never given to another (its files, a home kept because it holds data, may still exist)."""

    TYPE: ClassVar[str] = "users.ids"
    path: str

    def describe(self) -> str:
        return f"keep the ids remembered in {self.path}"

    def revert(self, ctx: Context, report: UndoReport) -> None:
        report.kept.append(f"{ctx.display(self.path)}: the ids handed out stay remembered, so they are "
                           "never given to other names")


def _plan(ctx: Context, users: tuple[UserDecl, ...], groups: tuple[GroupDecl, ...], ids: str) -> list[Action]:
    files = _files(ctx)
    remembered = read_ids(ctx.root_fd, ids)
    result: Allocation = plan_accounts(users, groups, files, remembered, _days())
    if result.errors:
        raise OperationError("; ".join(result.errors))
    changes = list(result.changes)
    changes += [f"create home {home} ({uid}:{gid}, 0700)" for home, uid, gid in result.homes
                if _home_missing(ctx, home)]
    if not changes and result.ids == remembered:
        return []
    return [UpdateAccounts(users, groups, tuple(changes or [f"record allocated ids in {ids}"]), ids)]


def users_steps(users: Iterable[UserDecl], groups: Iterable[GroupDecl], ids: str = IDS_DIR) -> list[Step]:
    """``users`` does the work; ``groups`` is the name NixOS snippets also depend on."""
    u, g = tuple(users), tuple(groups)

    def planner(ctx: Context) -> Iterable[Action]:
        return _plan(ctx, u, g, ids)

    return [
        Step("users", planner, ("specialfs",), description="declared users and groups"),
        Step("groups", lambda ctx: (), ("users",), description="(done by users)"),
    ]
