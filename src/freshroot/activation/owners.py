"""Owners against the root *and* the declaration: the users and groups a root will have once
the ``users`` step has run.

A persisted entry, an [etc] file or a tmpfiles rule may name a user the declaration itself
declares (``[users.app]``), which a freshly debootstrapped root or a freshly wiped one does
not have yet. Every command that turns owner names into ids before the users step has run
(``install --root``, ``render``, the generator, ``plan``, ``config check``) resolves them
here, with the ids allocated by the very code the users step runs (accounts_plan), from the
same remembered ids (``/var/lib/freshroot/ids``, in storage when it is persisted). So the
storage directory ``install`` creates for ``app`` has the uid ``app`` gets at its first boot.

Only names neither the root nor the declaration has stay unresolved (exit 65 where they are
used). :func:`resolve_user` / :func:`resolve_group` take a name or an id.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from freshroot.activation.accounts_plan import plan_accounts
from freshroot.activation.shadowdb import FILES, DbFile
from freshroot.activation.users import _days, ids_dir, parse_groups, parse_users, read_ids, write_ids
from freshroot.config.table import Table
from freshroot.errors import ConfigError
from freshroot.fs.accounts import Accounts
from freshroot.fs.chase import ChaseFlags, chase


@dataclass(frozen=True)
class Resolved:
    """The accounts the root will have, and the id state the users step would record."""

    accounts: Accounts
    ids: dict[str, Any] = field(default_factory=dict)
    ids_dir: str = ""
    changed: bool = False  # ids holds allocations not remembered yet


def _db_files(root_fd: int) -> dict[str, DbFile]:
    try:
        with chase("/etc", root_fd=root_fd, flags=ChaseFlags.SAFE) as etc:
            etc_fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=etc.fd)
    except (FileNotFoundError, NotADirectoryError):
        return {name: DbFile(name, [], exists=False, mode=0o644) for name in FILES}
    try:
        return {name: DbFile.read(etc_fd, name) for name in FILES}
    finally:
        os.close(etc_fd)


def resolve_accounts(root_fd: int, declaration: Table | None) -> Resolved:
    """The root's accounts with the declaration's users and groups added as the users step
    would add them (nothing is written)."""
    if declaration is None or ("users" not in declaration and "groups" not in declaration):
        return Resolved(Accounts.load(root_fd))
    users = parse_users(declaration.get_table("users"))
    groups = parse_groups(declaration.get_table("groups"))
    directory = ids_dir(declaration)
    remembered = read_ids(root_fd, directory)
    files = _db_files(root_fd)
    result = plan_accounts(users, groups, files, remembered, _days())
    if result.errors:
        raise ConfigError("; ".join(result.errors))
    accounts = Accounts.parse(files["passwd"].data().decode("utf-8", "surrogateescape"),
                              files["group"].data().decode("utf-8", "surrogateescape"))
    return Resolved(accounts, result.ids, directory, result.ids != remembered)


def record_ids(root_fd: int, resolved: Resolved) -> bool:
    """Remember the ids ``resolved`` allocated, where the users step reads them, so they are
    the ids the users get at boot. Only when the ids are kept in storage (the ``ids`` preset):
    a copy on a root that is wiped would be forgotten anyway. True if written."""
    if not resolved.changed or resolved.ids_dir == "" or not resolved.ids_dir.endswith(
            "/var/lib/freshroot/ids") or resolved.ids_dir == "/var/lib/freshroot/ids":
        return False
    write_ids(root_fd, resolved.ids, resolved.ids_dir)
    return True


def resolve_user(accounts: Accounts, key: str | int) -> int | None:
    """The uid of a user name or id (a numeric string is an id, as in chown)."""
    if isinstance(key, int) or (key.isascii() and key.isdigit()):
        return int(key)
    found = accounts.user(key)
    return None if found is None else found.uid


def resolve_group(accounts: Accounts, key: str | int) -> int | None:
    if isinstance(key, int) or (key.isascii() and key.isdigit()):
        return int(key)
    found = accounts.group(key)
    return None if found is None else found.gid
