"""``[persist."/storage"]`` tables -> :class:`Persistence`, with errors naming file:line.

A storage table::

    [persist."/persist"]
    directories = ["/var/log", { path = "/var/lib/private/x", mode = "0700", parent = { mode = "0700" } }]
    files = ["/etc/machine-id", { path = "/etc/adjtime", how = "symlink" }]
    include = ["ssh-host-keys"]          # presets
    hide-mounts = true                    # x-gvfs-hide on every mount
    users.alice.directories = [".ssh"]    # relative to alice's home
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from freshroot.config import fields
from freshroot.config.table import Table
from freshroot.errors import ConfigError, DeclarationError, Location
from freshroot.fs import bindmount
from freshroot.fs.accounts import Accounts
from freshroot.persist import presets
from freshroot.persist.model import (
    Entry,
    How,
    Kind,
    Migrate,
    Perms,
    Persistence,
    Storage,
    is_below,
    parents,
)

STORAGE_KEYS = frozenset({
    "directories", "files", "users", "include", "hide-mounts", "allow-trash", "mount-options",
    "early", "degraded", "require-mount", "parent", "migrate",
})
ENTRY_KEYS = frozenset({"path", "user", "group", "mode", "hide", "migrate", "create", "early", "options",
                        "parent"})
FILE_KEYS = ENTRY_KEYS | {"how"}
USER_KEYS = frozenset({"home", "directories", "files"})
PERSIST_KEYS = frozenset({"audit-ignore"})
NO_PERMS = Perms()


def canonical_problem(path: str, *, relative: bool = False) -> str | None:
    """Why ``path`` is not a declared path (absolute, or for homes relative), or None: the
    shared path field type, which also refuses what no unit file can carry."""
    return fields.path_problem(path, relative=relative)


def _owner(t: Table, accounts: Accounts | None) -> tuple[int | None, int | None]:
    """The declared uid and gid. Without ``accounts`` (checking the declaration alone) a
    name is checked for its syntax and resolved when applying; ids are taken as they are."""
    user = fields.owner(t, "user")
    group = fields.owner(t, "group")
    uid = gid = None
    if user is not None:
        uid = user.id if accounts is None else fields.resolve(user, "user", accounts)
        if uid is None and accounts is not None:
            raise t.error(f"{t.name('user')}: no user {user.name!r} in the root's /etc/passwd", "user",
                          hint="create the user first, or give a numeric uid")
    if group is not None:
        gid = group.id if accounts is None else fields.resolve(group, "group", accounts)
        if gid is None and accounts is not None:
            raise t.error(f"{t.name('group')}: no group {group.name!r} in the root's /etc/group", "group",
                          hint="create the group first, or give a numeric gid")
    return uid, gid


def _perms(t: Table, accounts: Accounts | None) -> Perms:
    uid, gid = _owner(t, accounts)
    return Perms(uid, gid, fields.mode(t, "mode"))


def _enum(t: Table, key: str, kind: type[How] | type[Migrate], default: Any) -> Any:
    value = t.get_str(key)
    if value is None:
        return default
    try:
        return kind(value)
    except ValueError:
        allowed = " | ".join(f'"{m.value}"' for m in kind)
        raise t.error(f"{t.name(key)} must be {allowed}, not {value!r}", key) from None


class _StorageParser:
    def __init__(self, path: str, t: Table, accounts: Accounts | None, skip: Skip | None = None) -> None:
        self.path = path
        self.t = t
        self.accounts = accounts
        self.skip = skip
        # Only what is declared: the planner fills the rest from what the root has there,
        # else impermanence's defaults (see planner.parent_perms).
        self.parent = _perms(self._sub(t, "parent"), accounts) if "parent" in t else Perms()
        self.migrate: Migrate = _enum(t, "migrate", Migrate, Migrate.NO)
        self.early = t.get_bool("early", default=False)
        self.hide = t.get_bool("hide-mounts", default=False)
        self.allow_trash = t.get_bool("allow-trash", default=False)
        self.options = fields.mount_options(t, "mount-options")

    @staticmethod
    def _sub(t: Table, key: str) -> Table:
        sub = t.get_table(key)
        sub.reject_unknown({"user", "group", "mode"})
        return sub

    def entry(self, kind: Kind, value: Any, t: Table, key: str, i: int, *, user: str | None = None,
              home: str | None = None, base: Perms = NO_PERMS, parent: Perms | None = None) -> Entry:
        location = t.location(key, i)
        if isinstance(value, str):
            e = Table({"path": value}, (*t.path, key, i), t.file, t.positions)
        elif isinstance(value, dict):
            e = Table(value, (*t.path, key, i), t.file, t.positions)
            e.reject_unknown(FILE_KEYS if kind is Kind.FILE else ENTRY_KEYS)
        else:
            raise t.error(f"{t.name(key, i)} must be a path or a table with path = ...", key, i)
        if "path" not in e:
            raise e.error(f"{e.name('path')} is required")
        raw = fields.path(e, "path", e.raw("path"), relative=home is not None)
        path = raw if home is None else home.rstrip("/") + "/" + raw
        perms = _perms(e, self.accounts).with_defaults(base)
        own_parent = parent if parent is not None else self.parent
        if "parent" in e:
            own_parent = _perms(self._sub(e, "parent"), self.accounts).with_defaults(own_parent)
        options = list(self.options) + list(fields.mount_options(e, "options"))
        try:
            bindmount.parse_options(tuple(options))
        except ValueError as bad:
            where = "options" if "options" in e else None
            raise ConfigError(f"{t.name(key, i)}: unknown mount option {bad.args[0]!r}",
                              location=e.location(where) if where else self.t.location("mount-options"),
                              hint="bind mounts take ro, nosuid, nodev, noexec, noatime, nodiratime, relatime, "
                                   "and x-* options for other tools") from None
        if kind is Kind.FILE and e.get_bool("early", default=False):
            raise e.error(f"{t.name(key, i)} ({path}): early = true is for directories: the initrd mounts "
                          "only directories, files are bound or linked after the switch to the real root",
                          "early", hint="remove early = true from this file, or persist its directory early")
        # A storage's early = true is the default of its directories; its files are never early.
        early = kind is Kind.DIRECTORY and e.get_bool("early", default=self.early)
        hide = e.get_bool("hide", default=self.hide)
        if hide:
            options.append("x-gvfs-hide")
        if self.allow_trash:
            options.append("x-gvfs-trash")
        how: How = _enum(e, "how", How, How.AUTO) if kind is Kind.FILE else How.BIND
        migrate: Migrate = _enum(e, "migrate", Migrate, self.migrate)
        if how is How.SYMLINK and migrate is Migrate.COPY:
            # A symlink takes the place of the root's file: there is no copy left to keep.
            where = "migrate" if "migrate" in e else "how"
            raise e.error(f'{t.name(key, i)} ({path}): migrate = "copy" cannot keep the root\'s file when '
                          'how = "symlink" replaces it with a link', where,
                          hint='use migrate = "move" with how = "symlink", or how = "bind" (or "auto") '
                               'with migrate = "copy"')
        return Entry(
            kind=kind, path=path, storage=self.path, perms=perms, parent=own_parent,
            ancestors=parent if parent is not None else self.parent,
            how=how, migrate=migrate, hide=hide,
            create=e.get_bool("create", default=True), early=early,
            options=tuple(dict.fromkeys(options)), user=user, home=home, location=location,
        )

    def entries(self, t: Table, **kw: Any) -> list[Entry]:
        out = []
        for kind, key in ((Kind.DIRECTORY, "directories"), (Kind.FILE, "files")):
            for i, v in enumerate(t.get_list(key)):
                try:
                    out.append(self.entry(kind, v, t, key, i, **kw))
                except ConfigError as e:
                    if self.skip is None:
                        raise
                    self.skip(e)  # the generator: this entry is left out, the others persist
        return out

    def user_entries(self) -> list[Entry]:
        out: list[Entry] = []
        users = self.t.get_table("users")
        for name, ut in users.tables():
            fields.account_name(users, name, "user", name)
            ut.reject_unknown(USER_KEYS)
            user = self.accounts.user(name) if self.accounts is not None else None
            if user is None and self.accounts is not None:
                raise self.t.error(f"{self.t.name('users', name)}: no user {name!r} in the root's /etc/passwd",
                                   "users", name, hint="declare the user (or create it) before persisting its files")
            home = fields.opt_path(ut, "home") or (user.home if user is not None else f"/home/{name}")
            problem = canonical_problem(home)
            if problem is not None:  # a home from the root's passwd
                raise ut.error(f"home {home!r} of user {name} {problem}", "home")
            mine = Perms(user.uid, user.gid) if user is not None else Perms()
            out += self.entries(ut, user=name, home=home, base=mine)
        return out

    def preset_entries(self) -> list[Entry]:
        out: list[Entry] = []
        for i, name in enumerate(self.t.get_str_list("include")):
            table = presets.load(name)
            if table is None:
                raise self.t.error(f"{self.t.name('include', i)}: no preset named {name!r}", "include", i,
                                   hint=f"presets: {', '.join(presets.names())}")
            out += self.entries(table)
        return out

    def parse(self) -> Storage:
        try:
            self.t.reject_unknown(STORAGE_KEYS)
        except ConfigError as e:
            if self.skip is None:
                raise
            self.skip(e)  # reported; the entries are still checked (and at boot, persisted)
        declared = self.entries(self.t) + self.user_entries()
        seen = {e.path for e in declared}
        # A preset gives way to what the declaration says about the same path.
        extra = [e for e in self.preset_entries() if e.path not in seen]
        return Storage(
            path=self.path, entries=tuple(declared + extra), hide_mounts=self.hide,
            allow_trash=self.allow_trash, options=self.options, early=self.early,
            degraded=self.t.get_bool("degraded", default=False),
            require_mount=self.t.get_bool("require-mount", default=False), location=self.t.location(),
        )


def check(declaration: Table) -> Persistence:
    """The declaration alone, for the shared check (compose.check_declaration): everything is
    validated but user and group names, which are resolved against a root's passwd when
    applying. Every bad entry and storage is reported, not only the first (DeclarationError)."""
    errors: list[ConfigError] = []
    result = parse(declaration, None, skip=errors.append)
    if errors:
        raise DeclarationError(errors)
    return result


# Called with each error of an entry (or storage) that ``parse(..., skip=)`` leaves out.
Skip = Callable[[ConfigError], None]


def storage_tables(section: Table) -> Iterator[tuple[str, Table]]:
    """The storages of a ``persist`` section, as (storage path, Table): every key but the
    section-wide settings (PERSIST_KEYS), which are not storages."""
    for key in section:
        if not key.startswith("/"):
            if key not in PERSIST_KEYS:
                raise section.error(f"unknown key {section.name(key)}", key,
                                    hint='storage tables are named by their path: [persist."/persist"]')
            continue
        value = section.raw(key)
        if not isinstance(value, dict):
            raise section.error(f"{section.name(key)} must be a table", key)
        yield key, section.sub(key, value)


def parse(declaration: Table, accounts: Accounts | None, *, skip: Skip | None = None) -> Persistence:
    """Parse the ``persist`` section of a whole declaration (``accounts``: the root's).

    The first error is raised, unless ``skip`` is given (the generator): then an entry or
    storage with an error is passed to it and left out, and the rest is returned, so one bad
    entry never leaves every other path unpersisted at boot.
    """
    section = declaration.get_table("persist")
    storages: list[Storage] = []
    for key, table in storage_tables(section):
        try:
            problem = canonical_problem(key)
            if problem is not None:
                fixed = fields.canonical_hint(key)
                raise section.error(f"storage path {key!r} {problem}", key,
                                    hint=f"write [persist.{fixed.removeprefix('write ')}]"
                                    if fixed and fixed.startswith("write \"") else fixed)
            storages.append(_StorageParser(key, table, accounts, skip).parse())
        except ConfigError as e:
            if skip is None:
                raise
            skip(e)
    result = Persistence(tuple(storages), tuple(section.get_str_list("audit-ignore")))
    while (found := next(_problems(result), None)) is not None:
        error, bad = found
        if skip is None:
            raise error
        skip(error)
        result = Persistence(
            tuple(replace(s, entries=tuple(e for e in s.entries if e is not bad)) for s in result.storages
                  if s is not bad), result.audit_ignore)
    return result


def _where(e: Entry) -> str:
    return str(e.location) if e.location else e.storage


def validate(p: Persistence) -> None:
    """Refuse declarations that cannot be applied without surprises."""
    for error, _ in _problems(p):
        raise error


def _problems(p: Persistence) -> Iterator[tuple[ConfigError, Entry | Storage]]:
    """What makes ``p`` unappliable, each with the entry (or storage) to blame."""
    roots = [s.path for s in p.storages]
    for s in p.storages:
        for other in roots:
            if other != s.path and is_below(s.path, other):
                inner = s.path[len(other.rstrip("/")):]
                yield ConfigError(
                    f"storage {s.path} is inside storage {other}", location=s.location,
                    hint=f"{other} keeps each entry at {other.rstrip('/')}/<path>, so its entries below {inner} "
                         f"would land in {s.path}: declare these entries in [persist.\"{other}\"], or use sibling "
                         f"storages ({other.rstrip('/')}/system, {other.rstrip('/')}/home) and none at {other}"), s
    by_path: dict[str, Entry] = {}
    for e in p.entries():
        # The initrd's units name the source below /sysroot: that, too, must be a valid path.
        if len(("/sysroot" + e.source).encode("utf-8", "surrogateescape")) >= fields.PATH_MAX:
            yield ConfigError(f"{e.path}: its place in storage, {e.source}, is too long for a path "
                              f"(with /sysroot before it in the initrd: {fields.PATH_MAX} bytes or more)",
                              location=e.location), e
            continue
        for r in roots:
            if e.path == r or is_below(e.path, r) or is_below(r, e.path):
                yield ConfigError(f"{e.path} overlaps storage {r}: a storage cannot persist itself",
                                  location=e.location), e
                break
        first = by_path.get(e.path)
        if first is not None:
            if first.storage != e.storage:
                yield ConfigError(
                    f"{e.path} is declared in two storages, {first.storage} ({_where(first)}) and {e.storage}",
                    location=e.location, hint="keep one of them"), e
            else:
                yield ConfigError(f"{e.path} is declared twice (first at {_where(first)})", location=e.location), e
            continue
        by_path[e.path] = e
    declared: dict[str, Entry] = {}  # storage directory -> the first entry declaring its `parent`
    for e in p.entries():
        if e.parent == e.ancestors:
            continue
        where = e.source.rsplit("/", 1)[0]
        first = declared.setdefault(where, e)
        if first.parent != e.parent:
            yield ConfigError(f"{e.path}: its parent {where} is declared differently by {first.path} "
                              f"({_where(first)})", location=e.location,
                              hint="give the entries in one directory the same parent = { ... }, or "
                                   "declare it on one of them"), e
    dirs = {e.path: e for e in p.entries() if e.kind is Kind.DIRECTORY}
    for e in p.entries():
        for a in parents(e.path):  # O(depth) per entry: real declarations have hundreds
            d = dirs.get(a)
            if d is None:
                continue
            if e.kind is Kind.FILE:
                yield ConfigError(
                    f"file {e.path} is inside the persisted directory {d.path} ({_where(d)})",
                    location=e.location, hint="it persists with the directory already; remove this entry"), e
            if d.storage == e.storage:
                yield ConfigError(
                    f"{e.path} is inside {d.path} ({_where(d)}), which {e.storage} persists already",
                    location=e.location,
                    hint=f"it persists with {d.path} already: remove this entry (its owner and mode are "
                         f"those of {e.source} in storage; a [tmpfiles] rule can set them), or declare it "
                         "in another storage, whose mount goes on top"), e


def entry_location(e: Entry) -> Location:
    return e.location or Location("<declaration>")


def with_migrate(e: Entry, how: Migrate) -> Entry:
    return replace(e, migrate=how)
