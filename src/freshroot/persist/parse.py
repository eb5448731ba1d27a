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

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from freshroot.config.table import Table
from freshroot.errors import ConfigError, Location
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
    """Why ``path`` is not a canonical absolute (or, for homes, relative) path, or None."""
    if "\0" in path:
        return "contains a NUL byte"
    if relative:
        if path.startswith("/"):
            return "must be relative to the user's home"
    elif not path.startswith("/"):
        return "must be an absolute path"
    body = path.strip("/") if not relative else path
    if not body:
        return "names no entry"
    if path.endswith("/") or "//" in path:
        return "is not canonical (no trailing or doubled '/')"
    if any(c in (".", "..") for c in body.split("/")):
        return "is not canonical (no '.' or '..' components)"
    return None


def _mode(t: Table, key: str) -> int | None:
    if key not in t:
        return None
    value = t.raw(key)
    if isinstance(value, int) and not isinstance(value, bool):
        mode = value
    elif isinstance(value, str) and value and all(c in "01234567" for c in value):
        mode = int(value, 8)
    else:
        raise t.error(f'{t.name(key)} must be an octal mode such as "0755"', key)
    if mode > 0o7777:
        raise t.error(f"{t.name(key)}: {mode:o} is not a file mode (at most 7777)", key)
    return mode


def _owner(t: Table, accounts: Accounts | None) -> tuple[int | None, int | None]:
    uid = gid = None
    user = t.get_str("user")
    group = t.get_str("group")
    if accounts is None:  # checking the declaration alone: names are resolved when applying
        return (int(user) if user and user.isdigit() else None), (int(group) if group and group.isdigit() else None)
    if user is not None:
        found = accounts.user(user)
        if found is None:
            if not user.isdigit():
                raise t.error(f"{t.name('user')}: no user {user!r} in the root's /etc/passwd", "user",
                              hint="create the user first, or give a numeric uid")
            uid = int(user)
        else:
            uid = found.uid
    if group is not None:
        g = accounts.group(group)
        if g is None:
            if not group.isdigit():
                raise t.error(f"{t.name('group')}: no group {group!r} in the root's /etc/group", "group",
                              hint="create the group first, or give a numeric gid")
            gid = int(group)
        else:
            gid = g.gid
    return uid, gid


def _perms(t: Table, accounts: Accounts | None) -> Perms:
    uid, gid = _owner(t, accounts)
    return Perms(uid, gid, _mode(t, "mode"))


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
    def __init__(self, path: str, t: Table, accounts: Accounts | None) -> None:
        self.path = path
        self.t = t
        self.accounts = accounts
        # Only what is declared: the planner fills the rest from what the root has there,
        # else impermanence's defaults (see planner.parent_perms).
        self.parent = _perms(self._sub(t, "parent"), accounts) if "parent" in t else Perms()
        self.migrate: Migrate = _enum(t, "migrate", Migrate, Migrate.NO)
        self.early = t.get_bool("early", default=False)
        self.hide = t.get_bool("hide-mounts", default=False)
        self.allow_trash = t.get_bool("allow-trash", default=False)
        self.options = tuple(t.get_str_list("mount-options"))

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
        raw = e.req_str("path")
        problem = canonical_problem(raw, relative=home is not None)
        if problem is not None:
            raise ConfigError(f"{t.name(key, i)}: {raw!r} {problem}", location=location)
        path = raw if home is None else home.rstrip("/") + "/" + raw
        perms = _perms(e, self.accounts).with_defaults(base)
        own_parent = parent if parent is not None else self.parent
        if "parent" in e:
            own_parent = _perms(self._sub(e, "parent"), self.accounts).with_defaults(own_parent)
        options = list(self.options) + e.get_str_list("options")
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
        return Entry(
            kind=kind, path=path, storage=self.path, perms=perms, parent=own_parent,
            how=_enum(e, "how", How, How.AUTO) if kind is Kind.FILE else How.BIND,
            migrate=_enum(e, "migrate", Migrate, self.migrate), hide=hide,
            create=e.get_bool("create", default=True), early=early,
            options=tuple(dict.fromkeys(options)), user=user, home=home, location=location,
        )

    def entries(self, t: Table, **kw: Any) -> list[Entry]:
        out = [self.entry(Kind.DIRECTORY, v, t, "directories", i, **kw)
               for i, v in enumerate(t.get_list("directories"))]
        out += [self.entry(Kind.FILE, v, t, "files", i, **kw) for i, v in enumerate(t.get_list("files"))]
        return out

    def user_entries(self) -> list[Entry]:
        out: list[Entry] = []
        for name, ut in self.t.get_table("users").tables():
            ut.reject_unknown(USER_KEYS)
            user = self.accounts.user(name) if self.accounts is not None else None
            if user is None and self.accounts is not None:
                raise self.t.error(f"{self.t.name('users', name)}: no user {name!r} in the root's /etc/passwd",
                                   "users", name, hint="declare the user (or create it) before persisting its files")
            home = ut.get_str("home") or (user.home if user is not None else f"/home/{name}")
            problem = canonical_problem(home)
            if problem is not None:
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
        self.t.reject_unknown(STORAGE_KEYS)
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
    """The declaration alone, for ``freshroot config check``: everything is validated but
    user and group names, which are resolved against a root's passwd when applying."""
    return parse(declaration, None)


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


