"""Users and groups of a target root, read from its /etc/passwd and /etc/group.

With ``--root /mnt`` the owner named "sshd" must be the one /mnt/etc/passwd knows, not the
host's, so freshroot never asks NSS. The files are read through chase(), so a symlinked
/etc/passwd resolves inside the root.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from freshroot.fs.chase import chase
from freshroot.fs.ops import read_fd, reopen


@dataclass(frozen=True, slots=True)
class User:
    """One line of /etc/passwd."""
    name: str
    uid: int
    gid: int
    gecos: str
    home: str
    shell: str


@dataclass(frozen=True, slots=True)
class Group:
    """One line of /etc/group."""
    name: str
    gid: int
    members: tuple[str, ...]


def _read(root_fd: int, path: str) -> str:
    try:
        with chase(path, root_fd=root_fd) as found:
            fd = reopen(found.fd, os.O_RDONLY)
    except FileNotFoundError:
        return ""
    try:
        return read_fd(fd).decode("utf-8", "surrogateescape")
    finally:
        os.close(fd)


def _is_id(text: str) -> bool:
    """A decimal uid/gid as glibc takes it: ASCII digits only (str.isdigit() also accepts
    '²' and other Unicode digits int() then rejects), and below the invalid id 2^32-1."""
    return text.isascii() and text.isdigit() and int(text) < 0xFFFFFFFF


def _records(text: str, fields: int) -> list[list[str]]:
    out = []
    # split("\n"), not splitlines(): that also splits at \x1c, \x85, U+2028..., which a
    # GECOS field may hold; glibc ends records at "\n" only.
    for line in text.split("\n"):
        if not line or line.startswith(("#", "+", "-")):
            continue  # NIS compat entries and comments carry no local account
        parts = line.split(":")
        if len(parts) >= fields and parts[0] and _is_id(parts[2]):
            out.append(parts)
    return out


@dataclass(frozen=True)
class Accounts:
    """The passwd and group databases of one root. The first entry of a name or id wins."""

    users: tuple[User, ...] = ()
    groups: tuple[Group, ...] = ()
    _by_user: dict[str, User] = field(default_factory=dict, repr=False, compare=False)
    _by_uid: dict[int, User] = field(default_factory=dict, repr=False, compare=False)
    _by_group: dict[str, Group] = field(default_factory=dict, repr=False, compare=False)
    _by_gid: dict[int, Group] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for u in self.users:
            self._by_user.setdefault(u.name, u)
            self._by_uid.setdefault(u.uid, u)
        for g in self.groups:
            self._by_group.setdefault(g.name, g)
            self._by_gid.setdefault(g.gid, g)

    @classmethod
    def parse(cls, passwd: str, group: str) -> Accounts:
        users = tuple(
            User(p[0], int(p[2]), int(p[3]) if _is_id(p[3]) else 65534, p[4], p[5], p[6] if len(p) > 6 else "")
            for p in _records(passwd, 6)
        )
        groups = tuple(
            Group(g[0], int(g[2]), tuple(m for m in g[3].split(",") if m)) for g in _records(group, 4)
        )
        return cls(users, groups)

    @classmethod
    def load(cls, root_fd: int) -> Accounts:
        return cls.parse(_read(root_fd, "/etc/passwd"), _read(root_fd, "/etc/group"))

    def user(self, key: str | int) -> User | None:
        """A user by name or uid (a numeric string counts as a uid, as in chown)."""
        if isinstance(key, int):
            return self._by_uid.get(key)
        if _is_id(key):
            return self._by_uid.get(int(key))
        return self._by_user.get(key)

    def group(self, key: str | int) -> Group | None:
        if isinstance(key, int):
            return self._by_gid.get(key)
        if _is_id(key):
            return self._by_gid.get(int(key))
        return self._by_group.get(key)