def parse(declaration: Table, accounts: Accounts | None) -> Persistence:
    """Parse the ``persist`` section of a whole declaration (``accounts``: the root's)."""
    section = declaration.get_table("persist")
    storages: list[Storage] = []
    for key, table in storage_tables(section):
        problem = canonical_problem(key)
        if problem is not None:
            raise section.error(f"storage path {key!r} {problem}", key)
        storages.append(_StorageParser(key, table, accounts).parse())
    result = Persistence(tuple(storages), tuple(section.get_str_list("audit-ignore")))
    validate(result)
    return result


def _where(e: Entry) -> str:
    return str(e.location) if e.location else e.storage


def validate(p: Persistence) -> None:
    """Refuse declarations that cannot be applied without surprises."""
    roots = [s.path for s in p.storages]
    for s in p.storages:
        for other in roots:
            if other != s.path and is_below(s.path, other):
                raise ConfigError(f"storage {s.path} is inside storage {other}", location=s.location)
    by_path: dict[str, Entry] = {}
    for e in p.entries():
        for r in roots:
            if e.path == r or is_below(e.path, r) or is_below(r, e.path):
                raise ConfigError(f"{e.path} overlaps storage {r}: a storage cannot persist itself",
                                  location=e.location)
        first = by_path.get(e.path)
        if first is not None:
            if first.storage != e.storage:
                raise ConfigError(
                    f"{e.path} is declared in two storages, {first.storage} ({_where(first)}) and {e.storage}",
                    location=e.location, hint="keep one of them")
            raise ConfigError(f"{e.path} is declared twice (first at {_where(first)})", location=e.location)
        by_path[e.path] = e
    dirs = {e.path: e for e in p.entries() if e.kind is Kind.DIRECTORY}
    for e in p.entries():
        for a in parents(e.path):  # O(depth) per entry: real declarations have hundreds
            d = dirs.get(a)
            if d is None:
                continue
            if e.kind is Kind.FILE:
                raise ConfigError(
                    f"file {e.path} is inside the persisted directory {d.path} ({_where(d)})",
                    location=e.location, hint="it persists with the directory already; remove this entry")
            if d.storage == e.storage:
                raise ConfigError(
                    f"{e.path} is inside {d.path} ({_where(d)}), which {e.storage} persists already",
                    location=e.location)


def entry_location(e: Entry) -> Location:
    return e.location or Location("<declaration>")


def with_migrate(e: Entry, how: Migrate) -> Entry:
    return replace(e, migrate=how)
